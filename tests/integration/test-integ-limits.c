/* SPDX-License-Identifier: MIT */
/*
 * Connections that are not served cannot take smhd's fds or its log (daemon/server.c): the
 * connections of a uid the policy refuses, silent ones that never say hello, too many of one
 * uid, and a flood of refused connections writing warnings.
 *
 * Clients of other uids are children that fork and setuid (root only; skipped otherwise).
 * Every wait is bounded (HARNESS_WAIT_MS): on a daemon without the limits, the waits for an
 * answer run out and the test fails saying what did not come.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "smh/client.h"
#include "tests/integration/harness.h"

#define NOBODY 65534

static unsigned char msg[SMH_MSG_MAX];

static bool root_or_skip(void)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "skipped: running clients as other uids needs root\n");
	return false;
}

static struct smhd *start(const char *const *args)
{
	struct smhd_options opts = { .extra_args = args };
	struct smhd *d = smhd_start(&opts);

	/* Let other uids reach the socket (the harness makes its directory 0700). */
	assert_int_equal(chmod(d->dir, 0711), 0);
	assert_int_equal(chmod(d->socket, 0666), 0);
	return d;
}

/* A connection, or -errno (in a child, where cmocka's asserts do not go). */
static int raw_connect(const struct smhd *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	memcpy(addr.sun_path, d->socket, strlen(d->socket) + 1);
	if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(s);
		return -errno;
	}
	return s;
}

static size_t pack(uint64_t id, bool hello)
{
	Smh__Hello h = SMH__HELLO__INIT;
	Smh__StatsRequest stats = SMH__STATS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	h.version = SMH_PROTOCOL_VERSION;
	h.client_name = "limits";
	req.id = id;
	if (hello) {
		req.body_case = SMH__REQUEST__BODY_HELLO;
		req.hello = &h;
	} else {
		req.body_case = SMH__REQUEST__BODY_STATS;
		req.stats = &stats;
	}
	return (size_t)wire_pack_request(&req, msg);
}

/*
 * The next datagram on @s, waited for up to HARNESS_WAIT_MS: its length, 0 at end of file, a
 * negative errno, or -ETIMEDOUT. An ECONNRESET first (smhd closed with our datagram unread)
 * is passed over: what it sent before is still there.
 */
static ssize_t recv_wait(int s)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	struct wire_fds fds;
	ssize_t n;

	for (int i = 0; i < 2; i++) {
		if (poll(&pfd, 1, HARNESS_WAIT_MS) != 1)
			return -ETIMEDOUT;
		n = wire_recv(s, msg, sizeof(msg), &fds, NULL);
		if (n >= 0)
			wire_fds_close(&fds);
		if (n != -ECONNRESET)
			break;
	}
	return n;
}

/* Says hello on @s and returns the answer's status (or a transport error, -ETIMEDOUT). */
static int hello_status(int s, char *why, size_t why_size)
{
	Smh__Response *resp;
	ssize_t n;
	int status;

	n = (ssize_t)pack(1, true);
	(void)wire_send(s, msg, (size_t)n, NULL, 0); /* -EPIPE if refused already: read why */
	n = recv_wait(s);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : (int)n;
	resp = wire_unpack_response(msg, (size_t)n);
	if (!resp || resp->id != 1) {
		wire_free_response(resp);
		return -EPROTO;
	}
	status = resp->status;
	if (why)
		snprintf(why, why_size, "%s", resp->message ? resp->message : "");
	wire_free_response(resp);
	return status;
}

/*
 * Runs @fn(@d, @arg) in a child as uid and gid @uid; the child's exit code is @fn's result.
 * With @ready, the parent waits until the child wrote to it, and returns the pipe's other end
 * (closing it lets the child exit); otherwise it waits for the child and asserts it passed.
 */
