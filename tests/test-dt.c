/* SPDX-License-Identifier: MIT */
/*
 * Tests of the device-tree reader on blobs: the fixtures in tests/dt (good-*.dts give exact
 * regions and warnings, bad-*.dts are refused with a message naming the culprit node), and
 * corrupt blobs derived from the example blob (every truncation, broken header fields, 20000
 * random mutations). File reading and memory failures are in test-dt-read.c.
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

#include "config.h"
#include "tests/dt-harness.h"

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
	{ .name = "good-compat-unterminated",
	  .regions = { { "proper@43000000", RM "proper@43000000", 0x43000000, 0x1000, C,
			 false } } },
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
	uint32_t total = (uint32_t)size, rsvmap = fdt_off_mem_rsvmap(blob);

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
	/*
	 * libfdt would read its 64-bit entries unaligned: refused first. (LDRD, on 32-bit ARM,
	 * needs 4-byte alignment: + 1 was a SIGBUS there.)
	 */
	check_header_change(HDR(off_mem_rsvmap), rsvmap + 4,
			    "the memory reservation block is not 8-byte aligned");
	check_header_change(HDR(off_mem_rsvmap), rsvmap + 1,
			    "the memory reservation block is not 8-byte aligned");
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

		fuzz_blob(blob, size, (uint64_t)i << 32, 1000);
		free(blob);
		free(path);
	}
}

/* ---------------------------------------------------------------- hostile blobs */

/*
 * 86 bytes whose only property has length 0xfffffff4: libfdt 1.6.1's fdt_next_tag() steps
 * backwards on it and fdt_check_full() never returns (found by fuzzing).
 */
static const uint8_t wrapping_property[] = {
	0xd0, 0x0d, 0xfe, 0xed, 0x00, 0x00, 0x00, 0x56, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
	0x54, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xff, 0xf4, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x78, 0x00,
};

static void assert_blob_refused(const void *blob, size_t size, const char *word)
{
	struct dt_config cfg;
	struct sink sink;
	struct diag diag = sink_diag(&sink);

	assert_int_equal(parse_copy(blob, size, 0, &cfg, &diag), -EBADMSG);
	assert_config_empty(&cfg);
	assert_reported(&sink, DIAG_ERROR, "Could not parse the device-tree blob: ", word);
}

static void test_wrapping_property_length(void **state)
{
	assert_int_equal(sizeof(wrapping_property), 86);
	assert_blob_refused(wrapping_property, sizeof(wrapping_property), "wraps around");
}

/*
 * 72 bytes, version 2, whose root node is named "" rather than "/": libfdt 1.6.1's
 * fdt_get_name() returns NULL for it and fdt_check_full() dereferences that (found by fuzzing).
 */
static const uint8_t root_name_v2[] = {
	0xd0, 0x0d, 0xfe, 0xed, 0x00, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
	0x48, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09,
};

static void test_old_version_root_name(void **state)
{
	assert_int_equal(sizeof(root_name_v2), 72);
	assert_blob_refused(root_name_v2, sizeof(root_name_v2), "older than version 16");
}

static void test_unaligned_structure_block(void **state)
{
	size_t size;
	char *blob = example_blob(&size);
	fdt32_t off = cpu_to_fdt32(fdt_off_dt_struct(blob) + 2);

	memcpy(blob + offsetof(struct fdt_header, off_dt_struct), &off, sizeof(off));
	assert_blob_refused(blob, size, "not 4-byte aligned");
	free(blob);
}

/*
 * A blob made with libfdt's sequential-write API: /reserved-memory (1 address and 1 size cell)
 * with @n_nodes shared-multi-heap children of 4 KiB each (size 0 when @zero_size), the first
 * one with an extra property named @prop_name (none when NULL).
 */
static void *make_blob(unsigned n_nodes, bool zero_size, const char *prop_name, size_t *sizep)
{
	size_t cap = 4096 + n_nodes * 256u + (prop_name ? strlen(prop_name) : 0);
	void *fdt = malloc(cap);
	char name[32];

	assert_non_null(fdt);
	assert_int_equal(fdt_create(fdt, (int)cap), 0);
	assert_int_equal(fdt_finish_reservemap(fdt), 0);
	assert_int_equal(fdt_begin_node(fdt, ""), 0);
	assert_int_equal(fdt_begin_node(fdt, "reserved-memory"), 0);
	assert_int_equal(fdt_property_u32(fdt, "#address-cells", 1), 0);
	assert_int_equal(fdt_property_u32(fdt, "#size-cells", 1), 0);
	for (unsigned i = 0; i < n_nodes; i++) {
		fdt32_t reg[2] = { cpu_to_fdt32(0x40000000 + i * 0x1000),
				   cpu_to_fdt32(zero_size ? 0 : 0x1000) };

		snprintf(name, sizeof(name), "r@%x", 0x40000000 + i * 0x1000);
		assert_int_equal(fdt_begin_node(fdt, name), 0);
		assert_int_equal(fdt_property_string(fdt, "compatible", "shared-multi-heap"), 0);
		assert_int_equal(fdt_property(fdt, "reg", reg, sizeof(reg)), 0);
		assert_int_equal(fdt_property_string(fdt, "capability", "cacheable"), 0);
		if (i == 0 && prop_name)
			assert_int_equal(fdt_property_u32(fdt, prop_name, 1), 0);
		assert_int_equal(fdt_end_node(fdt), 0);
	}
	assert_int_equal(fdt_end_node(fdt), 0);
	assert_int_equal(fdt_end_node(fdt), 0);
	assert_int_equal(fdt_finish(fdt), 0);
	*sizep = fdt_totalsize(fdt);
	return fdt;
}

