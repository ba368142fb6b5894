/* SPDX-License-Identifier: MIT */
/*
 * Stress with crashes: 8 worker processes, each its own libsmh-client
 * connection, do random allocs, reallocs, frees, exports, imports and maps of both attributes,
 * random sizes and alignments, for SMH_STRESS_SECONDS (default 20); the parent SIGKILLs a
 * random worker every few dozen milliseconds and starts a new one in its place.
 *
 * Every buffer carries a byte pattern seeded by its owner (the worker's generation) and its
 * handle, written through the mapping right after the alloc. It is checked before every free,
 * realloc and export and at random; a realloc keeps the pattern's prefix and the bytes it adds
 * read zero. An exported buffer is frozen: its holders only check it, and resize it to its own
 * size (-EBUSY while another client holds it, else nothing moves). Its token, handle, seed and
 * size are published in memory shared by the workers; an importer checks the exporter's
 * pattern, also after the exporter was killed: a buffer shared with a dead process stays intact
 * for the other holders.
 *
 * Workers cannot use cmocka's assertions: a worker records its first failure in the shared
 * memory and exits 1, and the parent fails the test. At the end the workers stop, and the
 * pool's statistics must equal those taken before they started (every region empty and fully
 * coalesced), with one client left and the daemon's fds back to their baseline.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

#define N_WORKERS      8
#define MAX_HELD       24
#define N_TOKENS       8 /* published per worker */
#define MAX_SIZE_SHIFT 16
#define KILL_MIN_MS    10
#define KILL_MAX_MS    150

enum op { OP_ALLOC, OP_REALLOC, OP_FREE, OP_EXPORT, OP_IMPORT, OP_MAP, OP_CHECK, N_OPS };

static const char *const op_names[N_OPS] = { "alloc",  "realloc", "free", "export",
					     "import", "map",     "check" };

/* A published token, read with the sequence protocol of a seqlock (a writer may be killed). */
struct token_slot {
	_Atomic uint64_t seq; /* odd while being written */
	_Atomic uint64_t token, handle, size;
	_Atomic unsigned seed;
};

struct shared {
	atomic_int stop;
	atomic_int failed;
	char error[512];
	_Atomic uint64_t ops[N_OPS]; /* requests that succeeded */
	_Atomic uint64_t refused;    /* -ENOMEM (pool full), -ENOENT (token gone): allowed */
	_Atomic uint64_t bytes_checked;
	struct token_slot tokens[N_WORKERS][N_TOKENS];
};

struct held {
	struct smh_buffer buf;
	unsigned seed;
	size_t align;  /* asked at alloc; a realloc keeps it */
	bool frozen;   /* exported by us, or imported: nobody writes it any more */
	bool imported; /* someone else's pattern */
};

struct worker {
	struct shared *sh;
	int slot;
	unsigned generation;
	uint64_t rng;
	struct smh_client *client;
	struct held held[MAX_HELD];
	int n_held;
	unsigned next_token;
};

static uint64_t next_rand(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static unsigned below(struct worker *w, unsigned n)
{
	return (unsigned)(next_rand(w) % n);
}

/* Records the failure (the first one's message is kept) and ends the worker. */
static _Noreturn void worker_fail(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static _Noreturn void worker_fail(struct worker *w, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&w->sh->failed, 1) == 0)
		snprintf(w->sh->error, sizeof(w->sh->error), "worker %d (generation %u): %s",
			 w->slot, w->generation, msg);
	_exit(1);
}

static void count(struct worker *w, enum op op)
{
	atomic_fetch_add(&w->sh->ops[op], 1);
}

static unsigned seed_for(unsigned generation, uint64_t handle)
{
	return (unsigned)(generation * 2654435761u ^ (unsigned)handle * 40503u);
}

/* A size from 1 byte to 64 KiB, small ones as likely as large ones (log-uniform). */
static size_t random_size(struct worker *w)
{
	unsigned shift = below(w, MAX_SIZE_SHIFT + 1);

	return (size_t)1 + (size_t)(next_rand(w) % ((uint64_t)1 << shift));
}

static size_t random_align(struct worker *w)
{
	static const size_t aligns[] = { 0, 0, 0, 1, 8, 64, 128, 4096, 16384, 65536 };

	return aligns[below(w, sizeof(aligns) / sizeof(aligns[0]))];
}

