/* SPDX-License-Identifier: MIT */
/*
 * Framing (see wire.h). SOCK_SEQPACKET keeps message boundaries, so a datagram is a message:
 * no length prefix, no reassembly. What needs care is the ancillary data:
 *
 * - fds arrive with MSG_CMSG_CLOEXEC so that no exec in the receiver leaks them;
 * - MSG_CTRUNC means the kernel dropped some of the control data (fds included): the message
 *   cannot be trusted, and whatever fds did arrive are closed;
 * - MSG_TRUNC means the datagram was longer than the buffer: the rest is gone, so the message
 *   is refused whole rather than parsed in part.
 *
 * Blocking follows the socket: the daemon's are non-blocking, the client library's block, so
 * a client's round trip is one sendmsg() and one recvmsg(), with no poll() in between.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/wire.h"

/* Control buffer for WIRE_FDS_MAX fds; a cmsghdr union keeps it aligned. */
union wire_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * WIRE_FDS_MAX)];
	struct cmsghdr align;
};

int wire_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union wire_cmsg control;

	if (len > SMH_MSG_MAX || n_fds > WIRE_FDS_MAX)
		return -EMSGSIZE;
	if (n_fds > 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);

		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* Takes the fds out of every SCM_RIGHTS message: keeps what @fds has room for, closes the rest. */
static size_t take_fds(struct msghdr *msg, struct wire_fds *fds)
{
	size_t n_closed = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (fds && fds->n < WIRE_FDS_MAX) {
				fds->fds[fds->n++] = fd;
			} else {
				close(fd);
				n_closed++;
			}
		}
	}
	return n_closed;
}

void wire_fds_close(struct wire_fds *fds)
{
	for (size_t i = 0; i < fds->n; i++)
		close(fds->fds[i]);
	fds->n = 0;
}

ssize_t wire_recv(int sock, void *buf, size_t size, struct wire_fds *fds, size_t *n_closedp)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	union wire_cmsg control;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	size_t n_closed;
	ssize_t n;

	if (fds) {
		fds->n = 0;
		fds->n_closed = 0;
	}
	if (n_closedp)
		*n_closedp = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	n_closed = take_fds(&msg, fds);
	if (fds)
		fds->n_closed = n_closed;
	if (n_closedp)
		*n_closedp = n_closed;
	if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		if (fds) {
			if (n_closedp)
				*n_closedp += fds->n;
			wire_fds_close(fds);
		}
		return msg.msg_flags & MSG_CTRUNC ? -EPROTO : -EMSGSIZE;
	}
	return n;
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
