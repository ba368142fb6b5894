/* SPDX-License-Identifier: MIT */
/*
 * Latency, one operation at a time, against a baseline measured in the same run:
 *
 * - the floor: a 64-byte SOCK_SEQPACKET ping-pong with a child process that echoes with plain
 *   blocking recv()/send(): no request can be answered faster than this;
 * - smh_alloc() of 4 KiB (the free is not timed), and alloc+free, against the floor;
 * - alloc + map + writing 4 KiB through the library against what a program does without smh:
 *   memfd_create + ftruncate + mmap + the write + munmap + close;
 * - 1 MiB allocated, mapped, fully written and freed through the library (the daemon zeroes it
 *   at free: that is smh's zeroing, so the free is timed here) against the same by hand (where
 *   the kernel zeroes each page at its first fault).
 *
 * All buffers are cacheable. The smh side keeps its connection, so its region is mapped once
 * (at the warm-up) and later buffers of the region cost no mmap: that is how the library works.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"

#define SMALL (4u << 10)
#define LARGE (1u << 20)

struct smh_ctx {
	struct smh_client *client;
	size_t size;
	bool write;     /* map and write the whole buffer */
	bool time_free; /* the free is part of the timed operation */
};

/* ---------------------------------------------------------------- the floor */

static void echo_child(int fd)
{
	char buf[BENCH_MSG];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
	_exit(n < 0 ? 1 : 0);
}

/* A connected socket to a forked child that echoes on the other end. */
static int start_floor(int *fdp, pid_t *pidp)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		close(sv[0]);
		echo_child(sv[1]);
	}
	close(sv[1]);
	*fdp = sv[0];
	*pidp = pid;
	return 0;
}

static int op_floor(void *ctx, uint64_t *nsp)
{
	uint64_t t0 = bench_now_ns();
	int err = bench_ping(*(int *)ctx);

	*nsp = bench_now_ns() - t0;
	return err;
}

/* ---------------------------------------------------------------- through the library */

static int op_smh(void *ctx, uint64_t *nsp)
{
	struct smh_ctx *c = ctx;
	struct smh_buffer buf;
	uint64_t t0 = bench_now_ns();
	int err = smh_alloc(c->client, SMH_REG_ATTR_CACHEABLE, c->size, 0, &buf);

	if (err < 0)
		return err;
	if (c->write) {
		err = smh_map(&buf);
		if (err == 0)
			memset(buf.addr, 0xa5, c->size);
	}
	if (c->time_free) {
		int e = smh_free(c->client, &buf);

		*nsp = bench_now_ns() - t0;
		return err < 0 ? err : e;
	}
	*nsp = bench_now_ns() - t0;
	smh_free(c->client, &buf);
	return err;
}

/* ---------------------------------------------------------------- by hand */

static int op_by_hand(void *ctx, uint64_t *nsp)
{
	size_t size = *(size_t *)ctx;
	uint64_t t0 = bench_now_ns();
	int fd = memfd_create("bench", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto err_fd;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto err_fd;
	memset(p, 0xa5, size);
	munmap(p, size);
	close(fd);
	*nsp = bench_now_ns() - t0;
	return 0;

err_fd:
	close(fd);
	return -errno;
}

/* ---------------------------------------------------------------- groups */

static void free_cases(struct bench_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		samples_finish(&cases[i].s);
}

/* Measures @n cases (their samples are set up here) and adds a row each, named by @names. */
static int run_group(const struct bench_options *o, struct bench_case *cases, size_t n,
		     const char *const *names, const char *baseline, struct table *t)
{
	int err = 0;

	for (size_t i = 0; i < n && err == 0; i++)
		err = samples_init(&cases[i].s, o->iterations);
	if (err == 0)
		err = bench_interleave(cases, n, o->iterations, o->rounds);
	for (size_t i = 0; i < n && err == 0; i++) {
		struct stats st;

		samples_stats(&cases[i].s, &st);
		table_add(t, names[i], &st, i == 0 ? baseline : names[0]);
	}
	free_cases(cases, n);
	return err;
}

static int group_floor(const struct bench_options *o, struct smh_client *client, struct table *t)
{
	static const char *const names[] = { "floor: seqpacket ping-pong", "alloc 4 KiB",
					     "alloc+free 4 KiB" };
	struct smh_ctx alloc = { .client = client, .size = SMALL };
	struct smh_ctx alloc_free = { .client = client, .size = SMALL, .time_free = true };
	struct bench_case cases[3] = {
		{ .op = op_floor },
		{ .op = op_smh, .ctx = &alloc },
		{ .op = op_smh, .ctx = &alloc_free },
	};
	int fd = -1, err;
	pid_t pid = -1;

	err = start_floor(&fd, &pid);
	if (err < 0)
		return err;
	cases[0].ctx = &fd;
	err = run_group(o, cases, 3, names, NULL, t);
	close(fd);
	if (bench_wait(pid) < 0 && err == 0)
		err = -ECHILD;
	if (err == 0)
		row_target(&t->rows[t->n - 2], "alloc/floor", "<= 1.3", 1.3, true);
	return err;
}

static int group_small(const struct bench_options *o, struct smh_client *client, struct table *t)
{
	static const char *const names[] = { "by hand 4 KiB: memfd..close", "alloc+map+write 4 KiB",
					     "alloc+map+write+free 4 KiB" };
	size_t size = SMALL;
	struct smh_ctx smh = { .client = client, .size = SMALL, .write = true };
	struct smh_ctx smh_free = {
		.client = client, .size = SMALL, .write = true, .time_free = true
	};
	struct bench_case cases[3] = {
		{ .op = op_by_hand, .ctx = &size },
		{ .op = op_smh, .ctx = &smh },
		{ .op = op_smh, .ctx = &smh_free },
	};
	int err = run_group(o, cases, 3, names, NULL, t);

	if (err == 0)
		row_target(&t->rows[t->n - 2], "alloc+map+write/by hand", "<= 0.8", 0.8, true);
	return err;
}

static int group_large(const struct bench_options *o, struct smh_client *client, struct table *t)
{
	static const char *const names[] = { "by hand 1 MiB: memfd..close",
					     "alloc+map+write+free 1 MiB" };
	size_t size = LARGE;
	struct smh_ctx smh = { .client = client, .size = LARGE, .write = true, .time_free = true };
	struct bench_case cases[2] = {
		{ .op = op_by_hand, .ctx = &size },
		{ .op = op_smh, .ctx = &smh },
	};
	struct bench_options fewer = *o;
	int err;

	/* A 1 MiB operation takes ~100x a 4 KiB one: fewer of them say as much. */
	fewer.iterations = o->iterations / 10 ? o->iterations / 10 : 1;
	err = run_group(&fewer, cases, 2, names, NULL, t);
	if (err == 0)
		row_target(&t->rows[t->n - 1], "1 MiB/by hand", "<= 0.55", 0.55, true);
	return err;
}

int bench_latency(const struct bench_options *o, const char *smh_socket, struct table *t)
{
	struct smh_client *client;
	int err = smh_connect(smh_socket, &client);

	if (err < 0)
		return err;
	err = group_floor(o, client, t);
	if (err == 0)
		err = group_small(o, client, t);
	if (err == 0)
		err = group_large(o, client, t);
	smh_disconnect(client);
	return err;
}
