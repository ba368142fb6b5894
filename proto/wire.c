/* SPDX-License-Identifier: MIT */
/*
 * Framing (see wire.h). SOCK_SEQPACKET keeps message boundaries, so a datagram is a message:
 * no length prefix, no reassembly. The ancillary data (close-on-exec fds, truncated control
 * data or datagrams refused whole, fds closed on every error) is common/fdpass.c's; this adds
 * the protocol's bounds, and closes the fds of a caller that wants none.
 *
 * Blocking follows the socket: the daemon's are non-blocking, the client library's block, so
 * a client's round trip is one sendmsg() and one recvmsg(), with no poll() in between.
 */
#include <errno.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "proto/wire.h"

_Static_assert(WIRE_FDS_MAX <= FDPASS_FDS_MAX, "fdpass carries a datagram's fds");

int wire_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
	if (len > SMH_MSG_MAX || n_fds > WIRE_FDS_MAX)
		return -EMSGSIZE;
	return fdpass_send(sock, buf, len, fds, n_fds);
}

void wire_fds_close(struct wire_fds *fds)
{
	for (size_t i = 0; i < fds->n; i++)
		close(fds->fds[i]);
	fds->n = 0;
}

ssize_t wire_recv(int sock, void *buf, size_t size, struct wire_fds *fds, size_t *n_closedp)
{
	struct wire_fds got = { .n = 0 };
	ssize_t n = fdpass_recv(sock, buf, size, got.fds, WIRE_FDS_MAX, &got.n, &got.n_closed);

	if (!fds) {
		got.n_closed += got.n;
		wire_fds_close(&got);
	} else {
		*fds = got;
	}
	if (n_closedp)
		*n_closedp = got.n_closed;
	return n;
}

ssize_t wire_recv_no_fds(int sock, void *buf, size_t size)
{
	size_t n_fds;

	/* No control buffer: the kernel sets MSG_CTRUNC and fput()s the fds (fdpass.h). */
	return fdpass_recv(sock, buf, size, NULL, 0, &n_fds, NULL);
}

int wire_stamp_on(int sock)
{
	return fdpass_stamp_on(sock);
}

ssize_t wire_recv_stamped(int sock, void *buf, size_t size, struct timespec *stampp)
{
	return fdpass_recv_stamped(sock, buf, size, stampp);
}

ssize_t wire_pack_refusal(uint64_t id, int status, const char *message, void *buf)
{
	Smh__Response resp = SMH__RESPONSE__INIT;

	resp.id = id;
	resp.status = status;
	resp.message = (char *)message;
	return wire_pack_response(&resp, buf);
}

ssize_t wire_pack_request(const Smh__Request *msg, void *buf)
{
	size_t len = smh__request__get_packed_size(msg);

	if (len > SMH_MSG_MAX)
		return -EMSGSIZE;
	return (ssize_t)smh__request__pack(msg, buf);
}

ssize_t wire_pack_response(const Smh__Response *msg, void *buf)
{
	size_t len = smh__response__get_packed_size(msg);

	if (len > SMH_MSG_MAX)
		return -EMSGSIZE;
	return (ssize_t)smh__response__pack(msg, buf);
}

Smh__Request *wire_unpack_request(const void *buf, size_t len)
{
	if (len > SMH_MSG_MAX)
		return NULL;
	return smh__request__unpack(NULL, len, buf);
}

Smh__Response *wire_unpack_response(const void *buf, size_t len)
{
	if (len > SMH_MSG_MAX)
		return NULL;
	return smh__response__unpack(NULL, len, buf);
}

void wire_free_request(Smh__Request *msg)
{
	if (msg)
		smh__request__free_unpacked(msg, NULL);
}

void wire_free_response(Smh__Response *msg)
{
	if (msg)
		smh__response__free_unpacked(msg, NULL);
}
