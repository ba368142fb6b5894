/* SPDX-License-Identifier: MIT */
/*
 * Tests of the device-tree reader: the fixtures in tests/dt (good-*.dts give exact regions and
 * warnings, bad-*.dts are refused with a message naming the culprit node), corrupt blobs derived
 * from the example blob (every truncation, broken header fields, 20000 random mutations), and
 * dt_blob_read() on files that are missing, short, padded or lying about their size.
 *
 * The test compiles daemon/dt.c itself, with malloc(), reallocarray(), strdup() and read()
 * replaced by the wrappers below, to fail the n-th allocation (every -ENOMEM path must return
 * cleanly: LeakSanitizer checks nothing leaks) and to serve a file in short reads and EINTRs.
 * Its dt_* functions are renamed, so the copy in the smh-core static library is never used.
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

#include "common/diag.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- fault injection */

static long alloc_countdown = -1; /* allocations to let through before failing one; -1: none */
static bool alloc_failed;         /* the injected failure happened */

static bool alloc_fails(void)
{
	if (alloc_countdown < 0)
		return false;
	if (alloc_countdown-- > 0)
		return false;
	alloc_failed = true;
	return true;
}

static void *wrap_malloc(size_t size)
{
	return alloc_fails() ? NULL : malloc(size);
}

static void *wrap_reallocarray(void *ptr, size_t n, size_t size)
{
	return alloc_fails() ? NULL : reallocarray(ptr, n, size);
}

static char *wrap_strdup(const char *s)
{
	return alloc_fails() ? NULL : strdup(s);
}

static bool choppy_reads; /* serve reads a few bytes at a time, with an EINTR before each */
static long reads_until_eio = -1;

static ssize_t wrap_read(int fd, void *buf, size_t len)
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

/*
 * The copy of the reader under test, with its own names (for dt.h's prototypes too, so dt.h must
 * not be included before): it cannot clash with the one in the smh-core library.
 */
#define dt_blob_read     test_dt_blob_read
#define dt_parse         test_dt_parse
#define dt_load          test_dt_load
#define dt_config_finish test_dt_config_finish
#define malloc           wrap_malloc
#define reallocarray     wrap_reallocarray
#define strdup           wrap_strdup
#define read             wrap_read
#include "daemon/dt.c"
#undef malloc
#undef reallocarray
#undef strdup
#undef read

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

static void sink_report(void *data, enum diag_level level, const char *msg)
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

static struct diag sink_diag(struct sink *sink)
{
	*sink = (struct sink){ 0 };
	return (struct diag){ .report = sink_report, .data = sink };
}

static void sink_print(const struct sink *sink)
{
	for (size_t i = 0; i < sink->n_kept; i++)
		print_message("  %s: %s\n", diag_level_name(sink->kept[i].level),
			      sink->kept[i].text);
}

/* The first message of @level containing all of @words (NULL-terminated), or NULL. */
static const char *sink_find(const struct sink *sink, enum diag_level level,
			     const char *const *words)
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

#define assert_reported(sink, level, ...) \
	assert_reported_((sink), (level), (const char *const[]){ __VA_ARGS__, NULL })

static void assert_reported_(const struct sink *sink, enum diag_level level,
			     const char *const *words)
{
	if (sink_find(sink, level, words))
		return;
	print_error("no %s containing \"%s\"%s; the messages were:\n", diag_level_name(level),
		    words[0], words[1] ? " and the other words" : "");
	sink_print(sink);
	fail();
}

/* ---------------------------------------------------------------- files and blobs */

static const char *env(const char *name)
{
	const char *val = getenv(name);

	if (!val || !*val) {
		print_error("%s is not set (run the test with `meson test`)\n", name);
		fail();
	}
	return val;
}

static char *fixture_path(const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s.dtb", env("SMH_TEST_DTB_DIR"), name) > 0);
	return path;
}

