/* SPDX-License-Identifier: MIT */
/*
 * Hash map (see hmap.h). The table is kept at most 3/4 full; removal shifts the following
 * entries of the probe run back so that every entry stays reachable from its home slot.
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
}

void hmap_finish(struct hmap *map)
{
	free(map->slots);
	hmap_init(map);
}

static struct hmap_slot *find(const struct hmap *map, uint64_t key)
{
	if (!map->slots)
		return NULL;
	for (size_t i = mix(key) & map->mask;; i = (i + 1) & map->mask) {
		if (map->slots[i].key == key)
			return &map->slots[i];
		if (map->slots[i].key == 0)
			return NULL;
	}
}

void *hmap_get(const struct hmap *map, uint64_t key)
{
	struct hmap_slot *s = key ? find(map, key) : NULL;

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

static int grow(struct hmap *map)
{
	size_t cap = map->slots ? (map->mask + 1) * 2 : 16;
	struct hmap_slot *slots;

	if (cap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; map->slots && i <= map->mask; i++)
		if (map->slots[i].key)
			place(slots, cap - 1, map->slots[i].key, map->slots[i].value);
	free(map->slots);
	map->slots = slots;
	map->mask = cap - 1;
	return 0;
}

int hmap_put(struct hmap *map, uint64_t key, void *value)
{
	struct hmap_slot *s;

	if (key == 0)
		return -EINVAL;
	s = find(map, key);
	if (s) {
		s->value = value;
		return 0;
	}
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
	struct hmap_slot *s = key ? find(map, key) : NULL;
	size_t hole, i;
	void *value;

	if (!s)
		return NULL;
	value = s->value;
	hole = (size_t)(s - map->slots);
	/* Shift back every entry of the run that would no longer be found past the hole. */
	for (i = (hole + 1) & map->mask; map->slots[i].key; i = (i + 1) & map->mask) {
		size_t home = mix(map->slots[i].key) & map->mask;

		/* The entry may move to the hole unless its home lies cyclically in (hole, i]. */
		if (((i - home) & map->mask) >= ((i - hole) & map->mask)) {
			map->slots[hole] = map->slots[i];
			hole = i;
		}
	}
	map->slots[hole].key = 0;
	map->slots[hole].value = NULL;
	map->n--;
	return value;
}
