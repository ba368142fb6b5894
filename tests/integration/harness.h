/* SPDX-License-Identifier: MIT */
/*
 * What the integration tests share: the real smhd started on a temporary socket and stopped
 * with a check of how it ended, bounded waits, child processes, pattern helpers, and running
 * a program with its output captured.
 *
 * Every wait here is bounded (HARNESS_WAIT_MS) and generous: the tests run on loaded machines
 * and under valgrind. Waiting is never an assertion about speed; running out of time fails the
 * test with what was being waited for.
 */
#ifndef TESTS_INTEGRATION_HARNESS_H
#define TESTS_INTEGRATION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smh/client.h"

/* The bound of every wait. */
#define HARNESS_WAIT_MS 60000

struct smhd {
	pid_t pid; /* 0 once it has been waited for */
	char dir[80];
	char socket[108]; /* sun_path's size */
	char log[108];
	bool valgrind;
	bool in_use;
};

struct smhd_options {
	const char *backend;  /* NULL: memfd */
	const char *mem_path; /* --mem-path, or NULL */
	bool valgrind;        /* run smhd itself under valgrind (errors and leaks fail it) */
	const char *dtb;      /* NULL: the seed's example */
	const char *granule;  /* --granule, or NULL */
	/* More arguments for smhd (NULL-terminated, at most HARNESS_EXTRA_ARGS), or NULL. */
	const char *const *extra_args;
};

#define HARNESS_EXTRA_ARGS 16

/*
 * Starts smhd (@opts may be NULL) on a socket in a new temporary directory, logging to a file
 * beside it, and waits until the socket accepts. Fails the test if it does not come up.
 */
struct smhd *smhd_start(const struct smhd_options *opts);

/* Kills smhd with SIGKILL and reaps it; its directory (socket, state) stays. */
void smhd_kill(struct smhd *d);

/* Starts smhd again in @d's directory, on the same socket, and waits until it accepts. */
void smhd_restart(struct smhd *d, const struct smhd_options *opts);

/* Sends SIGTERM; asserts that smhd exits with status 0 and removed its socket file. */
void smhd_stop(struct smhd *d);

/* Prints the daemon's log to stderr. */
void smhd_dump_log(const struct smhd *d);

/* The number of lines of the daemon's log that contain every one of @needles (NULL-ended). */
int smhd_count_log(const struct smhd *d, const char *const *needles);

/* The number of fds open in the daemon (/proc/PID/fd). */
int smhd_count_fds(const struct smhd *d);

/*
 * The daemon's fd count once it has settled: one socket per client connected (as @c asks the
 * daemon) plus the listening one. A departed client's socket is closed a little after the
 * daemon forgets the client, so counting right after a stats reply may see it still.
 */
int smhd_settled_fds(const struct smhd *d, struct smh_client *c);

/* Waits until the daemon has @n fds open; fails with its fd list otherwise. */
void smhd_wait_fds(const struct smhd *d, int n);

/* Whether one of the daemon's fds links to something containing @needle. */
bool smhd_has_fd_to(const struct smhd *d, const char *needle);

/* Whether the daemon is still running (not exited, not a zombie). */
bool smhd_alive(struct smhd *d);

/* A new client of @d; fails the test if it cannot connect. */
struct smh_client *harness_connect(const struct smhd *d);

/* Teardown for every test: kills what a failed test left running (printing daemon logs). */
int harness_teardown(void **state);

/* Children the teardown kills if the test fails before waiting for them. */
void harness_track_child(pid_t pid);

/* Waits (bounded) for child @pid and returns its wait status. */
int harness_wait_child(pid_t pid);

/* Asserts that child @pid exits with status 0 (a child's failure code names its check). */
void harness_assert_child_ok(pid_t pid);

void harness_sleep_ms(int ms);

/* Milliseconds on a monotonic clock. */
int64_t harness_now_ms(void);

/* Waits until @cond holds, re-evaluating it every 10 ms; fails saying @what on time out. */
#define WAIT_UNTIL(cond, what)                                               \
	do {                                                                 \
		int64_t wait_deadline_ = harness_now_ms() + HARNESS_WAIT_MS; \
		while (!(cond)) {                                            \
			if (harness_now_ms() > wait_deadline_)               \
				fail_msg("timed out waiting for %s", what);  \
			harness_sleep_ms(10);                                \
		}                                                            \
	} while (0)

/* Statistics through @c: bytes used over all regions, connected clients, one region's use. */
uint64_t harness_used(struct smh_client *c);

/*
 * Waits until smhd's scrub backlog is empty (fails after HARNESS_WAIT_MS): memory given back
 * is free again, so a test may expect the allocator to reuse its place.
 */
void harness_wait_scrubbed(struct smh_client *c);
uint32_t harness_n_clients(struct smh_client *c);
uint64_t harness_region_used(struct smh_client *c, uint32_t region);

/*
 * Waits until the daemon reports @used bytes in use and @n_clients clients, and until it has
 * closed the sockets of the clients that left.
 */
void harness_wait_usage(struct smh_client *c, uint64_t used, uint32_t n_clients);

/* A live allocation as smh_list_allocs() reports it, holders copied. */
struct alloc_view {
	uint64_t size, phys_addr, owner;
	int shared;
	size_t n_holders;
	uint64_t holders[8];
};

/* Fills @out with the live allocation @handle; false when there is none. */
bool harness_find_alloc(struct smh_client *c, uint64_t handle, struct alloc_view *out);

/* A pattern without zero bytes that depends on @seed; whether @p holds it. */
void pattern_fill(void *p, size_t n, unsigned seed);
bool pattern_check(const void *p, size_t n, unsigned seed);
bool all_zero(const void *p, size_t n);

/* An environment variable the test setup must provide. */
const char *harness_env(const char *name);

struct run_result {
	int status; /* exit status; the test fails if the program died of a signal */
	char out[32768];
	char err[8192];
};

/* Runs @argv (NULL-terminated) with stdout and stderr captured. */
void harness_run(struct run_result *res, char *const argv[]);

void assert_contains(const char *haystack, const char *needle);
void assert_lacks(const char *haystack, const char *needle);

/* Runs smhctl --socket @socket ARGS... (NULL-terminated, at most 12). */
void smhctl(struct run_result *res, const char *socket, ...);

/* The program of @res exited with @status (its output is shown otherwise). */
void assert_status(const struct run_result *res, int status);

#endif
