/* SPDX-License-Identifier: MIT */
/*
 * fd passing (common/fdpass.c) and the keeper's protocol (daemon/restart/keeper.c, compiled in
 * to reach fetch_on(), store_on() and serve_one()), over socketpairs: no keeper process.
 *
 * fdpass: a round trip, fds past the caller's limit (the kernel's MSG_CTRUNC, and the one that
 * CMSG_SPACE's rounding lets in), a datagram longer than the buffer, an empty datagram and a
 * hang-up, EINTR (recvmsg and sendmsg are wrapped with -Wl,--wrap to fail first), and control
 * data no kernel sends (the wrapper fabricates it); the stamped receive smhd uses (the arrival
 * time, and fds sent that never enter the process). The keeper: a PUT and a GET that gives back
 * the very same files, a PUT that replaces the held fds, and malformed requests and replies,
 * each refused with the fds it carried closed. Every test ends with the process's fd count
 * where it started.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/restart/keeper.c"
#include "tests/test-util.h"

/* ---------------------------------------------------------------- recvmsg/sendmsg wrapped */

ssize_t __real_recvmsg(int sock, struct msghdr *msg, int flags);
ssize_t __wrap_recvmsg(int sock, struct msghdr *msg, int flags);
ssize_t __real_sendmsg(int sock, const struct msghdr *msg, int flags);
ssize_t __wrap_sendmsg(int sock, const struct msghdr *msg, int flags);

static int recv_eintr, send_eintr; /* calls to fail with EINTR first */
static int recv_calls, send_calls;
static bool got_rights; /* a real recvmsg() returned an SCM_RIGHTS message */
/* When set, the next recvmsg() returns "x" with this control data instead of reading. */
static const void *fake_control;
static size_t fake_controllen;

ssize_t __wrap_recvmsg(int sock, struct msghdr *msg, int flags)
{
	ssize_t ret;

	recv_calls++;
	if (recv_eintr > 0) {
		recv_eintr--;
		errno = EINTR;
		return -1;
	}
	if (fake_control) {
		assert_true(msg->msg_controllen >= fake_controllen);
		memcpy(msg->msg_iov[0].iov_base, "x", 1);
		memcpy(msg->msg_control, fake_control, fake_controllen);
		msg->msg_controllen = fake_controllen;
		msg->msg_flags = 0;
		fake_control = NULL;
		return 1;
	}
	ret = __real_recvmsg(sock, msg, flags);
	if (ret >= 0) { /* what the kernel put in the control buffer */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c))
			got_rights |= c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS;
	}
	return ret;
}

ssize_t __wrap_sendmsg(int sock, const struct msghdr *msg, int flags)
{
	send_calls++;
	if (send_eintr > 0) {
		send_eintr--;
		errno = EINTR;
		return -1;
	}
	return __real_sendmsg(sock, msg, flags);
}

/* ---------------------------------------------------------------- harness */

static int fds_at_start;
static int sv[2];

static int setup(void **state)
{
	(void)state;
	recv_eintr = send_eintr = recv_calls = send_calls = 0;
	fds_at_start = test_count_fds();
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(test_count_fds(), fds_at_start);
	return 0;
}

/* A 4 KiB memfd. */
static int new_memfd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	return fd;
}