/* The whole file, in an exactly-sized buffer. */
static void *slurp(const char *path, size_t *sizep)
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

static void *example_blob(size_t *sizep)
{
	return slurp(env("SMH_EXAMPLE_DTB"), sizep);
}

/* A file under /tmp holding @len bytes of @data; free() the returned path after unlink(). */
static char *temp_file(const void *data, size_t len)
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

static void remove_temp(char *path)
{
	unlink(path);
	free(path);
}

/* The lowest free file descriptor: the same before and after a call means it leaked none. */
static int lowest_free_fd(void)
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
static int parse_copy(const void *blob, size_t len, size_t shift, struct dt_config *cfg,
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

static void assert_config_empty(const struct dt_config *cfg)
{
	assert_null(cfg->regions);
	assert_int_equal(cfg->n_regions, 0);
}

/* ---------------------------------------------------------------- good fixtures */

struct expect {
	const char *label;
	const char *path;
	uint64_t base;
	uint64_t size;
	enum smh_reg_attr attr;
	bool no_map;
};

struct good_case {
	const char *name;
	struct expect regions[4]; /* up to the first without a label */
	const char *warning[4];   /* words of the one expected warning; none if warning[0] NULL */
};

#define C  SMH_REG_ATTR_CACHEABLE
#define NC SMH_REG_ATTR_NON_CACHEABLE
#define RM "/reserved-memory/"

static struct good_case good_cases[] = {
	{ .name = "good-cells1",
	  .regions = { { "first", RM "first@42000000", 0x42000000, 0x1000, C, false },
		       { "second", RM "second@43000000", 0x43000000, 0x200000, NC, false } } },
	{ .name = "good-cells2-high",
	  .regions = { { "low", RM "low@100000000", 0x100000000, 0x10000000, C, false },
		       { "huge", RM "huge@840000000", 0x840000000, 0x180000000, NC, false } } },
	{ .name = "good-default-cells",
	  .regions = { { "dflt", RM "dflt@200000000", 0x200000000, 0x100000, C, false } } },
	{ .name = "good-compat-list",
	  .regions = { { "listed", RM "listed@42000000", 0x42000000, 0x1000, C, false } } },
	{ .name = "good-disabled",
	  .regions = { { "on", RM "on@43000000", 0x43000000, 0x1000, C, false },
		       { "ok", RM "ok@44000000", 0x44000000, 0x1000, NC, false } },
	  .warning = { RM "off@42000000:", "skipped", "\"disabled\"" } },
	{ .name = "good-no-capability",
	  .regions = { { "withcap", RM "withcap@43000000", 0x43000000, 0x1000, NC, false } },
	  .warning = { RM "nocap@42000000:", "skipped", "no capability property" } },
	{ .name = "good-multi-reg",
	  .regions = { { "pool", RM "multi@42000000", 0x42000000, 0x1000, C, false },
		       { "pool-1", RM "multi@42000000", 0x43000000, 0x2000, C, false },
		       { "pool-2", RM "multi@42000000", 0x41000000, 0x3000, C, false },
		       { "after", RM "after@50000000", 0x50000000, 0x1000, NC, false } } },
	{ .name = "good-no-reserved-memory" },
	{ .name = "good-foreign-ranges" }, /* the parent's cells and ranges are not smh's business */
	{ .name = "good-no-map",
	  .regions = { { "nomap", RM "nomap@42000000", 0x42000000, 0x1000, NC, true },
		       { "mapped", RM "mapped@43000000", 0x43000000, 0x1000, C, false } } },
	{ .name = "good-label-default",
	  .regions = { { "reserved@42000000", RM "reserved@42000000", 0x42000000, 0x1000, C,
			 false },
		       { "reserved@42000000-1", RM "reserved@42000000", 0x42001000, 0x1000, C,
			 false },
		       { "unnamed", RM "unnamed", 0x43000000, 0x1000, NC, false } } },
	{ .name = "good-label-max",
	  .regions = { { "A.b_c+d,e@f-0123456789abcdefg", RM "longest@42000000", 0x42000000, 0x1000,
			 C, false },
		       { "A.b_c+d,e@f-0123456789abcdefg-1", RM "longest@42000000", 0x42001000,
			 0x1000, C, false } } },
};

static void assert_regions(const struct dt_config *cfg, const struct expect *expect, size_t n)
{
	assert_int_equal(cfg->n_regions, n);
	for (size_t i = 0; i < n; i++) {
		const struct dt_region *reg = &cfg->regions[i];

		assert_string_equal(reg->label, expect[i].label);
		assert_string_equal(reg->path, expect[i].path);
		assert_int_equal(reg->base, expect[i].base);
		assert_int_equal(reg->size, expect[i].size);
		assert_int_equal(reg->attr, expect[i].attr);
		assert_int_equal(reg->no_map, expect[i].no_map);
	}
}

static void test_good(void **state)
{
	const struct good_case *c = *state;
	char *path = fixture_path(c->name);
	struct dt_config cfg = { 0 };
	struct sink sink;
	struct diag diag = sink_diag(&sink);
	size_t n = 0;
	int r;

	r = dt_load(path, &cfg, &diag);
	if (r != 0)
		sink_print(&sink);
	assert_int_equal(r, 0);
	while (n < ARRAY_SIZE(c->regions) && c->regions[n].label)
		n++;
	assert_regions(&cfg, c->regions, n);
	assert_int_equal(sink.n_errors, 0);
	assert_int_equal(sink.n_warnings, c->warning[0] ? 1 : 0);
	if (c->warning[0])
		assert_reported_(&sink, DIAG_WARNING, c->warning);
	dt_config_finish(&cfg);
	assert_config_empty(&cfg);
	free(path);
}

/* ---------------------------------------------------------------- bad fixtures */

struct bad_case {
	const char *name;
	size_t n_errors;
	const char *error[6];      /* words of one error: the culprit's path, then the reason */
	const char *also_error[4]; /* words of a second expected error, if any */
};

static struct bad_case bad_cases[] = {
	{ .name = "bad-zero-size",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:", "reg pair 1", "0x43000000", "size zero" } },
	{ .name = "bad-reg-length",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:", "reg has 12 bytes, not a multiple of 8",
		     "(#address-cells=1, #size-cells=1)" } },
	{ .name = "bad-reg-missing", .n_errors = 1, .error = { RM "culprit:", "no reg property" } },
	{ .name = "bad-overlap",
	  .n_errors = 1,
	  .error = { RM "culprit@40000800:", "[0x40000800-0x400017ff] overlaps",
		     "[0x40000000-0x40000fff]", RM "fine@40000000" } },
	{ .name = "bad-overlap-far",
	  .n_errors = 2,
	  .error = { RM "culprit@48000000:", "overlaps", "[0x40000000-0x4fffffff]",
		     RM "big@40000000" },
	  .also_error = { RM "small@41000000:", "overlaps", RM "big@40000000" } },
	{ .name = "bad-dup-label",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:", "label \"fine\" is already used by",
		     RM "fine@40000000" } },
	{ .name = "bad-unknown-capability",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:", "unknown capability \"write-combine\"",
		     "(valid: cacheable, non-cacheable)" } },
	{ .name = "bad-size-overflow",
	  .n_errors = 1,
	  .error = { RM "culprit@fffffffff0000000:", "0xfffffffff0000000", "0x20000000",
		     "size overflow" } },
	{ .name = "bad-cells",
	  .n_errors = 2,
	  .error = { RM "culprit@0:", "not usable", "#address-cells" },
	  .also_error = { "/reserved-memory: #address-cells is 3, smh supports 1 or 2" } },
	{ .name = "bad-ranges",
	  .n_errors = 2,
	  .error = { RM "culprit@2000000:", "not usable", "non-empty ranges" },
	  .also_error = { "/reserved-memory: ranges is not empty (12 bytes)", "physical" } },
	{ .name = "bad-label-too-long",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:",
		     "label \"culprit-has-a-label-of-30bytes-2\" is 32 bytes long", "31" } },
	{ .name = "bad-label-chars",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:", "label \"culprit region\"",
		     "invalid character ' '" } },
	{ .name = "bad-capability-not-string",
	  .n_errors = 1,
	  .error = { RM "culprit@42000000:", "capability is not a string", "4 bytes" } },
	{ .name = "bad-many",
	  .n_errors = 5,
	  .error = { RM "culprit-a@42000000:", "status is not a string" },
	  .also_error = { RM "culprit-b@43000000:", "unknown capability \"uncached\"" } },
};

