/* SPDX-License-Identifier: MIT */
/*
 * Restart without loss (docs/restart.md): what smhd does at start and at exit so that a daemon
 * killed while clients hold buffers comes back without handing their memory to anyone else.
 *
 * At start, before the backend: lock the state directory, read the previous daemon's records
 * (daemon/restart/state.h), and take the memfd regions back from the keeper (daemon/restart/keeper.h),
 * or, under systemd with a file descriptor store, from the store (daemon/systemd.h). After
 * the pool and the broker exist: restore every recorded allocation at its address, its holds
 * under orphan sessions, zero whatever is free (a crash may have left a block freed but not
 * yet scrubbed), put the new state file in place and hand the regions to the keeper (or the
 * store). While
 * serving: a connection that resumes a session takes its buffers back (broker_resume()); every
 * grace period, orphans whose process is gone are released, and those whose process still
 * lives are kept (it may still map them) until it resumes or dies.
 */
#ifndef DAEMON_RESTART_RECOVER_H
#define DAEMON_RESTART_RECOVER_H

#include <stdbool.h>
#include <uv.h>

#include "core/dt.h"
#include "daemon/backend.h"
#include "daemon/broker.h"
#include "daemon/systemd.h"

#define RECOVER_DEFAULT_GRACE_S 10

struct recover_options {
	const char *state_dir; /* NULL: keep no state (--no-state) */
	const char *socket;    /* for messages */
	unsigned grace_s;      /* --reclaim-grace */
	enum backend_kind backend;
	uint64_t granule;
	/* The fds the service manager's store passed back (or NULL): those the recovery takes
	 * are set to -1, the caller closes the rest. */
	struct systemd_stored *stored;
};

struct recover;

/*
 * Opens the state (see above). Sets *recp, NULL with --no-state.
 * Returns 0 or a negative errno (logged): -EADDRINUSE when another smhd uses the directory.
 */
int recover_open(const struct recover_options *opts, const struct dt_config *cfg,
		 struct recover **recp);

/*
 * For backend_create() (struct backend_options): the previous daemon's memfds, one per region
 * of the configuration or -1, borrowed from @rec until recover_close(); NULL when @rec is NULL.
 */
const int *recover_memfds(const struct recover *rec);

/* For backend_create(): whether the regions' contents must be kept (@rec is not NULL). */
bool recover_keep_contents(const struct recover *rec);

/*
 * Restores what the previous daemon left into @broker (fresh, over a pool whose regions are
 * those of the configuration given to recover_open()), and starts journaling to the new state
 * file. Returns 0 or a negative errno (logged). recover_restore(NULL, ...) does nothing.
 */
int recover_restore(struct recover *rec, struct broker *broker, struct backend *backend);

/* Starts the grace timer on @loop (not keeping the loop alive). */
void recover_arm(struct recover *rec, uv_loop_t *loop);

/*
 * At exit, after the broker released everything: stops the timer (running @loop to close it),
 * and, with @clean, removes the state and stops the keeper: nothing is left to recover.
 * recover_close(NULL, ...) does nothing.
 */
void recover_close(struct recover *rec, uv_loop_t *loop, bool clean);

/* The default state directory: the socket's (/run/smh for the default socket). */
void recover_default_dir(const char *socket, char *dir, size_t size);

/* A configuration's fingerprint: backend, granule, every region's label, base, size, attr. */
uint64_t recover_fingerprint(const struct dt_config *cfg, enum backend_kind backend,
			     uint64_t granule);

#endif
