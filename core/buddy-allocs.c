/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator's table of live allocations (see buddy-index.h): linear probing on the
 * first granule with Fibonacci hashing, deletion by backward shift (no tombstones), grown at
 * 3/4 load and shrunk below 1/8 (with a populate hook: grown from 5/8, shrunk from 1/8 down to
 * 3/32; below).
 *
 * Moving a large table at once stalls its caller: a client holding a million buffers that
 * disconnects shrinks a 16 MiB table to 8 MiB after three quarters of them are freed, and the
 * one free that does it scanned the old table, filled the new one and unmapped the old
 * (40-70 ms on a loaded machine, 3 times over as the table halves). So a table of MAPPED_BYTES
 * and more moves incrementally, the way common/hmap.c grows: the new table takes every
 * insertion, and each insertion or removal also moves MIGRATE_STEPS slots of the old table from
 * slot 0 up (a moved entry is erased from the old table by backward shift, which fills only the
 * slot being emptied, so the slots below the cursor stay empty and are never read again). The
 * old table is unmapped a chunk at a time behind the cursor. A lookup tries the old table, then
 * the new one (buddy_allocs_find()); an old slot's index carries OLD_SLOT. The next resize
 * that cannot wait (below) comes at least 3/64 of the old capacity of calls later, and the move
 * takes at most capacity + entries steps (9/8 of the capacity after a shrink), so 32 steps per
 * call end it before; should it not, the rest moves then. One that can wait waits for the move.
 *
 * A new mapped table goes to the populate hook first (the daemon's thread faults it in: a
 * million entries' table is 4000 page faults the moves would take, and on a virtual machine a
 * page fault can take milliseconds). With the hook, a resize does not wait for the thread
 * inside the caller: the new table is kept aside (`next`) and taken once its pages are in
 * (mincore() of its last page, which MADV_POPULATE_WRITE faults in last), looked at every
 * NEXT_CHECK_CALLS calls. Growth starts that early, at 5/8 load, so that the table is ready by
 * 3/4, where it must be taken, faulted in or not. A shrink has no such limit (the larger table
 * serves as well); it is taken below 3/32 load all the same, so that memory is given back if
 * the thread never gets there (a kernel without MADV_POPULATE_WRITE). A table kept aside for
 * the other direction is given back unused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/buddy-index.h"

/* Tables of this size and more are mapped, and move incrementally. */
#define MAPPED_BYTES (64u << 10)
/* What one call gives back of an old table: 16 pages (a multiple of every Linux page size). */
#define CHUNK_SLOTS ((64u << 10) / sizeof(struct buddy_slot))
/* Old-table slots moved or stepped over per insertion or removal. */
#define MIGRATE_STEPS 32
/* The largest table: 2^30 slots, so that an old slot's index has OLD_SLOT free. */
#define MAX_BITS 30
/* Calls between two looks at whether the table kept aside is faulted in (a system call). */
#define NEXT_CHECK_CALLS 64

static size_t table_bytes(unsigned bits)
{
	return sizeof(struct buddy_slot) << bits;
}

/* An empty table of 2^@bits slots, or NULL. */
static struct buddy_slot *table_create(unsigned bits)
{
	size_t bytes = table_bytes(bits);
	struct buddy_slot *slot;

	if (bytes < MAPPED_BYTES) {
		slot = malloc(bytes);
		if (slot)
			memset(slot, 0, bytes);
		return slot;
	}
	/* Fresh anonymous pages read as empty slots and cost nothing until written. */
	slot = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return slot == MAP_FAILED ? NULL : slot;
}

static void table_destroy(struct buddy_slot *slot, unsigned bits)
{
	if (table_bytes(bits) < MAPPED_BYTES)
		free(slot);
	else if (slot)
		munmap(slot, table_bytes(bits));
}

static uint32_t home_in(unsigned bits, uint32_t start)
{
	return (uint32_t)(start * UINT32_C(0x9E3779B1)) >> (32 - bits);
}

static uint32_t home(const struct buddy_allocs *t, uint32_t start)
{
	return home_in(t->bits, start);
}

static uint32_t mask_of(unsigned bits)
{
	return (UINT32_C(1) << bits) - 1;
}

