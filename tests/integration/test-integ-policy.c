/* SPDX-License-Identifier: MIT */
/*
 * The access policy and quotas (daemon/policy.c) on the real daemon: allow lists (run as root,
 * the tests start clients as other uids with fork + setuid; not root, they are skipped),
 * max-clients, the byte and buffer quotas per connection and per uid at their exact
 * boundary, imports paid by the importer, refusals logged once, and the configuration file.
 *
 * The example device tree's regions are small (cacheable 4 KiB and 12 KiB, non-cacheable
 * 8 KiB): the quotas are set below the free memory, so that a refusal is the quota's, not the
 * pool's.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

#define NC SMH_REG_ATTR_NON_CACHEABLE

static char last_log[512];

static void on_log(enum smh_log_level level, const char *msg, void *data)
{
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static struct smhd *start(const char *const *args)
{
	struct smhd_options opts = { .extra_args = args };

	return smhd_start(&opts);
}

static int count_log(const struct smhd *d, const char *a, const char *b)
{
	const char *needles[] = { a, b, NULL };

	return smhd_count_log(d, needles);
}

/* Refuses @c's allocation with -EDQUOT and a message containing @needle. */
static void assert_over_quota(struct smh_client *c, int err, const char *needle)
{
	if (err != -EDQUOT)
		fail_msg("expected EDQUOT, got %d (%s)", err, smh_last_error(c));
	assert_contains(smh_last_error(c), needle);
}

/* ---------------------------------------------------------------- who may connect */

static bool root_or_skip(void)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "skipped: running clients as other uids needs root\n");
	return false;
}

/* Lets other uids reach the daemon's socket (the harness makes its directory 0700). */
static void open_socket_to_all(const struct smhd *d)
{
	assert_int_equal(chmod(d->dir, 0711), 0);
	assert_int_equal(chmod(d->socket, 0666), 0);
}

/*
 * A child that takes @uid, @gid and the supplementary @groups, connects, and checks that
 * smh_connect() returns @expect (and, refused, that the library logged @why; served, that it
 * can allocate). Its exit code names the failed check.
 */
static void connect_as(const struct smhd *d, uid_t uid, gid_t gid, const gid_t *groups,
		       size_t n_groups, int expect, const char *why)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *c = NULL;
		struct smh_buffer b;
		int err;

		if (setgroups(n_groups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(1);
		smh_set_log_handler(on_log, NULL);
		err = smh_connect(d->socket, &c);
		if (err != expect)
			_exit(err == 0 ? 2 : 3);
		if (err < 0)
			_exit(strstr(last_log, why) ? 0 : 4);
		if (smh_alloc(c, NC, 64, 0, &b) < 0 || smh_free(c, &b) < 0)
			_exit(5);
		smh_disconnect(c);
		_exit(0);
	}
	harness_track_child(pid);
	harness_assert_child_ok(pid);
}

