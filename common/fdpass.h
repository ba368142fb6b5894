/* SPDX-License-Identifier: MIT */
/*
 * File descriptors over a Unix socket: one datagram (SOCK_SEQPACKET or SOCK_DGRAM) carrying a
 * buffer and SCM_RIGHTS fds. The one implementation of sendmsg()/recvmsg() with ancillary data,
 * shared by the wire protocol (proto/wire.c) and the region keeper (daemon/restart/keeper.c).
 */
#ifndef COMMON_FDPASS_H
#define COMMON_FDPASS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* The most fds one datagram may carry (the kernel's SCM_MAX_FD). */
#define FDPASS_FDS_MAX 253

/*
 * Sends @len bytes of @buf as one datagram with @n_fds fds attached. The fds are borrowed: the
 * kernel duplicates them into the message, the caller still owns (and closes) its own. Never
 * raises SIGPIPE; retried on EINTR; blocks or not as the socket does.
 * Returns 0 or a negative errno: -EAGAIN when a non-blocking socket is full (nothing sent),
 * -EMSGSIZE when @n_fds exceeds FDPASS_FDS_MAX, the system's errno otherwise (-EPIPE: the peer
 * is gone).
 */
int fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);

/*
 * Receives one datagram into @buf (@size bytes) and the fds it carries, marked close-on-exec,
 * into @fds (room for @max_fds, at most FDPASS_FDS_MAX). Retried on EINTR; blocks or not as the
 * socket does.
 *
 * Ownership: on success the *n_fdsp fds stored in @fds belong to the caller, who must close
 * them (also when the return is 0: fds may come with an empty datagram). On any error no
 * received fd is left open and *n_fdsp is 0. *n_closedp (if not NULL) counts the fds that
 * arrived and were closed here, so a caller can say that some were dropped.
 *
 * Returns the datagram's length (0: an empty datagram, or on SOCK_SEQPACKET the peer's
 * hang-up), or a negative errno: -EAGAIN when nothing is waiting; -EPROTO when the control data
 * was truncated (more fds than @max_fds were sent: those beyond it are lost) or malformed;
 * -EMSGSIZE when the datagram was longer than @size (consumed and dropped); -EINVAL when
 * @max_fds exceeds FDPASS_FDS_MAX; the system's errno otherwise.
 *
 * With @max_fds 0 no control buffer is given: fds sent never enter this process, the kernel
 * releases them (fput(), which calls no ->flush, unlike a close(): a FUSE file whose server
 * never answers FLUSH cannot block the receiver), and the datagram is -EPROTO.
 */
ssize_t fdpass_recv(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fdsp,
		    size_t *n_closedp);

/*
 * Asks the kernel to stamp the datagrams @sock receives with their arrival time
 * (SO_TIMESTAMPNS), for fdpass_recv_stamped(). Returns 0 or a negative errno.
 */
int fdpass_stamp_on(int sock);

/*
 * fdpass_recv() with no fds taken, for a socket fdpass_stamp_on() was called on: also stores
 * the time the datagram entered the socket (CLOCK_REALTIME) in *@stampp (zero when the kernel
 * gave none). The control buffer has room for the timestamp alone, which the kernel puts first,
 * so fds sent find no room and are released by the kernel (fput(), no ->flush), as with no
 * control buffer at all; the datagram is then -EPROTO. Should an fd arrive all the same, it is
 * closed and the datagram is -EPROTO too. Returns as fdpass_recv().
 */
ssize_t fdpass_recv_stamped(int sock, void *buf, size_t size, struct timespec *stampp);

#endif
