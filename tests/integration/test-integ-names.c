/* SPDX-License-Identifier: MIT */
/*
 * Buffer names (smh_alloc_named()) against the real smhd:
 * - a named buffer is listed with its name (library and `smhctl allocs`, table and JSON); an
 *   importer gets the name; `--name` selects by glob; a backslash is shown escaped;
 * - bad names are refused with -EINVAL and a reason, by the library before sending and by smhd
 *   itself when a client sends one anyway (raw protocol); nothing is allocated either way;
 * - `smhctl alloc --name` names its test buffer, and refuses a bad name with the reason;
 * - a name survives a SIGKILL and restart of smhd (the state file keeps it).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "smh/client.h"
#include "tests/integration/harness.h"

static unsigned char msg[SMH_MSG_MAX];

/* The names of the live allocations, in handle order, joined by ',' into @buf. */
static const char *listed_names(struct smh_client *c, char *buf, size_t size)
{
	struct smh_alloc_info *allocs;
	size_t n, len = 0;

	assert_int_equal(smh_list_allocs(c, &allocs, &n), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "",
					allocs[i].name);
	smh_allocs_free(allocs, n);
	return buf;
}

static void test_names_listed_and_imported(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d), *other = harness_connect(d);
	struct smh_buffer frame, plain, slash, imported;
	char names[256], name[SMH_NAME_MAX + 1];
	uint64_t token;

	assert_non_null(res);
	assert_int_equal(
		smh_alloc_named(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, "camera0/frame3", &frame), 0);
	assert_int_equal(smh_alloc_named(c, SMH_REG_ATTR_CACHEABLE, 64, 0, NULL, &plain), 0);
	assert_int_equal(smh_alloc_named(c, SMH_REG_ATTR_CACHEABLE, 64, 0, "dsp\\in", &slash), 0);
	assert_string_equal(listed_names(c, names, sizeof(names)), "camera0/frame3,,dsp\\in");

	/* The importer gets the name with the buffer; an unnamed one gives "". */
	assert_int_equal(smh_export(c, &frame, &token), 0);
	memset(name, 'x', sizeof(name));
	assert_int_equal(smh_import_named(other, token, &imported, name), 0);
	assert_string_equal(name, "camera0/frame3");
	assert_int_equal(imported.handle, frame.handle);
	assert_int_equal(smh_free(other, &imported), 0);
	assert_int_equal(smh_export(c, &plain, &token), 0);
	assert_int_equal(smh_import_named(other, token, &imported, name), 0);
	assert_string_equal(name, "");
	assert_int_equal(smh_free(other, &imported), 0);

	smhctl(res, d->socket, "allocs", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "  NAME\n");
	assert_contains(res->out, "  camera0/frame3\n");
	assert_contains(res->out, "  dsp\\x5cin\n"); /* escaped like a command name */
	smhctl(res, d->socket, "allocs", "--name", "camera*", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "1 of 3 allocations, 4 KiB\n");
	assert_lacks(res->out, "dsp");
	smhctl(res, d->socket, "allocs", "--name", "?*", "--json", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "\"name\": \"camera0/frame3\",");
	assert_contains(res->out, "\"name\": \"dsp\\\\in\",");
	assert_lacks(res->out, "\"name\": \"\","); /* "?*": the named ones only */
	smhctl(res, d->socket, "allocs", "--sort", "name", "--json", NULL);
	assert_status(res, 0);
	assert_true(strstr(res->out, "\"name\": \"\",") < strstr(res->out, "\"camera0/frame3\""));
	assert_true(strstr(res->out, "\"camera0/frame3\"") < strstr(res->out, "\"dsp\\\\in\""));

	assert_int_equal(smh_free(c, &frame), 0);
	assert_int_equal(smh_free(c, &plain), 0);
	assert_int_equal(smh_free(c, &slash), 0);
	smh_disconnect(other);
	smh_disconnect(c);
	smhd_stop(d);
	free(res);
}