static uint32_t slot_mask(const struct buddy_allocs *t)
{
	return mask_of(t->bits);
}

static bool used(const struct buddy_slot *s)
{
	return s->len != 0;
}

static void put(struct buddy_allocs *t, uint32_t start, uint32_t len)
{
	uint32_t i = home(t, start);

	while (used(&t->slot[i]))
		i = (i + 1) & slot_mask(t);
	t->slot[i] = (struct buddy_slot){ start, len };
}

/* The slot of @start in @slot, or BUDDY_NIL; slots below @lo are empty and not read. */
static uint32_t lookup(const struct buddy_slot *slot, unsigned bits, uint32_t lo, uint32_t start)
{
	for (uint32_t i = home_in(bits, start); i >= lo; i = (i + 1) & mask_of(bits)) {
		if (!used(&slot[i]))
			return BUDDY_NIL;
		if (slot[i].start == start)
			return i;
	}
	return BUDDY_NIL;
}

/* Whether slot @j's entry, whose home is @k, may move back to the hole at @i. */
static bool may_fill(uint32_t i, uint32_t j, uint32_t k)
{
	return i <= j ? (k <= i || k > j) : (k <= i && k > j);
}

/* Empties slot @i, shifting back the entries that would no longer be found; slots below @lo
 * are empty and not read. */
static void erase(struct buddy_slot *slot, unsigned bits, uint32_t lo, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		j = (j + 1) & mask_of(bits);
		if (j < lo || !used(&slot[j]))
			break;
		if (may_fill(i, j, home_in(bits, slot[j].start))) {
			slot[i] = slot[j];
			i = j;
		}
	}
	slot[i] = (struct buddy_slot){ 0, 0 };
}

/* Frees the old table, or what is left of it. */
static void old_destroy(struct buddy_allocs *t)
{
	size_t left = table_bytes(t->old_bits) - t->released * sizeof(*t->old);

	if (left > 0)
		buddy_unmap_give(&t->unmap, t->old + t->released, left);
	t->old = NULL;
	t->old_bits = 0;
	t->old_n = 0;
	t->cursor = 0;
	t->released = 0;
}

/*
 * Moves or steps over up to @steps slots of the old table and unmaps one chunk of it behind
 * the cursor. Once it is empty the cursor jumps to its end, and what is left of it goes a chunk
 * per call (at once when @all).
 */
static void migrate(struct buddy_allocs *t, uint32_t steps, bool all)
{
	uint32_t end = UINT32_C(1) << t->old_bits;

	while (t->old && t->old_n > 0 && steps-- > 0) {
		struct buddy_slot *s = &t->old[t->cursor];

		if (used(s)) {
			put(t, s->start, s->len);
			/* may refill the cursor's slot from further on: it is looked at again */
			erase(t->old, t->old_bits, t->cursor, t->cursor);
			t->old_n--;
		} else {
			t->cursor++;
		}
	}
	if (!t->old)
		return;
	if (t->old_n == 0)
		t->cursor = end;
	if (t->cursor - t->released >= CHUNK_SLOTS) {
		buddy_unmap_give(&t->unmap, t->old + t->released, CHUNK_SLOTS * sizeof(*t->old));
		t->released += CHUNK_SLOTS;
	}
	if (t->cursor == end && (all || t->released + CHUNK_SLOTS > end))
		old_destroy(t);
}

/* Whether a new table of 2^@bits slots goes to the populate hook, and may wait aside for it. */
static bool deferrable(const struct buddy_allocs *t, unsigned bits)
{
	return table_bytes(bits) >= MAPPED_BYTES && t->unmap.fn && t->unmap.populate;
}

/* Moves the table to @slot, 2^@bits slots, empty. */
static void switch_to(struct buddy_allocs *t, struct buddy_slot *slot, unsigned bits)
{
	struct buddy_slot *old = t->slot;
	unsigned old_bits = t->bits;

	migrate(t, UINT32_MAX, true); /* a resize came before the last move ended */
	t->slot = slot;
	t->bits = bits;
	if (old && t->n > 0 && table_bytes(old_bits) >= MAPPED_BYTES) {
		t->old = old;
		t->old_bits = old_bits;
		t->old_n = t->n;
		return;
	}
	for (uint32_t i = 0; old && i <= mask_of(old_bits); i++) {
		if (used(&old[i]))
			put(t, old[i].start, old[i].len);
	}
	if (old && table_bytes(old_bits) >= MAPPED_BYTES)
		buddy_unmap_give(&t->unmap, old, table_bytes(old_bits));
	else if (old)
		table_destroy(old, old_bits);
}