/* The pattern of @h over its first @n bytes, half the time through the access helpers. */
static void check_range(struct worker *w, const struct held *h, uint64_t n, const char *when)
{
	static unsigned char copy[(size_t)1 << MAX_SIZE_SHIFT];
	const void *p = h->buf.addr;

	if (!p)
		worker_fail(w, "%s: buffer %" PRIu64 " is not mapped", when, h->buf.handle);
	if (n > sizeof(copy))
		n = sizeof(copy);
	if (below(w, 2)) {
		int err = smh_buffer_read(&h->buf, 0, copy, (size_t)n);

		if (err < 0)
			worker_fail(w, "%s: smh_buffer_read: %s", when, smh_strerror(err));
		p = copy;
	}
	if (!pattern_check(p, (size_t)n, h->seed))
		worker_fail(w,
			    "%s: buffer %" PRIu64 " (%" PRIu64 " bytes, %s, %s) lost its pattern",
			    when, h->buf.handle, h->buf.size, h->buf.region,
			    h->imported ? "imported" : "own");
	atomic_fetch_add(&w->sh->bytes_checked, n);
}

static void check(struct worker *w, const struct held *h, const char *when)
{
	check_range(w, h, h->buf.size, when);
}

/* Writes the pattern of @h over [@from, size). */
static void fill_from(struct worker *w, struct held *h, uint64_t from)
{
	static unsigned char tmp[(size_t)1 << MAX_SIZE_SHIFT];
	uint64_t n = h->buf.size;

	if (n > sizeof(tmp))
		worker_fail(w, "buffer %" PRIu64 " is larger than asked", h->buf.handle);
	if (below(w, 2)) {
		pattern_fill(tmp, (size_t)n, h->seed);
		if (smh_buffer_write(&h->buf, from, tmp + from, (size_t)(n - from)) < 0)
			worker_fail(w, "smh_buffer_write failed");
	} else {
		unsigned char *all = malloc((size_t)n);

		if (!all)
			worker_fail(w, "out of memory");
		pattern_fill(all, (size_t)n, h->seed);
		memcpy((unsigned char *)h->buf.addr + from, all + from, (size_t)(n - from));
		free(all);
	}
}

static bool zero_from(const struct smh_buffer *b, uint64_t from)
{
	return all_zero((const unsigned char *)b->addr + from, (size_t)(b->size - from));
}

static struct held *pick(struct worker *w, bool writable)
{
	int n = 0, idx[MAX_HELD];

	for (int i = 0; i < w->n_held; i++)
		if (!writable || !w->held[i].frozen)
			idx[n++] = i;
	return n ? &w->held[idx[below(w, (unsigned)n)]] : NULL;
}

static void drop(struct worker *w, struct held *h)
{
	*h = w->held[--w->n_held];
}

/* -------------------------------------------------------------------- operations */

static void do_alloc(struct worker *w)
{
	enum smh_reg_attr attr = below(w, 2) ? SMH_REG_ATTR_CACHEABLE : SMH_REG_ATTR_NON_CACHEABLE;
	size_t size = random_size(w), align = random_align(w);
	struct held *h = &w->held[w->n_held];
	int err;

	memset(h, 0, sizeof(*h));
	err = smh_alloc(w->client, attr, size, align, &h->buf);
	if (err == -ENOMEM) {
		atomic_fetch_add(&w->sh->refused, 1);
		return;
	}
	if (err < 0)
		worker_fail(w, "alloc of %zu bytes, align %zu: %s", size, align, smh_strerror(err));
	count(w, OP_ALLOC);
	if (h->buf.size < size || h->buf.attr != attr || (align && h->buf.phys_addr % align))
		worker_fail(w, "alloc of %zu bytes, align %zu: got %" PRIu64 " at 0x%" PRIx64, size,
			    align, h->buf.size, h->buf.phys_addr);
	w->n_held++;
	h->align = align;
	err = smh_map(&h->buf);
	if (err < 0)
		worker_fail(w, "map: %s", smh_strerror(err));
	if (!zero_from(&h->buf, 0))
		worker_fail(w, "a new buffer of %" PRIu64 " bytes in %s is not zero", h->buf.size,
			    h->buf.region);
	h->seed = seed_for(w->generation, h->buf.handle);
	fill_from(w, h, 0);
}