static ino_t inode(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* Nothing waits on @sock. */
static void assert_nothing_waiting(int sock)
{
	char c;

	assert_int_equal(recv(sock, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* ---------------------------------------------------------------- fdpass */

static void test_fdpass_round_trip(void **state)
{
	int fds[2] = { new_memfd("a"), new_memfd("b") }, got[4];
	size_t n_fds = 9, n_closed = 9;
	char buf[16];

	(void)state;
	assert_int_equal(fdpass_send(sv[0], "hello", 5, fds, 2), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(n_fds, 2);
	assert_int_equal(n_closed, 0);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(inode(got[i]), inode(fds[i]));
		assert_int_equal(fcntl(got[i], F_GETFD), FD_CLOEXEC);
		close(got[i]);
		close(fds[i]);
	}
}

/*
 * qemu-user receives into a control buffer larger than the program's and then copies what
 * fits: the kernel never truncates, the program never sees MSG_CTRUNC, and the fds that did
 * not fit stay open, unknown to it.
 */
#define CTRUNC_LOST "MSG_CTRUNC when more fds come than the control buffer holds"

/* More fds than the caller has room for: the kernel truncates; nothing is kept. */
static void test_fdpass_beyond_limit(void **state)
{
	int fd, fds[3], got[2] = { -1, -1 };
	size_t n_fds = 9, n_closed = 9;
	char buf[16];

	(void)state;
	if (test_under_qemu_user(CTRUNC_LOST))
		skip();
	fd = new_memfd("a");
	fds[0] = fds[1] = fds[2] = fd;
	assert_int_equal(fdpass_send(sv[0], "abc", 3, fds, 3), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 2, &n_fds, &n_closed), -EPROTO);
	assert_int_equal(n_fds, 0);
	assert_int_equal(n_closed, 2); /* the two the kernel gave before truncating */
	close(fd);
}

/* CMSG_SPACE rounds up: room for 1 fd may let 2 in, and the second is one too many. */
static void test_fdpass_beyond_limit_rounded(void **state)
{
	int fd, fds[2], got[1] = { -1 };
	size_t fit = (CMSG_SPACE(sizeof(int)) - CMSG_LEN(0)) / sizeof(int), n_fds = 9, n_closed;
	char buf[16];

	(void)state;
	/* 32-bit: CMSG_SPACE has room for 1 fd and the kernel truncates the second. */
	if (fit < 2 && test_under_qemu_user(CTRUNC_LOST))
		skip();
	fd = new_memfd("a");
	fds[0] = fds[1] = fd;
	assert_int_equal(fdpass_send(sv[0], "ab", 2, fds, 2), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 1, &n_fds, &n_closed), -EPROTO);
	assert_int_equal(n_fds, 0);
	assert_int_equal(n_closed, fit < 2 ? fit : 2);
	close(fd);
}

/* A caller that wants no fds: a datagram with some is refused (the kernel drops them). */
static void test_fdpass_no_fds_wanted(void **state)
{
	int fd = new_memfd("a");
	size_t n_fds = 9, n_closed = 9;
	char buf[16];

	(void)state;
	assert_int_equal(fdpass_send(sv[0], "ab", 2, &fd, 1), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), NULL, 0, &n_fds, NULL), -EPROTO);
	assert_int_equal(n_fds, 0);
	/* Without fds, fine. */
	assert_int_equal(fdpass_send(sv[0], "cd", 2, NULL, 0), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), NULL, 0, &n_fds, &n_closed), 2);
	assert_int_equal(n_closed, 0);
	assert_int_equal(
		fdpass_recv(sv[1], buf, sizeof(buf), NULL, FDPASS_FDS_MAX + 1, &n_fds, NULL),
		-EINVAL);
	assert_int_equal(fdpass_send(sv[0], "ef", 2, &fd, FDPASS_FDS_MAX + 1), -EMSGSIZE);
	assert_nothing_waiting(sv[1]);
	close(fd);
}

/* Longer than the buffer: refused whole, its fds closed, and the next datagram is intact. */
static void test_fdpass_too_long(void **state)
{
	int fd = new_memfd("a"), got[4];
	size_t n_fds = 9, n_closed = 9;
	char buf[4];

	(void)state;
	assert_int_equal(fdpass_send(sv[0], "0123456789", 10, &fd, 1), 0);
	assert_int_equal(fdpass_send(sv[0], "abc", 3, NULL, 0), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed),
			 -EMSGSIZE);
	assert_int_equal(n_fds, 0);
	assert_int_equal(n_closed, 1);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed), 3);
	assert_memory_equal(buf, "abc", 3);
	close(fd);
}

