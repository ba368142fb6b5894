/* SPDX-License-Identifier: MIT */
/*
 * The broker at scale, without a daemon: what a restart, `smhctl allocs` and a growing hash
 * map cost with hundreds of thousands of live buffers. Each figure comes with a baseline
 * measured in the same run (these machines are shared and noisy):
 *
 * - restore: N records through broker_restore_alloc() in handle order (the state file's
 *   order), then in a shuffled order, against N plain broker_alloc() calls of the same blocks;
 * - listing: every page of `allocs` through requests_handle(), as smhctl asks for them (each
 *   after the last handle of the one before), against the first page asked for again and again;
 * - hash map: the slowest single hmap_put() while growing to N entries, against the mean
 *   (three runs; each put's best time, so that preemptions by other work drop out).
 *
 * The pool has one 128 MiB region of 64-byte granules and touches no memory; the listing's
 * memfd backend maps the region but nothing writes it, so no page is ever populated.
 *
 * usage: bench-broker [--restore N[,N...]] [--list N] [--hmap N] [--smoke]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hmap.h"
#include "daemon/backend.h"
#include "daemon/broker.h"
#include "daemon/requests.h"

#define REGION_BASE 0x40000000ull
#define REGION_SIZE (128ull << 20)
#define BUF_SIZE    64
#define N_MAX       (REGION_SIZE / BUF_SIZE)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void row(const char *what, double value, const char *unit, double ratio, const char *base)
{
	printf("%-44s %12.3f %-4s %9.3f  %s\n", what, value, unit, ratio, base);
}

static struct dt_config *bench_config(void)
{
	static struct dt_region region = {
		.label = "bench",
		.path = (char *)"/reserved-memory/bench@40000000",
		.base = REGION_BASE,
		.size = REGION_SIZE,
		.attr = SMH_REG_ATTR_CACHEABLE,
	};
	static struct dt_config cfg = { .regions = &region, .n_regions = 1 };

	return &cfg;
}

static struct pool *bench_pool(void)
{
	struct pool *pool = NULL;

	if (pool_create(bench_config(), BUF_SIZE, NULL, NULL, &pool) < 0) {
		fprintf(stderr, "bench-broker: error: cannot create the pool\n");
		exit(1);
	}
	return pool;
}

/* N buffers allocated by one client: the baseline, and the broker the listing walks. */
static double alloc_n(struct broker *b, size_t n)
{
	struct broker_client *c;
	struct broker_alloc *a;
	double t0;

	broker_init(b, bench_pool(), NULL);
	if (broker_client_add(b, 1, 1000, 1000, "bench", &c) < 0)
		exit(1);
	t0 = now();
	for (size_t i = 0; i < n; i++)
		if (broker_alloc(b, c, SMH_REG_ATTR_CACHEABLE, BUF_SIZE, 0, &a) < 0)
			exit(1);
	return now() - t0;
}

static void broker_drop(struct broker *b)
{
	struct pool *pool = b->pool;

	broker_finish(b);
	pool_destroy(pool);
}

static uint64_t rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Restores handles 1..n (block i at the i-th granule) in the order of @order. */
static double restore_n(const uint64_t *order, size_t n)
{
	struct broker b;
	struct broker_alloc *a;
	double t0, t;

	broker_init(&b, bench_pool(), NULL);
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		struct pool_block blk = { .region = 0,
					  .addr = REGION_BASE + (order[i] - 1) * BUF_SIZE,
					  .size = BUF_SIZE };

		if (broker_restore_alloc(&b, order[i], &blk, 0, 0, &a) < 0)
			exit(1);
	}
	t = now() - t0;
	/* Without holds, as recover.c's drop_unheld() finds them. */
	while ((a = broker_alloc_after(&b, 0)))
		broker_restore_drop(&b, a);
	broker_drop(&b);
	return t;
}

static void bench_restore(size_t n)
{
	uint64_t *order = malloc(n * sizeof(*order)), state = 88172645463325252ull;
	struct broker b;
	double t_alloc, t_sorted, t_shuffled;
	char what[64];

	if (!order)
		exit(1);
	for (size_t i = 0; i < n; i++)
		order[i] = i + 1;
	t_alloc = alloc_n(&b, n);
	broker_drop(&b);
	t_sorted = restore_n(order, n);
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd(&state) % (i + 1);
		uint64_t x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	t_shuffled = restore_n(order, n);
	snprintf(what, sizeof(what), "broker_alloc x %zu", n);
	row(what, t_alloc * 1e3, "ms", 1.0, "(baseline)");
	snprintf(what, sizeof(what), "restore x %zu, handle order", n);
	row(what, t_sorted * 1e3, "ms", t_sorted / t_alloc, "broker_alloc");
	snprintf(what, sizeof(what), "restore x %zu, shuffled", n);
	row(what, t_shuffled * 1e3, "ms", t_shuffled / t_alloc, "broker_alloc");
	free(order);
}

struct lister {
	struct request_ctx ctx;
	bool fd_sent[1];
	uint8_t in[SMH_MSG_MAX], out[SMH_MSG_MAX];
	uint64_t id;
};

