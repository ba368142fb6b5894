/* SPDX-License-Identifier: MIT */
/*
 * smh_buffer_write/read/fill: every combination of buffer alignment, offset and length up to a
 * few words gives the bytes memcpy/memset would, touches nothing outside the range, and a
 * range past buf->size is refused with nothing touched. The buffers here are ordinary memory
 * (the helpers only need buf->addr and buf->size); the board test runs them on Device memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smh/client.h"

#define GUARD    64 /* bytes around the buffer that must stay untouched */
#define BUF_SIZE 48
#define POISON   0xa5

static _Alignas(8) unsigned char arena[GUARD + 8 + BUF_SIZE + GUARD];

/* A buffer of BUF_SIZE bytes at @misalign bytes past an 8-aligned address, arena poisoned. */
static struct smh_buffer buffer_at(size_t misalign)
{
	struct smh_buffer buf = { .fd = -1, .size = BUF_SIZE };

	memset(arena, POISON, sizeof(arena));
	buf.addr = arena + GUARD + misalign;
	return buf;
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7 + 1);
}

/* The arena as it must be: poison, and @len bytes of @bytes at @off of the buffer. */
static void assert_arena(size_t misalign, uint64_t off, const unsigned char *bytes, size_t len)
{
	unsigned char want[sizeof(arena)];

	memset(want, POISON, sizeof(want));
	if (len > 0)
		memcpy(want + GUARD + misalign + off, bytes, len);
	assert_memory_equal(arena, want, sizeof(arena));
}

static void test_write_every_edge(void **state)
{
	unsigned char src[BUF_SIZE];

	for (size_t mis = 0; mis < 8; mis++)
		for (uint64_t off = 0; off <= 17; off++)
			for (size_t len = 0; off + len <= BUF_SIZE; len++) {
				struct smh_buffer buf = buffer_at(mis);

				pattern(src, len, (unsigned)(mis + off + len));
				assert_int_equal(smh_buffer_write(&buf, off, src, len), 0);
				assert_arena(mis, off, src, len);
			}
}

static void test_read_every_edge(void **state)
{
	unsigned char want[BUF_SIZE], got[BUF_SIZE + 16];

	for (size_t mis = 0; mis < 8; mis++)
		for (uint64_t off = 0; off <= 17; off++)
			for (size_t len = 0; off + len <= BUF_SIZE; len++) {
				struct smh_buffer buf = buffer_at(mis);

				pattern(arena + GUARD + mis, BUF_SIZE, (unsigned)(mis + len));
				memcpy(want, arena + GUARD + mis + off, len);
				memset(got, 0x5a, sizeof(got));
				assert_int_equal(smh_buffer_read(&buf, off, got, len), 0);
				assert_memory_equal(got, want, len);
				/* Nothing written past @len bytes of @dst. */
				for (size_t i = len; i < sizeof(got); i++)
					assert_int_equal(got[i], 0x5a);
			}
}

static void test_fill_every_edge(void **state)
{
	unsigned char want[BUF_SIZE];

	for (size_t mis = 0; mis < 8; mis++)
		for (uint64_t off = 0; off <= 17; off++)
			for (size_t len = 0; off + len <= BUF_SIZE; len++) {
				struct smh_buffer buf = buffer_at(mis);

				memset(want, 0x3c, len);
				assert_int_equal(smh_buffer_fill(&buf, off, 0x3c, len), 0);
				assert_arena(mis, off, want, len);
			}
}

static void test_fill_zero_and_ff(void **state)
{
	struct smh_buffer buf = buffer_at(0);
	unsigned char want[BUF_SIZE];

	memset(want, 0, sizeof(want));
	assert_int_equal(smh_buffer_fill(&buf, 0, 0, BUF_SIZE), 0);
	assert_arena(0, 0, want, BUF_SIZE);
	memset(want, 0xff, sizeof(want));
	assert_int_equal(smh_buffer_fill(&buf, 0, 0xff, BUF_SIZE), 0);
	assert_arena(0, 0, want, BUF_SIZE);
}

/* Out of range: -ERANGE and the arena (and @dst) untouched. */
static void test_bounds(void **state)
{
	static const struct {
		uint64_t off;
		size_t len;
	} bad[] = {
		{ BUF_SIZE + 1, 0 }, { BUF_SIZE, 1 }, { 0, BUF_SIZE + 1 }, { 1, BUF_SIZE },
		{ UINT64_MAX, 1 },   { 8, SIZE_MAX }, { UINT64_MAX, 0 },   { BUF_SIZE - 3, 4 },
	};
	unsigned char bytes[BUF_SIZE + 1], dst[BUF_SIZE + 1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct smh_buffer buf = buffer_at(3);

		memset(bytes, 0x11, sizeof(bytes));
		memset(dst, 0x22, sizeof(dst));
		/* The length checked is bad[i].len: the buffers are never reached. */
		assert_int_equal(smh_buffer_write(&buf, bad[i].off, bytes, bad[i].len), -ERANGE);
		assert_int_equal(smh_buffer_fill(&buf, bad[i].off, 0x33, bad[i].len), -ERANGE);
		assert_int_equal(smh_buffer_read(&buf, bad[i].off, dst, bad[i].len), -ERANGE);
		assert_arena(3, 0, NULL, 0);
		for (size_t k = 0; k < sizeof(dst); k++)
			assert_int_equal(dst[k], 0x22);
	}
}

static void test_whole_and_empty_at_end(void **state)
{
	struct smh_buffer buf = buffer_at(5);
	unsigned char src[BUF_SIZE];

	pattern(src, sizeof(src), 9);
	assert_int_equal(smh_buffer_write(&buf, 0, src, BUF_SIZE), 0);
	assert_arena(5, 0, src, BUF_SIZE);
	/* An empty range at the very end is inside. */
	assert_int_equal(smh_buffer_write(&buf, BUF_SIZE, src, 0), 0);
	assert_int_equal(smh_buffer_read(&buf, BUF_SIZE, NULL, 0), 0);
	assert_int_equal(smh_buffer_fill(&buf, BUF_SIZE, 0, 0), 0);
	assert_arena(5, 0, src, BUF_SIZE);
}

static void test_invalid(void **state)
{
	struct smh_buffer buf = buffer_at(0), unmapped = { .fd = -1, .size = BUF_SIZE };
	unsigned char b[4] = { 0 };

	assert_int_equal(smh_buffer_write(NULL, 0, b, 1), -EINVAL);
	assert_int_equal(smh_buffer_read(NULL, 0, b, 1), -EINVAL);
	assert_int_equal(smh_buffer_fill(NULL, 0, 0, 1), -EINVAL);
	assert_int_equal(smh_buffer_write(&unmapped, 0, b, 1), -EINVAL);
	assert_int_equal(smh_buffer_read(&unmapped, 0, b, 1), -EINVAL);
	assert_int_equal(smh_buffer_fill(&unmapped, 0, 0, 1), -EINVAL);
	assert_int_equal(smh_buffer_write(&buf, 0, NULL, 1), -EINVAL);
	assert_int_equal(smh_buffer_read(&buf, 0, NULL, 1), -EINVAL);
	assert_int_equal(smh_buffer_write(&buf, 0, NULL, 0), 0);
	assert_arena(0, 0, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_every_edge),
		cmocka_unit_test(test_read_every_edge),
		cmocka_unit_test(test_fill_every_edge),
		cmocka_unit_test(test_fill_zero_and_ff),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_whole_and_empty_at_end),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