/* An empty datagram reads as 0 and may carry fds (the caller's); so does a hang-up, without. */
static void test_fdpass_empty_and_hangup(void **state)
{
	int fd = new_memfd("a"), got[4] = { -1 };
	size_t n_fds = 9, n_closed = 9;
	char buf[16];

	(void)state;
	assert_int_equal(fdpass_send(sv[0], "", 0, NULL, 0), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed), 0);
	assert_int_equal(n_fds, 0);
	assert_int_equal(fdpass_send(sv[0], "", 0, &fd, 1), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed), 0);
	assert_int_equal(n_fds, 1);
	assert_int_equal(inode(got[0]), inode(fd));
	close(got[0]);
	close(sv[0]);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed), 0);
	assert_int_equal(n_fds, 0);
	assert_int_equal(fdpass_send(sv[1], "x", 1, NULL, 0), -EPIPE);
	sv[0] = -1;
	close(fd);
}

static void test_fdpass_eintr(void **state)
{
	int fd = new_memfd("a"), got[4];
	size_t n_fds = 9, n_closed = 9;
	char buf[16];

	(void)state;
	send_eintr = 2;
	assert_int_equal(fdpass_send(sv[0], "abc", 3, &fd, 1), 0);
	assert_int_equal(send_calls, 3);
	recv_eintr = 3;
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds, &n_closed), 3);
	assert_int_equal(recv_calls, 4);
	assert_int_equal(n_fds, 1);
	assert_int_equal(inode(got[0]), inode(fd));
	close(got[0]);
	close(fd);
}

static void test_fdpass_eagain(void **state)
{
	size_t n_fds = 9;
	char buf[16];

	(void)state;
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), NULL, 0, &n_fds, NULL), -EAGAIN);
	assert_int_equal(n_fds, 0);
}

/* Control data no kernel sends: a header shorter than itself, or longer than the buffer. */
union fake {
	char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(0)];
	struct cmsghdr align;
};

/* Puts at @at in @f's buffer an SCM_RIGHTS message of @len bytes (a lie or not) carrying @fd. */
static void fake_rights(union fake *f, size_t at, size_t len, int fd)
{
	struct cmsghdr *c = (struct cmsghdr *)(f->buf + at);

	*c = (struct cmsghdr){ .cmsg_len = len, .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS };
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
}

static void test_fdpass_malformed_control(void **state)
{
	int fd = new_memfd("a"), got[8] = { -1 };
	size_t n_fds = 9, n_closed = 9;
	struct cmsghdr *c;
	union fake f;
	char buf[16];

	(void)state;
	/* A valid SCM_RIGHTS with @fd, then a header claiming less than a header. */
	memset(&f, 0, sizeof(f));
	fake_rights(&f, 0, CMSG_LEN(sizeof(int)), fd);
	c = (struct cmsghdr *)(f.buf + CMSG_SPACE(sizeof(int)));
	*c = (struct cmsghdr){ .cmsg_len = 8, .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS };
	fake_control = f.buf;
	fake_controllen = sizeof(f.buf);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 8, &n_fds, &n_closed), -EPROTO);
	assert_int_equal(n_fds, 0);
	assert_int_equal(n_closed, 1);
	assert_false(is_open(fd)); /* the fd that did arrive is closed */

	/* One header claiming more than the buffer holds: its "fds" are not touched. */
	fd = new_memfd("b");
	memset(&f, 0, sizeof(f));
	fake_rights(&f, 0, 1000, fd);
	fake_control = f.buf;
	fake_controllen = CMSG_SPACE(sizeof(int));
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), got, 8, &n_fds, &n_closed), -EPROTO);
	assert_int_equal(n_fds, 0);
	assert_int_equal(n_closed, 0);
	assert_true(is_open(fd));
	close(fd);
}