static void test_bad(void **state)
{
	const struct bad_case *c = *state;
	char *path = fixture_path(c->name);
	struct dt_config cfg = { 0 };
	struct sink sink;
	struct diag diag = sink_diag(&sink);

	assert_int_equal(dt_load(path, &cfg, &diag), -EINVAL);
	assert_config_empty(&cfg);
	if (sink.n_errors != c->n_errors)
		sink_print(&sink);
	assert_int_equal(sink.n_errors, c->n_errors);
	assert_int_equal(sink.n_warnings, 0);
	assert_reported_(&sink, DIAG_ERROR, c->error);
	if (c->also_error[0])
		assert_reported_(&sink, DIAG_ERROR, c->also_error);
	free(path);
}

/* bad-many: the problems of later nodes, and a second one in the same node, are reported. */
static void test_bad_many_reports_all(void **state)
{
	char *path = fixture_path("bad-many");
	struct dt_config cfg = { 0 };
	struct sink sink;
	struct diag diag = sink_diag(&sink);

	assert_int_equal(dt_load(path, &cfg, &diag), -EINVAL);
	assert_reported(&sink, DIAG_ERROR, RM "culprit-b@43000000:", "reg pair 1", "size zero");
	assert_reported(&sink, DIAG_ERROR, RM "culprit-c@45000000:", "label is empty");
	assert_reported(&sink, DIAG_ERROR,
			RM
			"culprit-d-whose-name-is-much-longer-than-thirty-one-bytes@46000000: label "
			"\"a-label-that-is-too-long-and-is-shortened-with-an-ellipsis-i...\" "
			"is 73 bytes long");
	free(path);
}

