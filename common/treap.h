/* SPDX-License-Identifier: MIT */
/*
 * An intrusive ordered index on 64-bit keys: a treap (a binary search tree whose nodes are
 * also a heap on a priority) with parent links. The node lives inside the element, so the
 * index allocates nothing and cannot fail.
 *
 * The priority is a mix of the key, so the shape is that of a random tree whatever the order
 * of the keys: expected depth O(log n), and an expected constant number of rotations per
 * insertion or removal. With parent links a removal needs no search, and an insertion given
 * its predecessor (appending in key order, as the broker's handles come) needs none either:
 * both are O(1) expected. Finding the first key after another is O(log n) expected.
 */
#ifndef COMMON_TREAP_H
#define COMMON_TREAP_H

#include <stddef.h>
#include <stdint.h>

struct treap_node {
	struct treap_node *parent, *left, *right;
	uint64_t key;
};

struct treap {
	struct treap_node *root;
	size_t n;
};

/* An empty index (nothing to finish: the nodes belong to their elements). */
void treap_init(struct treap *t);

/*
 * Inserts @node, whose key is set and not in @t yet. @pred is NULL, or the node of @t with the
 * greatest key below @node's (then no search is made).
 */
void treap_insert(struct treap *t, struct treap_node *node, struct treap_node *pred);

/* Removes @node, which is in @t. */
void treap_remove(struct treap *t, struct treap_node *node);

/* The node with the greatest key, or NULL when @t is empty. */
struct treap_node *treap_last(const struct treap *t);

/* The node after @node in key order, or NULL: O(1) amortised over a walk. */
struct treap_node *treap_next(const struct treap_node *node);

/* The node whose key is @key, or NULL: O(log n) expected. */
struct treap_node *treap_find(const struct treap *t, uint64_t key);

/* The node with the smallest key greater than @key, or NULL. */
struct treap_node *treap_after(const struct treap *t, uint64_t key);

#endif
