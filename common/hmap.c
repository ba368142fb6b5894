/* SPDX-License-Identifier: MIT */
/*
 * Hash map (see hmap.h). The table is kept at most 3/4 full, counting the entries still in the
 * old table; removal shifts the following entries of the probe run back so that every entry
 * stays reachable from its home slot.
 *
 * Growing allocates the new table with calloc(), which hands out fresh zero pages for a large
 * one without writing them, then moves the old table's entries from slot 0 up. Each moved entry
 * is removed from the old table like any other (backward shift), so the old table stays valid
 * for lookups throughout; a shift only fills the slot being emptied, never one below it, so the
 * slots below the cursor stay empty. The next growth is 3/4 of the old capacity of puts away,
 * and emptying takes at most capacity + entries steps, so HMAP_MIGRATE_STEPS per put ends it
 * long before; should removals and lookups alone have come in between, the rest is moved then.
 * Shrinking moves the same way, from a table of C slots less than 1/8 full into one of C/4 to
 * C/2 at most 1/4 full: growth is then at least C/8 puts (2C steps) away, and emptying takes
 * at most C + C/8 steps. No shrink starts while a move is under way.
 *
 * Freeing a large table at once stalls too (unmapping 16 MiB of written pages takes
 * milliseconds), so tables of MAPPED_BYTES and more are mmap()ed, and the old one is unmapped
 * a chunk at a time behind the cursor: lookups and erasures in it never read below the cursor.
 * A new mapped table goes to the populate function, when there is one, before any slot of it
 * is written: the moves would otherwise take a page fault every 256 slots.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "common/hmap.h"

/* Tables of this size and more are mapped, so that they can be given back a chunk at a time. */
#define MAPPED_BYTES (1u << 20)
/* What one step gives back of an old mapped table: 16 pages. */
#define CHUNK_BYTES (64u << 10)

static size_t table_bytes(size_t mask)
{
	return (mask + 1) * sizeof(struct hmap_slot);
}

/* A zeroed table of @cap slots, or NULL. */
static struct hmap_slot *table_create(size_t cap)
{
	void *p;

