/* SPDX-License-Identifier: MIT */
/*
 * The programs as users run them: `smhd --check` and `smhctl dt` on the example, on every
 * good fixture and on every bad one (each bad fixture names its offending node "culprit@..."),
 * plus usage errors. Exit codes: 0 valid, 1 invalid or unreadable, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

struct result {
	int status; /* exit code */
	char out[16384];
	char err[16384];
};

static void slurp(FILE *f, char *buf, size_t size)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Runs @argv (NULL-terminated) with stdout and stderr captured. */
static void run(struct result *res, char *const argv[])
{
	FILE *out = tmpfile(), *err = tmpfile();
	int wstatus;
	pid_t pid;

	assert_non_null(out);
	assert_non_null(err);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fileno(out), STDOUT_FILENO);
		dup2(fileno(err), STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	if (!WIFEXITED(wstatus))
		fail_msg("%s died with signal %d", argv[0], WTERMSIG(wstatus));
	res->status = WEXITSTATUS(wstatus);
	slurp(out, res->out, sizeof(res->out));
	slurp(err, res->err, sizeof(res->err));
}

static char *env(const char *name)
{
	char *v = getenv(name);

	assert_non_null(v);
	return v;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

/* Paths of the fixtures named PREFIX*.dtb, sorted; returns the count. */
static size_t fixtures(const char *prefix, char paths[][512], size_t max)
{
	const char *dir = env("SMH_TEST_DTB_DIR");
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	size_t count = 0;

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		size_t len = strlen(name);

		if (strncmp(name, prefix, strlen(prefix)) == 0 && len > 4 &&
		    strcmp(name + len - 4, ".dtb") == 0) {
			assert_true(count < max);
			snprintf(paths[count++], 512, "%s/%s", dir, name);
		}
		free(list[i]);
	}
	free(list);
	return count;
}

static void test_check_example(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *argv[] = { env("SMH_SMHD"), "--check", "--dtb", env("SMH_EXAMPLE_DTB"), NULL };
	static const char *const want[] = {
		"res0", "cacheable",     "0x42000000-0x42000fff", "4 KiB",
		"res1", "non-cacheable", "0x43000000-0x43001fff", "8 KiB",
		"res2", "cacheable",     "0x44000000-0x44002fff", "12 KiB",
	};
	const char *p;

	run(r, argv);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->err, "");
	/* the table rows, in device-tree order */
	p = r->out;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		p = strstr(p, want[i]);
		if (!p)
			fail_msg("\"%s\" missing or out of order in:\n%s", want[i], r->out);
	}
	assert_contains(r->out, "3 regions, 24 KiB in all, granule 64 bytes: configuration valid");
	free(r);
}

static void test_check_bad_fixtures(void **state)
{
	static char paths[64][512];
	struct result *r = malloc(sizeof(*r));
	size_t n = fixtures("bad-", paths, 64);

	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++) {
		char *argv[] = { env("SMH_SMHD"), "--check", "--dtb", paths[i], NULL };

		run(r, argv);
		if (r->status != 1 || !strstr(r->err, "smhd: error: ") ||
		    !strstr(r->err, "culprit"))
			fail_msg("%s: exit %d, stderr:\n%s", paths[i], r->status, r->err);
		assert_contains(r->err, "configuration invalid");
	}
	print_message("smhd --check refused %zu invalid fixtures, naming the node\n", n);
	free(r);
}

static void test_check_good_fixtures(void **state)
{
	static char paths[64][512];
	struct result *r = malloc(sizeof(*r));
	size_t n = fixtures("good-", paths, 64);

	assert_true(n >= 5);
	for (size_t i = 0; i < n; i++) {
		char *argv[] = { env("SMH_SMHD"), "--check", "--dtb", paths[i], NULL };

		run(r, argv);
		/* a tree without regions is valid to parse but leaves nothing to serve */
		if (strstr(paths[i], "no-reserved-memory") || strstr(paths[i], "foreign-ranges")) {
			assert_int_equal(r->status, 1);
			assert_contains(r->err, "no enabled shared-multi-heap region");
			continue;
		}
		if (r->status != 0)
			fail_msg("%s: exit %d, stderr:\n%s", paths[i], r->status, r->err);
		assert_contains(r->out, "configuration valid");
	}
	free(r);
}

