/* SPDX-License-Identifier: MIT */
/*
 * What the device-tree reader's tests share (test-dt.c: fixtures and corrupt blobs;
 * test-dt-read.c: reading files, memory failures). The reader under test is the harness's own
 * copy of core/dt-blob.c and core/dt.c, compiled with malloc(), reallocarray(), strdup()
 * and read() replaced by fault-injecting wrappers; its dt_* functions are renamed test_dt_*
 * (the defines below apply to the tests' calls too), so the copy in the smh-core library is
 * never the one tested.
 */
#ifndef TESTS_DT_HARNESS_H
#define TESTS_DT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define dt_blob_read      test_dt_blob_read
#define dt_parse          test_dt_parse
#define dt_load           test_dt_load
#define dt_config_finish  test_dt_config_finish
#define dt_blob_check     test_dt_blob_check
#define dt_blob_fdt_error test_dt_blob_fdt_error
#include "core/dt.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- fault injection */

extern long alloc_countdown; /* allocations to let through before failing one; -1: none */
extern bool alloc_failed;    /* the injected failure happened */
extern bool choppy_reads;    /* serve reads a few bytes at a time, with an EINTR before each */
extern long reads_until_eio; /* reads to let through before one fails with EIO; -1: none */

void *wrap_malloc(size_t size);
void *wrap_reallocarray(void *ptr, size_t n, size_t size);
char *wrap_strdup(const char *s);
ssize_t wrap_read(int fd, void *buf, size_t len);

/* ---------------------------------------------------------------- diagnostics sink */

struct message {
	enum diag_level level;
	char text[512];
};

struct sink {
	size_t n_errors;
	size_t n_warnings;
	size_t n_kept;
	struct message kept[32];
};

#define assert_reported(sink, level, ...) \
	assert_reported_((sink), (level), (const char *const[]){ __VA_ARGS__, NULL })

void sink_report(void *data, enum diag_level level, const char *msg);
/* Empties @sink and returns a diag that records into it. */
struct diag sink_diag(struct sink *sink);
void sink_print(const struct sink *sink);
/* The first message of @level containing all of @words (NULL-terminated), or NULL. */
const char *sink_find(const struct sink *sink, enum diag_level level, const char *const *words);
void assert_reported_(const struct sink *sink, enum diag_level level, const char *const *words);

/* ---------------------------------------------------------------- files and blobs */

/* The value of an environment variable `meson test` sets; fails the test when missing. */
const char *env(const char *name);
/* $SMH_TEST_DTB_DIR/NAME.dtb; free() it. */
char *fixture_path(const char *name);
/* The whole file, in an exactly-sized buffer; free() it. */
void *slurp(const char *path, size_t *sizep);
void *example_blob(size_t *sizep);
/* A file under /tmp holding @len bytes of @data; remove_temp() it. */
char *temp_file(const void *data, size_t len);
void remove_temp(char *path);
/* The lowest free file descriptor: the same before and after a call means it leaked none. */
int lowest_free_fd(void);
/*
 * dt_parse() on a copy of @len bytes of @blob placed @shift bytes into a buffer that ends with
 * it, so that AddressSanitizer catches any read past the end, aligned (shift 0) or not.
 */
int parse_copy(const void *blob, size_t len, size_t shift, struct dt_config *cfg,
	       const struct diag *diag);
void assert_config_empty(const struct dt_config *cfg);

#endif
