/* SPDX-License-Identifier: MIT */
/*
 * What the files of smh-bench share: timing, latency samples and their statistics, the rows of
 * the result table, and the processes the benchmark starts (smhd, the echo server, the floor's
 * echo child).
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smh/client.h"

/* Bytes of the floor's and the echo server's datagrams. */
#define BENCH_MSG 64

struct bench_options {
	const char *smhd;     /* the daemon's executable */
	const char *dtb;      /* bench.dtb */
	const char *echo;     /* smh-bench-echo */
	int cpu;              /* -1: not pinned */
	size_t iterations;    /* per latency measurement */
	unsigned rounds;      /* blocks each latency measurement is cut into, alternating sides */
	unsigned duration_ms; /* per throughput phase */
	unsigned clients[4];  /* concurrency levels */
	size_t n_clients;
	size_t buddy_pairs;
	size_t disconnect_buffers; /* the client whose disconnect is timed holds this many */
	unsigned groups;           /* BENCH_GROUP_* bits: what to measure */
	bool smoke;
	bool json;
};

/* The groups of rows --only selects. */
enum {
	BENCH_GROUP_LATENCY = 1u << 0,
	BENCH_GROUP_CLIENTS = 1u << 1,
	BENCH_GROUP_FREE_LOOP = 1u << 2,
	BENCH_GROUP_GIGABYTE = 1u << 3,
	BENCH_GROUP_DISCONNECT = 1u << 4,
	BENCH_GROUP_BUDDY = 1u << 5,
	BENCH_GROUP_COPY = 1u << 6,
	BENCH_GROUP_ALL = (1u << 7) - 1,
};

/* Latency samples of one operation, in nanoseconds. */
struct samples {
	uint64_t *ns;
	size_t n, cap;
};

struct stats {
	double p50, p99, p999, max, mean; /* ns */
	double ops_s;
};

/* One row of the table. Latency rows compare p50s; throughput rows compare ops/s. */
struct row {
	char name[48];
	struct stats st;
	bool throughput;      /* no latency: only ops_s is meaningful */
	bool figure;          /* neither: one figure, the key value */
	const char *baseline; /* name of the row it is compared with, NULL for a baseline */
	double ratio;
	const char *target; /* e.g. "<= 1.3", NULL when none */
	const char *key;    /* its label in the closing line of key figures */
	double key_value;   /* the figure the target is about (the ratio, or ns for the buddy) */
	bool met;
};

#define BENCH_ROWS_MAX 32

struct table {
	struct row rows[BENCH_ROWS_MAX];
	size_t n;
};

/* An operation measured for latency: does one, returns the nanoseconds of its timed part. */
typedef int (*bench_op)(void *ctx, uint64_t *nsp);

uint64_t bench_now_ns(void);

int samples_init(struct samples *s, size_t cap);
void samples_finish(struct samples *s);
void samples_stats(struct samples *s, struct stats *st);

/* One side of a comparison: an operation and the samples it gathers. */
struct bench_case {
	bench_op op;
	void *ctx;
	struct samples s;
};

/*
 * Runs every case @n times, in @rounds blocks that take the cases in turn (after a short warm-up
 * of each), so that a burst of noise hits every side alike. Returns 0 or an op's first error.
 */
int bench_interleave(struct bench_case *cases, size_t n_cases, size_t n, unsigned rounds);

/* Appends a row; @baseline names an earlier row (NULL: none). Returns the row. */
struct row *table_add(struct table *t, const char *name, const struct stats *st,
		      const char *baseline);

/* Appends a throughput row: its ratio is its ops/s over @baseline's. Returns the row. */
struct row *table_add_throughput(struct table *t, const char *name, double ops_s,
				 const char *baseline);

/* Appends a row of one figure, @value, labelled @key in the key line. Returns the row. */
struct row *table_add_figure(struct table *t, const char *name, const char *key, double value);

/* Sets @r's target: its ratio at most (@at_most) or at least @limit; @key labels it. */
void row_target(struct row *r, const char *key, const char *text, double limit, bool at_most);

/* Shows @value, labelled @key, among the key figures without a target (a baseline's). */
void row_info(struct row *r, const char *key, double value);

/* The table for people (with a closing line of key figures), or one JSON object. */
void report_table(const struct bench_options *o, const struct table *t);
void report_json(const struct bench_options *o, const struct table *t);

/* Pins the calling process (and so what it forks) to @cpu. Returns 0 or a negative errno. */
int bench_pin(int cpu);

/*
 * Starts smhd on @socket with the memfd backend and waits until it accepts a client.
 * Returns 0 or a negative errno.
 */
int bench_start_smhd(const struct bench_options *o, const char *socket, pid_t *pidp);

/* Starts the echo server on @socket and waits until it accepts. Returns 0 or a negative errno. */
int bench_start_echo(const struct bench_options *o, const char *socket, pid_t *pidp);

/* SIGTERM, then waits. Returns 0 when it exited with status 0, else -ECHILD. */
int bench_stop(pid_t pid);

/* Waits for @pid. Returns 0 when it exited with status 0, else -ECHILD. */
int bench_wait(pid_t pid);

/* A blocking SOCK_SEQPACKET connection to @path. Returns the fd or a negative errno. */
int bench_connect(const char *path);

/* One BENCH_MSG-byte ping-pong on @fd. Returns 0 or a negative errno. */
int bench_ping(int fd);

/* The measurements; each adds its rows to @t. Return 0 or a negative errno. */
int bench_latency(const struct bench_options *o, const char *smh_socket, struct table *t);
int bench_clients(const struct bench_options *o, const char *smh_socket, const char *echo_socket,
		  struct table *t);
int bench_buddy_rows(const struct bench_options *o, struct table *t);
/* The disconnect rows also read @smhd's memory (/proc/PID/status). */
int bench_scrub(const struct bench_options *o, const char *smh_socket, pid_t smhd, struct table *t);
int bench_copy(const struct bench_options *o, const char *smh_socket, struct table *t);

#endif
