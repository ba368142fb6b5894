/* SPDX-License-Identifier: MIT */
/*
 * Framing shared by smhd and libsmh-client: one protobuf-c message per SOCK_SEQPACKET
 * datagram, with file descriptors passed as SCM_RIGHTS. Only this code, the daemon's request
 * handlers and the client library see the generated Smh__* types.
 */
#ifndef PROTO_WIRE_H
#define PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "proto/smh.pb-c.h"

/* The protocol version of proto/smh.proto. Bump on an incompatible change only. */
#define SMH_PROTOCOL_VERSION 1

/* The largest datagram either side sends or accepts. */
#define SMH_MSG_MAX 65536

/* The most fds one datagram carries (a reply names at most two regions). */
#define WIRE_FDS_MAX 4

/* The default socket and the environment variable that overrides it for clients. */
#define SMH_DEFAULT_SOCKET "/run/smh/smhd.sock"
#define SMH_SOCKET_ENV     "SMH_SOCKET"

/* Received fds; fds past WIRE_FDS_MAX, or all of them when the caller wants none, are closed. */
struct wire_fds {
	int fds[WIRE_FDS_MAX];
	size_t n;        /* kept, owned by the caller now */
	size_t n_closed; /* received and closed */
};

/*
 * Sends @len bytes as one datagram with @n_fds fds attached (borrowed; the kernel duplicates
 * them). Never raises SIGPIPE.
 * Blocks or not as the socket does.
 * Returns 0 or a negative errno: -EAGAIN when a non-blocking socket is full (nothing sent), -EMSGSIZE
 * when @len exceeds SMH_MSG_MAX or @n_fds exceeds WIRE_FDS_MAX, the system's errno otherwise.
 */
int wire_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);

/*
 * Receives one datagram into @buf (@size bytes, at least SMH_MSG_MAX) with fds marked
 * close-on-exec. When @fds is NULL every received fd is closed. *n_closedp (if not NULL) is set
 * to the number of fds closed here. Blocks or not as the socket does.
 * Returns the datagram's length (0: the peer closed the connection), or a negative errno:
 * -EAGAIN when nothing is waiting; -EMSGSIZE when the datagram was longer than @size (it is
 * consumed and dropped); -EPROTO when the control data was truncated (fds may have been lost);
 * the system's errno otherwise. On an error, no fd is left open.
 */
ssize_t wire_recv(int sock, void *buf, size_t size, struct wire_fds *fds, size_t *n_closedp);

/*
 * Receives one datagram into @buf (@size bytes, at least SMH_MSG_MAX) with no room for fds:
 * fds sent with it never enter this process. The kernel releases them itself, which, unlike a
 * close(), calls no ->flush on their files: a file of a FUSE filesystem the sender serves
 * cannot make the receiver wait. For a receiver that never wants a peer's fds (smhd).
 * Returns the datagram's length (0: the peer closed the connection), or a negative errno:
 * -EAGAIN when nothing is waiting; -EMSGSIZE when the datagram was longer than @size (it is
 * consumed and dropped); -EPROTO when it came with fds (or other control data), which were
 * dropped; the system's errno otherwise.
 */
ssize_t wire_recv_no_fds(int sock, void *buf, size_t size);

/* Has the kernel stamp @sock's datagrams with their arrival (SO_TIMESTAMPNS). 0 or -errno. */
int wire_stamp_on(int sock);

/*
 * wire_recv_no_fds() on a socket wire_stamp_on() succeeded on: also stores when
 * the datagram entered the socket (CLOCK_REALTIME) in *@stampp, zero if the kernel gave none.
 * Fds sent are dropped by the kernel as with wire_recv_no_fds() (common/fdpass.h).
 */
ssize_t wire_recv_stamped(int sock, void *buf, size_t size, struct timespec *stampp);

/*
 * Packs a Response to request @id that refuses it with @status (a negative errno) and
 * @message, into @buf (SMH_MSG_MAX bytes): for a refusal the server sends before reading any
 * request. Returns the length, or -EMSGSIZE.
 */
ssize_t wire_pack_refusal(uint64_t id, int status, const char *message, void *buf);

/* Closes the fds @fds holds and empties it. */
void wire_fds_close(struct wire_fds *fds);

/*
 * Packs @msg into @buf (SMH_MSG_MAX bytes). Returns the length, or -EMSGSIZE when the message
 * does not fit.
 */
ssize_t wire_pack_request(const Smh__Request *msg, void *buf);
ssize_t wire_pack_response(const Smh__Response *msg, void *buf);

/*
 * Unpacks a datagram. Returns NULL for anything that is not a well-formed message (free the
 * result with the matching free function).
 */
Smh__Request *wire_unpack_request(const void *buf, size_t len);
Smh__Response *wire_unpack_response(const void *buf, size_t len);
void wire_free_request(Smh__Request *msg);
void wire_free_response(Smh__Response *msg);

#endif
