/* SPDX-License-Identifier: MIT */
/*
 * Treap (see treap.h). Priorities are not stored: mixing the key again is cheaper than the
 * memory. Insertion hangs the node where a search would end, then rotates it up while its
 * priority beats its parent's; removal rotates the node down past its higher-priority child
 * until it has at most one, then splices it out.
 */
#include "common/treap.h"

/* splitmix64's finaliser: a pseudo-random priority no order of keys can line up. */
static uint64_t priority(const struct treap_node *n)
{
	uint64_t k = n->key;

	k ^= k >> 30;
	k *= UINT64_C(0xbf58476d1ce4e5b9);
	k ^= k >> 27;
	k *= UINT64_C(0x94d049bb133111eb);
	return k ^ (k >> 31);
}

void treap_init(struct treap *t)
{
	t->root = NULL;
	t->n = 0;
}

/* Points @old's parent (or the root) at @new. */
static void replace_child(struct treap *t, struct treap_node *old, struct treap_node *new)
{
	struct treap_node *p = old->parent;

	if (!p)
		t->root = new;
	else if (p->left == old)
		p->left = new;
	else
		p->right = new;
	if (new)
		new->parent = p;
}

/* Lifts @x above its parent, keeping the order. */
static void rotate_up(struct treap *t, struct treap_node *x)
{
	struct treap_node *p = x->parent;

	replace_child(t, p, x);
	if (p->left == x) {
		p->left = x->right;
		if (x->right)
			x->right->parent = p;
		x->right = p;
	} else {
		p->right = x->left;
		if (x->left)
			x->left->parent = p;
		x->left = p;
	}
	p->parent = x;
}

/* Hangs @node as a leaf where it belongs, searching from the root. */
static void attach(struct treap *t, struct treap_node *node)
{
	struct treap_node **link = &t->root, *parent = NULL;

	while (*link) {
		parent = *link;
		link = node->key < parent->key ? &parent->left : &parent->right;
	}
	*link = node;
	node->parent = parent;
}

void treap_insert(struct treap *t, struct treap_node *node, struct treap_node *pred)
{
	node->left = node->right = NULL;
	if (!pred) {
		attach(t, node);
	} else if (!pred->right) {
		pred->right = node;
		node->parent = pred;
	} else {
		/* The successor has no left child: the new key goes between the two. */
		struct treap_node *succ = pred->right;

		while (succ->left)
			succ = succ->left;
		succ->left = node;
		node->parent = succ;
	}
	while (node->parent && priority(node->parent) < priority(node))
		rotate_up(t, node);
	t->n++;
}

void treap_remove(struct treap *t, struct treap_node *node)
{
	while (node->left && node->right)
		rotate_up(t,
			  priority(node->left) > priority(node->right) ? node->left : node->right);
	replace_child(t, node, node->left ? node->left : node->right);
	node->parent = node->left = node->right = NULL;
	t->n--;
}

struct treap_node *treap_last(const struct treap *t)
{
	struct treap_node *n = t->root;

	while (n && n->right)
		n = n->right;
	return n;
}

struct treap_node *treap_next(const struct treap_node *node)
{
	const struct treap_node *n = node->right;

	if (n) {
		while (n->left)
			n = n->left;
		return (struct treap_node *)n;
	}
	for (n = node; n->parent && n->parent->right == n;)
		n = n->parent;
	return n->parent;
}

struct treap_node *treap_find(const struct treap *t, uint64_t key)
{
	struct treap_node *n = t->root;

	while (n && n->key != key)
		n = key < n->key ? n->left : n->right;
	return n;
}

struct treap_node *treap_after(const struct treap *t, uint64_t key)
{
	struct treap_node *n = t->root, *best = NULL;

	while (n) {
		if (n->key > key) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}
