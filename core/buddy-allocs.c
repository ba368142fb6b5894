/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator's table of live allocations (see buddy-index.h): linear probing on the
 * first granule with Fibonacci hashing, deletion by backward shift (no tombstones), grown at
 * 3/4 load and shrunk below 1/8.
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
 * comes at least 1/16 of the old capacity of removals or 1/4 of insertions later, and the move
 * takes at most capacity + entries steps, so 32 steps per call end it long before; should it
 * not, the rest moves then. A new mapped table goes to the populate hook first (the daemon's
 * thread faults it in: a million entries' table is 4000 page faults the moves would take).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/buddy-index.h"

/* Tables of this size and more are mapped, and move incrementally. */
#define MAPPED_BYTES (64u << 10)
/* What one call gives back of an old table: 16 pages (a multiple of every Linux page size). */
#define CHUNK_SLOTS ((64u << 10) / sizeof(struct buddy_slot))
/* Old-table slots moved or stepped over per insertion or removal. */
#define MIGRATE_STEPS 32
/* The largest table: 2^30 slots, so that an old slot's index has OLD_SLOT free. */
#define MAX_BITS 30

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

/* Moves the table to 2^@bits slots. Returns 0 or -ENOMEM (the table is unchanged then). */
static int rehash(struct buddy_allocs *t, unsigned bits)
{
	struct buddy_slot *slot = table_create(bits), *old = t->slot;
	unsigned old_bits = t->bits;

	if (!slot)
		return -ENOMEM;
	if (table_bytes(bits) >= MAPPED_BYTES && t->unmap.fn && t->unmap.populate)
		t->unmap.populate(t->unmap.data, slot, table_bytes(bits));
	migrate(t, UINT32_MAX, true); /* a resize came before the last move ended */
	t->slot = slot;
	t->bits = bits;
	if (old && t->n > 0 && table_bytes(old_bits) >= MAPPED_BYTES) {
		t->old = old;
		t->old_bits = old_bits;
		t->old_n = t->n;
		return 0;
	}
	for (uint32_t i = 0; old && i <= mask_of(old_bits); i++) {
		if (used(&old[i]))
			put(t, old[i].start, old[i].len);
	}
	if (old && table_bytes(old_bits) >= MAPPED_BYTES)
		buddy_unmap_give(&t->unmap, old, table_bytes(old_bits));
	else if (old)
		table_destroy(old, old_bits);
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
	return bytes;
}

int buddy_allocs_reserve(struct buddy_allocs *t)
{
	if ((uint64_t)(t->n + 1) * 4 <= (uint64_t)3 << t->bits)
		return 0;
	return t->bits < MAX_BITS ? rehash(t, t->bits + 1) : -ENOMEM;
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
	if (t->bits > BUDDY_ALLOCS_MIN_BITS && (uint64_t)t->n * 8 < (UINT64_C(1) << t->bits))
		(void)rehash(t, t->bits - 1); /* a refused shrink keeps the larger table */
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
	return 0;
}

#undef FAIL
