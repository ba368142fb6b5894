/* SPDX-License-Identifier: MIT */
/*
 * Tests of the device-tree reader's file side: dt_blob_read() on files that are missing,
 * unreadable, short, padded or lying about their size, short reads and I/O errors; whole
 * loads; and every allocation failing in turn without a leak.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfdt.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/dt-harness.h"

/* ---------------------------------------------------------------- dt_blob_read */

/* dt_blob_read() on @path must fail with @err and an error naming the file and @word. */
static void check_read_fails(const char *path, int err, const char *word)
{
	struct sink sink;
	struct diag diag = sink_diag(&sink);
	void *blob = NULL;
	size_t size = 0;
	int fd = lowest_free_fd();

	assert_int_equal(dt_blob_read(path, &blob, &size, &diag), err);
	assert_null(blob);
	assert_int_equal(sink.n_errors, 1);
	assert_reported(&sink, DIAG_ERROR, path, word);
	assert_int_equal(lowest_free_fd(), fd);
}

static void check_read_data_fails(const void *data, size_t len, int err, const char *word)
{
	char *path = temp_file(data, len);

	check_read_fails(path, err, word);
	remove_temp(path);
}

static void test_read_missing(void **state)
{
	char dir[] = "/tmp/smh-test-dt-XXXXXX";
	char *path;

	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&path, "%s/absent.dtb", dir) > 0);
	check_read_fails(path, -ENOENT, "Could not open");
	check_read_fails(dir, -EISDIR, "Could not read");
	free(path);
	rmdir(dir);
}

static void capture(void *data, enum diag_level level, const char *msg)
{
	snprintf(data, 256, "%s", msg);
}

/*
 * A file its reader may not open. Root opens anything, so as root the read runs in a child
 * that has dropped to nobody (65534) first.
 */
static void test_read_unreadable(void **state)
{
	char *path = temp_file("", 0);
	int wstatus;
	pid_t pid;

	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() != 0) {
		check_read_fails(path, -EACCES, "Permission denied");
		remove_temp(path);
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char msg[256] = "";
		struct diag diag = { capture, msg };
		void *blob = NULL;
		size_t size = 0;
		int r;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		r = dt_blob_read(path, &blob, &size, &diag);
		_exit(r == -EACCES && !blob && strstr(msg, path) && strstr(msg, "Permission denied")
			      ? 0
			      : 1);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	remove_temp(path);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
}

static void test_read_short(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	check_read_data_fails("", 0, -EBADMSG, "fewer than a device-tree header");
	check_read_data_fails(blob, sizeof(struct fdt_header) - 1, -EBADMSG,
			      "fewer than a device-tree header");
	check_read_data_fails(blob, sizeof(struct fdt_header), -EBADMSG, "truncated");
	check_read_data_fails(blob, size - 1, -EBADMSG, "truncated");
	free(blob);
}

static void test_read_bad_header(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	fdt_set_magic(blob, 0x12345678);
	check_read_data_fails(blob, size, -EBADMSG, "bad magic 0x12345678");
	fdt_set_magic(blob, FDT_MAGIC);
	fdt_set_totalsize(blob, sizeof(struct fdt_header) - 1);
	check_read_data_fails(blob, size, -EBADMSG, "smaller than the header");
	fdt_set_totalsize(blob, DT_BLOB_MAX + 1);
	check_read_data_fails(blob, size, -EFBIG, "above the limit");
	fdt_set_totalsize(blob, UINT32_MAX);
	check_read_data_fails(blob, size, -EFBIG, "above the limit");
	free(blob);
}

