/* SPDX-License-Identifier: MIT */
/*
 * Bounded resources.
 *
 * Clients that never read: one raw client fills its socket with requests and then stays
 * connected, never reading, for the whole test; meanwhile rounds of 64 more such clients each
 * fill their sockets and hang up with their replies unread, until 100000 requests have been
 * sent. Between rounds a libsmh-client connection is served (alloc, map, pattern, free) while
 * all of them sit there full. The daemon must stop reading a client whose reply it cannot
 * send (the first one can send nothing more however long the daemon runs for others), lose
 * none of its requests (once it reads, every reply comes, in order), and end with its fds
 * exactly and its private memory (VmRSS less the regions' shared pages) within 8 MiB of where
 * they were after a warm-up.
 *
 * 1000 clients: the daemon starts with a soft RLIMIT_NOFILE of 1024 and must raise it to the
 * hard limit itself; 8 threads then connect 125 clients each, every client allocates, maps and
 * writes a buffer while all are connected, checks and frees it, and disconnects. Three times:
 * after each the fds are back exactly; the private memory is within 8 MiB of where it was
 * before the first, and after the second and third within 2 MiB of where the first left it (a
 * leak of 2 KiB per client would show).
 *
 * Memory is a bound, never a timing: no assertion depends on how fast anything runs. In a
 * sanitized build the daemon runs here without ASan's quarantine: the freed memory ASan holds
 * back to catch uses after free (256 MiB) would otherwise be what the RSS measures. (The churn
 * test keeps it.)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "smh/client.h"
#include "tests/integration/harness.h"

#define RSS_BOUND_KIB  (8 * 1024) /* growth allowed after a load */
#define RSS_AGAIN_KIB  (2 * 1024) /* after the same load once more */
#define FLOOD_REQUESTS 100000
#define FLOODERS       64
#define N_THREADS      8
#define PER_THREAD     125
#define N_CLIENTS      (N_THREADS * PER_THREAD)
#define FIRST_ID       10

static unsigned char msg[SMH_MSG_MAX];

/* ---------------------------------------------------------------- the daemon's memory */

/* A field of /proc/PID/status in KiB ("VmRSS:", "RssShmem:"). */
static long status_kib(const struct smhd *d, const char *field)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (v < 0 && fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			v = strtol(line + strlen(field), NULL, 10);
	fclose(f);
	if (v < 0)
		fail_msg("no %s in %s", field, path);
	return v;
}

/*
 * The daemon's own memory: its RSS less the pages of the regions it touched when zeroing freed
 * buffers (shared memory of a fixed size, not something that can grow with load).
 */
static long private_kib(const struct smhd *d)
{
	return status_kib(d, "VmRSS:") - status_kib(d, "RssShmem:");
}

static void assert_memory_bound(const struct smhd *d, long base, const char *after, long bound)
{
	long now = private_kib(d);

	printf("bounded: after %s: smhd VmRSS %ld KiB, private %ld KiB (baseline %ld KiB)\n", after,
	       status_kib(d, "VmRSS:"), now, base);
	fflush(stdout);
	if (now > base + bound)
		fail_msg("smhd's private memory grew from %ld KiB to %ld KiB after %s", base, now,
			 after);
}

/* Starts smhd on the stress board; in a sanitized build, without ASan's quarantine. */
static struct smhd *start_daemon(void)
{
	const char *old = getenv("ASAN_OPTIONS");
	char *saved = old ? strdup(old) : NULL;
	struct smhd *d;

	if (strcmp(harness_env("SMH_SANITIZED"), "1") == 0) {
		char opts[512];

		snprintf(opts, sizeof(opts), "%s:quarantine_size_mb=0", old ? old : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
	d = smhd_start(&(struct smhd_options){ .dtb = harness_env("SMH_STRESS_DTB") });
	if (saved)
		setenv("ASAN_OPTIONS", saved, 1);
	free(saved);
	return d;
}

/* One client served: a buffer allocated, mapped, written, read back and freed. */
static void serve_once(struct smh_client *c, unsigned seed)
{
	struct smh_buffer b;

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &b), 0);
	assert_int_equal(smh_map(&b), 0);
	pattern_fill(b.addr, 4096, seed);
	assert_true(pattern_check(b.addr, 4096, seed));
	assert_int_equal(smh_free(c, &b), 0);
}