/* Names up to 255 bytes pass; longer ones would make every lookup cost their length. */
static void test_property_name_length(void **state)
{
	char name[300];
	struct dt_config cfg;
	size_t size;
	void *blob;

	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	blob = make_blob(1, false, name, &size);
	assert_int_equal(parse_copy(blob, size, 0, &cfg, NULL), 0);
	assert_int_equal(cfg.n_regions, 1);
	dt_config_finish(&cfg);
	free(blob);
	name[255] = 'n';
	name[256] = '\0';
	blob = make_blob(1, false, name, &size);
	assert_blob_refused(blob, size, "longer than 255 bytes");
	free(blob);
}

static void test_region_limit(void **state)
{
	struct dt_config cfg;
	struct sink sink;
	struct diag diag = sink_diag(&sink);
	size_t size;
	void *blob = make_blob(DT_REGIONS_MAX, false, NULL, &size);

	assert_int_equal(parse_copy(blob, size, 0, &cfg, &diag), 0);
	assert_int_equal(cfg.n_regions, DT_REGIONS_MAX);
	dt_config_finish(&cfg);
	free(blob);
	blob = make_blob(DT_REGIONS_MAX + 1, false, NULL, &size);
	assert_int_equal(parse_copy(blob, size, 0, &cfg, &diag), -EINVAL);
	assert_config_empty(&cfg);
	assert_int_equal(sink.n_errors, 1);
	assert_reported(&sink, DIAG_ERROR, "/reserved-memory/r@40400000: ", "more than 1024");
	free(blob);
}

struct counter {
	unsigned n;
	char last[512];
};

static void count_message(void *data, enum diag_level level, const char *msg)
{
	struct counter *c = data;

	c->n++;
	snprintf(c->last, sizeof(c->last), "%s: %s", diag_level_name(level), msg);
}

/* 150 broken nodes: 100 messages, then one that counts the other 50. */
static void test_message_cap(void **state)
{
	struct counter counter = { 0 };
	struct diag diag = { count_message, &counter };
	struct dt_config cfg;
	size_t size;
	void *blob = make_blob(150, true, NULL, &size);

	assert_int_equal(parse_copy(blob, size, 0, &cfg, &diag), -EINVAL);
	assert_int_equal(counter.n, DT_MESSAGES_MAX + 1);
	assert_string_equal(counter.last, "error: 50 more problems not shown (50 of them errors)");
	free(blob);
}

/* A node name with a byte outside the specification's set is an error, not printed raw. */
static void test_node_name_bytes(void **state)
{
	static const char *const bad = "\x1b\xe9\"/";
	size_t size;
	char *blob = example_blob(&size);
	char *name = memmem(blob + fdt_off_dt_struct(blob), fdt_size_dt_struct(blob),
			    "reserved@43000000", 17);

	assert_non_null(name);
	for (const char *b = bad; *b; b++) {
		struct dt_config cfg;
		struct sink sink;
		struct diag diag = sink_diag(&sink);
		char byte[8];

		name[3] = *b;
		snprintf(byte, sizeof(byte), "0x%02x", (unsigned char)*b);
		assert_int_equal(parse_copy(blob, size, 0, &cfg, &diag), -EINVAL);
		assert_reported(&sink, DIAG_ERROR, "invalid byte", byte);
	}
	free(blob);
}

/* ---------------------------------------------------------------- whole load */

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
	cmocka_unit_test(test_load_example),
	cmocka_unit_test(test_wrapping_property_length),
	cmocka_unit_test(test_old_version_root_name),
	cmocka_unit_test(test_unaligned_structure_block),
	cmocka_unit_test(test_property_name_length),
	cmocka_unit_test(test_region_limit),
	cmocka_unit_test(test_message_cap),
	cmocka_unit_test(test_node_name_bytes),
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