static void do_free(struct worker *w)
{
	struct held *h = pick(w, false);
	int err;

	if (!h)
		return;
	check(w, h, "before free");
	err = smh_free(w->client, &h->buf);
	if (err < 0)
		worker_fail(w, "free of %" PRIu64 ": %s", h->buf.handle, smh_strerror(err));
	count(w, OP_FREE);
	drop(w, h);
}

/*
 * A shared (frozen) buffer resized to its own size: -EBUSY while another client holds it, else
 * done in place; either way its bytes stay as every holder expects them.
 */
static void realloc_shared(struct worker *w, struct held *h)
{
	struct smh_buffer before = h->buf;
	int err;

	check(w, h, "before a shared realloc");
	err = smh_realloc(w->client, &h->buf, (size_t)h->buf.size);
	if (err == -EBUSY) {
		atomic_fetch_add(&w->sh->refused, 1);
	} else if (err < 0) {
		worker_fail(w, "realloc of shared %" PRIu64 " to its size: %s", before.handle,
			    smh_strerror(err));
	} else {
		count(w, OP_REALLOC);
		if (h->buf.size != before.size || h->buf.phys_addr != before.phys_addr)
			worker_fail(w, "realloc of %" PRIu64 " to its size moved it",
				    before.handle);
	}
	check(w, h, "after a shared realloc");
}

static void do_realloc(struct worker *w)
{
	struct held *h = pick(w, below(w, 4) != 0);
	size_t size = random_size(w);
	uint64_t old_size;
	uint64_t old_handle;
	int err;

	if (!h)
		return;
	if (h->frozen) {
		realloc_shared(w, h);
		return;
	}
	check(w, h, "before realloc");
	old_size = h->buf.size;
	old_handle = h->buf.handle;
	err = smh_realloc(w->client, &h->buf, size);
	if (err == -ENOMEM) {
		atomic_fetch_add(&w->sh->refused, 1);
		check(w, h, "after a refused realloc");
		return;
	}
	if (err < 0)
		worker_fail(w, "realloc of %" PRIu64 " to %zu: %s", old_handle, size,
			    smh_strerror(err));
	count(w, OP_REALLOC);
	if (h->buf.handle != old_handle || h->buf.size < size || !h->buf.addr ||
	    (h->align && h->buf.phys_addr % h->align))
		worker_fail(w,
			    "realloc of %" PRIu64 " to %zu (align %zu): got %" PRIu64
			    " bytes at 0x%" PRIx64,
			    old_handle, size, h->align, h->buf.size, h->buf.phys_addr);
	check_range(w, h, old_size < h->buf.size ? old_size : h->buf.size, "after realloc");
	if (h->buf.size > old_size) {
		if (!zero_from(&h->buf, old_size))
			worker_fail(w, "realloc of %" PRIu64 ": the added bytes are not zero",
				    old_handle);
		fill_from(w, h, old_size);
	}
}

/* Publishes a token in one of our slots (round robin). */
static void publish(struct worker *w, const struct held *h, uint64_t token)
{
	struct token_slot *s = &w->sh->tokens[w->slot][w->next_token++ % N_TOKENS];
	uint64_t seq = atomic_load(&s->seq);

	seq += seq & 1; /* a killed predecessor may have left it odd */
	atomic_store(&s->seq, seq + 1);
	atomic_store(&s->token, token);
	atomic_store(&s->handle, h->buf.handle);
	atomic_store(&s->size, h->buf.size);
	atomic_store(&s->seed, h->seed);
	atomic_store(&s->seq, seq + 2);
}

static void do_export(struct worker *w)
{
	struct held *h = pick(w, false);
	uint64_t token;
	int err;

	if (!h)
		return;
	check(w, h, "before export");
	err = smh_export(w->client, &h->buf, &token);
	if (err < 0)
		worker_fail(w, "export of %" PRIu64 ": %s", h->buf.handle, smh_strerror(err));
	count(w, OP_EXPORT);
	h->frozen = true;
	publish(w, h, token);
}

struct token_view {
	uint64_t token, handle, size;
	unsigned seed;
};

