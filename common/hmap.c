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
 */
#include <errno.h>
#include <stdlib.h>

#include "common/hmap.h"

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
}

void hmap_finish(struct hmap *map)
{
	free(map->slots);
	free(map->old);
	hmap_init(map);
}

static struct hmap_slot *find(struct hmap_slot *slots, size_t mask, uint64_t key)
{
	if (!slots)
		return NULL;
	for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
		if (slots[i].key == key)
			return &slots[i];
		if (slots[i].key == 0)
			return NULL;
	}
}

void *hmap_get(const struct hmap *map, uint64_t key)
{
	struct hmap_slot *s;

	if (key == 0)
		return NULL;
	s = find(map->slots, map->mask, key);
	if (!s)
		s = find(map->old, map->old_mask, key);
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

/* Empties slot @hole, shifting back every entry of the run that would no longer be found. */
static void erase(struct hmap_slot *slots, size_t mask, size_t hole)
{
	for (size_t i = (hole + 1) & mask; slots[i].key; i = (i + 1) & mask) {
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

/* Moves or steps over up to @steps slots of the old table; frees it once empty. */
static void migrate(struct hmap *map, size_t steps)
{
	while (map->old && steps-- > 0) {
		struct hmap_slot *s = &map->old[map->cursor];

		if (s->key) {
			place(map->slots, map->mask, s->key, s->value);
			erase(map->old, map->old_mask,
			      map->cursor); /* may refill the cursor's slot */
			map->old_n--;
		} else {
			map->cursor++;
		}
		if (map->old_n == 0) {
			free(map->old);
			map->old = NULL;
			map->old_mask = 0;
			map->cursor = 0;
		}
	}
}

static int grow(struct hmap *map)
{
	size_t cap = map->slots ? (map->mask + 1) * 2 : 16;
	struct hmap_slot *slots;

	migrate(map, SIZE_MAX); /* only when removals alone came since the last growth */
	if (cap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	if (map->n > 0) {
		map->old = map->slots;
		map->old_mask = map->mask;
		map->old_n = map->n;
		map->cursor = 0;
	} else {
		free(map->slots);
	}
	map->slots = slots;
	map->mask = cap - 1;
	return 0;
}

int hmap_put(struct hmap *map, uint64_t key, void *value)
{
	struct hmap_slot *s;

	if (key == 0)
		return -EINVAL;
	s = find(map->slots, map->mask, key);
	if (!s)
		s = find(map->old, map->old_mask, key);
	if (s) {
		s->value = value;
		return 0;
	}
	migrate(map, HMAP_MIGRATE_STEPS);
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
	struct hmap_slot *s = NULL;
	void *value;

	if (key == 0)
		return NULL;
	migrate(map, HMAP_MIGRATE_STEPS);
	s = find(map->slots, map->mask, key);
	if (s) {
		value = s->value;
		erase(map->slots, map->mask, (size_t)(s - map->slots));
	} else {
		s = find(map->old, map->old_mask, key);
		if (!s)
			return NULL;
		value = s->value;
		erase(map->old, map->old_mask, (size_t)(s - map->old));
		map->old_n--;
		if (map->old_n == 0)
			migrate(map, 1); /* frees it */
	}
	map->n--;
	return value;
}