/* One page after @after: its time; sets its last handle, its length and the more flag. */
static double page(struct lister *l, uint64_t after, uint64_t *lastp, size_t *np, bool *morep)
{
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__AllocsRequest body = SMH__ALLOCS_REQUEST__INIT;
	struct request_result res;
	Smh__Response *resp;
	ssize_t len;
	double t0, t;

	body.after = after;
	req.id = ++l->id;
	req.body_case = SMH__REQUEST__BODY_ALLOCS;
	req.allocs = &body;
	len = wire_pack_request(&req, l->in);
	if (len < 0)
		exit(1);
	t0 = now();
	requests_handle(&l->ctx, l->in, (size_t)len, l->out, &res);
	t = now() - t0;
	resp = wire_unpack_response(l->out, res.len);
	if (!resp || resp->status != 0 || resp->body_case != SMH__RESPONSE__BODY_ALLOCS)
		exit(1);
	*np = resp->allocs->n_allocs;
	*lastp = *np ? resp->allocs->allocs[*np - 1]->handle : after;
	*morep = resp->allocs->more;
	wire_free_response(resp);
	return t;
}

static void bench_list(size_t n)
{
	struct backend_options opts = { .kind = BACKEND_MEMFD };
	struct lister *l = calloc(1, sizeof(*l));
	double t_first = 0, t_all = 0, t_worst = 0, t;
	size_t n_pages = 0, n_listed = 0, got, ignored;
	uint64_t after = 0, last, last_first;
	bool more, ignored_more;
	struct broker b;
	char what[64];

	if (!l || backend_create(&opts, bench_config(), NULL, &l->ctx.backend) < 0)
		exit(1);
	alloc_n(&b, n);
	l->ctx.broker = &b;
	l->ctx.client = list_entry(b.clients.next, struct broker_client, link);
	l->ctx.fd_sent = l->fd_sent;
	l->ctx.hello_done = true;
	do {
		t = page(l, after, &last, &got, &more);
		t_all += t;
		t_worst = t > t_worst ? t : t_worst;
		/* The baseline, interleaved: the first page again. */
		t_first += page(l, 0, &last_first, &ignored, &ignored_more);
		after = last;
		n_listed += got;
		n_pages++;
	} while (more);
	if (n_listed != n) {
		fprintf(stderr, "bench-broker: error: listed %zu of %zu\n", n_listed, n);
		exit(1);
	}
	row("allocs page after 0 (the first)", t_first / (double)n_pages * 1e3, "ms", 1.0,
	    "(baseline)");
	snprintf(what, sizeof(what), "allocs page, mean of %zu", n_pages);
	row(what, t_all / (double)n_pages * 1e3, "ms", t_all / t_first, "first page");
	row("allocs page, slowest", t_worst * 1e3, "ms", t_worst * (double)n_pages / t_first,
	    "first page");
	snprintf(what, sizeof(what), "allocs, all %zu listed", n);
	printf("%-44s %12.3f ms\n", what, t_all * 1e3);
	broker_drop(&b);
	backend_destroy(l->ctx.backend);
	free(l);
}

/*
 * Grows a map to @n entries @runs times, timing every put. A stall of the map's own shows at
 * the same put in every run; the scheduler's preemptions (other work on a shared machine) do
 * not: the minimum over the runs of each put's time keeps the first and drops the second.
 */
static void bench_hmap(size_t n, unsigned runs)
{
	double *best = malloc(n * sizeof(*best)), t_all = 0, worst = 0, raw_worst = 0;
	static int v;
	size_t at = 0;
	char what[64];

	if (!best)
		exit(1);
	for (unsigned r = 0; r < runs; r++) {
		struct hmap m;
		double t_run = now();

		hmap_init(&m);
		for (size_t i = 0; i < n; i++) {
			double t0 = now(), t;

			if (hmap_put(&m, i + 1, &v) < 0)
				exit(1);
			t = now() - t0;
			best[i] = r == 0 || t < best[i] ? t : best[i];
			raw_worst = t > raw_worst ? t : raw_worst;
		}
		t_all += now() - t_run;
		hmap_finish(&m);
	}
	for (size_t i = 0; i < n; i++)
		if (best[i] > worst) {
			worst = best[i];
			at = i + 1;
		}
	snprintf(what, sizeof(what), "hmap_put to %zu entries, mean", n);
	row(what, t_all / (double)n / runs * 1e9, "ns", 1.0, "(baseline, clock reads included)");
	snprintf(what, sizeof(what), "hmap_put, slowest (put %zu, best of %u)", at, runs);
	row(what, worst * 1e6, "us", worst * (double)n * runs / t_all, "mean");
	row("hmap_put, slowest of all runs (noise too)", raw_worst * 1e6, "us",
	    raw_worst * (double)n * runs / t_all, "mean");
	free(best);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "restore", required_argument, NULL, 'r' },
		{ "list", required_argument, NULL, 'l' },
		{ "hmap", required_argument, NULL, 'h' },
		{ "smoke", no_argument, NULL, 's' },
		{ 0 },
	};
	size_t restore[8] = { 200000, 1000000 }, n_restore = 2, list = 1000000, hm = 1000000;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'r') {
			n_restore = 0;
			for (char *p = optarg; *p && n_restore < 8; p += *p == ',')
				restore[n_restore++] = strtoull(p, &p, 0);
		} else if (c == 'l') {
			list = strtoull(optarg, NULL, 0);
		} else if (c == 'h') {
			hm = strtoull(optarg, NULL, 0);
		} else if (c == 's') {
			restore[0] = 2000;
			n_restore = 1;
			list = hm = 10000;
		} else {
			return 2;
		}
	}
	for (size_t i = 0; i < n_restore; i++)
		if (restore[i] == 0 || restore[i] > N_MAX)
			return 2;
	if (list == 0 || list > N_MAX || hm == 0)
		return 2;
	printf("%-44s %17s %9s  %s\n", "operation", "time", "ratio", "against");
	for (size_t i = 0; i < n_restore; i++)
		bench_restore(restore[i]);
	bench_list(list);
	bench_hmap(hm, 3);
	return 0;
}
