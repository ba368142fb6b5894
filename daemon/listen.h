/* SPDX-License-Identifier: MIT */
/*
 * smhd's listening socket: made at --socket's path (its directory checked, a stale socket file
 * replaced, the file created 0660), or the one the service manager passed, adopted.
 */
#ifndef DAEMON_LISTEN_H
#define DAEMON_LISTEN_H

#include <stdbool.h>

/*
 * Listens on a new SOCK_SEQPACKET socket bound at @path (non-blocking, close-on-exec) and sets
 * *fdp (the caller owns it). The directory is created 0755 when missing; one others may write
 * to (group or world writable, or owned by another user than ours or root) is refused with
 * -EPERM unless @shared_dir_ok; a stale socket file nobody listens on is replaced; a live one
 * is -EADDRINUSE; anything else at the path -EEXIST. Returns 0 or a negative errno (logged).
 */
int listen_open(const char *path, bool shared_dir_ok, int *fdp);

/* Makes @fd (borrowed), passed by the service manager, non-blocking and close-on-exec.
 * Returns 0 or a negative errno (logged). */
int listen_adopt(int fd);

#endif
