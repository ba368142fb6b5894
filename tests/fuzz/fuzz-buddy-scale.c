/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the buddy allocator at the scale where its index leaves the heap. fuzz-buddy
 * checks every placement on ranges of at most 256 granules, whose tables stay small; here
 * thousands of live allocations in up to 2^20 granules make the allocation table and the run
 * array large enough to be mapped (64 KiB and more), so that they grow by mremap(), move to a
 * new table a few entries at a time, shrink in place and hand their memory over.
 *
 * Input: byte 0 chooses the granule (64 or 4096; bit 1) and whether an unmap function is set
 * (bit 0): it makes what it is handed inaccessible (PROT_NONE) instead of unmapping it, until
 * the end, so that the allocator reading memory it gave away faults. With it, bit 2 sets a
 * populate function too, which faults a new table in at once or leaves it alone (as a thread
 * that has not run yet), at random: the allocator keeps the table aside until it is in, and
 * takes it when it must, or gives it back when the count turns. Byte 1: the range,
 * 2^12 to 2^20 granules from an odd base. Then 3-byte operations: bulk allocations (up to 8192
 * at a time, of 1 to 4 granules, or of mixed sizes), freeing every k-th allocation (free runs
 * between the survivors: a large run array), freeing a share or all of them in a shuffled
 * order (the tables shrink), single aligned allocations, resizes and reservations.
 *
 * Checked after every operation, against a shadow of the live allocations: buddy_check(), the
 * counters, each allocation inside the range, aligned, of the usable size buddy_alloc_size()
 * reports, and no two overlapping; a reservation accepted exactly when it meets no live
 * allocation. At the end everything is freed and the allocator must be as new.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/buddy.h"
#include "tests/fuzz/fuzz.h"

#define LIVE_MAX   16384
#define HANDED_MAX 4096

struct live {
	uint64_t addr, size; /* size: usable bytes */
};

struct state {
	struct buddy *b;
	uint64_t granule, lo, last; /* [lo, last]: the range's whole granules */
	struct live *live, *sorted;
	size_t n_live;
	uint64_t rng;
	struct {
		void *addr;
		size_t len;
	} handed[HANDED_MAX];
	size_t n_handed;
};

/* Takes what the allocator gives back, and makes it fault if the allocator still reads it. */
static void quarantine(void *data, void *addr, size_t len)
{
	struct state *s = data;
	unsigned char *a = addr;

	for (size_t i = 0; i < s->n_handed; i++) { /* never the same memory twice */
		unsigned char *b = s->handed[i].addr;

		FUZZ_CHECK(a + len <= b || b + s->handed[i].len <= a);
	}
	if (s->n_handed == HANDED_MAX) {
		FUZZ_CHECK(munmap(addr, len) == 0);
		return;
	}
	FUZZ_CHECK(mprotect(addr, len, PROT_NONE) == 0);
	s->handed[s->n_handed].addr = addr;
	s->handed[s->n_handed++].len = len;
}