/* Every bad-*.dts in the source tree has a case above (`smhd --check` tests run them all). */
static void test_bad_cases_cover_fixtures(void **state)
{
	const char *root = getenv("SMH_SOURCE_ROOT");
	char *dirname;
	struct dirent *ent;
	DIR *dir;

	if (!root)
		skip();
	assert_true(asprintf(&dirname, "%s/tests/dt", root) > 0);
	dir = opendir(dirname);
	assert_non_null(dir);
	while ((ent = readdir(dir))) {
		size_t len = strlen(ent->d_name), i;

		if (strncmp(ent->d_name, "bad-", 4) != 0 || len < 4 ||
		    strcmp(ent->d_name + len - 4, ".dts") != 0)
			continue;
		for (i = 0; i < ARRAY_SIZE(bad_cases); i++)
			if (strlen(bad_cases[i].name) == len - 4 &&
			    strncmp(bad_cases[i].name, ent->d_name, len - 4) == 0)
				break;
		if (i == ARRAY_SIZE(bad_cases))
			print_error("tests/dt/%s has no case in test-dt.c\n", ent->d_name);
		assert_true(i < ARRAY_SIZE(bad_cases));
	}
	closedir(dir);
	free(dirname);
}

/* ---------------------------------------------------------------- corrupt blobs */