static void test_check_unreadable(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *missing[] = { env("SMH_SMHD"), "--check", "--dtb", "/nonexistent/x.dtb", NULL };
	char *dir[] = { env("SMH_SMHD"), "--check", "--dtb", "/", NULL };
	char *text[] = { env("SMH_SMHD"), "--check", "--dtb", "/proc/self/status", NULL };

	run(r, missing);
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "/nonexistent/x.dtb");
	run(r, dir);
	assert_int_equal(r->status, 1);
	run(r, text);
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "smhd: error: ");
	free(r);
}

static void test_check_granule(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *big[] = { env("SMH_SMHD"), "--check", "--dtb", env("SMH_EXAMPLE_DTB"),
			"--granule",     "8K",      NULL };
	char *ok[] = { env("SMH_SMHD"), "--check", "--dtb", env("SMH_EXAMPLE_DTB"),
		       "--granule",     "0x1000",  NULL };
	char *bad[] = { env("SMH_SMHD"), "--check", "--granule", "48", NULL };

	run(r, big); /* res0 is 4 KiB: it holds no 8 KiB granule */
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "res0");
	run(r, ok);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "granule 4096 bytes");
	run(r, bad);
	assert_int_equal(r->status, 2);
	assert_contains(r->err, "--granule 48");
	free(r);
}

static void test_smhd_usage(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *help[] = { env("SMH_SMHD"), "--help", NULL };
	char *version[] = { env("SMH_SMHD"), "--version", NULL };
	char *unknown[] = { env("SMH_SMHD"), "--frobnicate", NULL };
	char *backend[] = { env("SMH_SMHD"), "--backend", "ramdisk", NULL };
	char *json[] = { env("SMH_SMHD"), "--json", NULL };
	char *serve[] = { env("SMH_SMHD"),    "--dtb", env("SMH_EXAMPLE_DTB"), "--mem-path",
			  "/nonexistent/mem", NULL };

	run(r, help);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "--check");
	run(r, version);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "smhd ");
	run(r, unknown);
	assert_int_equal(r->status, 2);
	run(r, backend);
	assert_int_equal(r->status, 2);
	assert_contains(r->err, "devmem, memfd");
	run(r, json);
	assert_int_equal(r->status, 2);
	/* A memory device that cannot be opened: one clear error naming it, exit 1. */
	run(r, serve);
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "Could not open /nonexistent/mem: No such file or directory");
	assert_null(strstr(strstr(r->err, "/nonexistent/mem") + 1, "Could not open"));
	/* What to do without a board; and no source position outside debug level. */
	assert_contains(r->err, "use --backend memfd");
	assert_null(strstr(r->err, ".c:"));
	free(r);
}

/* Device-tree source where a blob belongs: the message says to compile it. */
static void test_smhd_source_for_blob(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char dts[512];
	char *check[] = { env("SMH_SMHD"), "--check", "--dtb", dts, NULL };

	snprintf(dts, sizeof(dts), "%s/dts/example.dts", env("SMH_SOURCE_ROOT"));
	run(r, check);
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "this is text, not a device-tree blob");
	assert_contains(r->err, "dtc -I dts -O dtb");
	free(r);
}

static void test_smhctl_dt(void **state)
{
	static char paths[64][512];
	struct result *r = malloc(sizeof(*r));
	char *text[] = { env("SMH_SMHCTL"), "dt", env("SMH_EXAMPLE_DTB"), NULL };
	char *json[] = { env("SMH_SMHCTL"), "--json", "dt", env("SMH_EXAMPLE_DTB"), NULL };
	char *json_after[] = { env("SMH_SMHCTL"), "dt", env("SMH_EXAMPLE_DTB"), "--json", NULL };
	size_t n = fixtures("bad-", paths, 64);

	run(r, text);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "res1");
	assert_contains(r->out, "0x43000000-0x43001fff");
	run(r, json);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "\"valid\": true");
	assert_contains(r->out, "\"label\": \"res2\"");
	assert_contains(r->out, "\"phys_addr\": 1140850688"); /* 0x44000000 */
	assert_contains(r->out, "\"size\": 12288");
	assert_contains(r->out, "\"attr\": \"non-cacheable\"");
	assert_contains(r->out, "\"errors\": []");
	run(r, json_after);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "\"valid\": true");

	for (size_t i = 0; i < n; i++) {
		char *bad[] = { env("SMH_SMHCTL"), "--json", "dt", paths[i], NULL };

		run(r, bad);
		assert_int_equal(r->status, 1);
		assert_contains(r->out, "\"valid\": false");
		assert_contains(r->out, "\"regions\": []");
		assert_contains(r->out, "culprit");
		assert_string_equal(r->err, "");
	}
	free(r);
}

