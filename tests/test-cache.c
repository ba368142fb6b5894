/* SPDX-License-Identifier: MIT */
/*
 * Cache maintenance (client/client-cache.c, compiled in here to reach its line operations):
 * the lines a range touches, the range checks, what each memory type gets, and the real
 * instructions on this machine's memory.
 *
 * Plain checks, no CMocka, so that the same file also builds static for aarch64 and armhf and
 * runs under qemu-user (tests/cross/run-cache): there it shows that DC CVAC / DC CIVAC execute
 * at EL0 (no SIGILL) and touch the lines expected, and that 32-bit ARM refuses a cached
 * mapping. smh_buffer_mapping() is this file's: it returns the type the check sets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "client/client-cache.c"

static enum smh_mapping test_kind;
static unsigned n_passed, n_failed;

enum smh_mapping smh_buffer_mapping(const struct smh_buffer *buf)
{
	(void)buf;
	return test_kind;
}

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (cond) {                                                            \
			n_passed++;                                                    \
		} else {                                                               \
			if (n_failed++ < 20)                                           \
				printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                      \
	} while (0)

/* ---------------------------------------------------------------- counting operations */

static struct cache_ops real_ops;
static unsigned n_clean, n_flush, n_barrier;
static uintptr_t first_line, last_line;
static int lines_aligned;

static void note(uintptr_t line)
{
	if (n_clean + n_flush == 0)
		first_line = line;
	last_line = line;
	lines_aligned = lines_aligned && (line & (cache_ops.line_size() - 1)) == 0;
}

static void count_clean(uintptr_t line)
{
	note(line);
	n_clean++;
	if (real_ops.clean)
		real_ops.clean(line);
}

static void count_flush(uintptr_t line)
{
	note(line);
	n_flush++;
	if (real_ops.flush)
		real_ops.flush(line);
}

static void count_barrier(void)
{
	n_barrier++;
	if (real_ops.barrier)
		real_ops.barrier();
}

static size_t line_64(void)
{
	return 64;
}

/*
 * Counting operations; @real: calling this machine's instructions too, else 64-byte lines and
 * maintenance as if the architecture had it.
 */
static void install(int real)
{
	static const struct cache_ops none;

	real_ops = real ? cache_ops : none;
	if (!real) {
		/* Stepping is the same code on every architecture: check it on all of them. */
		cache_ops.maintains = true;
		cache_ops.line_size = line_64;
	}
	cache_ops.clean = count_clean;
	cache_ops.flush = count_flush;
	cache_ops.barrier = count_barrier;
}

static void reset(void)
{
	n_clean = n_flush = n_barrier = 0;
	lines_aligned = 1;
}

/* ---------------------------------------------------------------- checks */

static _Alignas(256) unsigned char arena[4096];

static struct smh_buffer buffer(size_t misalign, uint64_t size)
{
	return (struct smh_buffer){ .fd = -1, .size = size, .addr = arena + misalign };
}

/* Lines of @line bytes covering [@addr, @addr + @len). */
static unsigned lines(uintptr_t addr, size_t len, size_t line)
{
	if (len == 0)
		return 0;
	return (unsigned)(((addr + len - 1) / line) - (addr / line) + 1);
}

/* One sync on a cached mapping, 64-byte lines: the lines it touches and one barrier after. */
static void check_lines(size_t misalign, uint64_t offset, size_t len, int invalidate)
{
	struct smh_buffer b = buffer(misalign, 1024);
	uintptr_t start = (uintptr_t)arena + misalign + offset;
	unsigned want = lines(start, len, 64);
	int err;

	reset();
	err = invalidate ? smh_sync_for_cpu(&b, offset, len) : smh_sync_for_device(&b, offset, len);
	CHECK(err == 0);
	CHECK((invalidate ? n_flush : n_clean) == want);
	CHECK((invalidate ? n_clean : n_flush) == 0);
	CHECK(n_barrier == 1);
	CHECK(lines_aligned);
	if (want > 0) {
		CHECK(first_line == (start & ~(uintptr_t)63));
		CHECK(last_line == ((start + len - 1) & ~(uintptr_t)63));
	}
}

static void check_stepping(void)
{
	static const size_t lens[] = { 0, 1, 2, 63, 64, 65, 127, 128, 129, 200, 1000 };

	test_kind = SMH_MAPPING_CACHED;
	for (size_t mis = 0; mis < 3; mis++)
		for (uint64_t off = 0; off <= 24; off += 1)
			for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
				if (off + lens[i] <= 1024)
					for (int inv = 0; inv <= 1; inv++)
						check_lines(mis * 31, off, lens[i], inv);
	/* Exactly one line when the range is one line, at the buffer's end too. */
	check_lines(0, 960, 64, 0);
	check_lines(0, 1023, 1, 1);
	/* Unknown is maintained as cached (harmless if it is not). */
	test_kind = SMH_MAPPING_UNKNOWN;
	check_lines(5, 10, 100, 0);
}

