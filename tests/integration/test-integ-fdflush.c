/* SPDX-License-Identifier: MIT */
/*
 * An fd sent to smhd cannot stop its loop. A client opens a file on a FUSE filesystem it
 * serves (fuse-slowflush: a FLUSH is answered only when the test says so) and sends that fd
 * to smhd before its hello. Were smhd to take the fd and close() it, the close would wait for
 * the FLUSH on the loop, and no other client would be served. The test checks that another
 * client's round trip is answered while any FLUSH is still held back, that smhd caused no
 * FLUSH at all (it never had the fd: the kernel refused it at the sender, SO_PASSRIGHTS, or
 * dropped it unopened, with no ->flush), that the sender is dropped, and that smhd's fds come
 * back to what they were.
 *
 * Needs /dev/fuse and the right to mount (root); skipped, saying why, without them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "tests/integration/harness.h"

static unsigned char msg[SMH_MSG_MAX];

/* What the teardown must undo if the test fails half-way: held in statics (longjmp). */
static char mnt[64];
static bool mounted;
static int gate = -1; /* the write end: closing it answers every FLUSH */

static void release_gate(void)
{
	if (gate >= 0)
		close(gate);
	gate = -1;
}

static void unmount(void)
{
	if (mounted && umount2(mnt, MNT_DETACH) < 0)
		fprintf(stderr, "umount2 %s: %s\n", mnt, strerror(errno));
	mounted = false;
	if (mnt[0])
		rmdir(mnt);
	mnt[0] = '\0';
}

static int teardown(void **state)
{
	release_gate();
	unmount();
	return harness_teardown(state);
}

static int raw_connect(const struct smhd *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	memcpy(addr.sun_path, d->socket, strlen(d->socket) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return s;
}

static size_t pack_hello(void)
{
	Smh__Hello hello = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	ssize_t len;

	hello.version = SMH_PROTOCOL_VERSION;
	hello.client_name = "fdflush";
	req.id = 1;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &hello;
	len = wire_pack_request(&req, msg);
	assert_true(len > 0);
	return (size_t)len;
}

/* Waits (bounded) for one datagram: its length, 0 at end of file, or a negative errno. */
static ssize_t recv_wait(int s)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	struct wire_fds fds;
	ssize_t n;

	if (poll(&pfd, 1, HARNESS_WAIT_MS) != 1)
		fail_msg("smhd did not answer: its loop stands still");
	n = wire_recv(s, msg, sizeof(msg), &fds, NULL);
	if (n >= 0)
		wire_fds_close(&fds);
	return n;
}

/* One round trip on @s (past its hello): a stats request and its answer. */
static void round_trip(int s, uint64_t id)
{
	Smh__StatsRequest stats = SMH__STATS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	ssize_t len;

	req.id = id;
	req.body_case = SMH__REQUEST__BODY_STATS;
	req.stats = &stats;
	len = wire_pack_request(&req, msg);
	assert_int_equal(wire_send(s, msg, (size_t)len, NULL, 0), 0);
	len = recv_wait(s);
	assert_true(len > 0);
	resp = wire_unpack_response(msg, (size_t)len);
	assert_non_null(resp);
	assert_int_equal(resp->id, id);
	assert_int_equal(resp->status, 0);
	wire_free_response(resp);
}

static int hello_done(const struct smhd *d)
{
	int s = raw_connect(d);
	size_t len = pack_hello();
	ssize_t n;

	assert_int_equal(wire_send(s, msg, len, NULL, 0), 0);
	n = recv_wait(s);
	assert_true(n > 0);
	return s;
}

/* Starts fuse-slowflush on a new directory, logging FLUSHes to @log; waits for the mount. */
static void mount_slow(const char *log)
{
	int pipefd[2];
	char path[128];
	pid_t pid;

	snprintf(mnt, sizeof(mnt), "/tmp/smh-fdflush-XXXXXX");
	assert_non_null(mkdtemp(mnt));
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	gate = pipefd[1];
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char fd[16];

		snprintf(fd, sizeof(fd), "%d", pipefd[0]);
		if (fcntl(pipefd[0], F_SETFD, 0) < 0 || setenv("SMH_FUSE_GATE_FD", fd, 1) < 0 ||
		    setenv("SMH_FUSE_LOG", log, 1) < 0)
			_exit(126);
		execl(getenv("SMH_FUSE_SLOWFLUSH"), "fuse-slowflush", mnt, (char *)NULL);
		_exit(127);
	}
	close(pipefd[0]);
	harness_track_child(pid);
	snprintf(path, sizeof(path), "%s/slow", mnt);
	mounted = true;
	WAIT_UNTIL(access(path, R_OK) == 0, "the FUSE filesystem to be mounted");
}

static int count_flushes(const char *log)
{
	char line[64];
	FILE *f = fopen(log, "re");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strncmp(line, "flush ", 6) == 0;
	fclose(f);
	return n;
}

static void test_fuse_fd_does_not_stop_the_loop(void **state)
{
	struct smhd *d;
	struct smh_client *legit;
	char log[160], path[128];
	int baseline, other, sender, slow, ret;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct cmsghdr *cmsg;

	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		fprintf(stderr, "skipped: /dev/fuse: %s\n", strerror(errno));
		skip();
		return;
	}
	/* smhd first: a child forked while the slow file is open would FLUSH it at exec. */
	d = smhd_start(NULL);
	legit = harness_connect(d);
	baseline = smhd_settled_fds(d, legit);
	other = hello_done(d);
	snprintf(log, sizeof(log), "%s/fuse.log", d->dir);
	mount_slow(log);
	snprintf(path, sizeof(path), "%s/slow", mnt);
	slow = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(slow >= 0);

	/* Before any hello: the fd comes with the first datagram. */
	sender = raw_connect(d);
	iov = (struct iovec){ .iov_base = msg, .iov_len = pack_hello() };
	memset(&control, 0, sizeof(control));
	m.msg_control = control.buf;
	m.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&m);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &slow, sizeof(int));
	ret = sendmsg(sender, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
	if (ret < 0 && ret != -EPERM) /* -EPERM: SO_PASSRIGHTS is off on smhd's socket */
		fail_msg("sendmsg with the FUSE fd: %s", strerror(-ret));
	if (ret == 0) { /* delivered: smhd drops the sender */
		ssize_t n = recv_wait(sender);

		if (n > 0)
			fail_msg("smhd answered a datagram that carried an fd");
	}

	/* Served while every FLUSH is still held back, and smhd caused none. */
	round_trip(other, 2);
	assert_int_equal(harness_n_clients(legit), ret == 0 ? 2 : 3); /* the sender, refused */
	assert_int_equal(count_flushes(log), 0);

	release_gate();
	close(slow);
	close(sender);
	close(other);
	unmount();
	smhd_wait_fds(d, baseline);
	assert_true(smhd_alive(d));
	smh_disconnect(legit);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fuse_fd_does_not_stop_the_loop, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
