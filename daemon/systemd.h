/* SPDX-License-Identifier: MIT */
/*
 * What smhd asks of the service manager: the listening socket it may pass (socket activation)
 * and the notifications it sends (readiness, status, stopping, watchdog pings).
 *
 * systemd.c implements it with libsystemd; systemd-fallback.c, built when Meson's `systemd`
 * feature is off, has no socket activation and sends nothing, so that smhd still runs (and
 * listens on its own socket) on a system without libsystemd.
 */
#ifndef DAEMON_SYSTEMD_H
#define DAEMON_SYSTEMD_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The listening socket the service manager passed, if any. It must be exactly one
 * SOCK_SEQPACKET unix socket, listening, bound to @path (so that the unit's
 * ListenSequentialPacket= and smhd's --socket agree). Clears LISTEN_FDS and friends.
 * Returns 1 and sets *fdp (now the caller's), 0 when smhd was not socket-activated, or a
 * negative errno (logged) when the passed sockets are not that one.
 */
int systemd_listen_fd(const char *path, int *fdp);

/* Whether a service manager listens for notifications ($NOTIFY_SOCKET). */
bool systemd_notify_enabled(void);

/* Sends @state ("READY=1", "STATUS=...", newline-separated assignments). Errors are logged. */
void systemd_notify(const char *state);

/* The watchdog interval the service manager asks for, in microseconds; 0 for none. */
uint64_t systemd_watchdog_usec(void);

#endif
