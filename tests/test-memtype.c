/* SPDX-License-Identifier: MIT */
/*
 * The kernel's rule for the memory type of a /dev/mem mapping (core/memtype.c), on the
 * /proc/iomem fixtures of tests/doctor/ and PAT lists written here: every architecture, open
 * mode and answer of the files, including the ones that leave the type unknown.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/memtype.h"

/* tests/doctor/FILE's text. */
static char *fixture(const char *name)
{
	char path[512];
	const char *root = getenv("SMH_SOURCE_ROOT");
	FILE *f;
	char *text = calloc(1, 65536);
	size_t n;

	assert_non_null(root);
	assert_non_null(text);
	snprintf(path, sizeof(path), "%s/tests/doctor/%s", root, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, 65535, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static struct memtype_result decide(enum memtype_arch arch, int sync, uint64_t phys,
				    const char *iomem, const char *pat)
{
	struct memtype_input in = { .arch = arch,
				    .sync = sync,
				    .phys = phys,
				    .size = 0x100000,
				    .iomem = iomem,
				    .pat = pat };
	struct memtype_result out;

	memset(&out, 0x7f, sizeof(out));
	memtype_decide(&in, &out);
	assert_non_null(memchr(out.text, '\0', sizeof(out.text)));
	return out;
}

/* iomem-board.txt: 0x70000000 is no-map ("reserved"), 0x70200000 is in System RAM. */
static void test_system_ram(void **state)
{
	char *board = fixture("iomem-board.txt"), *hidden = fixture("iomem-hidden.txt");

	assert_int_equal(memtype_in_system_ram(board, 0x70000000), 0);
	assert_int_equal(memtype_in_system_ram(board, 0x701fffff), 0);
	assert_int_equal(memtype_in_system_ram(board, 0x70200000), 1);
	assert_int_equal(memtype_in_system_ram(board, 0x7fffffff), 1);
	assert_int_equal(memtype_in_system_ram(board, 0x40000000), 1);
	assert_int_equal(memtype_in_system_ram(board, 0x09000000), 0); /* a device */
	assert_int_equal(memtype_in_system_ram(board, 0x80000000), 0); /* nothing */
	/* Nested entries are parts of the one above: "reserved" inside System RAM is in it. */
	assert_int_equal(memtype_in_system_ram(board, 0x70250000), 1);
	assert_int_equal(memtype_in_system_ram(hidden, 0x70200000), -1);
	assert_int_equal(memtype_in_system_ram(NULL, 0x70200000), -1);
	assert_int_equal(memtype_in_system_ram("", 0x70200000), -1);
	/* The name must be exactly System RAM, at the top level. */
	assert_int_equal(memtype_in_system_ram("1000-1fff : System RAMish\n", 0x1000), 0);
	assert_int_equal(memtype_in_system_ram("0-ff : x\n  1000-1fff : System RAM\n", 0x1000), 0);
	free(board);
	free(hidden);
}

static void test_arm64(void **state)
{
	char *board = fixture("iomem-board.txt"), *hidden = fixture("iomem-hidden.txt");
	struct memtype_result r;

	for (int sync = 0; sync <= 1; sync++) {
		r = decide(MEMTYPE_ARCH_ARM64, sync, 0x70000000, board, NULL);
		assert_int_equal(r.type, MEMTYPE_DEVICE);
		assert_string_equal(r.text,
				    "Device memory, uncached (no-map: not in the linear map)");
		r = decide(MEMTYPE_ARCH_ARM, sync, 0x70000000, board, NULL);
		assert_int_equal(r.type, MEMTYPE_DEVICE);
		assert_string_equal(r.text,
				    "Device memory, strongly ordered (no-map: not in linear map)");
		r = decide(MEMTYPE_ARCH_ARM64, sync, 0x70000000, hidden, NULL);
		assert_int_equal(r.type, MEMTYPE_UNKNOWN);
		assert_string_equal(r.text, "unknown (/proc/iomem unreadable: in the linear map?)");
		r = decide(MEMTYPE_ARCH_ARM, sync, 0x70000000, NULL, NULL);
		assert_int_equal(r.type, MEMTYPE_UNKNOWN);
	}
	r = decide(MEMTYPE_ARCH_ARM64, 0, 0x70200000, board, NULL);
	assert_int_equal(r.type, MEMTYPE_CACHED);
	assert_string_equal(r.text, "cached write-back (in the linear map, no O_SYNC)");
	r = decide(MEMTYPE_ARCH_ARM, 1, 0x70200000, board, NULL);
	assert_int_equal(r.type, MEMTYPE_WRITE_COMBINE);
	assert_string_equal(r.text, "write-combine, Normal uncached (linear map, O_SYNC)");
	free(board);
	free(hidden);
}

static const char pat_new[] = "PAT memtype list:\n"
			      "PAT: [mem 0x00000000bffe0000-0x00000000c0000000] write-back\n"
			      "PAT: [mem 0x0000000070000000-0x0000000070100000] uncached-minus\n"
			      "PAT: [mem 0x0000000070100000-0x0000000070200000] write-back\n"
			      "PAT: [mem 0x00000000fd000000-0x00000000fe000000] write-combining\n";
static const char pat_old[] = "PAT memtype list:\n"
			      "uncached-minus @ 0x70000000-0x70100000\n"
			      "write-through @ 0x70100000-0x70200000\n";

static void test_pat_lookup(void **state)
{
	char name[24];

	assert_int_equal(memtype_pat_lookup(pat_new, 0x70000000, 0x100000, name, sizeof(name)),
			 MEMTYPE_UNCACHED);
	assert_string_equal(name, "uncached-minus");
	assert_int_equal(memtype_pat_lookup(pat_new, 0xfd000000, 0x1000, name, sizeof(name)),
			 MEMTYPE_WRITE_COMBINE);
	assert_int_equal(memtype_pat_lookup(pat_new, 0xbffe0000, 0x20000, name, sizeof(name)),
			 MEMTYPE_CACHED);
	/* Covered by two entries, not one: not what one mapping got. */
	assert_int_equal(memtype_pat_lookup(pat_new, 0x700ff000, 0x2000, name, sizeof(name)),
			 MEMTYPE_UNKNOWN);
	assert_string_equal(name, "");
	assert_int_equal(memtype_pat_lookup(pat_new, 0x80000000, 0x1000, name, sizeof(name)),
			 MEMTYPE_UNKNOWN);
	assert_int_equal(memtype_pat_lookup(NULL, 0x70000000, 0x1000, name, sizeof(name)),
			 MEMTYPE_UNKNOWN);
	/* The older format; a type that is none of ours is named but unknown. */
	assert_int_equal(memtype_pat_lookup(pat_old, 0x70000000, 0x100000, name, sizeof(name)),
			 MEMTYPE_UNCACHED);
	assert_int_equal(memtype_pat_lookup(pat_old, 0x70100000, 0x100000, name, sizeof(name)),
			 MEMTYPE_UNKNOWN);
	assert_string_equal(name, "write-through");
}

static void test_x86(void **state)
{
	struct memtype_result r;

	r = decide(MEMTYPE_ARCH_X86, 1, 0x70000000, NULL, pat_new);
	assert_int_equal(r.type, MEMTYPE_UNCACHED);
	assert_string_equal(r.text, "uncached (O_SYNC; PAT list: uncached-minus)");
	r = decide(MEMTYPE_ARCH_X86, 0, 0x70100000, NULL, pat_new);
	assert_int_equal(r.type, MEMTYPE_CACHED);
	assert_string_equal(r.text, "write-back (no O_SYNC; PAT list: write-back)");
	/* What the list says wins over the rule: it is what was granted. */
	r = decide(MEMTYPE_ARCH_X86, 0, 0x70000000, NULL, pat_new);
	assert_int_equal(r.type, MEMTYPE_UNCACHED);
	assert_string_equal(r.text, "write-back (no O_SYNC; PAT list: uncached-minus)");
	r = decide(MEMTYPE_ARCH_X86, 0, 0x70000000, NULL, NULL);
	assert_int_equal(r.type, MEMTYPE_CACHED);
	assert_string_equal(r.text, "write-back (no O_SYNC; kernel's rule, PAT list unreadable)");
	r = decide(MEMTYPE_ARCH_X86, 1, 0x80000000, NULL, pat_new);
	assert_int_equal(r.type, MEMTYPE_UNCACHED);
	assert_string_equal(r.text, "uncached (O_SYNC; kernel's rule, PAT list lacks it)");
}

static void test_other_and_names(void **state)
{
	char *board = fixture("iomem-board.txt");
	enum memtype_arch arch = MEMTYPE_ARCH_X86;
	struct memtype_result r = decide(MEMTYPE_ARCH_OTHER, 0, 0x70200000, board, pat_new);

	assert_int_equal(r.type, MEMTYPE_UNKNOWN);
	assert_string_equal(r.text, "unknown (no rule known for this architecture)");
	assert_string_equal(memtype_name(MEMTYPE_UNKNOWN), "unknown");
	assert_string_equal(memtype_name(MEMTYPE_CACHED), "cached");
	assert_string_equal(memtype_name(MEMTYPE_WRITE_COMBINE), "write-combine");
	assert_string_equal(memtype_name(MEMTYPE_UNCACHED), "uncached");
	assert_string_equal(memtype_name(MEMTYPE_DEVICE), "device");
	assert_string_equal(memtype_name((enum memtype)MEMTYPE_NUM), "unknown");
	assert_int_equal(memtype_arch_from_name("arm64", &arch), 0);
	assert_int_equal(arch, MEMTYPE_ARCH_ARM64);
	assert_int_equal(memtype_arch_from_name("arm", &arch), 0);
	assert_int_equal(arch, MEMTYPE_ARCH_ARM);
	assert_int_equal(memtype_arch_from_name("riscv", &arch), -EINVAL);
	assert_int_equal(arch, MEMTYPE_ARCH_ARM);
#if defined(__x86_64__)
	assert_int_equal(memtype_host_arch(), MEMTYPE_ARCH_X86);
#elif defined(__aarch64__)
	assert_int_equal(memtype_host_arch(), MEMTYPE_ARCH_ARM64);
#endif
	free(board);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_ram),      cmocka_unit_test(test_arm64),
		cmocka_unit_test(test_pat_lookup),      cmocka_unit_test(test_x86),
		cmocka_unit_test(test_other_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