/* Reads a published token; false when there is none or it is being written. */
static bool read_slot(struct token_slot *s, struct token_view *out)
{
	uint64_t seq = atomic_load(&s->seq);

	if (seq & 1)
		return false;
	out->token = atomic_load(&s->token);
	out->handle = atomic_load(&s->handle);
	out->size = atomic_load(&s->size);
	out->seed = atomic_load(&s->seed);
	return atomic_load(&s->seq) == seq && out->token != 0;
}

static void do_import(struct worker *w)
{
	struct token_view t;
	struct held *h = &w->held[w->n_held];
	int err;

	if (!read_slot(&w->sh->tokens[below(w, N_WORKERS)][below(w, N_TOKENS)], &t))
		return;
	memset(h, 0, sizeof(*h));
	err = smh_import(w->client, t.token, &h->buf);
	if (err == -ENOENT) { /* every holder has let it go */
		atomic_fetch_add(&w->sh->refused, 1);
		return;
	}
	if (err < 0)
		worker_fail(w, "import: %s", smh_strerror(err));
	count(w, OP_IMPORT);
	w->n_held++;
	if (h->buf.handle != t.handle || h->buf.size != t.size)
		worker_fail(w, "import of the token of %" PRIu64 " gave buffer %" PRIu64, t.handle,
			    h->buf.handle);
	h->seed = t.seed;
	h->frozen = true;
	h->imported = true;
	err = smh_map(&h->buf);
	if (err < 0)
		worker_fail(w, "map of an imported buffer: %s", smh_strerror(err));
	check(w, h, "after import");
}

static void do_map(struct worker *w)
{
	struct held *h = pick(w, false);
	void *before;
	int err;

	if (!h)
		return;
	before = h->buf.addr;
	smh_unmap(&h->buf);
	err = smh_map(&h->buf);
	if (err < 0 || h->buf.addr != before)
		worker_fail(w, "map again: %s", smh_strerror(err));
	count(w, OP_MAP);
	check(w, h, "after map");
}

static void do_check(struct worker *w)
{
	struct held *h = pick(w, false);

	if (!h)
		return;
	check(w, h, "at random");
	count(w, OP_CHECK);
}

static void step(struct worker *w)
{
	unsigned r = below(w, 100);

	if (r < 25 && w->n_held < MAX_HELD)
		do_alloc(w);
	else if (r < 45 || w->n_held == MAX_HELD)
		do_free(w);
	else if (r < 60)
		do_realloc(w);
	else if (r < 68)
		do_export(w);
	else if (r < 80 && w->n_held < MAX_HELD)
		do_import(w);
	else if (r < 88)
		do_map(w);
	else
		do_check(w);
}

/* The worker process: never returns. */
static _Noreturn void work(struct shared *sh, int slot, unsigned generation)
{
	struct worker w = { .sh = sh, .slot = slot, .generation = generation };
	int err;

	w.rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)generation << 20) ^ (uint64_t)getpid();
	err = smh_connect(NULL, &w.client);
	if (err < 0)
		worker_fail(&w, "connect: %s", smh_strerror(err));
	while (!atomic_load(&sh->stop))
		step(&w);
	/* Half the workers free what they hold, the others leave it to the disconnect. */
	while (w.n_held > 0 && generation % 2)
		do_free(&w);
	for (int i = 0; i < w.n_held; i++)
		check(&w, &w.held[i], "at the end");
	smh_disconnect(w.client);
	_exit(0);
}

/* -------------------------------------------------------------------- the parent */

static unsigned generation;

static pid_t spawn(struct shared *sh, int slot)
{
	pid_t pid;

	generation++;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		work(sh, slot, generation);
	harness_track_child(pid);
	return pid;
}

static void assert_no_failure(const struct shared *sh)
{
	if (atomic_load(&sh->failed))
		fail_msg("%s", sh->error);
}

/* Reaps a worker the parent killed, and fails if it had died of something else first. */
static void reap_killed(struct shared *sh, pid_t pid)
{
	int status = harness_wait_child(pid);

	assert_no_failure(sh);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("worker %d ended before it was killed (wait status 0x%x)", (int)pid,
			 status);
}