/* Every prefix of the example blob, aligned or not, in a buffer that ends where it does. */
static void test_truncations(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	for (size_t shift = 0; shift < 2; shift++) {
		for (size_t len = 0; len < size; len++) {
			struct dt_config cfg;
			struct sink sink;
			struct diag diag = sink_diag(&sink);

			assert_int_equal(parse_copy(blob, len, shift, &cfg, &diag), -EBADMSG);
			assert_config_empty(&cfg);
			assert_int_equal(sink.n_errors, 1);
		}
	}
	free(blob);
}

/* Truncated with totalsize fixed up to match: the blocks no longer fit. */
static void test_truncations_consistent_header(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	for (size_t len = sizeof(struct fdt_header); len < size; len++) {
		struct dt_config cfg;
		struct sink sink;
		struct diag diag = sink_diag(&sink);

		fdt_set_totalsize(blob, (uint32_t)len);
		assert_int_equal(parse_copy(blob, len, 0, &cfg, &diag), -EBADMSG);
		assert_config_empty(&cfg);
	}
	free(blob);
}

/* The example blob with one header field changed must be refused with a message naming why. */
static void check_header_change(size_t field, uint32_t val, const char *word)
{
	size_t size;
	char *blob = example_blob(&size);
	fdt32_t be = cpu_to_fdt32(val);
	struct dt_config cfg;
	struct sink sink;
	struct diag diag = sink_diag(&sink);
	int r;

	memcpy(blob + field, &be, sizeof(be));
	r = parse_copy(blob, size, 0, &cfg, &diag);
	if (r != -EBADMSG)
		print_error("header field at offset %zu set to 0x%" PRIx32 ": %d\n", field, val, r);
	assert_int_equal(r, -EBADMSG);
	assert_config_empty(&cfg);
	assert_int_equal(sink.n_errors, 1);
	assert_reported(&sink, DIAG_ERROR, "Could not parse the device-tree blob: ", word);
	free(blob);
}

#define HDR(field) offsetof(struct fdt_header, field)

static void test_header_fields(void **state)
{
	size_t size;
	void *blob = example_blob(&size);
	uint32_t total = (uint32_t)size;

	free(blob);
	check_header_change(HDR(magic), 0xdeadbeef, "bad magic 0xdeadbeef");
	check_header_change(HDR(magic), 0xedfe0dd0, "bad magic");
	check_header_change(HDR(totalsize), total + 1, "truncated");
	check_header_change(HDR(totalsize), UINT32_MAX, "truncated");
	check_header_change(HDR(totalsize), 20, "smaller than the header");
	check_header_change(HDR(totalsize), 0, "smaller than the header");
	check_header_change(HDR(off_dt_struct), total + 8, "FDT_ERR_");
	check_header_change(HDR(off_dt_struct), UINT32_MAX - 3, "FDT_ERR_");
	check_header_change(HDR(off_dt_strings), total + 1, "FDT_ERR_");
	check_header_change(HDR(off_dt_strings), UINT32_MAX, "FDT_ERR_");
	check_header_change(HDR(size_dt_struct), total, "FDT_ERR_");
	check_header_change(HDR(size_dt_struct), UINT32_MAX, "FDT_ERR_");
	check_header_change(HDR(size_dt_strings), total, "FDT_ERR_");
#if HAVE_FDT_CHECK_FULL
	/* Without fdt_check_full() nothing reads the reservation map: no harm, no error. */
	check_header_change(HDR(off_mem_rsvmap), total, "FDT_ERR_");
#endif
	check_header_change(HDR(version), 1, "FDT_ERR_BADVERSION");
	check_header_change(HDR(last_comp_version), 18, "FDT_ERR_BADVERSION");
}

