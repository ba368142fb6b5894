/* SPDX-License-Identifier: MIT */
/*
 * fd passing (see fdpass.h). The ancillary data is where the care goes:
 *
 * - the control buffer holds exactly what the caller has room for (rounded up by CMSG_SPACE, so
 *   an fd past @max_fds may still arrive: it is treated as the truncation it stands for);
 * - a caller that wants no fds gives no control buffer at all, rather than taking and closing
 *   them: close() would call the file's ->flush, which a FUSE server may leave unanswered; one
 *   that wants the arrival's timestamp gives room for it alone (the kernel writes it first);
 * - fds arrive with MSG_CMSG_CLOEXEC, so that no exec() in the receiver leaks them;
 * - MSG_CTRUNC means the kernel dropped control data (fds included), MSG_TRUNC that the
 *   datagram was longer than the buffer: either way the message cannot be trusted whole, and
 *   whatever fds did arrive are closed;
 * - a control message is checked against the buffer before its length is used: a short one
 *   would make the fd count wrap, a long one read past the end.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/fdpass.h"

/* Control buffer for FDPASS_FDS_MAX fds; a cmsghdr union keeps it aligned. */
union fdpass_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * FDPASS_FDS_MAX)];
	struct cmsghdr align;
};

int fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union fdpass_cmsg control;

	if (n_fds > FDPASS_FDS_MAX)
		return -EMSGSIZE;
	if (n_fds > 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control)); /* the padding goes out too */
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
	}
	for (;;) {
		if (sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Takes the fds out of every SCM_RIGHTS message of @msg into @fds (room for @max_fds; those
 * past it are closed). Returns 0, or -EPROTO when an fd had no room or a control message is
 * malformed (the fds taken so far stay in @fds, counted in *n_fdsp).
 */
static int take_fds(struct msghdr *msg, int *fds, size_t max_fds, size_t *n_fdsp, size_t *n_closedp)
{
	const char *end;

	if (!msg->msg_control) /* no control buffer: nothing came (and NULL + 0 is undefined) */
		return 0;
	end = (const char *)msg->msg_control + msg->msg_controllen;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_len < CMSG_LEN(0) || c->cmsg_len > (size_t)(end - (const char *)c))
			return -EPROTO; /* its fds, if any, cannot be told from garbage */
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*n_fdsp < max_fds) {
				fds[(*n_fdsp)++] = fd;
			} else {
				close(fd);
				(*n_closedp)++;
			}
		}
	}
	return *n_closedp ? -EPROTO : 0;
}

/*
 * recvmsg() of one datagram into @msg, retried on EINTR, its fds taken into @fds (take_fds()).
 * Returns its length or a negative errno: -EAGAIN, the system's, or -EPROTO (control data
 * truncated or malformed) and -EMSGSIZE (datagram truncated), after which the fds taken so far
 * are still in @fds, counted in *n_fdsp, for the caller to close.
 */
static ssize_t recv_taking(int sock, struct msghdr *msg, int *fds, size_t max_fds, size_t *n_fdsp,
			   size_t *n_closedp)
{
	ssize_t n;
	int ret;

	do
		n = recvmsg(sock, msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	ret = take_fds(msg, fds, max_fds, n_fdsp, n_closedp);
	if (ret == 0 && (msg->msg_flags & MSG_CTRUNC))
		ret = -EPROTO;
	else if (ret == 0 && (msg->msg_flags & MSG_TRUNC))
		ret = -EMSGSIZE;
	return ret < 0 ? ret : n;
}

ssize_t fdpass_recv(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fdsp,
		    size_t *n_closedp)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union fdpass_cmsg control;
	size_t n_closed = 0;
	ssize_t n;

	*n_fdsp = 0;
	if (n_closedp)
		*n_closedp = 0;
	if (max_fds > FDPASS_FDS_MAX)
		return -EINVAL;
	if (max_fds > 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds);
	}
	n = recv_taking(sock, &msg, fds, max_fds, n_fdsp, &n_closed);
	if (n < 0) {
		close_all(fds, *n_fdsp);
		n_closed += *n_fdsp;
		*n_fdsp = 0;
	}
	if (n_closedp)
		*n_closedp = n_closed;
	return n;
}

/* Room for one SCM_TIMESTAMPNS and nothing after it. */
union fdpass_stamp_cmsg {
	char buf[CMSG_SPACE(sizeof(struct timespec))];
	struct cmsghdr align;
};

int fdpass_stamp_on(int sock)
{
	int one = 1;

	return setsockopt(sock, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0 ? -errno : 0;
}

ssize_t fdpass_recv_stamped(int sock, void *buf, size_t size, struct timespec *stampp)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union fdpass_stamp_cmsg control;
	size_t n_fds = 0, n_closed = 0;
	ssize_t n;

	memset(stampp, 0, sizeof(*stampp));
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	/* An fd is not expected (the timestamp fills the buffer); one that came is not kept. */
	n = recv_taking(sock, &msg, NULL, 0, &n_fds, &n_closed);
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
		    c->cmsg_len == CMSG_LEN(sizeof(*stampp)))
			memcpy(stampp, CMSG_DATA(c), sizeof(*stampp));
	}
	return n;
}