static bool ts_le(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

/*
 * Stamped (smhd's client sockets): the datagram's arrival time comes back, and fds sent never
 * enter the process: the timestamp fills the control buffer, the kernel drops them.
 */
static void test_fdpass_stamped(void **state)
{
	struct timespec before, stamp, after;
	int fd, fds[3];
	char buf[16];

	(void)state;
	if (test_under_qemu_user("SO_TIMESTAMPNS (qemu-user refuses it; smhd then gives no "
				 "control buffer at all)"))
		skip();
	fd = new_memfd("a");
	fds[0] = fds[1] = fds[2] = fd;
	assert_int_equal(fdpass_stamp_on(sv[1]), 0);
	clock_gettime(CLOCK_REALTIME, &before);
	assert_int_equal(fdpass_send(sv[0], "ab", 2, NULL, 0), 0);
	assert_int_equal(fdpass_recv_stamped(sv[1], buf, sizeof(buf), &stamp), 2);
	clock_gettime(CLOCK_REALTIME, &after);
	assert_true(ts_le(&before, &stamp));
	assert_true(ts_le(&stamp, &after));
	for (size_t n = 1; n <= 3; n++) {
		got_rights = false;
		assert_int_equal(fdpass_send(sv[0], "cd", 2, fds, n), 0);
		assert_int_equal(fdpass_recv_stamped(sv[1], buf, sizeof(buf), &stamp), -EPROTO);
		assert_false(got_rights);
	}
	assert_int_equal(fdpass_send(sv[0], "efg", 3, NULL, 0), 0);
	assert_int_equal(fdpass_recv_stamped(sv[1], buf, sizeof(buf), &stamp), 3);
	assert_memory_equal(buf, "efg", 3);
	assert_true(stamp.tv_sec > 0);
	close(fd);
}

/* An fd that arrives with the timestamp all the same (no kernel sends it) is closed: -EPROTO. */
static void test_fdpass_stamped_fd_closed(void **state)
{
	int fd = new_memfd("a");
	struct timespec stamp;
	union fake f;
	char buf[16];

	(void)state;
	memset(&f, 0, sizeof(f));
	fake_rights(&f, 0, CMSG_LEN(sizeof(int)), fd);
	fake_control = f.buf;
	fake_controllen = CMSG_SPACE(sizeof(int));
	assert_int_equal(fdpass_recv_stamped(sv[1], buf, sizeof(buf), &stamp), -EPROTO);
	assert_false(is_open(fd));
}

/* ---------------------------------------------------------------- the keeper */

static struct keeper k;
static struct keeper_fds fds, got;
static char text[MSG_MAX];

static int keeper_setup(void **state)
{
	memset(&k, 0, sizeof(k));
	memset(&fds, 0, sizeof(fds));
	memset(&got, 0, sizeof(got));
	return setup(state);
}

static int keeper_teardown(void **state)
{
	keeper_fds_close(&k.held);
	keeper_fds_close(&fds);
	keeper_fds_close(&got);
	return teardown(state);
}

static void *serve_thread(void *arg)
{
	serve_one(&k, *(int *)arg);
	return NULL;
}

/* store_on() or fetch_on() on sv[0] while the keeper serves sv[1] (then a fresh pair). */
static int exchange(bool put, pid_t *pidp)
{
	pthread_t thread;
	int ret;

	assert_int_equal(pthread_create(&thread, NULL, serve_thread, &sv[1]), 0);
	ret = put ? store_on(sv[0], text, &fds, pidp) : fetch_on(sv[0], text, &got, pidp);
	assert_int_equal(pthread_join(thread, NULL), 0);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	return ret;
}

static void add_fd(struct keeper_fds *f, const char *name)
{
	f->fds[f->n] = new_memfd(name);
	snprintf(f->names[f->n++], DT_LABEL_MAX, "%s", name);
}

static void test_put_get(void **state)
{
	pid_t pid = 0;
	char word[8] = { 0 };

	(void)state;
	add_fd(&fds, "sram");
	add_fd(&fds, "dram-1");
	assert_int_equal(exchange(true, &pid), 0);
	assert_int_equal(pid, getpid()); /* the keeper names itself */
	assert_int_equal(k.held.n, 2);
	assert_string_equal(k.held.names[0], "sram");
	assert_string_equal(k.held.names[1], "dram-1");
	/* It watches the daemon that spoke to it, start time included. */
	assert_int_equal(k.daemon, getpid());
	assert_true(k.daemon_start != 0);
	/* qemu-user's /proc/PID/stat gives the reading thread's start time, not the process's. */
	if (!test_under_qemu_user("the start time read from /proc/PID/stat in another thread"))
		assert_true(k.daemon_start == proc_start_time(getpid()));

	pid = 0;
	assert_int_equal(exchange(false, &pid), 0);
	assert_int_equal(pid, getpid());
	assert_int_equal(got.n, 2);
	assert_string_equal(got.names[0], "sram");
	assert_string_equal(got.names[1], "dram-1");
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(inode(got.fds[i]), inode(fds.fds[i]));
		assert_int_equal(fcntl(got.fds[i], F_GETFD), FD_CLOEXEC);
	}
	/* The same memory: written through one, read through the other. */
	assert_int_equal(pwrite(fds.fds[1], "kept", 4, 100), 4);
	assert_int_equal(pread(got.fds[1], word, 4, 100), 4);
	assert_string_equal(word, "kept");
	/* The keeper still holds them: a GET does not give its own away. */
	assert_int_equal(k.held.n, 2);
	assert_true(is_open(k.held.fds[0]));
}