	if (cap > SIZE_MAX / sizeof(struct hmap_slot))
		return NULL;
	if (cap * sizeof(struct hmap_slot) < MAPPED_BYTES)
		return calloc(cap, sizeof(struct hmap_slot));
	/* Fresh anonymous pages read as zero and cost nothing until written. */
	p = mmap(NULL, cap * sizeof(struct hmap_slot), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Gives back mapped table memory: to the unmap function when there is one. */
static void give(const struct hmap *map, void *addr, size_t len)
{
	if (len == 0)
		return;
	if (map->unmap)
		map->unmap(map->unmap_data, addr, len);
	else
		munmap(addr, len);
}

static void table_destroy(const struct hmap *map, struct hmap_slot *slots, size_t mask)
{
	if (!slots)
		return;
	if (table_bytes(mask) < MAPPED_BYTES)
		free(slots);
	else
		give(map, slots, table_bytes(mask));
}

/* splitmix64's finaliser: every input bit affects every output bit. */
static uint64_t mix(uint64_t k)
{
	k ^= k >> 30;
	k *= UINT64_C(0xbf58476d1ce4e5b9);
	k ^= k >> 27;
	k *= UINT64_C(0x94d049bb133111eb);
	return k ^ (k >> 31);
}

void hmap_init(struct hmap *map)
{
	map->slots = NULL;
	map->mask = 0;
	map->n = 0;
	map->old = NULL;
	map->old_mask = 0;
	map->old_n = 0;
	map->cursor = 0;
	map->released = 0;
	map->unmap = NULL;
	map->unmap_data = NULL;
	map->populate = NULL;
}

/* The slot of @key, or NULL; slots below @lo are empty and not read (they may be unmapped). */
static struct hmap_slot *find(struct hmap_slot *slots, size_t mask, size_t lo, uint64_t key)
{
	if (!slots)
		return NULL;
	for (size_t i = mix(key) & mask; i >= lo; i = (i + 1) & mask) {
		if (slots[i].key == key)
			return &slots[i];
		if (slots[i].key == 0)
			return NULL;
	}
	return NULL;
}

/*
 * The slot of @key in either table, or NULL; *@oldp tells which. While a move is under way the
 * old table is searched first: it is the one in use until then, its pages all present, whereas
 * most of the new one's are still untouched, and reading one there costs a page fault (about
 * 20 us on a VM). Looking in the new table first, a million removals after the map began to
 * shrink doubled the p99 of the requests served meanwhile. An entry is in one table only.
 */
static struct hmap_slot *lookup(const struct hmap *map, uint64_t key, bool *oldp)
{
	struct hmap_slot *s = map->old_n ? find(map->old, map->old_mask, map->cursor, key) : NULL;

	*oldp = s != NULL;
	return s ? s : find(map->slots, map->mask, 0, key);
}

void *hmap_get(const struct hmap *map, uint64_t key)
{
	struct hmap_slot *s;
	bool old;

	if (key == 0)
		return NULL;
	s = lookup(map, key, &old);
	return s ? s->value : NULL;
}

static void place(struct hmap_slot *slots, size_t mask, uint64_t key, void *value)
{
	size_t i = mix(key) & mask;

	while (slots[i].key != 0)
		i = (i + 1) & mask;
	slots[i].key = key;
	slots[i].value = value;
}

/*
 * Empties slot @hole, shifting back every entry of the run that would no longer be found.
 * Slots below @lo are empty and not read.
 */
static void erase(struct hmap_slot *slots, size_t mask, size_t lo, size_t hole)
{
	for (size_t i = (hole + 1) & mask; i >= lo && slots[i].key; i = (i + 1) & mask) {
		size_t home = mix(slots[i].key) & mask;

		/* The entry may move to the hole unless its home lies cyclically in (hole, i]. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			slots[hole] = slots[i];
			hole = i;
		}
	}
	slots[hole].key = 0;
	slots[hole].value = NULL;
}

/*
 * Gives back the next chunk of a mapped old table below the cursor: no slot there is read
 * again. Unmapping 16 MiB of written pages at once takes milliseconds (even after
 * MADV_DONTNEED); 64 KiB at a time spreads that (a multiple of every page size Linux uses).
 */
static void release_chunk(struct hmap *map)
{
	size_t chunk = CHUNK_BYTES / sizeof(struct hmap_slot);

	if (table_bytes(map->old_mask) < MAPPED_BYTES || map->cursor - map->released < chunk)
		return;
	give(map, map->old + map->released, CHUNK_BYTES);
	map->released += chunk;
}

/* Frees the old table, or what is left of it. */
static void old_destroy(struct hmap *map)
{
	size_t bytes = table_bytes(map->old_mask);

	if (bytes < MAPPED_BYTES)
		free(map->old);
	else
		give(map, map->old + map->released,
		     bytes - map->released * sizeof(struct hmap_slot));
	map->old = NULL;
	map->old_mask = 0;
	map->old_n = 0;
	map->cursor = 0;
	map->released = 0;
}

void hmap_set_unmap(struct hmap *map, void (*unmap)(void *data, void *addr, size_t len), void *data)
{
	map->unmap = unmap;
	map->unmap_data = data;
}

void hmap_set_populate(struct hmap *map, void (*populate)(void *data, void *addr, size_t len))
{
	map->populate = populate;
}

void hmap_finish(struct hmap *map)
{
	void (*unmap)(void *data, void *addr, size_t len) = map->unmap;
	void (*populate)(void *data, void *addr, size_t len) = map->populate;
	void *data = map->unmap_data;

	table_destroy(map, map->slots, map->mask);
	if (map->old)
		old_destroy(map);
	hmap_init(map);
	hmap_set_unmap(map, unmap, data);
	hmap_set_populate(map, populate);
}

/*
 * Moves or steps over up to @steps slots of the old table, and gives one chunk of it back.
 * Once its entries are gone its remaining slots are all empty: the cursor jumps to the end,
 * and the table is freed when less than a chunk is left (all at once when @all).
 */
static void migrate(struct hmap *map, size_t steps, bool all)
{
	while (map->old && map->old_n > 0 && steps-- > 0) {
		struct hmap_slot *s = &map->old[map->cursor];

		if (s->key) {
			place(map->slots, map->mask, s->key, s->value);
			/* May refill the cursor's slot from further on: it is looked at again. */
			erase(map->old, map->old_mask, map->cursor, map->cursor);
			map->old_n--;
		} else {
			map->cursor++;
		}
	}
	if (!map->old)
		return;
	if (map->old_n == 0)
		map->cursor = map->old_mask + 1;
	release_chunk(map);
	if (map->cursor > map->old_mask &&
	    (all || table_bytes(map->old_mask) < MAPPED_BYTES ||
	     map->released + CHUNK_BYTES / sizeof(*map->old) > map->cursor))
		old_destroy(map);
}

/*
 * Puts @slots (@cap of them, zeroed) in use: the entries of the table in use, if any, move
 * over from it as an old table; an empty one is freed at once. A mapped one goes to the
 * populate function first.
 */
static void replace_table(struct hmap *map, struct hmap_slot *slots, size_t cap)
{
	if (map->populate && map->unmap && table_bytes(cap - 1) >= MAPPED_BYTES)
		map->populate(map->unmap_data, slots, table_bytes(cap - 1));
	if (map->n > 0) {
		map->old = map->slots;
		map->old_mask = map->mask;
		map->old_n = map->n;
		map->cursor = 0;
		map->released = 0;
	} else {
		table_destroy(map, map->slots, map->mask);
	}
	map->slots = slots;
	map->mask = cap - 1;
}

static int grow(struct hmap *map)
{
	size_t cap = map->slots ? (map->mask + 1) * 2 : 16;
	struct hmap_slot *slots;

	migrate(map, SIZE_MAX, true); /* only when removals alone came since the last growth */
	if (map->mask >= SIZE_MAX / 2)
		return -ENOMEM;
	slots = table_create(cap);
	if (!slots)
		return -ENOMEM;
	replace_table(map, slots, cap);
	return 0;
}

/*
 * After a removal: a table less than 1/8 full is replaced by the smallest one at most 1/4 full
 * (16 slots or more, and no less than a quarter of it: see the file's comment), and emptied into
 * it like a growing one's, so that a map that held a million entries gives its memory back as
 * they go. Not while a move is under way; should the smaller table not be had, the map keeps
 * the one it has.
 */
static void shrink(struct hmap *map)
{
	size_t cap = map->mask + 1, min = cap / 4;
	struct hmap_slot *slots;

	if (map->old || !map->slots || cap <= 16 || map->n * 8 >= cap)
		return;
	while (cap / 2 >= 16 && cap / 2 >= min && map->n * 4 <= cap / 2)
		cap /= 2;
	slots = table_create(cap);
	if (slots)
		replace_table(map, slots, cap);
}

int hmap_put(struct hmap *map, uint64_t key, void *value)
{
	struct hmap_slot *s;
	bool old;

	if (key == 0)
		return -EINVAL;
	s = lookup(map, key, &old);
	if (s) {
		s->value = value;
		return 0;
	}
	migrate(map, HMAP_MIGRATE_STEPS, false);
	if (!map->slots || (map->n + 1) * 4 > (map->mask + 1) * 3) {
		int ret = grow(map);

		if (ret < 0)
			return ret;
	}
	place(map->slots, map->mask, key, value);
	map->n++;
	return 0;
}

void *hmap_remove(struct hmap *map, uint64_t key)
{
	struct hmap_slot *s;
	void *value;
	bool old;

	if (key == 0)
		return NULL;
	migrate(map, HMAP_MIGRATE_STEPS, false);
	s = lookup(map, key, &old);
	if (!s)
		return NULL;
	value = s->value;
	if (!old) {
		erase(map->slots, map->mask, 0, (size_t)(s - map->slots));
	} else {
		erase(map->old, map->old_mask, map->cursor, (size_t)(s - map->old));
		map->old_n--;
		if (map->old_n == 0)
			migrate(map, 0, false);
	}
	map->n--;
	shrink(map);
	return value;
}

size_t hmap_bytes(const struct hmap *map)
{
	size_t bytes = map->slots ? table_bytes(map->mask) : 0;

	if (map->old)
		bytes += table_bytes(map->old_mask) - map->released * sizeof(struct hmap_slot);
	return bytes;
}