/* The root node has an empty name: a blob where it has one is malformed. */
static void test_root_name(void **state)
{
	size_t size;
	char *blob = example_blob(&size);
	struct dt_config cfg;
	struct sink sink;
	struct diag diag = sink_diag(&sink);

	blob[fdt_off_dt_struct(blob) + 4] = 'X'; /* the first byte of the root's name */
	assert_int_equal(parse_copy(blob, size, 0, &cfg, &diag), -EBADMSG);
	assert_config_empty(&cfg);
	assert_reported(&sink, DIAG_ERROR, "Could not parse the device-tree blob: ");
	free(blob);
}

/* An unaligned blob is copied before libfdt sees it. */
static void test_unaligned(void **state)
{
	static const struct expect example[] = {
		{ "res0", RM "reserved@42000000", 0x42000000, 0x1000, C, false },
		{ "res1", RM "reserved@43000000", 0x43000000, 0x2000, NC, false },
		{ "res2", RM "reserved2@44000000", 0x44000000, 0x3000, C, false },
	};
	size_t size;
	void *blob = example_blob(&size);

	for (size_t shift = 1; shift < 8; shift++) {
		struct dt_config cfg;

		assert_int_equal(parse_copy(blob, size, shift, &cfg, NULL), 0);
		assert_regions(&cfg, example, ARRAY_SIZE(example));
		dt_config_finish(&cfg);
	}
	free(blob);
}

static uint64_t next_random(uint64_t *state)
{
	/* xorshift64*: deterministic, so a failing seed can be replayed. */
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* Values that reach the interesting branches when they land on a length, offset or cell. */
static const uint32_t interesting[] = {
	0,    1,    2,      3,          4,          8,          12,         0x7f,
	0x80, 0xff, 0x1000, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff,
};

static void mutate(uint8_t *blob, size_t size, uint64_t *rng)
{
	unsigned n = 1 + next_random(rng) % 4;

	for (unsigned i = 0; i < n; i++) {
		uint64_t x = next_random(rng);
		size_t at = (size_t)(x >> 8) % size;
		fdt32_t be;

		switch (x % 3) {
		case 0:
			blob[at] ^= (uint8_t)(1u << ((x >> 40) % 8));
			break;
		case 1:
			blob[at] = (uint8_t)(x >> 40);
			break;
		default:
			be = cpu_to_fdt32(interesting[(x >> 40) % ARRAY_SIZE(interesting)]);
			at &= ~(size_t)3;
			if (at + 4 <= size)
				memcpy(blob + at, &be, 4);
		}
	}
}

/* What a successful parse promises, checked the slow and obvious way. */
static void assert_sane(const struct dt_config *cfg)
{
	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct dt_region *a = &cfg->regions[i];

		assert_true(a->size > 0);
		assert_true(a->size - 1 <= UINT64_MAX - a->base);
		assert_true(a->label[0] != '\0');
		assert_non_null(memchr(a->label, '\0', sizeof(a->label)));
		assert_non_null(a->path);
		assert_int_equal(a->path[0], '/');
		assert_true((unsigned)a->attr < SMH_REG_ATTR_NUM);
		for (size_t j = 0; j < i; j++) {
			const struct dt_region *b = &cfg->regions[j];

			assert_string_not_equal(a->label, b->label);
			assert_true(a->base > b->base + (b->size - 1) ||
				    b->base > a->base + (a->size - 1));
		}
	}
}

static void fuzz_blob(const void *seed, size_t size, uint64_t first, uint64_t n)
{
	uint8_t *blob = malloc(size);

	assert_non_null(blob);
	for (uint64_t i = first; i < first + n; i++) {
		uint64_t rng = i * 0x9e3779b97f4a7c15ull + 1;
		struct dt_config cfg;
		struct sink sink;
		struct diag diag = sink_diag(&sink);
		int r;

		memcpy(blob, seed, size);
		mutate(blob, size, &rng);
		r = parse_copy(blob, size, i % 2, &cfg, &diag);
		if (r == 0) {
			assert_int_equal(sink.n_errors, 0);
			assert_sane(&cfg);
			dt_config_finish(&cfg);
		} else {
			if (r != -EBADMSG && r != -EINVAL)
				print_error("seed %" PRIu64 ": %d\n", i, r);
			assert_true(r == -EBADMSG || r == -EINVAL);
			assert_config_empty(&cfg);
			assert_true(sink.n_errors > 0);
		}
	}
	free(blob);
}

