/* SPDX-License-Identifier: MIT */
/*
 * 200 clients at once: 8 threads own 25 connections each. Every connection allocates, maps,
 * writes, checks and frees several small buffers while the others do the same, then holds
 * one buffer while the main thread checks that the daemon lists every connection with what it
 * holds; then all disconnect without freeing, and the daemon is back to one client and no
 * bytes used.
 *
 * Threads cannot use cmocka's assertions (they longjmp): a worker records its first failure
 * and goes on meeting the barriers, and the main thread asserts after each phase.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

#define N_THREADS  8
#define PER_THREAD 25
#define N_CLIENTS  (N_THREADS * PER_THREAD)
#define ROUNDS     3
#define HELD_SIZE  64

struct worker {
	pthread_t thread;
	int index;
	const char *socket;
	pthread_barrier_t *barrier;
	struct smh_client *clients[PER_THREAD];
	struct smh_buffer held[PER_THREAD];
	char error[256];
};

/* Records the first failure of @w; returns -1. */
static int failed(struct worker *w, const char *what, int client, int err)
{
	if (!w->error[0])
		snprintf(w->error, sizeof(w->error), "thread %d, client %d: %s: %s", w->index,
			 client, what, smh_strerror(err));
	return -1;
}

static unsigned seed_of(const struct worker *w, int client, int k)
{
	return (unsigned)((w->index * PER_THREAD + client) * 16 + k);
}

/* A few buffers of both attributes on one connection, all live at once, then freed. */
static int exercise(struct worker *w, int i)
{
	struct smh_client *c = w->clients[i];
	struct smh_buffer b[3];
	int err;

	for (int round = 0; round < ROUNDS && !w->error[0]; round++) {
		for (int k = 0; k < 3; k++) {
			size_t size = (size_t)64 << ((k + round + i) % 3);
			enum smh_reg_attr attr =
				(k + i) % 2 ? SMH_REG_ATTR_NON_CACHEABLE : SMH_REG_ATTR_CACHEABLE;

			err = smh_alloc(c, attr, size, 0, &b[k]);
			if (err == 0)
				err = smh_map(&b[k]);
			if (err < 0)
				return failed(w, "alloc and map", i, err);
			if (!all_zero(b[k].addr, size))
				return failed(w, "a new buffer is not zeroed", i, 0);
			pattern_fill(b[k].addr, size, seed_of(w, i, k + 3 * round));
		}
		for (int k = 0; k < 3; k++) {
			if (!pattern_check(b[k].addr, b[k].size, seed_of(w, i, k + 3 * round)))
				return failed(w, "a buffer lost its pattern", i, 0);
			err = smh_free(c, &b[k]);
			if (err < 0)
				return failed(w, "free", i, err);
		}
	}
	return 0;
}

static int hold_one(struct worker *w, int i)
{
	struct smh_buffer *b = &w->held[i];
	int err = smh_alloc(w->clients[i], SMH_REG_ATTR_CACHEABLE, HELD_SIZE, 0, b);

	if (err == 0)
		err = smh_map(b);
	if (err < 0)
		return failed(w, "alloc the held buffer", i, err);
	pattern_fill(b->addr, HELD_SIZE, seed_of(w, i, 15));
	return 0;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	int err;

	for (int i = 0; i < PER_THREAD && !w->error[0]; i++) {
		err = smh_connect(w->socket, &w->clients[i]);
		if (err < 0)
			failed(w, "connect", i, err);
	}
	/* After each phase, the main thread looks while the workers wait. */
	pthread_barrier_wait(w->barrier); /* all connected */
	pthread_barrier_wait(w->barrier);
	for (int i = 0; i < PER_THREAD && exercise(w, i) == 0; i++)
		;
	pthread_barrier_wait(w->barrier); /* all exercised */
	pthread_barrier_wait(w->barrier);
	for (int i = 0; i < PER_THREAD && hold_one(w, i) == 0; i++)
		;
	pthread_barrier_wait(w->barrier); /* all holding */
	pthread_barrier_wait(w->barrier);
	for (int i = 0; i < PER_THREAD; i++) {
		if (!w->error[0] && w->held[i].addr &&
		    !pattern_check(w->held[i].addr, HELD_SIZE, seed_of(w, i, 15)))
			failed(w, "the held buffer lost its pattern", i, 0);
		smh_disconnect(w->clients[i]);
	}
	return NULL;
}