static void check_ranges(void)
{
	struct smh_buffer b = buffer(0, 100), unmapped = { .fd = -1, .size = 100 };

	test_kind = SMH_MAPPING_CACHED;
	reset();
	CHECK(smh_sync_for_device(NULL, 0, 1) == -EINVAL);
	CHECK(smh_sync_for_cpu(&unmapped, 0, 1) == -EINVAL);
	CHECK(smh_sync_for_device(&b, 0, 101) == -ERANGE);
	CHECK(smh_sync_for_cpu(&b, 100, 1) == -ERANGE);
	CHECK(smh_sync_for_cpu(&b, 101, 0) == -ERANGE);
	CHECK(smh_sync_for_device(&b, 99, 2) == -ERANGE);
	CHECK(smh_sync_for_device(&b, UINT64_MAX, 2) == -ERANGE);
	CHECK(smh_sync_for_cpu(&b, 1, SIZE_MAX) == -ERANGE);
	/* Refused: nothing touched, not even a barrier. */
	CHECK(n_clean + n_flush + n_barrier == 0);
	CHECK(smh_sync_for_device(&b, 100, 0) == 0);
	CHECK(n_clean + n_flush == 0 && n_barrier == 1);
}

/* Write-combine, uncached, Device: nothing is in the data cache, a barrier alone. */
static void check_not_cached(void)
{
	static const enum smh_mapping kinds[] = { SMH_MAPPING_WRITE_COMBINE, SMH_MAPPING_UNCACHED,
						  SMH_MAPPING_DEVICE };
	struct smh_buffer b = buffer(0, 1024);

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		test_kind = kinds[i];
		reset();
		CHECK(smh_sync_for_device(&b, 0, 1024) == 0);
		CHECK(smh_sync_for_cpu(&b, 3, 500) == 0);
		CHECK(n_clean + n_flush == 0 && n_barrier == 2);
	}
}

/* Where user space cannot maintain the cache: a cached mapping is refused, with nothing run. */
static void check_refused(void)
{
	struct smh_buffer b = buffer(0, 1024);

	cache_ops.maintains = false;
	test_kind = SMH_MAPPING_CACHED;
	reset();
	CHECK(smh_sync_for_device(&b, 0, 64) == -EOPNOTSUPP);
	CHECK(smh_sync_for_cpu(&b, 0, 64) == -EOPNOTSUPP);
	CHECK(smh_sync_for_cpu(&b, 0, 0) == -EOPNOTSUPP);
	CHECK(n_clean + n_flush + n_barrier == 0);
	test_kind = SMH_MAPPING_DEVICE;
	CHECK(smh_sync_for_cpu(&b, 0, 64) == 0 && n_barrier == 1);
	cache_ops.maintains = true;
}

/* This machine's own instructions on real memory, through the counting wrappers. */
static void check_real(void)
{
	struct smh_buffer b = buffer(0, sizeof(arena));
	size_t line = cache_ops.line_size();
	int want = ARCH_MAINTAINS ? 0 : -EOPNOTSUPP;

	printf("# line size %zu, maintains %d\n", line, (int)ARCH_MAINTAINS);
	CHECK(line >= 16 && line <= 2048 && (line & (line - 1)) == 0);
	memset(arena, 0x33, sizeof(arena));
	test_kind = SMH_MAPPING_CACHED;
	reset();
	CHECK(smh_sync_for_device(&b, 1, 3000) == want);
	if (ARCH_MAINTAINS)
		CHECK(n_clean == lines((uintptr_t)arena + 1, 3000, line) && n_barrier == 1);
	reset();
	CHECK(smh_sync_for_cpu(&b, 0, sizeof(arena)) == want);
	if (ARCH_MAINTAINS)
		CHECK(n_flush == sizeof(arena) / line && n_barrier == 1);
	/* Clean and invalidate lose nothing the CPU wrote. */
	CHECK(arena[0] == 0x33 && arena[sizeof(arena) - 1] == 0x33);
	test_kind = SMH_MAPPING_DEVICE;
	reset();
	CHECK(smh_sync_for_device(&b, 0, 64) == 0 && n_barrier == 1);
}

int main(void)
{
	install(1);
	check_real();
	install(0);
	check_stepping();
	check_ranges();
	check_not_cached();
	check_refused();
	printf("%u passed, %u failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}