static void test_random_mutations(void **state)
{
	size_t size;
	void *blob = example_blob(&size);

	fuzz_blob(blob, size, 0, 20000);
	free(blob);
}

/* Mutations of every fixture, to reach the branches the example does not have. */
static void test_random_mutations_fixtures(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(good_cases) + ARRAY_SIZE(bad_cases); i++) {
		const char *name = i < ARRAY_SIZE(good_cases)
					   ? good_cases[i].name
					   : bad_cases[i - ARRAY_SIZE(good_cases)].name;
		char *path = fixture_path(name);
		size_t size;
		void *blob = slurp(path, &size);

		fuzz_blob(blob, size, i << 32, 1000);
		free(blob);
		free(path);
	}
}

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

static void test_load_example(void **state)
{
	static const struct expect example[] = {
		{ "res0", RM "reserved@42000000", 0x42000000, 0x1000, C, false },
		{ "res1", RM "reserved@43000000", 0x43000000, 0x2000, NC, false },
		{ "res2", RM "reserved2@44000000", 0x44000000, 0x3000, C, false },
	};
	struct dt_config cfg = { 0 };
	struct sink sink;
	struct diag diag = sink_diag(&sink);

	assert_int_equal(dt_load(env("SMH_EXAMPLE_DTB"), &cfg, &diag), 0);
	assert_regions(&cfg, example, ARRAY_SIZE(example));
	assert_int_equal(sink.n_errors + sink.n_warnings, 0);
	dt_config_finish(&cfg);
	assert_config_empty(&cfg);
}

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

static const struct CMUnitTest other_tests[] = {
	cmocka_unit_test(test_bad_many_reports_all),
	cmocka_unit_test(test_bad_cases_cover_fixtures),
	cmocka_unit_test(test_truncations),
	cmocka_unit_test(test_truncations_consistent_header),
	cmocka_unit_test(test_header_fields),
	cmocka_unit_test(test_root_name),
	cmocka_unit_test(test_unaligned),
	cmocka_unit_test(test_random_mutations),
	cmocka_unit_test(test_random_mutations_fixtures),
	cmocka_unit_test(test_read_missing),
	cmocka_unit_test(test_read_unreadable),
	cmocka_unit_test(test_read_short),
	cmocka_unit_test(test_read_bad_header),
	cmocka_unit_test(test_read_padded),
	cmocka_unit_test(test_read_short_reads_and_eintr),
	cmocka_unit_test(test_read_io_error),
	cmocka_unit_test(test_load_example),
	cmocka_unit_test(test_finish_zeroed),
	cmocka_unit_test(test_null_diag),
	cmocka_unit_test(test_enomem),
};

int main(void)
{
	struct CMUnitTest
		tests[ARRAY_SIZE(good_cases) + ARRAY_SIZE(bad_cases) + ARRAY_SIZE(other_tests)];
	size_t n = 0;

	/* One test per fixture, named after it. */
	for (size_t i = 0; i < ARRAY_SIZE(good_cases); i++)
		tests[n++] = (struct CMUnitTest){ .name = good_cases[i].name,
						  .test_func = test_good,
						  .initial_state = &good_cases[i] };
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++)
		tests[n++] = (struct CMUnitTest){ .name = bad_cases[i].name,
						  .test_func = test_bad,
						  .initial_state = &bad_cases[i] };
	for (size_t i = 0; i < ARRAY_SIZE(other_tests); i++)
		tests[n++] = other_tests[i];
	return cmocka_run_group_tests_name("dt", tests, NULL, NULL);
}