static void assert_no_error(struct worker *workers)
{
	for (int t = 0; t < N_THREADS; t++)
		if (workers[t].error[0])
			fail_msg("%s", workers[t].error);
}

/* 200 connections with up to 4 fds each here, 200 more in the daemon. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= 4096)
		return;
	rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur >= 2048);
}

/* Every worker connection is listed, holding exactly its one buffer; no one else holds any. */
static void check_listing(struct smh_client *obs, struct worker *workers)
{
	struct smh_client_info *infos;
	struct smh_alloc_info *allocs;
	size_t n, n_allocs;

	assert_int_equal(smh_list_clients(obs, &infos, &n), 0);
	assert_int_equal(n, N_CLIENTS + 1);
	for (int t = 0; t < N_THREADS; t++) {
		for (int i = 0; i < PER_THREAD; i++) {
			uint64_t id = smh_client_id(workers[t].clients[i]);
			size_t j = 0;

			while (j < n && infos[j].id != id)
				j++;
			if (j == n)
				fail_msg("client %llu is not listed", (unsigned long long)id);
			assert_int_equal(infos[j].pid, getpid());
			assert_int_equal(infos[j].n_buffers, 1);
			assert_int_equal(infos[j].bytes, HELD_SIZE);
		}
	}
	free(infos);
	assert_int_equal(smh_list_allocs(obs, &allocs, &n_allocs), 0);
	assert_int_equal(n_allocs, N_CLIENTS);
	for (int t = 0; t < N_THREADS; t++) {
		for (int i = 0; i < PER_THREAD; i++) {
			const struct smh_buffer *b = &workers[t].held[i];
			size_t j = 0;

			while (j < n_allocs && allocs[j].handle != b->handle)
				j++;
			assert_true(j < n_allocs);
			assert_int_equal(allocs[j].owner, smh_client_id(workers[t].clients[i]));
			assert_int_equal(allocs[j].phys_addr, b->phys_addr);
			assert_int_equal(allocs[j].n_holders, 1);
		}
	}
	smh_allocs_free(allocs, n_allocs);
	assert_int_equal(harness_used(obs), N_CLIENTS * HELD_SIZE);
}

static void test_200_clients(void **state)
{
	/* Static: a failed assertion leaves this frame while the workers still use them. */
	static struct worker workers[N_THREADS];
	static pthread_barrier_t barrier;
	struct smh_client *obs;
	struct smhd *d;
	int baseline;

	raise_fd_limit();
	d = smhd_start(NULL);
	obs = harness_connect(d);
	harness_wait_usage(obs, 0, 1);
	baseline = smhd_settled_fds(d, obs);
	assert_int_equal(pthread_barrier_init(&barrier, NULL, N_THREADS + 1), 0);
	for (int t = 0; t < N_THREADS; t++) {
		memset(&workers[t], 0, sizeof(workers[t]));
		workers[t].index = t;
		workers[t].socket = d->socket;
		workers[t].barrier = &barrier;
		assert_int_equal(pthread_create(&workers[t].thread, NULL, work, &workers[t]), 0);
	}
	pthread_barrier_wait(&barrier);
	assert_no_error(workers);
	harness_wait_usage(obs, 0, N_CLIENTS + 1);
	smhd_wait_fds(d, baseline + N_CLIENTS);
	pthread_barrier_wait(&barrier);

	pthread_barrier_wait(&barrier);
	assert_no_error(workers);
	assert_int_equal(harness_used(obs), 0);
	pthread_barrier_wait(&barrier);

	pthread_barrier_wait(&barrier);
	assert_no_error(workers);
	check_listing(obs, workers);
	pthread_barrier_wait(&barrier);

	for (int t = 0; t < N_THREADS; t++)
		assert_int_equal(pthread_join(workers[t].thread, NULL), 0);
	pthread_barrier_destroy(&barrier);
	assert_no_error(workers);

	/* They disconnected holding their buffers: the daemon released everything. */
	harness_wait_usage(obs, 0, 1);
	smhd_wait_fds(d, baseline);
	smh_disconnect(obs);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_200_clients, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
