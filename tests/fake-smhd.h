/* SPDX-License-Identifier: MIT */
/*
 * A fake smhd for the client library's tests: a thread listening on a unix socket in a
 * temporary directory, answering with proto/wire.c as smhd would, from two regions backed by
 * memfds. Region "ram" is memfd-like (fd offset 0 is the region's first byte), region "dma" is
 * devmem-like (fd offset == physical address, not page aligned). Modes make it misbehave.
 */
#ifndef TESTS_FAKE_SMHD_H
#define TESTS_FAKE_SMHD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smh/attr.h"

enum fake_mode {
	FAKE_OK,
	FAKE_OLD_VERSION, /* refuses the hello */
	FAKE_MISSING_FD,  /* names a region fd in an alloc reply but attaches none */
	FAKE_WRONG_BODY,  /* answers an alloc with an export reply */
	FAKE_HANG_UP,     /* closes the connection on an alloc */
	FAKE_BAD_REGION,  /* an alloc reply in a region that does not exist */
};

#define N_REGIONS  2
#define N_CLIENTS  5 /* listed two per page */
#define MAX_ALLOCS 64
#define FAKE_KINDS 32 /* above every Request body case */

struct fake_region {
	const char *label, *backend;
	uint64_t phys, size, fd_base;
	uint32_t attr;
};

extern const struct fake_region fake_regions[N_REGIONS];

struct fake_alloc {
	uint64_t handle;
	uint32_t region;
	uint64_t rel, size; /* offset in the region, bytes */
};

struct fake {
	char dir[64], path[128];
	int listen_fd, stop[2], memfd[N_REGIONS];
	enum fake_mode mode;
	pthread_t thread;
	uint64_t next_rel[N_REGIONS], next_handle;
	struct fake_alloc allocs[MAX_ALLOCS];
	size_t n_allocs;
	int fd_sent[N_REGIONS]; /* on this connection */

	/*
	 * A daemon that dies in the middle of a request, set before the client connects: after
	 * answering @hang_up_skip requests of kind @hang_up_on (a Request body case), it does the
	 * next @n_hang_ups of them (an alloc carves, a free frees) and hangs up instead of
	 * answering, as a daemon killed before its reply; then it serves the next connection.
	 */
	int hang_up_on;
	unsigned hang_up_skip, n_hang_ups;
	/* What its hellos say: a restarted daemon may give back fewer holds than the client has. */
	uint64_t session, n_reclaimed;
	/* Stats replies as a daemon from before the requests' waits sent them (none). */
	bool stats_without_waits;
	/* Hellos after the first @answered_hellos (0: all) get no reply, the connection open. */
	unsigned answered_hellos;
	/* Requests received, by body case, over all connections; connections that ended. */
	unsigned n_received[FAKE_KINDS];
	unsigned n_closed;
};

/* Starts a fake in @mode; fake_stop() stops it and removes everything it made. */
struct fake *fake_start(enum fake_mode mode);
void fake_stop(struct fake *f);

#endif
