/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients on raw sockets, speaking (or not) the protocol of proto/smh.proto through
 * proto/wire.h: garbage, an oversized datagram, a request before the hello, an unknown
 * protocol version, fds sent unasked (the client is dropped, or the kernel refuses them
 * already), more fds than a datagram may carry, clients that vanish
 * at once or in the middle of a request, a client that never reads its replies.
 *
 * Each is dropped (or answered) as the protocol says, and none may hurt anyone else: a
 * legitimate client connected before them keeps its buffer and its service, and the daemon
 * ends with exactly the fds it had before they came.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "smh/client.h"
#include "tests/integration/harness.h"

static unsigned char msg[SMH_MSG_MAX];

static int raw_connect(const struct smhd *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	memcpy(addr.sun_path, d->socket, strlen(d->socket) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return s;
}

/*
 * Sends @len bytes as one datagram with @n_fds fds attached. Returns 0, or -EPERM when the
 * kernel refuses fds to the receiver (SO_PASSRIGHTS off, Linux 6.16); fails on anything else.
 */
static int raw_send(int s, const void *buf, size_t len, const int *fds, size_t n_fds)
{
	int ret = 0;

	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	char *control = NULL;

	if (n_fds > 0) {
		struct cmsghdr *cmsg;

		control = calloc(1, CMSG_SPACE(n_fds * sizeof(int)));
		assert_non_null(control);
		m.msg_control = control;
		m.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&m);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, n_fds * sizeof(int));
	}
	if (sendmsg(s, &m, MSG_NOSIGNAL) != (ssize_t)len) {
		if (errno != EPERM || n_fds == 0)
			fail_msg("sendmsg of %zu bytes with %zu fds: %s", len, n_fds,
				 strerror(errno));
		ret = -EPERM;
	}
	free(control);
	return ret;
}

static int send_request(int s, Smh__Request *req, const int *fds, size_t n_fds)
{
	ssize_t len = wire_pack_request(req, msg);

	assert_true(len > 0);
	return raw_send(s, msg, (size_t)len, fds, n_fds);
}

static int send_hello(int s, uint32_t version, const int *fds, size_t n_fds)
{
	Smh__Hello hello = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	hello.version = version;
	hello.client_name = "hostile";
	req.id = 1;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return send_request(s, &req, fds, n_fds);
}

static int send_stats(int s, uint64_t id, const int *fds, size_t n_fds)
{
	Smh__StatsRequest stats = SMH__STATS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	req.id = id;
	req.body_case = SMH__REQUEST__BODY_STATS;
	req.stats = &stats;
	return send_request(s, &req, fds, n_fds);
}

/* Waits (bounded) for one datagram: its length, 0 at end of file, or a negative errno. */
static ssize_t recv_wait(int s, size_t *n_fdsp)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	struct wire_fds fds;
	ssize_t n;

	if (poll(&pfd, 1, HARNESS_WAIT_MS) != 1)
		fail_msg("no reply and no hang-up from smhd");
	n = wire_recv(s, msg, sizeof(msg), &fds, NULL);
	if (n_fdsp)
		*n_fdsp = n >= 0 ? fds.n : 0;
	if (n >= 0)
		wire_fds_close(&fds);
	return n;
}

static Smh__Response *recv_response(int s, uint64_t id)
{
	ssize_t n = recv_wait(s, NULL);
	Smh__Response *resp;

	if (n <= 0)
		fail_msg("expected a response, got %s", n == 0 ? "end of file" : strerror((int)-n));
	resp = wire_unpack_response(msg, (size_t)n);
	assert_non_null(resp);
	assert_int_equal(resp->id, id);
	return resp;
}

/* The daemon hangs up without a word. Closes @s. */
static void expect_dropped(int s)
{
	ssize_t n = recv_wait(s, NULL);

	if (n > 0)
		fail_msg("expected the connection dropped, got a %zd-byte datagram", n);
	assert_true(n == 0 || n == -ECONNRESET);
	close(s);
}

/* A connection past a successful hello. */
static int hello_done(const struct smhd *d)
{
	int s = raw_connect(d);
	Smh__Response *resp;

	send_hello(s, SMH_PROTOCOL_VERSION, NULL, 0);
	resp = recv_response(s, 1);
	assert_int_equal(resp->status, 0);
	assert_int_equal(resp->body_case, SMH__RESPONSE__BODY_HELLO);
	wire_free_response(resp);
	return s;
}

/* ---------------------------------------------------------------- the hostile ones */

static void garbage(const struct smhd *d)
{
	unsigned char junk[512];
	uint32_t x = 0x12345678;
	int s;

	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		junk[i] = (unsigned char)x;
	}
	/* The premise: these bytes are not a request. */
	assert_null(wire_unpack_request(junk, sizeof(junk)));
	s = raw_connect(d);
	raw_send(s, junk, sizeof(junk), NULL, 0);
	expect_dropped(s);
	s = hello_done(d);
	raw_send(s, junk, sizeof(junk), NULL, 0);
	expect_dropped(s);
}

static void oversized(const struct smhd *d)
{
	size_t len = 70000;
	unsigned char *big = malloc(len);
	int s = hello_done(d);

	assert_non_null(big);
	memset(big, 0x08, len);
	raw_send(s, big, len, NULL, 0);
	free(big);
	expect_dropped(s);
}

