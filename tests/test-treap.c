/* SPDX-License-Identifier: MIT */
/*
 * The ordered index against a shadow array: random insertions (searched, or given their
 * predecessor), removals, successor queries and steps, the greatest key, with the tree's every
 * invariant (order, heap on the priorities, parent links, count) checked along the way;
 * appending in key order, as the broker does, keeps the depth logarithmic. It compiles
 * common/treap.c itself, to check the priorities.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/treap.c"

struct walk {
	size_t n;
	uint64_t last;
	unsigned depth;
};

/* Checks the subtree of @n, whose parent is @parent, in order. */
static void check_node(const struct treap_node *n, const struct treap_node *parent, unsigned depth,
		       struct walk *w)
{
	if (!n)
		return;
	assert_ptr_equal(n->parent, parent);
	if (parent)
		assert_true(priority(n) <= priority(parent));
	check_node(n->left, n, depth + 1, w);
	assert_true(w->n == 0 || n->key > w->last);
	w->last = n->key;
	w->n++;
	if (depth > w->depth)
		w->depth = depth;
	check_node(n->right, n, depth + 1, w);
}

/* Checks @t holds @n nodes; returns its depth. */
static unsigned check(const struct treap *t, size_t n)
{
	struct walk w = { 0 };

	check_node(t->root, NULL, 1, &w);
	assert_int_equal(w.n, n);
	assert_int_equal(t->n, n);
	return w.depth;
}

static void test_empty_and_one(void **state)
{
	struct treap t;
	struct treap_node a = { .key = 5 };

	treap_init(&t);
	assert_null(treap_after(&t, 0));
	assert_null(treap_last(&t));
	treap_insert(&t, &a, NULL);
	check(&t, 1);
	assert_ptr_equal(treap_last(&t), &a);
	assert_ptr_equal(treap_after(&t, 0), &a);
	assert_ptr_equal(treap_after(&t, 4), &a);
	assert_null(treap_after(&t, 5));
	assert_ptr_equal(treap_find(&t, 5), &a);
	assert_null(treap_find(&t, 4));
	assert_null(treap_find(&t, 6));
	treap_remove(&t, &a);
	check(&t, 0);
	assert_null(t.root);
	assert_null(treap_after(&t, 0));
}

/* The shadow's greatest present key below @k, or 0. */
static uint64_t pred_of(const int *present, uint64_t k)
{
	while (--k > 0 && !present[k])
		;
	return k;
}

static void test_random_against_shadow(void **state)
{
	enum { KEYS = 2000, OPS = 40000 };
	static struct treap_node nodes[KEYS];
	static int present[KEYS];
	struct treap t;
	size_t n = 0;

	srand(4321);
	treap_init(&t);
	for (int op = 0; op < OPS; op++) {
		uint64_t k = 1 + (uint64_t)(rand() % (KEYS - 1)), p, want;
		struct treap_node *got;

		if (rand() % 2 == 0 && !present[k]) {
			nodes[k].key = k;
			p = pred_of(present, k);
			treap_insert(&t, &nodes[k], rand() % 2 && p ? &nodes[p] : NULL);
			present[k] = 1;
			n++;
		} else if (present[k]) {
			treap_remove(&t, &nodes[k]);
			assert_null(nodes[k].parent);
			present[k] = 0;
			n--;
		}
		for (want = k; want < KEYS && !present[want]; want++)
			;
		want = want < KEYS ? want : 0;
		got = treap_after(&t, k - 1);
		assert_int_equal(got ? got->key : 0, want);
		if (got) { /* and the one after it, by the links */
			for (want = got->key + 1; want < KEYS && !present[want]; want++)
				;
			got = treap_next(got);
			assert_int_equal(got ? got->key : 0, want < KEYS ? want : 0);
		}
		got = treap_last(&t);
		assert_int_equal(got ? got->key : 0, pred_of(present, KEYS));
		/* Found by key exactly when present: the broker's lookup by handle. */
		assert_ptr_equal(treap_find(&t, k), present[k] ? &nodes[k] : NULL);
		k = 1 + (uint64_t)(rand() % (KEYS - 1));
		assert_ptr_equal(treap_find(&t, k), present[k] ? &nodes[k] : NULL);
		if (op % 500 == 0)
			check(&t, n);
	}
	check(&t, n);
}

/* Keys appended in order, each given its predecessor: the broker's handles. */
static void test_appending_stays_shallow(void **state)
{
	enum { N = 100000 };
	struct treap_node *nodes = calloc(N + 1, sizeof(*nodes));
	struct treap t;
	unsigned depth;

	assert_non_null(nodes);
	treap_init(&t);
	for (uint64_t k = 1; k <= N; k++) {
		nodes[k].key = k;
		treap_insert(&t, &nodes[k], k > 1 ? &nodes[k - 1] : NULL);
	}
	depth = check(&t, N);
	/* A random tree's expected depth is about 2.99 log2(n) at most: 50 here; a list's is N. */
	assert_true(depth <= 60);
	for (uint64_t k = 1; k <= N; k += 2)
		treap_remove(&t, &nodes[k]);
	check(&t, N / 2);
	{ /* a walk by the links visits them all in order */
		const struct treap_node *x = treap_after(&t, 0);
		uint64_t want = 2;

		for (; x; x = treap_next(x), want += 2)
			assert_int_equal(x->key, want);
		assert_int_equal(want, N + 2);
	}
	for (uint64_t k = 0; k < N; k += 1000)
		assert_int_equal(treap_after(&t, k)->key, k % 2 ? k + 1 : k + 2);
	assert_null(treap_after(&t, N));
	free(nodes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_one),
		cmocka_unit_test(test_random_against_shadow),
		cmocka_unit_test(test_appending_stays_shallow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