/* Moves the table to 2^@bits slots now. Returns 0 or -ENOMEM (the table is unchanged then). */
static int rehash(struct buddy_allocs *t, unsigned bits)
{
	struct buddy_slot *slot = table_create(bits);

	if (!slot)
		return -ENOMEM;
	if (deferrable(t, bits))
		t->unmap.populate(t->unmap.data, slot, table_bytes(bits));
	switch_to(t, slot, bits);
	return 0;
}

/* Gives back the table kept aside, unused. */
static void next_drop(struct buddy_allocs *t)
{
	if (t->next)
		buddy_unmap_give(&t->unmap, t->next, table_bytes(t->next_bits));
	t->next = NULL;
	t->next_bits = 0;
}

/*
 * Whether every page of the table kept aside is in memory. Looked at from the end: the populate
 * hook faults the pages in in ascending order, so the last one mostly answers at once.
 */
static bool next_in(const struct buddy_allocs *t)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = table_bytes(t->next_bits) / page;
	unsigned char in[256];

	while (n > 0) {
		size_t k = n < sizeof(in) ? n : sizeof(in);

		n -= k;
		if (mincore((unsigned char *)t->next + n * page, k * page, in) < 0)
			return false;
		for (size_t i = 0; i < k; i++) {
			if (!(in[i] & 1))
				return false;
		}
	}
	return true;
}

/*
 * Moves the table to 2^@bits slots: now when @must or when the table is not one for the
 * populate hook; else once the table kept aside for it is in memory and no move goes on.
 * Returns 0, or -ENOMEM when @must (the table is unchanged then).
 */
static int resize(struct buddy_allocs *t, unsigned bits, bool must)
{
	struct buddy_slot *slot;

	if (t->next && t->next_bits != bits)
		next_drop(t);
	if (!t->next && !deferrable(t, bits))
		return rehash(t, bits);
	if (!t->next) {
		t->next = table_create(bits);
		if (!t->next)
			return must ? -ENOMEM : 0;
		t->next_bits = bits;
		t->next_wait = NEXT_CHECK_CALLS;
		t->unmap.populate(t->unmap.data, t->next, table_bytes(bits));
	}
	if (!must) {
		if (t->old || --t->next_wait > 0)
			return 0;
		t->next_wait = NEXT_CHECK_CALLS;
		if (!next_in(t))
			return 0;
	}
	slot = t->next;
	t->next = NULL;
	t->next_bits = 0;
	switch_to(t, slot, bits);
	return 0;
}

int buddy_allocs_init(struct buddy_allocs *t)
{
	*t = (struct buddy_allocs){ 0 };
	return rehash(t, BUDDY_ALLOCS_MIN_BITS);
}

void buddy_allocs_finish(struct buddy_allocs *t)
{
	if (t->old)
		old_destroy(t);
	next_drop(t);
	if (t->slot)
		table_destroy(t->slot, t->bits);
	t->slot = NULL;
	t->n = 0;
}

size_t buddy_allocs_bytes(const struct buddy_allocs *t)
{
	size_t bytes = table_bytes(t->bits);

	if (t->old)
		bytes += table_bytes(t->old_bits) - t->released * sizeof(*t->old);
	if (t->next)
		bytes += table_bytes(t->next_bits);
	return bytes;
}

int buddy_allocs_reserve(struct buddy_allocs *t)
{
	uint64_t n = (uint64_t)t->n + 1;

	if (t->next && t->next_bits < t->bits && n * 4 > UINT64_C(1) << t->bits)
		next_drop(t); /* the shrink it was for is far off (1/8 of the capacity in calls) */
	if (n * 4 > (uint64_t)3 << t->bits)
		return t->bits < MAX_BITS ? resize(t, t->bits + 1, true) : -ENOMEM;
	if (n * 8 > (uint64_t)5 << t->bits && t->bits < MAX_BITS && deferrable(t, t->bits + 1))
		(void)resize(t, t->bits + 1, false); /* out of memory: tried again at 3/4 */
	return 0;
}