static void request_before_hello(const struct smhd *d)
{
	int s = raw_connect(d);

	send_stats(s, 7, NULL, 0);
	expect_dropped(s);
}

static void unknown_version(const struct smhd *d)
{
	int s = raw_connect(d);
	Smh__Response *resp;

	send_hello(s, 99, NULL, 0);
	resp = recv_response(s, 1);
	assert_int_equal(resp->status, -EPROTONOSUPPORT);
	assert_int_not_equal(resp->body_case, SMH__RESPONSE__BODY_HELLO);
	assert_non_null(resp->message);
	assert_contains(resp->message, "99");
	wire_free_response(resp);
	expect_dropped(s);
}

/*
 * fds sent unasked, with the hello or after it: smhd takes none (the kernel refuses them at
 * the sender where it offers SO_PASSRIGHTS; elsewhere smhd drops the sender, and the kernel
 * releases the fds), and its fd count comes back to @baseline.
 */
static void unasked_fds(const struct smhd *d, int baseline)
{
	int fds[3], s = raw_connect(d);

	for (int i = 0; i < 3; i++) {
		fds[i] = memfd_create("smh-hostile-three", MFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	if (send_hello(s, SMH_PROTOCOL_VERSION, fds, 3) == 0)
		expect_dropped(s);
	else
		close(s);
	s = hello_done(d);
	if (send_stats(s, 2, fds, 1) == 0)
		expect_dropped(s);
	else
		close(s);
	assert_false(smhd_has_fd_to(d, "smh-hostile-three"));
	smhd_wait_fds(d, baseline);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

static void too_many_fds(const struct smhd *d)
{
	int fds[250], s = hello_done(d);

	fds[0] = memfd_create("smh-hostile-many", MFD_CLOEXEC);
	assert_true(fds[0] >= 0);
	for (size_t i = 1; i < 250; i++)
		fds[i] = fds[0];
	if (send_stats(s, 2, fds, 250) == 0)
		expect_dropped(s);
	else
		close(s);
	close(fds[0]);
	assert_false(smhd_has_fd_to(d, "smh-hostile-many"));
}

static void hang_ups(const struct smhd *d)
{
	Smh__AllocRequest alloc = SMH__ALLOC_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	int s;

	for (int i = 0; i < 20; i++)
		close(raw_connect(d));
	/* Mid-request: an allocation asked for, the connection closed before the reply. */
	for (int i = 0; i < 5; i++) {
		s = hello_done(d);
		alloc.attr = SMH_REG_ATTR_CACHEABLE;
		alloc.size = 512;
		req.id = 2;
		req.body_case = SMH__REQUEST__BODY_ALLOC;
		req.alloc = &alloc;
		send_request(s, &req, NULL, 0);
		close(s);
	}
}

/*
 * A client that sends and never reads: the daemon parks one reply and stops reading it, while
 * @legit is served all along.
 */
static void never_reads(const struct smhd *d, struct smh_client *legit)
{
	int s = hello_done(d);
	int n = 0;

	assert_int_equal(fcntl(s, F_SETFL, O_NONBLOCK), 0);
	for (uint64_t id = 10; n < 5000; id++, n++) {
		Smh__StatsRequest stats = SMH__STATS_REQUEST__INIT;
		Smh__Request req = SMH__REQUEST__INIT;
		ssize_t len;

		req.id = id;
		req.body_case = SMH__REQUEST__BODY_STATS;
		req.stats = &stats;
		len = wire_pack_request(&req, msg);
		if (send(s, msg, (size_t)len, MSG_NOSIGNAL) < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
	}
	assert_true(n < 5000);
	assert_int_equal(harness_n_clients(legit), 2);
	close(s);
}

static void test_hostile_clients(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *legit = harness_connect(d);
	struct smh_buffer buf, more;
	struct alloc_view v;
	int baseline;

	assert_int_equal(smh_alloc(legit, SMH_REG_ATTR_NON_CACHEABLE, 1024, 0, &buf), 0);
	assert_int_equal(smh_map(&buf), 0);
	pattern_fill(buf.addr, 1024, 60);
	harness_wait_usage(legit, 1024, 1);
	baseline = smhd_settled_fds(d, legit);

	garbage(d);
	oversized(d);
	request_before_hello(d);
	unknown_version(d);
	unasked_fds(d, baseline);
	too_many_fds(d);
	hang_ups(d);
	never_reads(d, legit);

	assert_true(smhd_alive(d));
	harness_wait_usage(legit, 1024, 1);
	smhd_wait_fds(d, baseline);
	assert_true(pattern_check(buf.addr, 1024, 60));
	assert_true(harness_find_alloc(legit, buf.handle, &v));
	assert_int_equal(v.n_holders, 1);
	assert_int_equal(v.holders[0], smh_client_id(legit));
	assert_int_equal(smh_alloc(legit, SMH_REG_ATTR_CACHEABLE, 2048, 0, &more), 0);
	assert_int_equal(smh_map(&more), 0);
	assert_true(all_zero(more.addr, 2048));
	assert_int_equal(smh_free(legit, &more), 0);
	assert_int_equal(smh_free(legit, &buf), 0);
	assert_int_equal(harness_used(legit), 0);
	smh_disconnect(legit);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hostile_clients, harness_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