/* Reads the file holding @blob then @junk bytes and checks it gives back exactly the blob. */
static void check_read_ok(const void *blob, size_t size, size_t junk)
{
	char *data = malloc(size + junk), *path;
	struct sink sink;
	struct diag diag = sink_diag(&sink);
	void *got = NULL;
	size_t got_size = 0;

	assert_non_null(data);
	memcpy(data, blob, size);
	for (size_t i = 0; i < junk; i++)
		data[size + i] = (char)(i * 7 + 1);
	path = temp_file(data, size + junk);
	assert_int_equal(dt_blob_read(path, &got, &got_size, &diag), 0);
	assert_int_equal(got_size, size);
	assert_memory_equal(got, blob, size);
	assert_int_equal(sink.n_errors + sink.n_warnings, 0);
	free(got);
	remove_temp(path);
	free(data);
}

/* /sys/firmware/fdt is padded past totalsize: the padding is not read. */
static void test_read_padded(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	check_read_ok(blob, size, 0);
	check_read_ok(blob, size, 4096);
	free(blob);
}

static void test_read_short_reads_and_eintr(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	choppy_reads = true;
	check_read_ok(blob, size, 4096);
	choppy_reads = false;
	free(blob);
}

static void test_read_io_error(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	for (long n = 0; n < 2; n++) {
		reads_until_eio = n; /* the header's read, then the rest's */
		check_read_data_fails(blob, size, -EIO, "Input/output error");
	}
	reads_until_eio = -1;
	free(blob);
}

/* ---------------------------------------------------------------- whole loads, memory */

static void test_finish_zeroed(void **state)
{
	struct dt_config cfg = { 0 };

	dt_config_finish(&cfg);
	dt_config_finish(&cfg);
	assert_config_empty(&cfg);
}

static void test_null_diag(void **state)
{
	char *path = fixture_path("bad-many");
	struct dt_config cfg = { 0 };

	assert_int_equal(dt_load(path, &cfg, NULL), -EINVAL);
	assert_int_equal(dt_load("/nonexistent/smh.dtb", &cfg, NULL), -ENOENT);
	assert_config_empty(&cfg);
	free(path);
}

/*
 * Fails each allocation of a load in turn, until the load needs no more: each must give
 * -ENOMEM, an empty config and an error, and leak nothing (LeakSanitizer runs at exit).
 */
static void check_enomem(const char *path, int expect, size_t shift)
{
	size_t size;
	void *blob = slurp(path, &size);
	int r;

	for (long n = 0;; n++) {
		struct dt_config cfg = { 0 };
		struct sink sink;
		struct diag diag = sink_diag(&sink);

		alloc_countdown = n;
		alloc_failed = false;
		r = shift ? parse_copy(blob, size, shift, &cfg, &diag) : dt_load(path, &cfg, &diag);
		alloc_countdown = -1;
		if (!alloc_failed) {
			assert_int_equal(r, expect);
			dt_config_finish(&cfg);
			break;
		}
		assert_int_equal(r, -ENOMEM);
		assert_config_empty(&cfg);
		assert_reported(&sink, DIAG_ERROR, "Cannot allocate memory");
	}
	free(blob);
}

static void test_enomem(void **state)
{
	static const char *const names[] = { "good-multi-reg", "good-label-default",
					     "bad-dup-label", "bad-overlap-far", "bad-many" };

	check_enomem(env("SMH_EXAMPLE_DTB"), 0, 0);
	check_enomem(env("SMH_EXAMPLE_DTB"), 0, 1);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *path = fixture_path(names[i]);
		int expect = strncmp(names[i], "bad-", 4) == 0 ? -EINVAL : 0;

		check_enomem(path, expect, 0);
		check_enomem(path, expect, 3);
		free(path);
	}
}

/* ---------------------------------------------------------------- main */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_missing),
		cmocka_unit_test(test_read_unreadable),
		cmocka_unit_test(test_read_short),
		cmocka_unit_test(test_read_bad_header),
		cmocka_unit_test(test_read_padded),
		cmocka_unit_test(test_read_short_reads_and_eintr),
		cmocka_unit_test(test_read_io_error),
		cmocka_unit_test(test_finish_zeroed),
		cmocka_unit_test(test_null_diag),
		cmocka_unit_test(test_enomem),
	};

	return cmocka_run_group_tests_name("dt-read", tests, NULL, NULL);
}