void buddy_allocs_insert(struct buddy_allocs *t, uint32_t start, uint32_t len)
{
	migrate(t, MIGRATE_STEPS, false);
	put(t, start, len);
	t->n++;
}

/*
 * While a move goes on, the old table is looked at first: its pages are all there, and an
 * entry not yet moved is found without reading the new table at a random place. A read there
 * maps a page the move has not reached (the zero page, and a write fault later): one fault per
 * lookup, 20 us each on a virtual machine, 2-3 ms per 128 frees after a shrink.
 */
uint32_t buddy_allocs_find(const struct buddy_allocs *t, uint32_t start)
{
	uint32_t i;

	if (t->old_n > 0) {
		i = lookup(t->old, t->old_bits, t->cursor, start);
		if (i != BUDDY_NIL)
			return i | BUDDY_OLD_SLOT;
	}
	return lookup(t->slot, t->bits, 0, start);
}

struct buddy_slot *buddy_allocs_slot(const struct buddy_allocs *t, uint32_t i)
{
	return i & BUDDY_OLD_SLOT ? &t->old[i & ~BUDDY_OLD_SLOT] : &t->slot[i];
}

void buddy_allocs_remove(struct buddy_allocs *t, uint32_t i)
{
	if (i & BUDDY_OLD_SLOT) {
		erase(t->old, t->old_bits, t->cursor, i & ~BUDDY_OLD_SLOT);
		t->old_n--;
	} else {
		erase(t->slot, t->bits, 0, i);
	}
	t->n--;
	migrate(t, MIGRATE_STEPS, false);
	/* the growth it was for is far off: a count that swings between 3/8 and 5/8 load costs
	 * the hook a table's faults per 1/4 of the capacity in calls, no more */
	if (t->next && t->next_bits > t->bits && (uint64_t)t->n * 8 < UINT64_C(3) << t->bits)
		next_drop(t);
	if (t->bits > BUDDY_ALLOCS_MIN_BITS && (uint64_t)t->n * 8 < (UINT64_C(1) << t->bits))
		(void)resize(t, t->bits - 1, (uint64_t)t->n * 32 < (UINT64_C(3) << t->bits));
	/* a refused shrink keeps the larger table */
}

/* ---------------------------------------------------------------- check */

#define FAIL(...)                                             \
	do {                                                  \
		if (why)                                      \
			snprintf(why, why_size, __VA_ARGS__); \
		return -EUCLEAN;                              \
	} while (0)

int buddy_allocs_check(const struct buddy_allocs *t, char *why, size_t why_size)
{
	uint32_t count = 0, old_count = 0;

	for (uint32_t i = 0; i <= slot_mask(t); i++) {
		uint32_t start = t->slot[i].start;

		if (!used(&t->slot[i]))
			continue;
		count++;
		if (buddy_allocs_find(t, start) != i)
			FAIL("allocation at granule %u is not where its hash leads", start);
	}
	for (uint32_t i = t->cursor; t->old && i <= mask_of(t->old_bits); i++) {
		uint32_t start = t->old[i].start;

		if (!used(&t->old[i]))
			continue;
		old_count++;
		if (buddy_allocs_find(t, start) != (i | BUDDY_OLD_SLOT))
			FAIL("allocation at granule %u (old table) is not where its hash leads",
			     start);
	}
	if (old_count != t->old_n)
		FAIL("old allocation table holds %u entries, %u recorded", old_count, t->old_n);
	count += old_count;
	if (count != t->n)
		FAIL("allocation table holds %u entries, %u recorded", count, t->n);
	if ((uint64_t)count * 4 > (uint64_t)3 << t->bits)
		FAIL("allocation table over-full: %u in %u slots", count, 1u << t->bits);
	/* its pages are not read: a read would map them, and tell mincore() they are in */
	if (t->next && t->next_bits != t->bits + 1 && t->next_bits + 1 != t->bits)
		FAIL("allocation table kept aside has 2^%u slots, the table 2^%u", t->next_bits,
		     t->bits);
	return 0;
}

#undef FAIL
