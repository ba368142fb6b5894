/* SPDX-License-Identifier: MIT */
/* The device-tree reader's test harness: see dt-harness.h. */
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

/* ---------------------------------------------------------------- fault injection */

long alloc_countdown = -1; /* allocations to let through before failing one; -1: none */
bool alloc_failed;         /* the injected failure happened */

static bool alloc_fails(void)
{
	if (alloc_countdown < 0)
		return false;
	if (alloc_countdown-- > 0)
		return false;
	alloc_failed = true;
	return true;
}

void *wrap_malloc(size_t size)
{
	return alloc_fails() ? NULL : malloc(size);
}

void *wrap_reallocarray(void *ptr, size_t n, size_t size)
{
	return alloc_fails() ? NULL : reallocarray(ptr, n, size);
}

char *wrap_strdup(const char *s)
{
	return alloc_fails() ? NULL : strdup(s);
}

bool choppy_reads; /* serve reads a few bytes at a time, with an EINTR before each */
long reads_until_eio = -1;

ssize_t wrap_read(int fd, void *buf, size_t len)
{
	static bool interrupted;

	if (reads_until_eio >= 0 && reads_until_eio-- == 0) {
		errno = EIO;
		return -1;
	}
	if (!choppy_reads)
		return read(fd, buf, len);
	interrupted = !interrupted;
	if (interrupted) {
		errno = EINTR;
		return -1;
	}
	return read(fd, buf, len < 3 ? len : 3);
}

/* The copy of the reader under test, with the wrappers in place of the C library. */
#define malloc       wrap_malloc
#define reallocarray wrap_reallocarray
#define strdup       wrap_strdup
#define read         wrap_read
#include "core/dt-blob.c"
#include "core/dt.c"
#undef malloc
#undef reallocarray
#undef strdup
#undef read

/* ---------------------------------------------------------------- diagnostics sink */

void sink_report(void *data, enum diag_level level, const char *msg)
{
	struct sink *sink = data;
	size_t len = strlen(msg);

	/* Full sentences without a trailing newline, printable ASCII even from a random blob. */
	assert_true(len > 0);
	assert_int_not_equal(msg[len - 1], '\n');
	for (size_t i = 0; i < len; i++)
		assert_true(msg[i] >= 0x20 && msg[i] < 0x7f);
	if (level == DIAG_ERROR)
		sink->n_errors++;
	else
		sink->n_warnings++;
	if (sink->n_kept < ARRAY_SIZE(sink->kept)) {
		sink->kept[sink->n_kept].level = level;
		snprintf(sink->kept[sink->n_kept].text, sizeof(sink->kept[0].text), "%s", msg);
		sink->n_kept++;
	}
}

struct diag sink_diag(struct sink *sink)
{
	*sink = (struct sink){ 0 };
	return (struct diag){ .report = sink_report, .data = sink };
}

void sink_print(const struct sink *sink)
{
	for (size_t i = 0; i < sink->n_kept; i++)
		print_message("  %s: %s\n", diag_level_name(sink->kept[i].level),
			      sink->kept[i].text);
}

/* The first message of @level containing all of @words (NULL-terminated), or NULL. */
const char *sink_find(const struct sink *sink, enum diag_level level, const char *const *words)
{
	for (size_t i = 0; i < sink->n_kept; i++) {
		size_t w = 0;

		if (sink->kept[i].level != level)
			continue;
		while (words[w] && strstr(sink->kept[i].text, words[w]))
			w++;
		if (!words[w])
			return sink->kept[i].text;
	}
	return NULL;
}

void assert_reported_(const struct sink *sink, enum diag_level level, const char *const *words)
{
	if (sink_find(sink, level, words))
		return;
	print_error("no %s containing \"%s\"%s; the messages were:\n", diag_level_name(level),
		    words[0], words[1] ? " and the other words" : "");
	sink_print(sink);
	fail();
}

/* ---------------------------------------------------------------- files and blobs */

const char *env(const char *name)
{
	const char *val = getenv(name);

	if (!val || !*val) {
		print_error("%s is not set (run the test with `meson test`)\n", name);
		fail();
	}
	return val;
}

char *fixture_path(const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s.dtb", env("SMH_TEST_DTB_DIR"), name) > 0);
	return path;
}

/* The whole file, in an exactly-sized buffer. */
void *slurp(const char *path, size_t *sizep)
{
	FILE *f = fopen(path, "rb");
	void *buf;
	long size;

	if (!f)
		print_error("cannot open %s: %s\n", path, strerror(errno));
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*sizep = (size_t)size;
	return buf;
}

void *example_blob(size_t *sizep)
{
	return slurp(env("SMH_EXAMPLE_DTB"), sizep);
}

/* A file under /tmp holding @len bytes of @data; free() the returned path after unlink(). */
char *temp_file(const void *data, size_t len)
{
	char *path = strdup("/tmp/smh-test-dt-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

void remove_temp(char *path)
{
	unlink(path);
	free(path);
}

/* The lowest free file descriptor: the same before and after a call means it leaked none. */
int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

/*
 * dt_parse() on a copy of @len bytes of @blob placed @shift bytes into a buffer that ends with
 * it, so that AddressSanitizer catches any read past the end, aligned (shift 0) or not.
 */
int parse_copy(const void *blob, size_t len, size_t shift, struct dt_config *cfg,
	       const struct diag *diag)
{
	char *buf = malloc(len + shift ? len + shift : 1);
	int r;

	assert_non_null(buf);
	memcpy(buf + shift, blob, len);
	*cfg = (struct dt_config){ 0 };
	r = dt_parse(buf + shift, len, cfg, diag);
	free(buf);
	return r;
}

void assert_config_empty(const struct dt_config *cfg)
{
	assert_null(cfg->regions);
	assert_int_equal(cfg->n_regions, 0);
}
