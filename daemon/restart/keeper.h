/* SPDX-License-Identifier: MIT */
/*
 * The keeper: a tiny process that holds the memfd backend's region fds, so that the regions
 * outlive a daemon killed with SIGKILL and the next daemon serves the very same memory that
 * clients still map (docs/restart.md).
 *
 * It is smhd itself, run as `smhd --keeper` with its listening socket on fd 3, bound at
 * STATE_DIR/smhd.keeper (a directory of mode 0700; the keeper also refuses peers of another
 * uid). A daemon connects and either takes the fds (GET) or hands its own (PUT); the keeper
 * then watches that daemon's pid. When the daemon is gone, the keeper waits KEEPER_LINGER_S
 * seconds for the next one, then exits (freeing the memory once no client maps it). A daemon
 * that shuts down cleanly stops it with SIGTERM.
 *
 * Without it a SIGKILLed memfd daemon loses its regions: the next one creates new memfds,
 * which cannot overlap the old ones (clients keep the old memory mapped, and nobody else gets
 * it), so nothing is handed out twice; the buffers are simply not reclaimed.
 */
#ifndef DAEMON_RESTART_KEEPER_H
#define DAEMON_RESTART_KEEPER_H

#include <stddef.h>
#include <sys/types.h>

#include "core/dt.h"

/* The most fds one keeper holds (SCM_RIGHTS carries at most 253 per datagram). */
#define KEEPER_FDS_MAX 250

/* How long a keeper waits for the next daemon. */
#define KEEPER_LINGER_S 120

struct keeper_fds {
	size_t n;
	int fds[KEEPER_FDS_MAX];
	char names[KEEPER_FDS_MAX][DT_LABEL_MAX];
};

/*
 * Takes the fds of the keeper of @dir, if one runs (the caller owns them then; close them with
 * keeper_fds_close()). Sets *pidp to its pid.
 * Returns 1 when a keeper answered, 0 when none runs, or a negative errno (logged).
 */
int keeper_fetch(const char *dir, struct keeper_fds *fds, pid_t *pidp);

/*
 * Hands @fds (borrowed) to the keeper of @dir, starting one when none runs. Sets *pidp.
 * Returns 0 or a negative errno (logged).
 */
int keeper_store(const char *dir, const struct keeper_fds *fds, pid_t *pidp);

/* Stops keeper @pid of @dir (a clean shutdown: nothing to keep) and removes its socket. */
void keeper_stop(const char *dir, pid_t pid);

void keeper_fds_close(struct keeper_fds *fds);

/* The keeper process: `smhd --keeper`, listening on fd 3. Returns the exit status. */
int keeper_main(void);

#endif