static pid_t run_as(uid_t uid, int (*fn)(const struct smhd *, int, int), const struct smhd *d,
		    int arg, int *releasep)
{
	int ready[2], release[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ret;

		close(ready[0]);
		close(release[1]);
		if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
			_exit(100);
		ret = fn(d, arg, ready[1]);
		if (write(ready[1], "x", 1) != 1)
			_exit(101);
		/* Until the parent lets it go (a byte, or its end closed: either way, done). */
		if (read(release[0], &c, 1) < 0)
			_exit(102);
		_exit(ret);
	}
	harness_track_child(pid);
	close(ready[1]);
	close(release[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	if (releasep) {
		*releasep = release[1];
	} else {
		close(release[1]);
		harness_assert_child_ok(pid);
	}
	return pid;
}

/* ---------------------------------------------------------------- refused, many */

/* @n connections that say nothing, kept open until released. */
static int open_silent(const struct smhd *d, int n, int ready)
{
	for (int i = 0; i < n; i++)
		if (raw_connect(d) < 0)
			return 1;
	return 0;
}

/*
 * 200 connections of a uid the policy refuses, at an fd limit of 128: an allowed client is
 * still served. The hello timeout is long: the refusals at accept (one uid's cap) are what
 * keeps fds free, not the timeout.
 */
static void test_refused_flood_low_fd_limit(void **state)
{
	static const char *const args[] = { "--allow-uid", "12345", "--hello-timeout", "600",
					    NULL };
	struct rlimit rl = { .rlim_cur = 128, .rlim_max = 128 };
	struct smhd *d;
	pid_t child;
	int release, s;

	if (!root_or_skip()) {
		skip();
		return;
	}
	d = start(args);
	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &rl, NULL), 0);
	child = run_as(NOBODY, open_silent, d, 200, &release);
	s = raw_connect(d);
	assert_true(s >= 0);
	assert_int_equal(hello_status(s, NULL, 0), 0);
	assert_true(smhd_count_fds(d) < 128);
	assert_true(smhd_count_log(d, (const char *const[]){ "Refusing client",
							     "max-connections-per-uid", NULL }) >=
		    1);
	close(s);
	close(release);
	harness_assert_child_ok(child);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- silent */

/* A connection that says nothing is closed after the hello timeout; a served one is not. */
static void test_silent_connection_closed(void **state)
{
	static const char *const args[] = { "--hello-timeout", "1", NULL };
	struct smhd *d = start(args);
	struct smh_client *c = harness_connect(d);
	int s = raw_connect(d);

	assert_true(s >= 0);
	if (recv_wait(s) != 0)
		fail_msg("smhd did not close a connection that said no hello");
	close(s);
	assert_int_equal(
		smhd_count_log(d, (const char *const[]){ "Dropping client",
							 "said no hello within 1 s", NULL }),
		1);
	/* The client that said hello long ago is served still. */
	assert_int_equal(harness_n_clients(c), 1);
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- per uid */

/* @n served connections, then one more, which must be refused with a clear message. */
static int over_the_cap(const struct smhd *d, int n, int ready)
{
	char why[256] = "";
	int s;

	for (int i = 0; i < n; i++) {
		s = raw_connect(d);
		if (s < 0 || hello_status(s, NULL, 0) != 0)
			return 1;
	}
	s = raw_connect(d);
	if (s < 0)
		return 2;
	if (hello_status(s, why, sizeof(why)) != -EMFILE)
		return 3;
	if (!strstr(why, "uid 65534 has 3 connections to smhd already") ||
	    !strstr(why, "max-connections-per-uid"))
		return 4;
	return 0;
}

static void test_per_uid_cap(void **state)
{
	static const char *const args[] = { "--max-connections-per-uid", "3", NULL };
	struct smh_client *c[4];
	struct smhd *d;
	pid_t child;
	int release;

	if (!root_or_skip()) {
		skip();
		return;
	}
	d = start(args);
	child = run_as(NOBODY, over_the_cap, d, 3, &release);
	/* Another uid (root, whom the cap does not count) is served, more than 3 times. */
	for (int i = 0; i < 4; i++)
		c[i] = harness_connect(d);
	assert_int_equal(harness_n_clients(c[0]), 4 + 3);
	close(release);
	harness_assert_child_ok(child);
	for (int i = 0; i < 4; i++)
		smh_disconnect(c[i]);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- the log */

/* @n connections that each break the protocol at once (a request before the hello). */
static int rude(const struct smhd *d, int n, int ready)
{
	size_t len = pack(1, false);

	for (int i = 0; i < n; i++) {
		int s = raw_connect(d);

		if (s < 0)
			return 1;
		(void)wire_send(s, msg, len, NULL, 0);
		close(s);
	}
	return 0;
}

/* 5000 refused connections of one uid make a bounded number of log lines (info level). */
static void test_refused_flood_log_bounded(void **state)
{
	static const char *const args[] = { "--allow-uid", "12345", "--log-level", "info", NULL };
	struct smh_client *c;
	struct smhd *d;
	int before, after;

	if (!root_or_skip()) {
		skip();
		return;
	}
	d = start(args);
	c = harness_connect(d);
	before = smhd_count_log(d, (const char *const[]){ "", NULL });
	run_as(NOBODY, rude, d, 5000, NULL);
	harness_wait_usage(c, 0, 1);
	after = smhd_count_log(d, (const char *const[]){ "", NULL });
	/* Per kind (refused, dropped, silent, fds) at most 3 lines in a minute. */
	if (after - before > 12) {
		smhd_dump_log(d);
		fail_msg("%d log lines for 5000 refused connections", after - before);
	}
	assert_true(smhd_count_log(d, (const char *const[]){ "not logged for a minute", NULL }) >=
			    1 ||
		    smhd_count_log(d, (const char *const[]){ "more like it", NULL }) >= 1);
	smh_disconnect(c);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_refused_flood_low_fd_limit, harness_teardown),
		cmocka_unit_test_teardown(test_silent_connection_closed, harness_teardown),
		cmocka_unit_test_teardown(test_per_uid_cap, harness_teardown),
		cmocka_unit_test_teardown(test_refused_flood_log_bounded, harness_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