/* A second PUT replaces what the keeper held, and closes it. */
static void test_put_replaces(void **state)
{
	pid_t pid;
	int before;

	(void)state;
	add_fd(&fds, "old");
	assert_int_equal(exchange(true, &pid), 0);
	keeper_fds_close(&fds);
	before = test_count_fds(); /* the keeper's copy of "old" among them */
	add_fd(&fds, "new");
	assert_int_equal(exchange(true, &pid), 0);
	keeper_fds_close(&fds);
	assert_int_equal(test_count_fds(), before); /* "new" held, "old" closed */
	assert_int_equal(k.held.n, 1);
	assert_string_equal(k.held.names[0], "new");
	/* Nothing to hold is a PUT too. */
	assert_int_equal(exchange(true, &pid), 0);
	assert_int_equal(k.held.n, 0);
	assert_int_equal(test_count_fds(), before - 1);
}

/* @request with @n_fds copies of @fd, to a keeper holding one fd: refused, nothing kept. */
static void refused(const char *request, size_t len, int fd, size_t n_fds)
{
	int *many = calloc(n_fds ? n_fds : 1, sizeof(int));
	ino_t held = inode(k.held.fds[0]);
	int before = test_count_fds();

	assert_non_null(many);
	for (size_t i = 0; i < n_fds; i++)
		many[i] = fd;
	assert_int_equal(fdpass_send(sv[0], request, len, many, n_fds), 0);
	free(many);
	serve_one(&k, sv[1]);
	assert_nothing_waiting(sv[0]); /* no answer */
	assert_nothing_waiting(sv[1]); /* consumed */
	assert_int_equal(test_count_fds(), before);
	assert_int_equal(k.held.n, 1);
	assert_int_equal(inode(k.held.fds[0]), held);
}

static void test_keeper_refuses(void **state)
{
	int fd = new_memfd("x");
	char *big = malloc(MSG_MAX + 1), *names = malloc(MSG_MAX);
	size_t len;
	pid_t pid;

	(void)state;
	assert_non_null(big);
	assert_non_null(names);
	add_fd(&fds, "held");
	assert_int_equal(exchange(true, &pid), 0);

	refused("PU", 2, fd, 1);           /* short */
	refused("", 0, fd, 1);             /* empty */
	refused("HELLO", 5, fd, 2);        /* unknown */
	refused("PUT\na\nb", 7, fd, 1);    /* more names than fds */
	refused("PUT\na", 5, fd, 2);       /* fewer */
	refused("PUT\na\nb\nc", 9, fd, 2); /* more, with several */
	memset(big, 'a', MSG_MAX + 1);
	memcpy(big, "PUT\n", 4);
	refused(big, MSG_MAX + 1, fd, 1); /* longer than any request */
	len = (size_t)snprintf(names, MSG_MAX, "PUT");
	for (int i = 0; i <= KEEPER_FDS_MAX; i++)
		len += (size_t)snprintf(names + len, MSG_MAX - len, "\nr%d", i);
	if (!test_under_qemu_user(CTRUNC_LOST))
		refused(names, len, fd, KEEPER_FDS_MAX + 1); /* more fds than it holds */
	free(big);
	free(names);
	close(fd);
}

