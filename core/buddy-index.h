/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator's out-of-band index (private to core/buddy.c): the free runs in an
 * augmented AVL tree keyed by address, and the live allocations in a hash table keyed by their
 * first granule. Both grow and shrink with what they hold, never with the size of the range.
 *
 * Granule indices are relative to the range (0 .. n - 1); alignment is judged on absolute
 * granule numbers (base_g + index), as in buddy.c.
 */
#ifndef CORE_BUDDY_INDEX_H
#define CORE_BUDDY_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buddy.h"

#define BUDDY_NIL UINT32_MAX

/* The smallest run array and allocation table (2^bits slots): what a new allocator holds. */
#define BUDDY_RUNS_MIN_CAP    8
#define BUDDY_ALLOCS_MIN_BITS 4

/*
 * How the index gives back mapped memory it no longer needs (an old table, a shrunk array):
 * munmap() when @fn is NULL, else @fn, which then owns [@addr, @addr + @len) and must unmap it
 * (buddy_set_unmap(): the daemon has a thread do it, off its loop). With @fn, @populate (if
 * set: buddy_set_populate()) is told of each new mapped allocation table before it is written,
 * to fault its pages in off the caller's thread; it changes no byte, and hears of a table
 * before @fn is given it.
 */
struct buddy_unmap {
	void (*fn)(void *data, void *addr, size_t len);
	void *data;
	void (*populate)(void *data, void *addr, size_t len);
};

void buddy_unmap_give(const struct buddy_unmap *u, void *addr, size_t len);

/* A maximal run of free granules [start, start + len): a node of the tree. */
struct buddy_run {
	uint32_t start, len;
	uint32_t left, right; /* node indices, BUDDY_NIL for none */
	uint32_t max_len;     /* the longest run in this subtree */
	uint32_t height;      /* AVL height of this subtree, 1 for a leaf */
	uint64_t mask;        /* bit k: this subtree's runs hold a buddy block of order k */
};

/*
 * The free runs. Nodes sit in one array, kept dense (a removed node's slot takes the last
 * node), that grows and shrinks; `reserved` is the count the caller asked to keep room for.
 * The free blocks of the buddy are the canonical decomposition of each run into maximal
 * aligned blocks; n_free[] counts them.
 */
struct buddy_runs {
	struct buddy_run *node;
	uint32_t n, cap, root;
	uint64_t base_g;
	uint64_t free_granules;
	uint32_t n_free[BUDDY_MAX_ORDERS];
	struct buddy_unmap unmap;
};

/* A live allocation [start, start + len); len == 0 marks an empty slot (zeroed memory). */
struct buddy_slot {
	uint32_t start, len;
};

/*
 * The live allocations: open addressing, linear probing, 2^bits slots. A large table moves to
 * its new size a few slots per call: until it is done, `old` holds the entries not moved yet
 * (old_n of the n), at slots from `cursor` up; the slots below `released` are unmapped. With a
 * populate hook, the table of the next size waits in `next` (2^next_bits slots, empty) while
 * the hook faults it in; whether it is in is looked at when `next_wait` calls count down.
 */
struct buddy_allocs {
	struct buddy_slot *slot;
	uint32_t n;
	unsigned bits;
	struct buddy_slot *old;
	uint32_t old_n, cursor, released;
	unsigned old_bits;
	struct buddy_slot *next;
	unsigned next_bits;
	uint32_t next_wait;
	struct buddy_unmap unmap;
};

/* Marks a slot index of the old table (buddy_allocs_find()). */
#define BUDDY_OLD_SLOT (UINT32_C(1) << 31)

/* A run or an allocation as the queries return it. */
struct buddy_span {
	uint32_t start, len;
};

/* Splits the absolute granule range [a, b) at its most aligned point: blocks of the bits of
 * (c - a) ascend from a, blocks of the bits of (b - c) descend from c. Returns c. */
uint64_t buddy_index_split(uint64_t a, uint64_t b);

int buddy_runs_init(struct buddy_runs *r, uint64_t base_g);
void buddy_runs_finish(struct buddy_runs *r);

/* Makes room for @count runs in all (no smaller than now). Returns 0 or -ENOMEM. */
int buddy_runs_reserve(struct buddy_runs *r, uint32_t count);
/* Gives back memory beyond what @count runs need (best effort). */
void buddy_runs_trim(struct buddy_runs *r, uint32_t count);

/* Inserts the run; room must have been reserved. It must not touch another run. */
void buddy_runs_insert(struct buddy_runs *r, uint32_t start, uint32_t len);
/* Removes the run that starts at @start, which must exist. */
void buddy_runs_remove(struct buddy_runs *r, uint32_t start);
/* Moves the run at @start to [new_start, new_start + len) without passing another run. */
void buddy_runs_set(struct buddy_runs *r, uint32_t start, uint32_t new_start, uint32_t len);

/* The run that starts at @start. */
bool buddy_runs_at(const struct buddy_runs *r, uint32_t start, struct buddy_span *run);
/* The run with the largest start at or below @key. */
bool buddy_runs_floor(const struct buddy_runs *r, uint32_t key, struct buddy_span *run);
/* The first run (by address) that holds a buddy block of order @order; *blockp: that block. */
bool buddy_runs_block(const struct buddy_runs *r, unsigned order, struct buddy_span *run,
		      uint32_t *blockp);
/*
 * The first run (by address) that holds @len granules from a start aligned to 2^@align_order
 * granules; *startp: that start. See buddy.c for the cost.
 */
bool buddy_runs_fit(const struct buddy_runs *r, uint32_t len, unsigned align_order,
		    struct buddy_span *run, uint32_t *startp);
/* Bit k: some run holds a buddy block of order k. */
uint64_t buddy_runs_orders(const struct buddy_runs *r);
/* The longest run, in granules. */
uint32_t buddy_runs_longest(const struct buddy_runs *r);

/*
 * Calls @fn for every run in address order until it returns non-zero, which it then returns.
 * Returns 0 when the walk completed.
 */
int buddy_runs_each(const struct buddy_runs *r, int (*fn)(void *data, const struct buddy_span *run),
		    void *data);
/* Tree shape, order, balance, augmentation and pool: 0 or -EUCLEAN and a reason. */
int buddy_runs_check(const struct buddy_runs *r, uint32_t n_granules, char *why, size_t why_size);

int buddy_allocs_init(struct buddy_allocs *t);
void buddy_allocs_finish(struct buddy_allocs *t);
/* Makes room for one more allocation. Returns 0 or -ENOMEM. */
int buddy_allocs_reserve(struct buddy_allocs *t);
/* Inserts one; room must have been reserved, and @start must not be in the table. */
void buddy_allocs_insert(struct buddy_allocs *t, uint32_t start, uint32_t len);
/* The slot index of the allocation at @start, or BUDDY_NIL; valid until the next change. */
uint32_t buddy_allocs_find(const struct buddy_allocs *t, uint32_t start);
/* The slot that buddy_allocs_find() returned @i for. */
struct buddy_slot *buddy_allocs_slot(const struct buddy_allocs *t, uint32_t i);
/* Removes the allocation in slot @i, then gives back memory the table no longer needs. */
void buddy_allocs_remove(struct buddy_allocs *t, uint32_t i);
/* Bytes the table holds now, the part of an old one not given back yet included. */
size_t buddy_allocs_bytes(const struct buddy_allocs *t);
/* Slots reachable from their home slot, count right: 0 or -EUCLEAN and a reason. */
int buddy_allocs_check(const struct buddy_allocs *t, char *why, size_t why_size);

#endif