static uint64_t next_rand(struct state *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/*
 * Faults a new table in (writing its zeros back: it must still be all zero), or leaves it
 * alone: not even read, which would map its pages and tell mincore() they are in.
 */
static void populate(void *data, void *addr, size_t len)
{
	struct state *s = data;
	unsigned char *a = addr;
	bool touch = next_rand(s) & 1;

	for (size_t i = 0; i < s->n_handed; i++) { /* not memory given back */
		unsigned char *b = s->handed[i].addr;

		FUZZ_CHECK(a + len <= b || b + s->handed[i].len <= a);
	}
	FUZZ_CHECK(len >= (64u << 10));
	for (size_t i = 0; touch && i < len; i += (size_t)sysconf(_SC_PAGESIZE)) {
		FUZZ_CHECK(a[i] == 0);
		a[i] = 0;
	}
}

static uint64_t round_up(uint64_t v, uint64_t granule)
{
	return (v + granule - 1) & ~(granule - 1);
}

static int by_addr(const void *a, const void *b)
{
	const struct live *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The shadow's allocations in address order (in s->sorted). */
static void sort_live(struct state *s)
{
	memcpy(s->sorted, s->live, s->n_live * sizeof(*s->live));
	qsort(s->sorted, s->n_live, sizeof(*s->sorted), by_addr);
}

/* Whether [addr, addr + size) meets a live allocation (s->sorted must be current). */
static bool meets_live(const struct state *s, uint64_t addr, uint64_t size)
{
	size_t lo = 0, hi = s->n_live;

	while (lo < hi) { /* the first one ending past addr */
		size_t mid = lo + (hi - lo) / 2;

		if (s->sorted[mid].addr + s->sorted[mid].size <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n_live && s->sorted[lo].addr < addr + size;
}

static void check_all(struct state *s)
{
	struct buddy_stats st;
	uint64_t used = 0, got;
	char why[256];

	if (buddy_check(s->b, why, sizeof(why)) != 0)
		fuzz_fail(__FILE__, __LINE__, why);
	sort_live(s);
	for (size_t i = 0; i < s->n_live; i++) {
		const struct live *l = &s->sorted[i];

		FUZZ_CHECK(l->addr >= s->lo && l->addr <= s->last && l->size > 0 &&
			   l->size - 1 <= s->last - l->addr);
		FUZZ_CHECK(i == 0 || s->sorted[i - 1].addr + s->sorted[i - 1].size <= l->addr);
		FUZZ_CHECK(buddy_alloc_size(s->b, l->addr, &got) == 0 && got == l->size);
		used += l->size;
	}
	buddy_stats(s->b, &st);
	FUZZ_CHECK(st.n_allocs == s->n_live);
	FUZZ_CHECK(st.used == used && st.free == st.total - used);
}

/* One allocation; returns false when refused (-ENOMEM) or the shadow is full. */
static bool alloc_one(struct state *s, uint64_t size, uint64_t align)
{
	uint64_t addr = 0, usable = 0;
	int ret;

	if (s->n_live == LIVE_MAX)
		return false;
	ret = buddy_alloc(s->b, size, align, &addr, &usable);
	if (ret == -ENOMEM)
		return false;
	FUZZ_CHECK(ret == 0);
	FUZZ_CHECK(usable == round_up(size, s->granule));
	FUZZ_CHECK(addr % s->granule == 0 && (align == 0 || addr % align == 0));
	FUZZ_CHECK(addr >= s->lo && addr <= s->last && usable - 1 <= s->last - addr);
	s->live[s->n_live++] = (struct live){ addr, usable };
	return true;
}

static void free_at(struct state *s, size_t i)
{
	FUZZ_CHECK(buddy_free(s->b, s->live[i].addr, s->live[i].size) == 0);
	s->live[i] = s->live[--s->n_live];
}

/* 64 to 8192 allocations of 1 to 4 granules (@p2 & 3 + 1), or of sizes that vary (@p2 & 4). */
static void op_bulk(struct state *s, uint8_t p1, uint8_t p2)
{
	size_t n = 64 * (1 + (size_t)(p1 % 128));

	for (size_t i = 0; i < n; i++) {
		uint64_t granules = p2 & 4 ? 1 + next_rand(s) % 8 : (uint64_t)(p2 & 3) + 1;

		if (!alloc_one(s, granules * s->granule - (p2 >> 3) % s->granule, 0))
			break;
	}
}

/* Frees every k-th allocation in address order (k from 2 to 9): free runs between the rest. */
static void op_every_kth(struct state *s, uint8_t p1, uint8_t p2)
{
	size_t k = 2 + p1 % 8, kept = 0;

	sort_live(s);
	for (size_t i = 0; i < s->n_live; i++) {
		if ((i + p2) % k == 0)
			FUZZ_CHECK(buddy_free(s->b, s->sorted[i].addr, 0) == 0);
		else
			s->sorted[kept++] = s->sorted[i];
	}
	memcpy(s->live, s->sorted, kept * sizeof(*s->live));
	s->n_live = kept;
}

/* Frees @p1/255 of them (all for 255), picked at random: the tables shrink as they go. */
static void op_free_share(struct state *s, uint8_t p1, uint8_t p2)
{
	size_t n = p1 == 255 ? s->n_live : s->n_live * p1 / 255;

	s->rng ^= p2;
	while (n-- > 0 && s->n_live > 0)
		free_at(s, next_rand(s) % s->n_live);
}

/* One allocation aligned to 2^(p1 % 12) granules, of up to 255 granules. */
static void op_aligned(struct state *s, uint8_t p1, uint8_t p2)
{
	alloc_one(s, (uint64_t)(1 + p2) * s->granule - p1 % 7, s->granule << (p1 % 12));
}

/* Resizes up to @p1 % 64 + 1 allocations, growing or shrinking them by up to 3 granules. */
static void op_resize(struct state *s, uint8_t p1, uint8_t p2)
{
	for (size_t n = p1 % 64 + 1; n > 0 && s->n_live > 0; n--) {
		struct live *l = &s->live[next_rand(s) % s->n_live];
		uint64_t delta = (next_rand(s) % 4) * s->granule, size, usable = 0, got;
		int ret;

		size = p2 & 1 ? l->size + delta : l->size > delta ? l->size - delta : s->granule;
		ret = buddy_resize(s->b, l->addr, size, &usable);
		if (ret == -ENOMEM) { /* only growing can fail, and leaves it as it was */
			FUZZ_CHECK(size > l->size);
			FUZZ_CHECK(buddy_alloc_size(s->b, l->addr, &got) == 0 && got == l->size);
			continue;
		}
		FUZZ_CHECK(ret == 0 && usable == round_up(size, s->granule));
		l->size = usable;
	}
}

/*
 * Reserves [@p1.@p2 * 1/65536 of the range, 1 to 16 granules]: accepted exactly when no live
 * allocation meets it (-EBUSY then, and nothing changed).
 */
static void op_reserve(struct state *s, uint8_t p1, uint8_t p2)
{
	uint64_t granules = (s->last - s->lo + 1) / s->granule, size = (1 + p2 % 16) * s->granule;
	uint64_t addr = s->lo + ((uint64_t)(p1 << 8 | p2) * granules >> 16) * s->granule;
	int ret;

	if (size - 1 > s->last - addr || s->n_live == LIVE_MAX)
		return;
	sort_live(s);
	ret = buddy_reserve(s->b, addr, size);
	if (ret == -ENOMEM) /* out of memory for metadata: allowed, nothing changed */
		return;
	if (meets_live(s, addr, size)) {
		FUZZ_CHECK(ret == -EBUSY);
		return;
	}
	FUZZ_CHECK(ret == 0);
	s->live[s->n_live++] = (struct live){ addr, size };
}

static void create(struct state *s, struct fuzz_input *in)
{
	uint8_t mode = fuzz_u8(in), r = fuzz_u8(in);
	uint64_t base = 0x40000000 + 4097, granules = (uint64_t)1 << (12 + r % 9);

	s->granule = mode & 2 ? 4096 : 64;
	s->live = malloc(LIVE_MAX * sizeof(*s->live));
	s->sorted = malloc(LIVE_MAX * sizeof(*s->sorted));
	FUZZ_CHECK(s->live && s->sorted);
	/* The odd base costs the first partial granule; the range keeps `granules` whole ones. */
	FUZZ_CHECK(buddy_create(base, granules * s->granule + s->granule, s->granule, &s->b) == 0);
	if (mode & 1)
		buddy_set_unmap(s->b, quarantine, s);
	if ((mode & 5) == 5)
		buddy_set_populate(s->b, populate);
	s->lo = round_up(base, s->granule);
	s->last = s->lo + granules * s->granule - 1;
	s->rng = 88172645463325252ull ^ r;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void (*const ops[])(struct state *, uint8_t, uint8_t) = {
		op_bulk, op_every_kth, op_free_share, op_aligned, op_resize, op_reserve,
	};
	struct fuzz_input in = { data, size };
	struct state *s = calloc(1, sizeof(*s));
	struct buddy_stats initial, st;

	FUZZ_CHECK(s);
	create(s, &in);
	check_all(s);
	buddy_stats(s->b, &initial);
	while (in.n >= 3) {
		uint8_t op = fuzz_u8(&in), p1 = fuzz_u8(&in), p2 = fuzz_u8(&in);

		ops[op % (sizeof(ops) / sizeof(ops[0]))](s, p1, p2);
		check_all(s);
	}
	while (s->n_live > 0)
		free_at(s, s->n_live - 1);
	check_all(s);
	buddy_stats(s->b, &st);
	FUZZ_CHECK(fuzz_same_stats(&st, &initial)); /* every block merged back */
	buddy_set_unmap(s->b, NULL, NULL);
	buddy_destroy(s->b);
	for (size_t i = 0; i < s->n_handed; i++)
		munmap(s->handed[i].addr, s->handed[i].len);
	free(s->live);
	free(s->sorted);
	free(s);
	return 0;
}