static void test_allow_uid(void **state)
{
	static const char *const args[] = { "--allow-uid", "12345", NULL };
	struct smhd *d;
	struct smh_client *c;

	if (!root_or_skip()) {
		skip();
		return;
	}
	d = start(args);
	open_socket_to_all(d);
	c = harness_connect(d); /* root always may */
	connect_as(d, 12345, 12345, NULL, 0, 0, NULL);
	connect_as(d, 65534, 65534, NULL, 0, -EACCES, "uid 65534 (gid 65534) may not use smhd");
	connect_as(d, 65534, 65534, NULL, 0, -EACCES,
		   "neither it nor its groups are in allow-uid or allow-gid");
	/* The refused connections are closed and not counted; one warning for both. */
	harness_wait_usage(c, 0, 1);
	assert_int_equal(count_log(d, "warning: Refusing client", "uid 65534"), 1);
	assert_int_equal(count_log(d, "Refusing client", "uid 65534"), 2);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_allow_gid(void **state)
{
	static const char *const args[] = { "--allow-gid", "4242,4343", NULL };
	const gid_t supplementary[] = { 100, 4343 }, others[] = { 100 };
	struct smhd *d;

	if (!root_or_skip()) {
		skip();
		return;
	}
	d = start(args);
	open_socket_to_all(d);
	connect_as(d, 65534, 4242, NULL, 0, 0, NULL);           /* primary group */
	connect_as(d, 65534, 65534, supplementary, 2, 0, NULL); /* supplementary group */
	connect_as(d, 65534, 65534, others, 1, -EACCES, "may not use smhd");
	smhd_stop(d);
}

/* ---------------------------------------------------------------- max-clients */

static void test_max_clients(void **state)
{
	static const char *const args[] = { "--max-clients", "3", NULL };
	struct smhd *d = start(args);
	struct smh_client *c[3], *extra = NULL;
	struct smh_buffer b;

	for (int i = 0; i < 3; i++)
		c[i] = harness_connect(d);
	smh_set_log_handler(on_log, NULL);
	assert_int_equal(smh_connect(d->socket, &extra), -EMFILE);
	assert_null(extra);
	assert_contains(last_log, "smhd serves at most 3 clients (max-clients)");
	assert_int_equal(smh_connect(d->socket, &extra), -EMFILE);
	smh_set_log_handler(NULL, NULL);
	{ /* smhctl says why */
		char *argv[] = { (char *)harness_env("SMH_SMHCTL"), "--socket", d->socket, "stats",
				 NULL };
		struct run_result *res = malloc(sizeof(*res));

		assert_non_null(res);
		harness_run(res, argv);
		assert_int_equal(res->status, 1);
		assert_contains(res->err, "Too many open files: smhd serves at most 3 clients");
		free(res);
	}
	/* The first three are unaffected. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(smh_alloc(c[i], NC, 64, 0, &b), 0);
		assert_int_equal(smh_free(c[i], &b), 0);
	}
	/* One leaves: there is room for one more, once the daemon has seen it leave. */
	smh_disconnect(c[0]);
	harness_wait_usage(c[1], 0, 2);
	assert_int_equal(smh_connect(d->socket, &c[0]), 0);
	assert_int_equal(count_log(d, "warning: Refusing client", "max-clients"), 1);
	for (int i = 0; i < 3; i++)
		smh_disconnect(c[i]);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- quotas */

static void test_bytes_per_client(void **state)
{
	static const char *const args[] = { "--max-bytes-per-client", "4K", NULL };
	struct smhd *d = start(args);
	struct smh_client *c = harness_connect(d), *other = harness_connect(d);
	struct smh_buffer a, b, x;

	/* Exactly the limit is allowed; one byte more (a granule, 64 B) is not. */
	assert_int_equal(smh_alloc(c, NC, 2048, 0, &a), 0);
	assert_int_equal(smh_alloc(c, NC, 2048, 0, &b), 0);
	assert_over_quota(c, smh_alloc(c, NC, 1, 0, &x),
			  "max-bytes-per-client is 4 KiB; this connection holds 4 KiB and asks "
			  "for 64 B more");
	assert_int_equal(harness_used(c), 4096);
	/* Growing is charged the difference; a refused realloc leaves the buffer as it was. */
	assert_int_equal(smh_free(c, &b), 0);
	assert_int_equal(smh_map(&a), 0);
	pattern_fill(a.addr, 2048, 7);
	assert_over_quota(c, smh_realloc(c, &a, 4097), "holds 2 KiB and asks for 2112 B more");
	assert_int_equal(a.size, 2048);
	assert_true(pattern_check(a.addr, 2048, 7));
	assert_int_equal(smh_realloc(c, &a, 4096), 0);
	assert_int_equal(a.size, 4096);
	/* Another connection has a quota of its own. */
	assert_int_equal(smh_alloc(other, SMH_REG_ATTR_CACHEABLE, 4096, 0, &x), 0);
	assert_int_equal(smh_free(other, &x), 0);
	/* Freeing makes room again. */
	assert_int_equal(smh_free(c, &a), 0);
	assert_int_equal(smh_alloc(c, NC, 4096, 0, &a), 0);
	assert_int_equal(smh_free(c, &a), 0);
	smh_disconnect(other);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_buffers_per_client(void **state)
{
	static const char *const args[] = { "--max-buffers-per-client", "3", NULL };
	struct smhd *d = start(args);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b[4];

	for (int i = 0; i < 3; i++)
		assert_int_equal(smh_alloc(c, NC, 64, 0, &b[i]), 0);
	assert_over_quota(c, smh_alloc(c, NC, 64, 0, &b[3]),
			  "max-buffers-per-client is 3; this connection holds 3 buffers and asks "
			  "for 1 more");
	assert_int_equal(harness_used(c), 3 * 64);
	/* The connection stays usable. */
	assert_int_equal(smh_realloc(c, &b[0], 128), 0);
	assert_int_equal(smh_free(c, &b[1]), 0);
	assert_int_equal(smh_alloc(c, NC, 64, 0, &b[1]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(smh_free(c, &b[i]), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

/* Both connections are the test's own: one uid. */
static void test_per_uid(void **state)
{
	static const char *const args[] = { "--max-bytes-per-uid", "6K", "--max-buffers-per-uid",
					    "3", NULL };
	struct smhd *d = start(args);
	struct smh_client *c1 = harness_connect(d), *c2 = harness_connect(d);
	struct smh_buffer a, b, x;
	char uid_msg[64];

	snprintf(uid_msg, sizeof(uid_msg), "max-bytes-per-uid is 6 KiB for uid %u",
		 (unsigned)getuid());
	assert_int_equal(smh_alloc(c1, SMH_REG_ATTR_CACHEABLE, 4096, 0, &a), 0);
	assert_int_equal(smh_alloc(c2, NC, 2048, 0, &b), 0);
	assert_over_quota(c2, smh_alloc(c2, NC, 64, 0, &x), uid_msg);
	assert_contains(smh_last_error(c2), "its connections hold 6 KiB");
	assert_over_quota(c1, smh_alloc(c1, NC, 64, 0, &x), uid_msg);
	/* The other connection's free makes room for this one. */
	assert_int_equal(smh_free(c2, &b), 0);
	assert_int_equal(smh_alloc(c1, NC, 1024, 0, &x), 0);
	assert_int_equal(smh_alloc(c2, NC, 64, 0, &b), 0);
	assert_over_quota(c2, smh_alloc(c2, NC, 64, 0, &b), "max-buffers-per-uid is 3 for uid");
	assert_int_equal(smh_free(c1, &a), 0);
	assert_int_equal(smh_free(c1, &x), 0);
	assert_int_equal(smh_free(c2, &b), 0);
	smh_disconnect(c1);
	smh_disconnect(c2);
	smhd_stop(d);
}

static void test_import_paid_by_importer(void **state)
{
	static const char *const args[] = { "--max-buffers-per-client", "1", NULL };
	struct smhd *d = start(args);
	struct smh_client *owner = harness_connect(d), *importer = harness_connect(d);
	struct smh_buffer a, b, x;
	uint64_t token;

	assert_int_equal(smh_alloc(owner, NC, 1024, 0, &a), 0);
	assert_int_equal(smh_export(owner, &a, &token), 0);
	assert_int_equal(smh_alloc(importer, NC, 64, 0, &b), 0);
	assert_over_quota(importer, smh_import(importer, token, &x),
			  "max-buffers-per-client is 1; this connection holds 1 buffers");
	assert_true(harness_find_alloc(owner, a.handle, &(struct alloc_view){ 0 }));
	assert_int_equal(smh_free(importer, &b), 0);
	assert_int_equal(smh_import(importer, token, &x), 0);
	/* Importing again would be a second hold: refused, as is the owner's import. */
	assert_over_quota(importer, smh_import(importer, token, &b), "holds 1 buffers");
	assert_over_quota(owner, smh_import(owner, token, &b), "holds 1 buffers");
	assert_int_equal(smh_free(importer, &x), 0);
	assert_int_equal(smh_free(owner, &a), 0);
	smh_disconnect(importer);
	smh_disconnect(owner);
	smhd_stop(d);
}

/* 100 refusals on a connection make one warning; another connection's make one more. */
static void test_refusals_logged_once(void **state)
{
	static const char *const args[] = { "--max-buffers-per-client", "1", NULL };
	struct smhd *d = start(args);
	struct smh_client *c = harness_connect(d), *other;
	struct smh_buffer b, x;

	assert_int_equal(smh_alloc(c, NC, 64, 0, &b), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(smh_alloc(c, NC, 64, 0, &x), -EDQUOT);
	assert_int_equal(harness_n_clients(c), 1); /* a round trip: the log is written */
	assert_int_equal(count_log(d, "warning:", "max-buffers-per-client is 1"), 1);
	other = harness_connect(d);
	assert_int_equal(smh_alloc(other, NC, 64, 0, &x), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(smh_alloc(other, NC, 64, 0, &b), -EDQUOT);
	assert_int_equal(harness_n_clients(other), 2);
	assert_int_equal(count_log(d, "warning:", "max-buffers-per-client is 1"), 2);
	smh_disconnect(other);
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- the configuration file */

/* Writes @text to a new file under /tmp; @path gets its name. */
static void write_conf(char *path, size_t size, const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, size, "/tmp/smh-policy-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_config_file(void **state)
{
	char path[64], uid_section[32], text[512];
	const char *args[] = { "--config", path, "--max-buffers-per-client", "3", NULL };
	struct smhd *d;
	struct smh_client *c;
	struct smh_buffer b[4];

	snprintf(uid_section, sizeof(uid_section), "[uid %u]", (unsigned)getuid());
	snprintf(text, sizeof(text),
		 "# smhd.conf\n"
		 "max-clients = 8   # a comment after a value\n"
		 "max-buffers-per-client = 1\n"
		 "max-bytes-per-client = 1M\n"
		 "\n"
		 "%s\n"
		 "max-bytes-per-client = 256\n",
		 uid_section);
	write_conf(path, sizeof(path), text);
	d = start(args);
	c = harness_connect(d);
	/* The option (3 buffers) overrides the file (1); the [uid] section overrides 1M. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(smh_alloc(c, NC, 64, 0, &b[i]), 0);
	assert_over_quota(c, smh_alloc(c, NC, 64, 0, &b[3]), "max-buffers-per-client is 3");
	assert_int_equal(smh_free(c, &b[2]), 0);
	assert_over_quota(c, smh_alloc(c, NC, 129, 0, &b[2]), "max-bytes-per-client is 256 B");
	assert_int_equal(smh_alloc(c, NC, 128, 0, &b[2]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(smh_free(c, &b[i]), 0);
	assert_int_equal(count_log(d, "Access policy:", "max-clients 8"), 1);
	smh_disconnect(c);
	smhd_stop(d);
	unlink(path);
}

static void run_smhd_conf(struct run_result *res, const char *path)
{
	char *argv[] = { (char *)harness_env("SMH_SMHD"),
			 "--dtb",
			 (char *)harness_env("SMH_EXAMPLE_DTB"),
			 "--backend",
			 "memfd",
			 "--socket",
			 "/tmp/smh-policy-never.sock",
			 "--config",
			 (char *)path,
			 NULL };

	harness_run(res, argv);
}

/* Each bad file makes smhd exit 2 at start, naming the file and the line. */
static void test_config_errors(void **state)
{
	static const struct {
		const char *text;
		const char *message; /* after "FILE:" */
	} cases[] = {
		{ "max-clients = 2\nmax-clinets = 3\n", "2: unknown key 'max-clinets'" },
		{ "# ok\n\nmax-clients 3\n", "3: expected 'key = value'" },
		{ "max-clients = many\n", "1: max-clients: 'many' is not a number" },
		{ "max-bytes-per-uid = 4Q\n", "1: max-bytes-per-uid: '4Q' is not a size" },
		{ "allow-uid = root, no-such-user-here\n", "1: allow-uid: unknown user" },
		{ "allow-gid =\n", "1: allow-gid has no value" },
		{ "[uid 0]\nmax-clients = 1\n", "2: max-clients cannot be set in a [uid] section" },
		{ "[uid 0]\n[uid root]\n", "2: a second section for uid 0" },
		{ "[gid 0]\n", "1: unknown section [gid 0]" },
		{ "[uid 0\n", "1: a section header without its ']'" },
	};
	struct run_result *res = malloc(sizeof(*res));
	char path[64], expect[160];

	assert_non_null(res);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_conf(path, sizeof(path), cases[i].text);
		run_smhd_conf(res, path);
		unlink(path);
		if (res->status != 2)
			fail_msg("case %zu: exit status %d, stderr:\n%s", i, res->status, res->err);
		snprintf(expect, sizeof(expect), "%s:%s", path, cases[i].message);
		assert_contains(res->err, expect);
	}
	/* A missing file given explicitly is an error too; a missing default file is not. */
	run_smhd_conf(res, "/nonexistent/smhd.conf");
	assert_int_equal(res->status, 2);
	assert_contains(res->err, "/nonexistent/smhd.conf: No such file or directory");
	free(res);
}

/*
 * An alignment is charged: a 64-byte buffer aligned to 4 KiB takes a 4 KiB block's worth of
 * the region's contiguity, so it costs 4 KiB. Charged 64 bytes, an 8 KiB quota would let one
 * uid cut every 4 KiB block of the example's cacheable regions, and another client's 4 KiB
 * allocation would fail with ENOMEM.
 */
static void test_alignment_charged(void **state)
{
	static const char *const args[] = { "--max-bytes-per-uid", "8K", NULL };
	struct smhd *d = start(args);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b[3];

	for (int i = 0; i < 2; i++)
		assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 64, 4096, &b[i]), 0);
	assert_over_quota(c, smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 64, 4096, &b[2]),
			  "its connections hold 8 KiB and this one asks for 4 KiB more");
	/* Unaligned, the granule is what it costs. */
	assert_over_quota(c, smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 64, 0, &b[2]), "asks for 64 B");
	assert_int_equal(smh_free(c, &b[1]), 0);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 64, 0, &b[1]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(smh_free(c, &b[i]), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

/*
 * Without any option, a connection holds at most 4096 buffers (each costs the daemon memory
 * and the state file records); imports count, so one buffer imported again and again reaches
 * the cap in the example's small regions.
 */
static void test_default_buffer_cap(void **state)
{
	struct smhd *d = start(NULL);
	struct smh_client *owner = harness_connect(d), *c = harness_connect(d);
	struct smh_buffer buf, imp;
	uint64_t token;
	int n = 0, ret;

	assert_int_equal(smh_alloc(owner, SMH_REG_ATTR_CACHEABLE, 64, 0, &buf), 0);
	assert_int_equal(smh_export(owner, &buf, &token), 0);
	while (n < 5000 && (ret = smh_import(c, token, &imp)) == 0)
		n++;
	assert_int_equal(n, 4096);
	assert_over_quota(c, ret, "max-buffers-per-client is 4096");
	smh_disconnect(c);
	smh_disconnect(owner);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_allow_uid, harness_teardown),
		cmocka_unit_test_teardown(test_allow_gid, harness_teardown),
		cmocka_unit_test_teardown(test_max_clients, harness_teardown),
		cmocka_unit_test_teardown(test_bytes_per_client, harness_teardown),
		cmocka_unit_test_teardown(test_buffers_per_client, harness_teardown),
		cmocka_unit_test_teardown(test_per_uid, harness_teardown),
		cmocka_unit_test_teardown(test_import_paid_by_importer, harness_teardown),
		cmocka_unit_test_teardown(test_refusals_logged_once, harness_teardown),
		cmocka_unit_test_teardown(test_config_file, harness_teardown),
		cmocka_unit_test_teardown(test_config_errors, harness_teardown),
		cmocka_unit_test_teardown(test_alignment_charged, harness_teardown),
		cmocka_unit_test_teardown(test_default_buffer_cap, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
