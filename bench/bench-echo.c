/* SPDX-License-Identifier: MIT */
/*
 * smh-bench-echo: a minimal libuv SOCK_SEQPACKET echo server, the baseline of smh-bench's
 * concurrent-client figures. It is built like smhd's loop (server.c) so that the comparison
 * isolates what smhd does per request: the sockets are raw fds watched by uv_poll_t, and each
 * wake-up of a connection receives one datagram and sends it back.
 *
 * usage: smh-bench-echo SOCKET      (SIGTERM or SIGINT: stop and remove the socket)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define MSG_MAX 65536

struct conn {
	uv_poll_t poll;
	int fd;
};

static unsigned char buf[MSG_MAX];

static void on_closed(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	close(c->fd);
	free(c);
}

static void conn_close(struct conn *c)
{
	uv_poll_stop(&c->poll);
	uv_close((uv_handle_t *)&c->poll, on_closed);
}

static void on_conn(uv_poll_t *poll, int status, int events)
{
	struct conn *c = poll->data;
	ssize_t n;

	if (status < 0) {
		conn_close(c);
		return;
	}
	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* A full socket drops the echo: the benchmark's clients wait for each reply. */
	if (n <= 0 || (send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) < 0 && errno != EAGAIN))
		conn_close(c);
}

static void on_listen(uv_poll_t *poll, int status, int events)
{
	int lfd = *(int *)poll->data;
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct conn *c = calloc(1, sizeof(*c));

		if (!c || uv_poll_init(poll->loop, &c->poll, fd) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->poll.data = c;
		uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_conn);
	}
}

static void close_walk(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		uv_close(handle, handle->type == UV_POLL && handle->data != arg ? on_closed : NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	/* Closes every handle; connections free themselves, the listener's data is its fd. */
	uv_walk(sig->loop, close_walk, sig->data);
}

static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, SOMAXCONN) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int main(int argc, char **argv)
{
	uv_loop_t loop;
	uv_poll_t listen_poll;
	uv_signal_t sigs[2];
	int lfd;

	if (argc != 2) {
		fprintf(stderr, "usage: smh-bench-echo SOCKET\n");
		return 2;
	}
	lfd = listen_on(argv[1]);
	if (lfd < 0) {
		fprintf(stderr, "smh-bench-echo: error: %s: %s\n", argv[1], strerror(-lfd));
		return 1;
	}
	uv_loop_init(&loop);
	uv_poll_init(&loop, &listen_poll, lfd);
	listen_poll.data = &lfd;
	uv_poll_start(&listen_poll, UV_READABLE, on_listen);
	for (int i = 0; i < 2; i++) {
		uv_signal_init(&loop, &sigs[i]);
		sigs[i].data = &lfd;
		uv_signal_start(&sigs[i], on_signal, i ? SIGINT : SIGTERM);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	close(lfd);
	unlink(argv[1]);
	return 0;
}
