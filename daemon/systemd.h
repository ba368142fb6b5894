/* SPDX-License-Identifier: MIT */
/*
 * What smhd asks of the service manager: the listening socket it may pass (socket activation),
 * the notifications it sends (readiness, status, stopping, watchdog pings), and its file
 * descriptor store, which keeps the memfd regions across a restart of the service (the region
 * keeper, daemon/restart/keeper.h, would die with the service's control group).
 *
 * systemd.c implements it with libsystemd; systemd-fallback.c, built when Meson's `systemd`
 * feature is off, has no socket activation and sends nothing, so that smhd still runs (and
 * listens on its own socket) on a system without libsystemd.
 */
#ifndef DAEMON_SYSTEMD_H
#define DAEMON_SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dt.h"

/* The name of a region's fd in the store: the prefix, then the region's label. */
#define SYSTEMD_FDSTORE_PREFIX "region-"

/* The most stored fds smhd takes back (the unit's FileDescriptorStoreMax= is lower). */
#define SYSTEMD_STORED_MAX 256

/* The fds the store passed back at start, named SYSTEMD_FDSTORE_PREFIX + label. */
struct systemd_stored {
	size_t n;
	int fds[SYSTEMD_STORED_MAX];
	char labels[SYSTEMD_STORED_MAX][DT_LABEL_MAX];
};

/*
 * The listening socket the service manager passed, if any. It must be exactly one
 * SOCK_SEQPACKET unix socket, listening, bound to @path (so that the unit's
 * ListenSequentialPacket= and smhd's --socket agree). The fds it passes back from its store
 * (named SYSTEMD_FDSTORE_PREFIX + label; the socket carries its unit's name) go to @stored,
 * the caller's (systemd_stored_close()). Clears LISTEN_FDS and friends.
 * Returns 1 and sets *fdp (now the caller's), 0 when no socket was passed, or a negative errno
 * (logged, nothing left open) when the passed sockets are not that one.
 */
int systemd_listen_fd(const char *path, int *fdp, struct systemd_stored *stored);

/* Closes the fds of @stored that are still there (not -1). */
void systemd_stored_close(struct systemd_stored *stored);

/*
 * Whether the service manager keeps fds for smhd: it listens for notifications and the unit
 * has a store ($FDSTORE, which systemd 254 and later set to FileDescriptorStoreMax=, or
 * $SMHD_FDSTORE, which the unit sets for older ones), a number above 0.
 */
bool systemd_fdstore_enabled(void);

/* Puts @fd (borrowed) in the store as region @label. Returns 0 or a negative errno (logged). */
int systemd_fdstore_put(const char *label, int fd);

/* Removes region @label's fds from the store (none there: nothing happens). */
void systemd_fdstore_remove(const char *label);

/* Whether a service manager listens for notifications ($NOTIFY_SOCKET). */
bool systemd_notify_enabled(void);

/* Sends @state ("READY=1", "STATUS=...", newline-separated assignments). Errors are logged. */
void systemd_notify(const char *state);

/* The watchdog interval the service manager asks for, in microseconds; 0 for none. */
uint64_t systemd_watchdog_usec(void);

#endif