/* ---------------------------------------------------------------- raw clients */

static int raw_connect(const struct smhd *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	memcpy(addr.sun_path, d->socket, strlen(d->socket) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return s;
}

static Smh__Response *recv_response(int s)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	Smh__Response *resp;
	ssize_t n;

	if (poll(&pfd, 1, HARNESS_WAIT_MS) != 1)
		fail_msg("no reply from smhd");
	n = wire_recv(s, msg, sizeof(msg), NULL, NULL);
	if (n <= 0)
		fail_msg("expected a reply, got %s", n == 0 ? "end of file" : strerror((int)-n));
	resp = wire_unpack_response(msg, (size_t)n);
	assert_non_null(resp);
	return resp;
}

/* A connection past its hello, non-blocking from then on. */
static int flooder_connect(const struct smhd *d)
{
	Smh__Hello hello = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	int s = raw_connect(d);

	hello.version = SMH_PROTOCOL_VERSION;
	hello.client_name = "flooder";
	req.id = 1;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &hello;
	assert_int_equal(wire_send(s, msg, (size_t)wire_pack_request(&req, msg), NULL, 0), 0);
	resp = recv_response(s);
	assert_int_equal(resp->id, 1);
	assert_int_equal(resp->status, 0);
	wire_free_response(resp);
	assert_int_equal(fcntl(s, F_SETFL, O_NONBLOCK), 0);
	return s;
}

/* Request @id: even ids ask for statistics, odd ones for 64 bytes (replies with an fd). */
static ssize_t pack_flood(uint64_t id)
{
	Smh__StatsRequest stats = SMH__STATS_REQUEST__INIT;
	Smh__AllocRequest alloc = SMH__ALLOC_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	req.id = id;
	if (id % 2 == 0) {
		req.body_case = SMH__REQUEST__BODY_STATS;
		req.stats = &stats;
	} else {
		alloc.attr = SMH_REG_ATTR_CACHEABLE;
		alloc.size = 64;
		req.body_case = SMH__REQUEST__BODY_ALLOC;
		req.alloc = &alloc;
	}
	return wire_pack_request(&req, msg);
}

/* Sends requests from *@next_idp on until the socket is full; returns how many went. */
static unsigned flood(int s, uint64_t *next_idp)
{
	unsigned n = 0;

	for (;;) {
		ssize_t len = pack_flood(*next_idp);
		int err;

		assert_true(len > 0);
		err = wire_send(s, msg, (size_t)len, NULL, 0);
		if (err == -EAGAIN)
			return n;
		if (err < 0)
			fail_msg("a flooding client could not send: %s", strerror(-err));
		(*next_idp)++;
		n++;
	}
}

/*
 * Fills @s until the daemon has stopped reading it: a round where, after the daemon served
 * @c ten times, not one more request fits.
 */
static void flood_until_stalled(int s, uint64_t *next_idp, struct smh_client *c)
{
	for (int round = 0; round < 1000; round++) {
		unsigned n = flood(s, next_idp);

		for (int i = 0; i < 10; i++)
			serve_once(c, (unsigned)i);
		if (n == 0 && round > 0)
			return;
	}
	fail_msg("smhd kept reading a client that never reads its replies (%" PRIu64
		 " requests taken)",
		 *next_idp - FIRST_ID);
}

/* Reads every reply @s has coming: ids FIRST_ID to @next_id - 1, in order. */
static void read_all_replies(int s, uint64_t next_id)
{
	assert_int_equal(fcntl(s, F_SETFL, 0), 0);
	for (uint64_t id = FIRST_ID; id < next_id; id++) {
		Smh__Response *resp = recv_response(s);

		if (resp->id != id)
			fail_msg("reply %" PRIu64 " came where %" PRIu64 " was due", resp->id, id);
		if (resp->status != 0 && !(id % 2 && resp->status == -ENOMEM))
			fail_msg("request %" PRIu64 " refused: %d %s", id, resp->status,
				 resp->message);
		wire_free_response(resp);
	}
}

