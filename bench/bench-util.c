/* SPDX-License-Identifier: MIT */
/*
 * smh-bench's plumbing: the clock, latency samples and their percentiles, the alternating runs
 * that put a candidate and its baseline under the same noise, the result table, CPU pinning,
 * and the processes the benchmark starts and stops.
 *
 * The daemon and the echo server are started with fork() and exec(), after the benchmark has
 * pinned itself, so they inherit its CPU affinity.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

/* How long a started server gets to accept its first client. */
#define START_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)

/*
 * Ops of each side run before measuring (caches, page tables, the daemon's free lists): a tenth
 * of the measured ones, at most WARMUP_MAX, so that a smoke run stays small.
 */
#define WARMUP_MAX 64

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int samples_init(struct samples *s, size_t cap)
{
	s->ns = malloc((cap ? cap : 1) * sizeof(*s->ns));
	s->n = 0;
	s->cap = cap;
	return s->ns ? 0 : -ENOMEM;
}

void samples_finish(struct samples *s)
{
	free(s->ns);
	s->ns = NULL;
	s->n = s->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The sample at quantile @q of sorted @s (nearest rank). */
static double quantile(const struct samples *s, double q)
{
	size_t i = (size_t)(q * (double)s->n);

	return (double)s->ns[i < s->n ? i : s->n - 1];
}

void samples_stats(struct samples *s, struct stats *st)
{
	double sum = 0;

	memset(st, 0, sizeof(*st));
	if (s->n == 0)
		return;
	qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->ns[i];
	st->p50 = quantile(s, 0.50);
	st->p99 = quantile(s, 0.99);
	st->p999 = quantile(s, 0.999);
	st->max = (double)s->ns[s->n - 1];
	st->mean = sum / (double)s->n;
	st->ops_s = st->mean > 0 ? 1e9 / st->mean : 0;
}

static int run_block(bench_op op, void *ctx, struct samples *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t ns;
		int err = op(ctx, &ns);

		if (err < 0)
			return err;
		if (s && s->n < s->cap)
			s->ns[s->n++] = ns;
	}
	return 0;
}

int bench_interleave(struct bench_case *cases, size_t n_cases, size_t n, unsigned rounds)
{
	size_t warmup = n / 10 < WARMUP_MAX ? n / 10 + 1 : WARMUP_MAX;
	int err = 0;

	if (rounds == 0)
		rounds = 1;
	for (size_t c = 0; c < n_cases && err == 0; c++)
		err = run_block(cases[c].op, cases[c].ctx, NULL, warmup);
	for (unsigned r = 0; r < rounds && err == 0; r++) {
		size_t block = n / rounds + (r < n % rounds);

		for (size_t c = 0; c < n_cases && err == 0; c++)
			err = run_block(cases[c].op, cases[c].ctx, &cases[c].s, block);
	}
	return err;
}

static const struct row *table_find(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].name, name) == 0)
			return &t->rows[i];
	return NULL;
}

struct row *table_add(struct table *t, const char *name, const struct stats *st,
		      const char *baseline)
{
	const struct row *base = baseline ? table_find(t, baseline) : NULL;
	struct row *r;

	if (t->n == BENCH_ROWS_MAX)
		abort(); /* the rows are fixed by the code: a bug */
	r = &t->rows[t->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->st = *st;
	r->baseline = base ? base->name : NULL;
	r->ratio = 1.0;
	if (base && st->p50 > 0 && base->st.p50 > 0)
		r->ratio = st->p50 / base->st.p50;
	return r;
}

struct row *table_add_throughput(struct table *t, const char *name, double ops_s,
				 const char *baseline)
{
	struct stats st = { .ops_s = ops_s };
	struct row *r = table_add(t, name, &st, NULL);
	const struct row *base = baseline ? table_find(t, baseline) : NULL;

	r->throughput = true;
	if (base && base->st.ops_s > 0) {
		r->baseline = base->name;
		r->ratio = ops_s / base->st.ops_s;
	}
	return r;
}

struct row *table_add_figure(struct table *t, const char *name, const char *key, double value)
{
	struct row *r = table_add(t, name, &(struct stats){ 0 }, NULL);

	r->figure = true;
	r->ratio = value; /* what a target is about */
	row_info(r, key, value);
	return r;
}

void row_target(struct row *r, const char *key, const char *text, double limit, bool at_most)
{
	r->key = key;
	r->key_value = r->ratio;
	r->target = text;
	r->met = at_most ? r->ratio <= limit : r->ratio >= limit;
}

void row_info(struct row *r, const char *key, double value)
{
	r->key = key;
	r->key_value = value;
	r->target = NULL;
}

int bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* fork() + execv(); the child's stdout goes to stderr so that it never mixes with the table. */
static int spawn(char *const argv[], pid_t *pidp)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execv(argv[0], argv);
		fprintf(stderr, "smh-bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	*pidp = pid;
	return 0;
}

int bench_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Waits until a server started as @pid accepts on @path (or exits, or time runs out). */
static int wait_listening(pid_t pid, const char *path)
{
	uint64_t deadline = bench_now_ns() + START_TIMEOUT_NS;

	for (;;) {
		int fd = bench_connect(path);
		int status;

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -ECHILD;
		if (bench_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
}

int bench_start_smhd(const struct bench_options *o, const char *socket, pid_t *pidp)
{
	/* No buffer caps: one client of the scrubbing rows holds a million buffers. */
	char *argv[] = {
		(char *)o->smhd, "--dtb",
		(char *)o->dtb,  "--backend",
		"memfd",         "--socket",
		(char *)socket,  "--log-level",
		"warning",       "--max-buffers-per-client",
		"unlimited",     "--max-buffers-per-uid",
		"unlimited",     NULL,
	};
	int err = spawn(argv, pidp);

	return err < 0 ? err : wait_listening(*pidp, socket);
}

int bench_start_echo(const struct bench_options *o, const char *socket, pid_t *pidp)
{
	char *argv[] = { (char *)o->echo, (char *)socket, NULL };
	int err = spawn(argv, pidp);

	return err < 0 ? err : wait_listening(*pidp, socket);
}

int bench_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

int bench_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	return bench_wait(pid);
}

int bench_ping(int fd)
{
	char buf[BENCH_MSG] = { 1 };
	ssize_t n;

	n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(buf))
		return n < 0 ? -errno : -EIO;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n != (ssize_t)sizeof(buf))
		return n < 0 ? -errno : -EPIPE;
	return 0;
}
