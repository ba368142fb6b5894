/* SPDX-License-Identifier: MIT */
/*
 * Refusals by kind (docs/metrics.md): each kind is provoked against the real smhd a known
 * number of times, then the counts are read through the library (smh_get_refusals()) and as
 * `smhctl metrics` prints them (smh_refusals_total{kind="..."}, checked by promtool when it is
 * installed). A kind not provoked stays 0 and is printed all the same. state_full (the state
 * file's file system full) is not provoked here: test-state covers the refusal itself.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Sends a hello of @version; returns the status of the reply (the connection is closed). */
static int raw_hello(const struct smhd *d, uint32_t version)
{
	Smh__Hello hello = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct pollfd pfd;
	Smh__Response *resp;
	int s = raw_connect(d), status;
	ssize_t len;

	hello.version = version;
	req.id = 1;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &hello;
	len = wire_pack_request(&req, msg);
	assert_int_equal(send(s, msg, (size_t)len, MSG_NOSIGNAL), len);
	pfd = (struct pollfd){ .fd = s, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
	len = recv(s, msg, sizeof(msg), 0);
	assert_true(len > 0);
	resp = wire_unpack_response(msg, (size_t)len);
	assert_non_null(resp);
	status = resp->status;
	wire_free_response(resp);
	close(s);
	return status;
}

/* Sends bytes that are no request: smhd drops the connection. */
static void raw_garbage(const struct smhd *d)
{
	static const unsigned char junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	struct pollfd pfd;
	int s = raw_connect(d);

	assert_int_equal(send(s, junk, sizeof(junk), MSG_NOSIGNAL), sizeof(junk));
	pfd = (struct pollfd){ .fd = s, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
	assert_true(recv(s, msg, sizeof(msg), 0) <= 0); /* hung up, nothing said */
	close(s);
}

/* A child as uid and gid 65534 connects: refused by --allow-uid. Exits 0 when it was. */
static void refused_uid(const struct smhd *d)
{
	pid_t pid;

	assert_int_equal(chmod(d->dir, 0711), 0);
	assert_int_equal(chmod(d->socket, 0666), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *c = NULL;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(1);
		_exit(smh_connect(d->socket, &c) == -EACCES ? 0 : 2);
	}
	harness_track_child(pid);
	harness_assert_child_ok(pid);
}

/* The count of @kind in @counts; fails when the daemon did not send the kind. */
static uint64_t count_of(const struct smh_refusal_count *counts, size_t n, const char *kind)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(counts[i].kind, kind) == 0)
			return counts[i].count;
	fail_msg("no refusal kind %s", kind);
	return 0;
}

static void promtool_check(const struct smhd *d, const char *text)
{
	struct run_result *res = malloc(sizeof(*res));
	char path[160];
	FILE *f;

	assert_non_null(res);
	snprintf(path, sizeof(path), "%s/metrics.prom", d->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	harness_run(res, (char *const[]){ "/bin/sh", "-c",
					  "command -v promtool >/dev/null || exit 77; "
					  "promtool check metrics < \"$0\"",
					  path, NULL });
	unlink(path);
	if (res->status == 77)
		printf("promtool not installed: the format is not checked by it\n");
	else if (res->status != 0)
		fail_msg("promtool check metrics: %s%s\non:\n%s", res->out, res->err, text);
	free(res);
}

/* What each kind is provoked with, and how many times. */
static const struct {
	const char *kind;
	uint64_t n;
} expected[] = {
	{ "nomem", 2 },    { "quota", 1 },      { "permission", 1 }, { "max_clients", 1 },
	{ "invalid", 3 },  { "not_found", 1 },  { "busy", 1 },       { "version", 1 },
	{ "protocol", 2 }, { "state_full", 0 }, { "other", 0 },
};

static void test_refusals_counted(void **state)
{
	static const char *const args[] = {
		"--max-buffers-per-client", "2", "--max-clients", "3", "--allow-uid", "0", NULL
	};
	const struct smhd_options opts = { .extra_args = args };
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(&opts);
	struct smh_client *a = harness_connect(d), *b = harness_connect(d), *c = NULL;
	struct smh_refusal_count *counts;
	struct smh_buffer x, y, z, imported;
	uint64_t token;
	char line[96];
	size_t n;

	assert_non_null(res);
	/* nomem (twice), then quota: a's third buffer. */
	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 1 << 30, 0, &z), -ENOMEM);
	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_NON_CACHEABLE, 1 << 20, 0, &z), -ENOMEM);
	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 64, 0, &x), 0);
	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 64, 0, &y), 0);
	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 64, 0, &z), -EDQUOT);
	/* invalid: size 0, an alignment that is no power of two, an attribute out of range. */
	assert_int_equal(smh_alloc(b, SMH_REG_ATTR_CACHEABLE, 0, 0, &z), -EINVAL);
	assert_int_equal(smh_alloc(b, SMH_REG_ATTR_CACHEABLE, 64, 48, &z), -EINVAL);
	assert_int_equal(smh_alloc(b, (enum smh_reg_attr)7, 64, 0, &z), -EINVAL);
	/* not_found, then busy: a shared buffer cannot be resized. */
	assert_int_equal(smh_import(b, UINT64_C(0x1234567887654321), &z), -ENOENT);
	assert_int_equal(smh_export(a, &x, &token), 0);
	assert_int_equal(smh_import(b, token, &imported), 0);
	assert_int_equal(smh_realloc(a, &x, 4096), -EBUSY);
	/* max_clients: a, b and this one are 3; the fourth is refused. */
	{
		struct smh_client *third = harness_connect(d);

		assert_int_equal(smh_connect(d->socket, &c), -EMFILE);
		assert_null(c);
		smh_disconnect(third);
	}
	/* Each connection below must find a place: the ones before have gone (a and b are left). */
	harness_wait_usage(a, 128, 2);
	refused_uid(d);
	assert_int_equal(raw_hello(d, 99), -EPROTONOSUPPORT);
	harness_wait_usage(a, 128, 2);
	raw_garbage(d);
	harness_wait_usage(a, 128, 2);
	raw_garbage(d);
	harness_wait_usage(a, 128, 2);

	assert_int_equal(smh_get_refusals(a, &counts, &n), 0);
	assert_int_equal(n, sizeof(expected) / sizeof(expected[0]));
	for (size_t i = 0; i < n; i++)
		if (count_of(counts, n, expected[i].kind) != expected[i].n)
			fail_msg("%s: %llu refusals, expected %llu", expected[i].kind,
				 (unsigned long long)count_of(counts, n, expected[i].kind),
				 (unsigned long long)expected[i].n);
	free(counts);

	smhctl(res, d->socket, "metrics", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "# TYPE smh_refusals_total counter\n");
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		snprintf(line, sizeof(line), "smh_refusals_total{kind=\"%s\"} %llu\n",
			 expected[i].kind, (unsigned long long)expected[i].n);
		assert_contains(res->out, line);
	}
	promtool_check(d, res->out);

	assert_int_equal(smh_free(b, &imported), 0);
	assert_int_equal(smh_free(a, &x), 0);
	assert_int_equal(smh_free(a, &y), 0);
	smh_disconnect(b);
	smh_disconnect(a);
	smhd_stop(d);
	free(res);
}

int main(void)
{
	if (geteuid() != 0) {
		/* permission needs a child of another uid: only root can make one. */
		fprintf(stderr, "skipped: provoking a permission refusal needs root\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_refusals_counted, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