static void test_smhctl_usage(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *none[] = { env("SMH_SMHCTL"), NULL };
	char *unknown[] = { env("SMH_SMHCTL"), "frobnicate", NULL };
	char *dt_noarg[] = { env("SMH_SMHCTL"), "dt", NULL };
	char *help[] = { env("SMH_SMHCTL"), "--help", NULL };

	run(r, none);
	assert_int_equal(r->status, 2);
	run(r, unknown);
	assert_int_equal(r->status, 2);
	assert_contains(r->err, "frobnicate");
	run(r, dt_noarg);
	assert_int_equal(r->status, 2);
	run(r, help);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "dt [--granule SIZE] FILE");
	free(r);
}

/* Runs @argv with stdout on @out_path (opened write-only), or closed when NULL. */
static int run_stdout(char *const argv[], const char *out_path, struct result *res)
{
	FILE *err = tmpfile();
	int wstatus;
	pid_t pid;

	assert_non_null(err);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(STDOUT_FILENO);
		if (out_path && open(out_path, O_WRONLY) != STDOUT_FILENO)
			_exit(126);
		dup2(fileno(err), STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	slurp(err, res->err, sizeof(res->err));
	return WEXITSTATUS(wstatus);
}

/* A report that could not be written is a failure, not a silent success. */
static void test_write_errors(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *check[] = { env("SMH_SMHD"), "--check", "--dtb", env("SMH_EXAMPLE_DTB"), NULL };
	char *dt[] = { env("SMH_SMHCTL"), "--json", "dt", env("SMH_EXAMPLE_DTB"), NULL };

	assert_int_equal(run_stdout(check, "/dev/full", r), 1);
	assert_contains(r->err, "Could not write the report");
	assert_int_equal(run_stdout(dt, "/dev/full", r), 1);
	assert_contains(r->err, "Could not write the report");
	assert_int_equal(run_stdout(dt, NULL, r), 1);
	assert_int_equal(run_stdout(check, "/dev/null", r), 0);
	free(r);
}

/* smhctl dt takes --json and --granule before or after FILE. */
static void test_smhctl_dt_options(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char *after[] = { env("SMH_SMHCTL"), "dt", env("SMH_EXAMPLE_DTB"), "--granule", "4K",
			  "--json",          NULL };
	char *before[] = { env("SMH_SMHCTL"), "dt", "--granule=8K", env("SMH_EXAMPLE_DTB"), NULL };
	char *bad[] = {
		env("SMH_SMHCTL"), "dt", "--granule", "lots", env("SMH_EXAMPLE_DTB"), NULL
	};
	char *octal[] = { env("SMH_SMHD"), "--check", "--granule", "010", NULL };

	run(r, after);
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "\"granule\": 4096");
	run(r, before); /* res0 holds no 8 KiB granule */
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "res0");
	run(r, bad);
	assert_int_equal(r->status, 2);
	bad[3] = "48"; /* a size, but no power of two: a usage error, as for smhd */
	run(r, bad);
	assert_int_equal(r->status, 2);
	assert_contains(r->err, "power of two");
	run(r, octal); /* ten bytes, not eight: no power of two */
	assert_int_equal(r->status, 2);
	assert_contains(r->err, "--granule 010");
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_example),
		cmocka_unit_test(test_check_bad_fixtures),
		cmocka_unit_test(test_check_good_fixtures),
		cmocka_unit_test(test_check_unreadable),
		cmocka_unit_test(test_check_granule),
		cmocka_unit_test(test_smhd_usage),
		cmocka_unit_test(test_smhd_source_for_blob),
		cmocka_unit_test(test_smhctl_dt),
		cmocka_unit_test(test_smhctl_usage),
		cmocka_unit_test(test_write_errors),
		cmocka_unit_test(test_smhctl_dt_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