/* A GET with fds attached is answered; the stray fds are closed. */
static void test_keeper_get_with_fds(void **state)
{
	int fd = new_memfd("stray"), before;
	pid_t pid;

	(void)state;
	add_fd(&fds, "held");
	assert_int_equal(exchange(true, &pid), 0);
	before = test_count_fds();
	assert_int_equal(fdpass_send(sv[0], "GET", 3, &fd, 1), 0);
	close(fd);
	serve_one(&k, sv[1]);
	assert_int_equal(test_count_fds(), before - 1);
	assert_true(fdpass_recv(sv[0], text, sizeof(text) - 1, got.fds, KEEPER_FDS_MAX, &got.n,
				NULL) > 0);
	assert_int_equal(got.n, 1);
	assert_int_equal(inode(got.fds[0]), inode(fds.fds[0]));
}

/* A reply queued on sv[1] before @put's request: what the daemon's side makes of it. */
static int with_reply(bool put, const char *reply, int fd, size_t n_fds, pid_t *pidp)
{
	int ret;

	assert_int_equal(fdpass_send(sv[1], reply, strlen(reply), &fd, n_fds), 0);
	ret = put ? store_on(sv[0], text, &fds, pidp) : fetch_on(sv[0], text, &got, pidp);
	assert_true(recv(sv[1], text, sizeof(text), MSG_DONTWAIT) > 0); /* the request */
	return ret;
}

static void test_daemon_refuses(void **state)
{
	int fd = new_memfd("r");
	pid_t pid = 77;

	(void)state;
	assert_int_equal(with_reply(false, "FDS 12\na", fd, 1, &pid), 0); /* well formed */
	assert_int_equal(pid, 12);
	assert_int_equal(got.n, 1);
	keeper_fds_close(&got);
	pid = 77;
	assert_int_equal(with_reply(false, "FDS 12\na\nb", fd, 1, &pid), -EPROTO);
	assert_int_equal(with_reply(false, "FDS 12", fd, 1, &pid), -EPROTO);
	assert_int_equal(with_reply(false, "FDS 0\na", fd, 1, &pid), -EPROTO);
	assert_int_equal(with_reply(false, "OK 12", fd, 0, &pid), -EPROTO);
	assert_int_equal(with_reply(false, "", fd, 0, &pid), -EPROTO);
	assert_int_equal(got.n, 0);
	assert_int_equal(with_reply(true, "OK 12", fd, 0, &pid), 0);
	assert_int_equal(pid, 12);
	pid = 77;
	assert_int_equal(with_reply(true, "OK 12", fd, 1, &pid), -EPROTO); /* fds unasked */
	assert_int_equal(with_reply(true, "OK -3", fd, 0, &pid), -EPROTO);
	assert_int_equal(with_reply(true, "FDS 12", fd, 0, &pid), -EPROTO);
	assert_int_equal(pid, 77);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fdpass_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_beyond_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_beyond_limit_rounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_no_fds_wanted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_stamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_stamped_fd_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_empty_and_hangup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_eintr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_eagain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdpass_malformed_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_get, keeper_setup, keeper_teardown),
		cmocka_unit_test_setup_teardown(test_put_replaces, keeper_setup, keeper_teardown),
		cmocka_unit_test_setup_teardown(test_keeper_refuses, keeper_setup, keeper_teardown),
		cmocka_unit_test_setup_teardown(test_keeper_get_with_fds, keeper_setup,
						keeper_teardown),
		cmocka_unit_test_setup_teardown(test_daemon_refuses, keeper_setup, keeper_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
