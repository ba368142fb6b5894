/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator's index (see buddy-index.h).
 *
 * Free runs: an AVL tree without parent links, so every update walks down recording its path
 * (at most BUDDY_PATH_MAX nodes: an AVL tree of 2^32 nodes is under 47 high) and fixes the
 * augmentation on the way back up. Each node carries, for its subtree, the longest run (first
 * fit prunes on it) and the orders of the buddy blocks its runs decompose into (the buddy's
 * smallest-block search descends on it). Nodes live in one dense array: a removed node's slot
 * is filled with the last node, found again by its key, so that the array can shrink.
 *
 * The allocations' table is in buddy-allocs.c.
 *
 * Arrays of BIG_BYTES or more are mapped directly: glibc raises its mmap threshold to the size
 * of every mapped chunk it frees, so that a shrunk or freed large array would otherwise stay
 * resident in its heap after the allocations are gone. mremap() grows and shrinks them; with an
 * unmap function (the daemon's), a shrink hands the tail over instead and the array stays in
 * place. Growing stays with mremap(): it moves page tables and flushes the TLBs once, where
 * copying the runs in use into a fresh mapping cost time in proportion to them, and a page
 * fault per page, inside the allocation that grew it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/buddy-index.h"

#define BIG_BYTES (64u << 10)

#define PATH_MAX_DEPTH 64
/* Aligned first fit: candidates that fail before the bounded fallback is tried. */
#define FIT_PROBES 32

static unsigned ilog2(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

uint64_t buddy_index_split(uint64_t a, uint64_t b)
{
	unsigned h = ilog2(a ^ b);

	return b >> h << h;
}

/* Bit k: the decomposition of [a, b) has a block of order k. */
static uint64_t span_mask(uint64_t a, uint64_t b)
{
	uint64_t c = buddy_index_split(a, b);

	return (c - a) | (b - c);
}

/* Adds (@sign 1) or removes (-1) the blocks of a run to the counters. */
static void account(struct buddy_runs *r, uint32_t start, uint32_t len, int sign)
{
	uint64_t a = r->base_g + start, b = a + len, c = buddy_index_split(a, b);
	uint64_t bits[2] = { c - a, b - c };

	for (int i = 0; i < 2; i++) {
		for (uint64_t x = bits[i]; x; x &= x - 1)
			r->n_free[__builtin_ctzll(x)] += (uint32_t)sign;
	}
	r->free_granules += sign > 0 ? len : -(uint64_t)len;
}

/* ---------------------------------------------------------------- memory */

static void *map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void buddy_unmap_give(const struct buddy_unmap *u, void *addr, size_t len)
{
	if (u->fn)
		u->fn(u->data, addr, len);
	else
		munmap(addr, len);
}

/*
 * realloc() that maps large arrays (see above); the first @used bytes are kept. Returns NULL,
 * @p unchanged, on failure.
 */
static void *mem_resize(void *p, size_t old, size_t size, size_t used, const struct buddy_unmap *u)
{
	void *q;

	if (old < BIG_BYTES && size < BIG_BYTES)
		return realloc(p, size);
	/* A mapped array shrinking stays where it is: only its tail (whole pages) is handed over. */
	if (u->fn && size >= BIG_BYTES && size < old && size % BIG_BYTES == 0) {
		buddy_unmap_give(u, (unsigned char *)p + size, old - size);
		return p;
	}
	if (old >= BIG_BYTES && size >= BIG_BYTES) {
		q = mremap(p, old, size, MREMAP_MAYMOVE);
		return q == MAP_FAILED ? NULL : q;
	}
	q = size >= BIG_BYTES ? map(size) : malloc(size);
	if (!q)
		return NULL;
	if (p && used)
		memcpy(q, p, used < size ? used : size);
	if (old >= BIG_BYTES)
		buddy_unmap_give(u, p, old);
	else
		free(p);
	return q;
}

static void mem_free(void *p, size_t size)
{
	if (size >= BIG_BYTES)
		munmap(p, size);
	else
		free(p);
}

/* ---------------------------------------------------------------- AVL helpers */

static uint32_t height(const struct buddy_runs *r, uint32_t x)
{
	return x == BUDDY_NIL ? 0 : r->node[x].height;
}

static uint32_t max_len(const struct buddy_runs *r, uint32_t x)
{
	return x == BUDDY_NIL ? 0 : r->node[x].max_len;
}

static uint64_t mask(const struct buddy_runs *r, uint32_t x)
{
	return x == BUDDY_NIL ? 0 : r->node[x].mask;
}

static uint32_t max3(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t m = a > b ? a : b;

	return m > c ? m : c;
}

static void fix(struct buddy_runs *r, uint32_t x)
{
	struct buddy_run *n = &r->node[x];
	uint32_t hl = height(r, n->left), hr = height(r, n->right);
	uint64_t a = r->base_g + n->start;

	n->height = 1 + (hl > hr ? hl : hr);
	n->max_len = max3(n->len, max_len(r, n->left), max_len(r, n->right));
	n->mask = span_mask(a, a + n->len) | mask(r, n->left) | mask(r, n->right);
}

static uint32_t rotate_right(struct buddy_runs *r, uint32_t y)
{
	uint32_t x = r->node[y].left;

	r->node[y].left = r->node[x].right;
	r->node[x].right = y;
	fix(r, y);
	fix(r, x);
	return x;
}

static uint32_t rotate_left(struct buddy_runs *r, uint32_t x)
{
	uint32_t y = r->node[x].right;

	r->node[x].right = r->node[y].left;
	r->node[y].left = x;
	fix(r, x);
	fix(r, y);
	return y;
}

/* Rebalances the subtree at @x, whose children are balanced; returns its new root. */
static uint32_t balance(struct buddy_runs *r, uint32_t x)
{
	struct buddy_run *n = &r->node[x];
	int bf = (int)height(r, n->left) - (int)height(r, n->right);

	if (bf > 1) {
		uint32_t l = n->left;

		if (height(r, r->node[l].left) < height(r, r->node[l].right))
			r->node[x].left = rotate_left(r, l);
		return rotate_right(r, x);
	}
	if (bf < -1) {
		uint32_t rt = n->right;

		if (height(r, r->node[rt].right) < height(r, r->node[rt].left))
			r->node[x].right = rotate_right(r, rt);
		return rotate_left(r, x);
	}
	fix(r, x);
	return x;
}

struct path {
	uint32_t node[PATH_MAX_DEPTH];
	bool right[PATH_MAX_DEPTH]; /* went to the right child of node[i] */
	unsigned depth;
};

/* Walks down towards @key, recording the path; returns the node with that key or NIL. */
static uint32_t descend(const struct buddy_runs *r, uint32_t key, struct path *p)
{
	uint32_t x = r->root;

	p->depth = 0;
	while (x != BUDDY_NIL && r->node[x].start != key) {
		p->node[p->depth] = x;
		p->right[p->depth++] = key > r->node[x].start;
		x = key > r->node[x].start ? r->node[x].right : r->node[x].left;
	}
	return x;
}

/* Hangs @sub where the path ends and rebalances (or only fixes) every node up to the root. */
static void climb(struct buddy_runs *r, const struct path *p, uint32_t sub, bool rebalance)
{
	for (unsigned i = p->depth; i-- > 0;) {
		uint32_t x = p->node[i];

		if (p->right[i])
			r->node[x].right = sub;
		else
			r->node[x].left = sub;
		sub = rebalance ? balance(r, x) : (fix(r, x), x);
	}
	r->root = sub;
}

/* ---------------------------------------------------------------- runs: pool */

int buddy_runs_init(struct buddy_runs *r, uint64_t base_g)
{
	*r = (struct buddy_runs){ .root = BUDDY_NIL, .base_g = base_g };
	return buddy_runs_reserve(r, 1);
}

void buddy_runs_finish(struct buddy_runs *r)
{
	mem_free(r->node, (size_t)r->cap * sizeof(*r->node));
	r->node = NULL;
	r->n = r->cap = 0;
}

int buddy_runs_reserve(struct buddy_runs *r, uint32_t count)
{
	uint32_t cap = r->cap ? r->cap : BUDDY_RUNS_MIN_CAP;
	struct buddy_run *node;

	if (count <= r->cap)
		return 0;
	while (cap < count)
		cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
	node = mem_resize(r->node, (size_t)r->cap * sizeof(*node), (size_t)cap * sizeof(*node),
			  (size_t)r->n * sizeof(*node), &r->unmap);
	if (!node)
		return -ENOMEM;
	r->node = node;
	r->cap = cap;
	return 0;
}

void buddy_runs_trim(struct buddy_runs *r, uint32_t count)
{
	uint32_t cap = r->cap;
	struct buddy_run *node;

	if (count < r->n)
		count = r->n;
	while (cap > BUDDY_RUNS_MIN_CAP && cap / 4 >= count)
		cap /= 2;
	if (cap == r->cap)
		return;
	node = mem_resize(r->node, (size_t)r->cap * sizeof(*node), (size_t)cap * sizeof(*node),
			  (size_t)r->n * sizeof(*node), &r->unmap);
	if (node) { /* a refused shrink keeps the larger array */
		r->node = node;
		r->cap = cap;
	}
}

/* ---------------------------------------------------------------- runs: updates */

void buddy_runs_insert(struct buddy_runs *r, uint32_t start, uint32_t len)
{
	struct path p;
	uint32_t x = r->n++;

	descend(r, start, &p);
	r->node[x] = (struct buddy_run){
		.start = start, .len = len, .left = BUDDY_NIL, .right = BUDDY_NIL
	};
	fix(r, x);
	climb(r, &p, x, true);
	account(r, start, len, 1);
}

/* Moves the last node into the free slot @hole, fixing the one link that pointed to it. */
static void fill_hole(struct buddy_runs *r, uint32_t hole)
{
	uint32_t last = --r->n;
	struct path p;

	if (hole == last)
		return;
	descend(r, r->node[last].start, &p);
	r->node[hole] = r->node[last];
	if (p.depth == 0)
		r->root = hole;
	else if (p.right[p.depth - 1])
		r->node[p.node[p.depth - 1]].right = hole;
	else
		r->node[p.node[p.depth - 1]].left = hole;
}

void buddy_runs_remove(struct buddy_runs *r, uint32_t start)
{
	struct path p;
	uint32_t z = descend(r, start, &p), t = z, sub;

	account(r, r->node[z].start, r->node[z].len, -1);
	if (r->node[z].left != BUDDY_NIL && r->node[z].right != BUDDY_NIL) {
		/* Two children: the successor's run moves into z, and the successor goes. */
		p.node[p.depth] = z;
		p.right[p.depth++] = true;
		for (t = r->node[z].right; r->node[t].left != BUDDY_NIL; t = r->node[t].left) {
			p.node[p.depth] = t;
			p.right[p.depth++] = false;
		}
		r->node[z].start = r->node[t].start;
		r->node[z].len = r->node[t].len;
	}
	sub = r->node[t].left != BUDDY_NIL ? r->node[t].left : r->node[t].right;
	climb(r, &p, sub, true);
	fill_hole(r, t);
}

void buddy_runs_set(struct buddy_runs *r, uint32_t start, uint32_t new_start, uint32_t len)
{
	struct path p;
	uint32_t x = descend(r, start, &p);

	account(r, r->node[x].start, r->node[x].len, -1);
	r->node[x].start = new_start;
	r->node[x].len = len;
	fix(r, x);
	climb(r, &p, x, false);
	account(r, new_start, len, 1);
}

/* ---------------------------------------------------------------- runs: queries */

static bool span_of(const struct buddy_runs *r, uint32_t x, struct buddy_span *run)
{
	if (x == BUDDY_NIL)
		return false;
	*run = (struct buddy_span){ r->node[x].start, r->node[x].len };
	return true;
}

bool buddy_runs_at(const struct buddy_runs *r, uint32_t start, struct buddy_span *run)
{
	struct path p;

	return span_of(r, descend(r, start, &p), run);
}

bool buddy_runs_floor(const struct buddy_runs *r, uint32_t key, struct buddy_span *run)
{
	uint32_t x = r->root, best = BUDDY_NIL;

	while (x != BUDDY_NIL) {
		if (r->node[x].start <= key) {
			best = x;
			x = r->node[x].right;
		} else {
			x = r->node[x].left;
		}
	}
	return span_of(r, best, run);
}

bool buddy_runs_block(const struct buddy_runs *r, unsigned order, struct buddy_span *run,
		      uint32_t *blockp)
{
	uint64_t bit = UINT64_C(1) << order, a, b, c;
	uint32_t x = r->root;

	while (x != BUDDY_NIL && (r->node[x].mask & bit)) {
		const struct buddy_run *n = &r->node[x];

		if (mask(r, n->left) & bit) {
			x = n->left;
			continue;
		}
		a = r->base_g + n->start;
		b = a + n->len;
		c = buddy_index_split(a, b);
		if (!(span_mask(a, b) & bit)) {
			x = n->right;
			continue;
		}
		/* Ascending blocks first: the lower ones sit before; then the larger ones before. */
		if ((c - a) & bit)
			*blockp = (uint32_t)(a + ((c - a) & (bit - 1)) - r->base_g);
		else
			*blockp = (uint32_t)(c + ((b - c) & ~(2 * bit - 1)) - r->base_g);
		return span_of(r, x, run);
	}
	return false;
}

/* The leftmost run of at least @len granules: exact, one path down. */
static uint32_t fit_unaligned(const struct buddy_runs *r, uint32_t len)
{
	uint32_t x = r->root;

	if (max_len(r, x) < len)
		return BUDDY_NIL;
	for (;;) {
		const struct buddy_run *n = &r->node[x];

		if (max_len(r, n->left) >= len)
			x = n->left;
		else if (n->len >= len)
			return x;
		else
			x = n->right;
	}
}

/* Aligned start of run @x for 2^@a granules, if @len granules fit from there. */
static bool fits_at(const struct buddy_runs *r, uint32_t x, uint32_t len, unsigned a,
		    uint32_t *startp)
{
	uint64_t abs = r->base_g + r->node[x].start;
	uint64_t s = ((abs + (UINT64_C(1) << a) - 1) >> a << a) - r->base_g;

	if (s + len > (uint64_t)r->node[x].start + r->node[x].len)
		return false;
	*startp = (uint32_t)s;
	return true;
}

/*
 * In-order walk of the subtrees whose longest run could hold @len, testing each run of at least
 * @len. After FIT_PROBES runs that were long enough but misaligned, a run of len + 2^a - 1
 * (which surely fits) is looked up in one path down; the walk goes on only when there is none.
 */
bool buddy_runs_fit(const struct buddy_runs *r, uint32_t len, unsigned a, struct buddy_span *run,
		    uint32_t *startp)
{
	uint32_t stack[PATH_MAX_DEPTH], x = r->root, misses = 0;
	unsigned sp = 0;

	if (a == 0) {
		x = fit_unaligned(r, len);
		*startp = x == BUDDY_NIL ? 0 : r->node[x].start;
		return span_of(r, x, run);
	}
	for (;;) {
		while (x != BUDDY_NIL && r->node[x].max_len >= len) {
			stack[sp++] = x;
			x = r->node[x].left;
		}
		if (sp == 0)
			return false;
		x = stack[--sp];
		if (r->node[x].len >= len) {
			if (fits_at(r, x, len, a, startp))
				return span_of(r, x, run);
			if (++misses == FIT_PROBES &&
			    (uint64_t)len + (UINT64_C(1) << a) - 1 <= max_len(r, r->root)) {
				uint32_t y = fit_unaligned(r, len + (UINT32_C(1) << a) - 1);

				if (y != BUDDY_NIL && fits_at(r, y, len, a, startp))
					return span_of(r, y, run);
			}
		}
		x = r->node[x].right;
	}
}

uint64_t buddy_runs_orders(const struct buddy_runs *r)
{
	return mask(r, r->root);
}

uint32_t buddy_runs_longest(const struct buddy_runs *r)
{
	return max_len(r, r->root);
}

int buddy_runs_each(const struct buddy_runs *r, int (*fn)(void *data, const struct buddy_span *run),
		    void *data)
{
	uint32_t stack[PATH_MAX_DEPTH], x = r->root;
	unsigned sp = 0;

	for (;;) {
		struct buddy_span run;
		int ret;

		while (x != BUDDY_NIL && sp < PATH_MAX_DEPTH) {
			stack[sp++] = x;
			x = r->node[x].left;
		}
		if (x != BUDDY_NIL)
			return -EUCLEAN; /* deeper than any balanced tree: buddy_check() says why */
		if (sp == 0)
			return 0;
		x = stack[--sp];
		span_of(r, x, &run);
		ret = fn(data, &run);
		if (ret)
			return ret;
		x = r->node[x].right;
	}
}

/* ---------------------------------------------------------------- runs: check */

#define FAIL(...)                                             \
	do {                                                  \
		if (why)                                      \
			snprintf(why, why_size, __VA_ARGS__); \
		return -EUCLEAN;                              \
	} while (0)

struct tally {
	uint32_t n_free[BUDDY_MAX_ORDERS];
	uint64_t free_granules;
	uint32_t visited;
	uint64_t prev_end; /* end of the previous run, 0 before the first */
};

/* One node against its children's stored figures and its in-order predecessor. */
static int check_node(const struct buddy_runs *r, uint32_t x, uint32_t n_granules, struct tally *t,
		      char *why, size_t why_size)
{
	const struct buddy_run *n = &r->node[x];
	uint64_t a = r->base_g + n->start, c;
	uint32_t hl = height(r, n->left), hr = height(r, n->right);

	if (n->len == 0 || (uint64_t)n->start + n->len > n_granules)
		FAIL("run at granule %u of %u granules lies outside the range", n->start, n->len);
	if (t->visited > 1 && n->start <= t->prev_end)
		FAIL("run at granule %u is out of order or touches the run before it", n->start);
	if (n->height != 1 + (hl > hr ? hl : hr) || hl > hr + 1 || hr > hl + 1)
		FAIL("run at granule %u: height %u, children %u and %u", n->start, n->height, hl,
		     hr);
	if (n->max_len != max3(n->len, max_len(r, n->left), max_len(r, n->right)))
		FAIL("run at granule %u: longest run %u recorded wrong", n->start, n->max_len);
	if (n->mask != (span_mask(a, a + n->len) | mask(r, n->left) | mask(r, n->right)))
		FAIL("run at granule %u: order mask 0x%llx recorded wrong", n->start,
		     (unsigned long long)n->mask);
	c = buddy_index_split(a, a + n->len);
	for (uint64_t x1 = c - a; x1; x1 &= x1 - 1)
		t->n_free[__builtin_ctzll(x1)]++;
	for (uint64_t x2 = a + n->len - c; x2; x2 &= x2 - 1)
		t->n_free[__builtin_ctzll(x2)]++;
	t->free_granules += n->len;
	t->prev_end = (uint64_t)n->start + n->len;
	return 0;
}

int buddy_runs_check(const struct buddy_runs *r, uint32_t n_granules, char *why, size_t why_size)
{
	uint32_t stack[PATH_MAX_DEPTH], x = r->root;
	struct tally t = { .visited = 0 };
	unsigned sp = 0;
	int ret;

	if (r->n > r->cap)
		FAIL("%u runs in an array of %u", r->n, r->cap);
	for (;;) {
		while (x != BUDDY_NIL) {
			if (x >= r->n || sp == PATH_MAX_DEPTH || t.visited + sp >= r->n)
				FAIL("run tree is corrupt at node %u", x);
			stack[sp++] = x;
			x = r->node[x].left;
		}
		if (sp == 0)
			break;
		x = stack[--sp];
		t.visited++;
		ret = check_node(r, x, n_granules, &t, why, why_size);
		if (ret < 0)
			return ret;
		x = r->node[x].right;
	}
	if (t.visited != r->n)
		FAIL("run tree holds %u of %u runs", t.visited, r->n);
	for (unsigned o = 0; o < BUDDY_MAX_ORDERS; o++) {
		if (t.n_free[o] != r->n_free[o])
			FAIL("order %u: %u free blocks counted, %u recorded", o, t.n_free[o],
			     r->n_free[o]);
	}
	if (t.free_granules != r->free_granules)
		FAIL("%llu free granules in runs, %llu recorded",
		     (unsigned long long)t.free_granules, (unsigned long long)r->free_granules);
	return 0;
}

#undef FAIL