/* @n clients fill their sockets and hang up without reading. Returns the requests sent. */
static unsigned flood_round(const struct smhd *d, struct smh_client *c, int n, unsigned seed)
{
	int socks[FLOODERS];
	uint64_t id = FIRST_ID; /* never read: any id does */
	unsigned sent = 0;

	for (int i = 0; i < n; i++)
		socks[i] = flooder_connect(d);
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < n; i++)
			sent += flood(socks[i], &id);
	}
	/* All of them full and unread: others are still served. */
	serve_once(c, seed);
	for (int i = 0; i < n; i++)
		close(socks[i]);
	return sent;
}

static void test_never_read(void **state)
{
	struct smhd *d = start_daemon();
	struct smh_client *c = harness_connect(d);
	uint64_t stalled_next = FIRST_ID, stalled_sent;
	unsigned sent = 0, rounds = 0;
	long base;
	int fds, stalled;

	/* Warm-up: the daemon's heap and libuv's tables reach their working size. */
	for (int i = 0; i < 4; i++)
		flood_round(d, c, FLOODERS, (unsigned)i);
	harness_wait_usage(c, 0, 1);
	fds = smhd_settled_fds(d, c);
	base = private_kib(d);

	stalled = flooder_connect(d);
	flood_until_stalled(stalled, &stalled_next, c);
	stalled_sent = stalled_next - FIRST_ID;
	while (sent < FLOOD_REQUESTS) {
		sent += flood_round(d, c, FLOODERS, rounds);
		rounds++;
	}
	/* However much the daemon did meanwhile, the stalled client's socket is still full. */
	assert_int_equal(flood(stalled, &stalled_next), 0);
	printf("bounded: %u requests from %u clients that hung up unread, %" PRIu64
	       " from one that stayed\n",
	       sent, rounds * FLOODERS, stalled_sent);
	assert_memory_bound(d, base, "the flood", RSS_BOUND_KIB);
	/* Not one request lost: the stalled client reads, and every reply comes in order. */
	read_all_replies(stalled, stalled_next);
	close(stalled);
	harness_wait_usage(c, 0, 1);
	assert_int_equal(smhd_settled_fds(d, c), fds);
	assert_memory_bound(d, base, "the flooders left", RSS_BOUND_KIB);
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- 1000 clients */

struct worker {
	pthread_t thread;
	int index;
	const char *socket;
	pthread_barrier_t *barrier;
	struct smh_client *clients[PER_THREAD];
	struct smh_buffer bufs[PER_THREAD];
	char error[256];
};

static int failed(struct worker *w, const char *what, int client, int err)
{
	if (!w->error[0])
		snprintf(w->error, sizeof(w->error), "thread %d, client %d: %s: %s", w->index,
			 client, what, smh_strerror(err));
	return -1;
}

static unsigned seed_of(const struct worker *w, int i)
{
	return (unsigned)(w->index * PER_THREAD + i) * 31u + 7u;
}

static int connect_all(struct worker *w)
{
	for (int i = 0; i < PER_THREAD; i++) {
		int err = smh_connect(w->socket, &w->clients[i]);

		if (err < 0)
			return failed(w, "connect", i, err);
	}
	return 0;
}

static int alloc_all(struct worker *w)
{
	for (int i = 0; i < PER_THREAD; i++) {
		size_t size = (size_t)256 << (i % 4);
		enum smh_reg_attr attr =
			i % 2 ? SMH_REG_ATTR_NON_CACHEABLE : SMH_REG_ATTR_CACHEABLE;
		struct smh_buffer *b = &w->bufs[i];
		int err = smh_alloc(w->clients[i], attr, size, i % 3 ? 0 : 256, b);

		if (err == 0)
			err = smh_map(b);
		if (err < 0)
			return failed(w, "alloc and map", i, err);
		if (!all_zero(b->addr, size))
			return failed(w, "a new buffer is not zero", i, 0);
		pattern_fill(b->addr, size, seed_of(w, i));
	}
	return 0;
}

static int free_all(struct worker *w)
{
	for (int i = 0; i < PER_THREAD; i++) {
		size_t size = (size_t)256 << (i % 4);
		int err;

		if (!pattern_check(w->bufs[i].addr, size, seed_of(w, i)))
			return failed(w, "another client's bytes in the buffer", i, 0);
		err = smh_free(w->clients[i], &w->bufs[i]);
		if (err < 0)
			return failed(w, "free", i, err);
	}
	return 0;
}

/* Connect all, [main checks], alloc and write, [main checks], check, free and disconnect. */
static void *work(void *arg)
{
	struct worker *w = arg;
	int ok = connect_all(w) == 0;

	pthread_barrier_wait(w->barrier);
	pthread_barrier_wait(w->barrier);
	ok = ok && alloc_all(w) == 0;
	pthread_barrier_wait(w->barrier);
	pthread_barrier_wait(w->barrier);
	if (ok)
		free_all(w);
	for (int i = 0; i < PER_THREAD; i++)
		smh_disconnect(w->clients[i]);
	return NULL;
}

static void assert_no_error(struct worker *workers)
{
	for (int t = 0; t < N_THREADS; t++)
		if (workers[t].error[0])
			fail_msg("%s", workers[t].error);
}

/* The soft limit of open files of process @pid ("Max open files" in /proc/PID/limits). */
static unsigned long long fd_soft_limit(pid_t pid)
{
	char path[64], line[256];
	unsigned long long soft = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Max open files", 14) == 0)
			soft = strncmp(line + 26, "unlimited", 9) == 0
				       ? RLIM_INFINITY
				       : strtoull(line + 26, NULL, 10);
	fclose(f);
	return soft;
}

static void load_round(struct smhd *d, struct smh_client *c, int fds)
{
	struct worker workers[N_THREADS];
	pthread_barrier_t barrier;
	struct smh_stats st;

	memset(workers, 0, sizeof(workers));
	assert_int_equal(pthread_barrier_init(&barrier, NULL, N_THREADS + 1), 0);
	for (int t = 0; t < N_THREADS; t++) {
		workers[t].index = t;
		workers[t].socket = d->socket;
		workers[t].barrier = &barrier;
		assert_int_equal(pthread_create(&workers[t].thread, NULL, work, &workers[t]), 0);
	}
	pthread_barrier_wait(&barrier);
	assert_no_error(workers);
	assert_int_equal(harness_n_clients(c), N_CLIENTS + 1);
	assert_int_equal(smhd_settled_fds(d, c), fds + N_CLIENTS);
	pthread_barrier_wait(&barrier);
	pthread_barrier_wait(&barrier);
	assert_no_error(workers);
	assert_int_equal(smh_get_stats(c, &st), 0);
	assert_int_equal(st.n_allocs, N_CLIENTS);
	assert_int_equal(st.n_clients, N_CLIENTS + 1);
	smh_stats_finish(&st);
	pthread_barrier_wait(&barrier);
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(workers[t].thread, NULL);
	pthread_barrier_destroy(&barrier);
	assert_no_error(workers);
	harness_wait_usage(c, 0, 1);
	assert_int_equal(smhd_settled_fds(d, c), fds);
}

static void test_1000_clients(void **state)
{
	struct rlimit rl, low;
	struct smh_client *c;
	struct smhd *d;
	long base;
	int fds;

	/* 1000 sockets and up to 2000 region fds here, 1000 sockets in the daemon. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 4096) {
		printf("bounded: the hard limit of open files is %llu, below 4096: skipped\n",
		       (unsigned long long)rl.rlim_max);
		skip();
	}
	/* smhd inherits a soft limit of 1024 and must raise it itself. */
	low = rl;
	low.rlim_cur = 1024;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	d = start_daemon();
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 4096) {
		rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	assert_true(fd_soft_limit(d->pid) == rl.rlim_max);

	c = harness_connect(d);
	serve_once(c, 1);
	fds = smhd_settled_fds(d, c);
	base = private_kib(d);
	load_round(d, c, fds);
	assert_memory_bound(d, base, "1000 clients", RSS_BOUND_KIB);
	/* The first load set the heap's working size: later ones must not add to it. */
	base = private_kib(d);
	for (int round = 2; round <= 3; round++) {
		char what[64];

		load_round(d, c, fds);
		snprintf(what, sizeof(what), "1000 clients again (round %d)", round);
		assert_memory_bound(d, base, what, RSS_AGAIN_KIB);
	}
	smh_disconnect(c);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_never_read, harness_teardown),
		cmocka_unit_test_teardown(test_1000_clients, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