static void compare_stats(const struct smh_stats *a, const struct smh_stats *b)
{
	assert_int_equal(b->n_regions, a->n_regions);
	for (size_t i = 0; i < a->n_regions; i++) {
		const struct smh_region_stats *x = &a->regions[i], *y = &b->regions[i];

		if (memcmp(x, y, sizeof(*x)) != 0)
			fail_msg("region %u: at the start total %" PRIu64 ", used %" PRIu64
				 ", free %" PRIu64 ", largest free %" PRIu64 ", %" PRIu64
				 " allocations, fragmentation %u; at the end %" PRIu64 ", %" PRIu64
				 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %u",
				 x->region, x->total, x->used, x->free, x->largest_free,
				 x->n_allocs, x->fragmentation, y->total, y->used, y->free,
				 y->largest_free, y->n_allocs, y->fragmentation);
		assert_int_equal(y->used, 0);
		assert_int_equal(y->free, y->total);
		assert_int_equal(y->n_allocs, 0);
	}
	assert_int_equal(b->n_clients, 1);
	assert_int_equal(b->n_allocs, 0);
	assert_int_equal(b->n_shared, 0);
}

/* Nothing the workers did is a protocol violation: no client was dropped with a warning. */
static void assert_no_client_dropped(const struct smhd *d)
{
	char line[1024];
	FILE *f = fopen(d->log, "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "Dropping client"))
			fail_msg("smhd: %s", line);
	fclose(f);
}

static int stress_seconds(void)
{
	const char *s = getenv("SMH_STRESS_SECONDS");
	int n = s && *s ? atoi(s) : 20;

	return n > 0 ? n : 20;
}

static void print_counts(const struct shared *sh, unsigned n_kills, int seconds)
{
	uint64_t total = 0;

	for (int i = 0; i < N_OPS; i++)
		total += atomic_load(&sh->ops[i]);
	printf("stress: %d s, %u workers started, %u killed with SIGKILL\n", seconds, generation,
	       n_kills);
	printf("stress: %" PRIu64 " operations:", total);
	for (int i = 0; i < N_OPS; i++)
		printf(" %s %" PRIu64, op_names[i], atomic_load(&sh->ops[i]));
	printf("\nstress: %" PRIu64 " refused as allowed (-ENOMEM, -ENOENT, -EBUSY), %" PRIu64
	       " MiB of patterns checked, 0 wrong\n",
	       atomic_load(&sh->refused), atomic_load(&sh->bytes_checked) >> 20);
	fflush(stdout);
}

static void test_churn(void **state)
{
	struct smhd *d = smhd_start(&(struct smhd_options){ .dtb = harness_env("SMH_STRESS_DTB") });
	struct shared *sh =
		mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int seconds = stress_seconds();
	/* Static: still reachable (no leak report) when a failure leaves the test early. */
	static struct smh_stats before, after;
	pid_t pids[N_WORKERS];
	unsigned n_kills = 0;
	uint64_t rng = 88172645463325252ull;
	struct smh_client *c;
	int64_t deadline;
	int fds;

	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	c = harness_connect(d);
	fds = smhd_settled_fds(d, c);
	assert_int_equal(smh_get_stats(c, &before), 0);
	setenv("SMH_SOCKET", d->socket, 1);
	for (int i = 0; i < N_WORKERS; i++)
		pids[i] = spawn(sh, i);
	deadline = harness_now_ms() + seconds * 1000;
	while (harness_now_ms() < deadline) {
		int victim;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		harness_sleep_ms(KILL_MIN_MS + (int)(rng % (KILL_MAX_MS - KILL_MIN_MS)));
		assert_no_failure(sh);
		victim = (int)((rng >> 32) % N_WORKERS);
		assert_int_equal(kill(pids[victim], SIGKILL), 0);
		reap_killed(sh, pids[victim]);
		n_kills++;
		pids[victim] = spawn(sh, victim);
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < N_WORKERS; i++)
		harness_assert_child_ok(pids[i]);
	assert_no_failure(sh);
	harness_wait_usage(c, 0, 1);
	assert_int_equal(smhd_settled_fds(d, c), fds);
	assert_int_equal(smh_get_stats(c, &after), 0);
	compare_stats(&before, &after);
	assert_no_client_dropped(d);
	print_counts(sh, n_kills, seconds);
	smh_stats_finish(&before);
	smh_stats_finish(&after);
	smh_disconnect(c);
	smhd_stop(d);
	munmap(sh, sizeof(*sh));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_churn, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