/* The library refuses a bad name itself: -EINVAL, the reason, nothing sent or allocated. */
static void test_library_refuses(void **state)
{
	static const char *const bad[] = {
		"line\nbreak", "\033[2Jclear", "caf\xc3\xa9",
		"0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};
	static const char *const why[] = {
		"byte 4 is 0x0a",
		"byte 0 is 0x1b",
		"byte 3 is 0xc3",
		"at most 63 bytes; this one has 64",
	};
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b;
	char names[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(smh_alloc_named(c, SMH_REG_ATTR_CACHEABLE, 64, 0, bad[i], &b),
				 -EINVAL);
		assert_contains(smh_last_error(c), why[i]);
	}
	assert_int_equal(harness_used(c), 0);
	/* 63 bytes is the longest name. */
	assert_int_equal(smh_alloc_named(c, SMH_REG_ATTR_CACHEABLE, 64, 0, bad[3] + 1, &b), 0);
	assert_string_equal(smh_last_error(c), "");
	assert_string_equal(listed_names(c, names, sizeof(names)), bad[3] + 1);
	assert_int_equal(smh_free(c, &b), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- smhd checks too */

static int raw_hello(const struct smhd *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	Smh__Hello hello = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	ssize_t len;

	assert_true(s >= 0);
	memcpy(addr.sun_path, d->socket, strlen(d->socket) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	hello.version = SMH_PROTOCOL_VERSION;
	req.id = 1;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &hello;
	len = wire_pack_request(&req, msg);
	assert_int_equal(send(s, msg, (size_t)len, MSG_NOSIGNAL), len);
	len = recv(s, msg, sizeof(msg), 0);
	assert_true(len > 0);
	resp = wire_unpack_response(msg, (size_t)len);
	assert_non_null(resp);
	assert_int_equal(resp->status, 0);
	wire_free_response(resp);
	return s;
}

/* Sends an Alloc of 64 bytes named @name; returns the response (free it). */
static Smh__Response *raw_alloc(int s, uint64_t id, const char *name)
{
	Smh__AllocRequest alloc = SMH__ALLOC_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	Smh__Response *resp;
	ssize_t len;

	alloc.attr = SMH_REG_ATTR_CACHEABLE;
	alloc.size = 64;
	alloc.name = (char *)name;
	req.id = id;
	req.body_case = SMH__REQUEST__BODY_ALLOC;
	req.alloc = &alloc;
	len = wire_pack_request(&req, msg);
	assert_true(len > 0);
	assert_int_equal(send(s, msg, (size_t)len, MSG_NOSIGNAL), len);
	assert_int_equal(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
	len = recv(s, msg, sizeof(msg), MSG_CMSG_CLOEXEC);
	assert_true(len > 0);
	resp = wire_unpack_response(msg, (size_t)len);
	assert_non_null(resp);
	assert_int_equal(resp->id, id);
	return resp;
}

static void test_daemon_refuses(void **state)
{
	char long_name[300];
	struct smhd *d = smhd_start(NULL);
	struct smh_client *viewer = harness_connect(d);
	int s = raw_hello(d);
	Smh__Response *resp;

	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	resp = raw_alloc(s, 2, long_name);
	assert_int_equal(resp->status, -EINVAL);
	assert_string_equal(resp->message, "A buffer name is at most 63 bytes; this one has 299");
	wire_free_response(resp);
	resp = raw_alloc(s, 3, "tab\there");
	assert_int_equal(resp->status, -EINVAL);
	assert_string_equal(resp->message, "A buffer name is printable ASCII; byte 3 is 0x09");
	wire_free_response(resp);
	resp = raw_alloc(s, 4, "\xe2\x80\xae");
	assert_int_equal(resp->status, -EINVAL);
	wire_free_response(resp);
	assert_int_equal(harness_used(viewer), 0);
	/* The connection goes on: a good name is served. */
	resp = raw_alloc(s, 5, "ok");
	assert_int_equal(resp->status, 0);
	assert_string_equal(resp->buffer->name, "ok");
	wire_free_response(resp);
	close(s);
	smh_disconnect(viewer);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- smhctl alloc, restart */

static void test_smhctl_alloc_name(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(NULL);

	assert_non_null(res);
	smhctl(res, d->socket, "alloc", "--name", "probe/1", "4K", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "  name       probe/1\n");
	smhctl(res, d->socket, "alloc", "--name", "probe/1", "--json", "4K", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "\"name\": \"probe/1\",");
	smhctl(res, d->socket, "alloc", "--name", "bad\nname", "4K", NULL);
	assert_status(res, 1);
	assert_contains(res->err, "A buffer name is printable ASCII; byte 3 is 0x0a");
	smhctl(res, d->socket, "alloc", "4K", NULL);
	assert_status(res, 0);
	assert_lacks(res->out, "name");
	smhd_stop(d);
	free(res);
}

static void test_name_survives_restart(void **state)
{
	const struct smhd_options opts = { .backend = "memfd" };
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(&opts);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer named, plain;
	char names[128];

	assert_non_null(res);
	assert_int_equal(
		smh_alloc_named(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, "camera0/frame3", &named), 0);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &plain), 0);
	smhd_kill(d);
	smhd_restart(d, &opts);
	/* Restored from the state file before anyone resumed: smhctl sees the orphan's names. */
	smhctl(res, d->socket, "allocs", "--name", "camera0/*", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "  camera0/frame3\n");
	assert_contains(res->out, "1 of 2 allocations, 4 KiB\n");
	/* The owner's next call resumes its session: the buffers and the name are its own. */
	assert_string_equal(listed_names(c, names, sizeof(names)), "camera0/frame3,");
	assert_int_equal(smh_free(c, &named), 0);
	assert_int_equal(smh_free(c, &plain), 0);
	smh_disconnect(c);
	smhd_stop(d);
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_names_listed_and_imported, harness_teardown),
		cmocka_unit_test_teardown(test_library_refuses, harness_teardown),
		cmocka_unit_test_teardown(test_daemon_refuses, harness_teardown),
		cmocka_unit_test_teardown(test_smhctl_alloc_name, harness_teardown),
		cmocka_unit_test_teardown(test_name_survives_restart, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
