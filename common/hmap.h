/* SPDX-License-Identifier: MIT */
/*
 * A hash map from non-zero 64-bit keys to pointers: open addressing with linear probing and
 * backward-shift deletion (no tombstones), so lookups stay short however many inserts and
 * removals a long-running daemon makes. Keys are mixed before use, so sequential handles and
 * random tokens both spread well.
 *
 * Growth is incremental: a full table is replaced by one twice its size, and the entries of
 * the old one move over a few at a time, on each later put and remove, so that no single call
 * rehashes the whole map (a daemon holding a million buffers would stall its clients for
 * 100 ms and more). Until the old table is empty, lookups search both; a large one is given
 * back to the system a chunk at a time as it empties, freeing it whole taking milliseconds too.
 * Shrinking is the same move into a smaller table, once removals leave it less than 1/8 full.
 */
#ifndef COMMON_HMAP_H
#define COMMON_HMAP_H

#include <stddef.h>
#include <stdint.h>

/* Old-table slots one put or remove moves or steps over while the map grows. */
#define HMAP_MIGRATE_STEPS 16

struct hmap_slot {
	uint64_t key; /* 0: empty */
	void *value;
};

struct hmap {
	struct hmap_slot *slots;
	size_t mask; /* capacity - 1; capacity is a power of two, or 0 before the first insert */
	size_t n;    /* entries, in both tables */
	/* The table being emptied into `slots` while growing, or NULL. */
	struct hmap_slot *old;
	size_t old_mask;
	size_t old_n;    /* entries still there */
	size_t cursor;   /* old's slots below it are empty */
	size_t released; /* old's slots below it are given back (a large table's) */
	void (*unmap)(void *data, void *addr, size_t len); /* see hmap_set_unmap() */
	void *unmap_data;
	void (*populate)(void *data, void *addr, size_t len); /* likewise, with unmap_data */
};

/* An empty map; hmap_finish() on it is a no-op. */
void hmap_init(struct hmap *map);
/* Frees the tables: the map is empty again, its unmap and populate functions kept. */
void hmap_finish(struct hmap *map);

/*
 * How the map gives back the memory of its large (mapped) tables as they empty or go:
 * @unmap(@data, addr, len) takes it and must munmap() it, off the caller's thread if it likes
 * (every munmap() of a threaded process is a TLB shootdown, milliseconds on a busy VM); NULL,
 * the default: munmap() at once. Nothing given is read again.
 */
void hmap_set_unmap(struct hmap *map, void (*unmap)(void *data, void *addr, size_t len),
		    void *data);

/*
 * Optional, with hmap_set_unmap()'s @data: told of each new large (mapped) table as it is made,
 * zeroed and not yet touched, so that another thread can fault its pages in before the moves
 * write them (MADV_POPULATE_WRITE): a table of a million entries is some 4000 page faults,
 * which the caller's thread then does not take. It must not change the memory's contents, and
 * it is told before the table is given back, if it ever is (to the same @unmap: there must be
 * one, or the populate function is not called).
 */
void hmap_set_populate(struct hmap *map, void (*populate)(void *data, void *addr, size_t len));

/* The value stored under @key, or NULL. */
void *hmap_get(const struct hmap *map, uint64_t key);

/*
 * Stores @value under @key (non-zero), replacing any value there. Returns 0 or a negative errno
 * (-EINVAL for key 0, -ENOMEM; the map's contents are unchanged then).
 */
int hmap_put(struct hmap *map, uint64_t key, void *value);

/* Removes @key. Returns its value, or NULL when it was not there. */
void *hmap_remove(struct hmap *map, uint64_t key);

/* Bytes of table the map holds (both tables while it moves, less what is given back). */
size_t hmap_bytes(const struct hmap *map);

#endif
