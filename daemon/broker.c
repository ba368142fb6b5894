/* SPDX-License-Identifier: MIT */
/*
 * The broker (see broker.h). Handles count up from 1 and are never reused, so a stale handle
 * can only miss, never hit someone else's buffer; ownership is checked on every call anyway.
 * Tokens come from getrandom(): knowing one's own tokens tells nothing about others'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/attr.h"
#include "common/units.h"
#include "daemon/broker.h"

void broker_init(struct broker *b, struct pool *pool, const struct broker_scrub *scrub)
{
	memset(b, 0, sizeof(*b));
	b->pool = pool;
	if (scrub)
		b->scrub = *scrub;
	hmap_init(&b->tokens);
	hmap_set_unmap(&b->tokens, b->scrub.unmap, b->scrub.unmap_data);
	hmap_set_populate(&b->tokens, b->scrub.populate);
	list_init(&b->clients);
	treap_init(&b->by_handle);
	slab_init_shared(&b->alloc_slab, sizeof(struct broker_alloc), b->scrub.depot);
	slab_init_shared(&b->hold_slab, sizeof(struct broker_hold_more), b->scrub.depot);
	list_init(&b->orphans);
	list_init(&b->dying);
	b->next_client_id = 1;
	b->next_handle = 1;
}

void broker_finish(struct broker *b)
{
	struct list *pos, *tmp;

	list_for_each_safe(pos, tmp, &b->clients)
		broker_client_remove(b, list_entry(pos, struct broker_client, link));
	list_for_each_safe(pos, tmp, &b->orphans)
		broker_client_remove(b, list_entry(pos, struct broker_client, link));
	list_for_each_safe(pos, tmp, &b->dying)
		broker_client_remove(b, list_entry(pos, struct broker_client, link));
	hmap_finish(&b->tokens);
	slab_finish(&b->alloc_slab);
	slab_finish(&b->hold_slab);
}

static uint64_t random_token(void)
{
	uint64_t t = 0;

	while (t == 0) {
		if (getrandom(&t, sizeof(t), 0) != (ssize_t)sizeof(t))
			t = 0;
	}
	return t;
}

void broker_set_journal(struct broker *b, const struct broker_journal *journal)
{
	b->journal = journal ? *journal : (struct broker_journal){ 0 };
}

#define JOURNAL(b, fn, x)                                        \
	do {                                                     \
		if ((b)->journal.fn)                             \
			(b)->journal.fn((b)->journal.data, (x)); \
	} while (0)

/* Room in the journal for @n records: what a change that gives something will write. */
static int reserve(struct broker *b, unsigned n)
{
	return b->journal.reserve ? b->journal.reserve(b->journal.data, n) : 0;
}

bool broker_alloc_shared(const struct broker_alloc *a)
{
	const struct broker_hold *h = broker_first_hold(a);

	return broker_alloc_token(a) != 0 || (h && h->next);
}

uint64_t broker_cost(uint64_t size, uint64_t align)
{
	return align > size ? align : size;
}

uint64_t broker_alloc_cost(const struct broker_alloc *a)
{
	return broker_cost(a->blk.size, broker_alloc_align(a));
}

int broker_client_add(struct broker *b, pid_t pid, uid_t uid, gid_t gid, const char *comm,
		      struct broker_client **clientp)
{
	struct broker_client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->id = b->next_client_id++;
	c->pid = pid;
	c->uid = uid;
	c->gid = gid;
	c->session = random_token();
	snprintf(c->comm, sizeof(c->comm), "%s", comm ? comm : "");
	list_init(&c->holds);
	list_insert_before(&b->clients, &c->link);
	b->n_clients++;
	*clientp = c;
	return 0;
}

/*
 * [@addr, @addr + @len) of region @region was just given back to the pool and is free, dirty:
 * with a queue, taken back (in pieces) and queued, so that the allocator cannot hand it out
 * before it is clean; nothing runs on the loop in between that could allocate it.
 */
static void queue(struct broker *b, const struct pool_block *blk, const struct broker_freed *from)
{
	if (from && b->scrub.queue_freed)
		b->scrub.queue_freed(b->scrub.data, blk, from);
	else
		b->scrub.queue(b->scrub.data, blk);
}

static void scrub_range(struct broker *b, uint32_t region, uint64_t addr, uint64_t len,
			const struct broker_freed *from)
{
	uint64_t g = pool_granule(b->pool);
	uint64_t piece = BROKER_SCRUB_PIECE > g ? BROKER_SCRUB_PIECE : g;
	uint64_t end = addr + len;
	struct pool_block blk;

	if (!b->scrub.queue) {
		if (b->scrub.zero)
			b->scrub.zero(b->scrub.data, region, addr, len);
		return;
	}
	for (uint64_t p = addr, next; p < end; p = next) {
		next = (p / piece + 1) * piece;
		next = next < end ? next : end;
		if (pool_reserve(b->pool, region, p, next - p, &blk) == 0)
			queue(b, &blk, from);
		else if (b->scrub.zero) /* cannot happen (it is free): never leave it dirty */
			b->scrub.zero(b->scrub.data, region, p, next - p);
	}
}

/* @blk, live and no longer held, goes back to the pool once clean. */
static void give_back(struct broker *b, const struct pool_block *blk,
		      const struct broker_freed *from)
{
	if (b->scrub.queue && blk->size <= BROKER_SCRUB_PIECE) {
		queue(b, blk, from);
		return;
	}
	if (!b->scrub.queue && b->scrub.zero)
		b->scrub.zero(b->scrub.data, blk->region, blk->addr, blk->size);
	pool_free(b->pool, blk);
	if (b->scrub.queue)
		scrub_range(b, blk->region, blk->addr, blk->size, from);
}

/* The allocation is gone from every table: scrub it and give it back to the pool. */
static void release(struct broker *b, struct broker_alloc *a, const struct broker_client *last)
{
	struct broker_freed from = { .handle = a->handle, .client = last };

	if (broker_alloc_shared(a))
		b->n_shared--;
	if (broker_alloc_token(a))
		hmap_remove(&b->tokens, broker_alloc_token(a));
	treap_remove(&b->by_handle, &a->by_handle);
	JOURNAL(b, alloc_gone, a);
	give_back(b, &a->blk, &from);
	free(a->extra);
	slab_free(&b->alloc_slab, a);
}

/* Takes @h, whose count is 0, out of @a's holds; frees it unless it is @a's own. */
static void unlink_hold(struct broker *b, struct broker_alloc *a, struct broker_hold *h)
{
	struct broker_hold **pp = &a->own.next;

	if (h == &a->own) {
		h->client = NULL;
		return;
	}
	while (*pp != h)
		pp = &(*pp)->next;
	*pp = h->next;
	slab_free(&b->hold_slab, list_entry(h, struct broker_hold_more, hold));
}

/* Drops @n of the hold's count; the hold and maybe the allocation go with the last. */
static void drop_hold(struct broker *b, struct broker_hold *h, uint64_t n)
{
	struct broker_alloc *a = broker_hold_alloc(h);
	bool was_shared = broker_alloc_shared(a);
	struct broker_client *last;

	h->count -= n;
	h->client->n_buffers -= n;
	h->client->bytes -= n * broker_alloc_cost(a);
	if (h->count > 0) {
		JOURNAL(b, hold, h);
		return;
	}
	JOURNAL(b, hold_gone, h);
	list_remove(&h->client_link);
	last = h->client;
	unlink_hold(b, a, h);
	if (!broker_first_hold(a)) {
		release(b, a, last);
		return;
	}
	if (was_shared && !broker_alloc_shared(a))
		b->n_shared--;
}

void broker_client_remove(struct broker *b, struct broker_client *c)
{
	struct list *pos, *tmp;

	if (!c)
		return;
	list_for_each_safe(pos, tmp, &c->holds)
	{
		struct broker_hold *h = list_entry(pos, struct broker_hold, client_link);

		drop_hold(b, h, h->count);
	}
	list_remove(&c->link);
	if (c->orphan)
		b->n_orphans--;
	else if (!c->dying)
		b->n_clients--;
	free(c);
}

/* Drops whole holds of @c, at most @budget. Returns the budget left. */
static size_t drop_some(struct broker *b, struct broker_client *c, size_t budget)
{
	while (budget > 0 && !list_empty(&c->holds)) {
		struct broker_hold *h = list_entry(c->holds.next, struct broker_hold, client_link);

		drop_hold(b, h, h->count);
		budget--;
	}
	return budget;
}

bool broker_client_retire(struct broker *b, struct broker_client *c, size_t budget)
{
	drop_some(b, c, budget);
	if (list_empty(&c->holds)) {
		broker_client_remove(b, c);
		return !list_empty(&b->dying);
	}
	list_remove(&c->link);
	list_insert_before(&b->dying, &c->link);
	c->dying = true;
	b->n_clients--;
	return true;
}

bool broker_reap(struct broker *b, size_t budget)
{
	while (budget > 0 && !list_empty(&b->dying)) {
		struct broker_client *c = list_entry(b->dying.next, struct broker_client, link);

		budget = drop_some(b, c, budget);
		if (list_empty(&c->holds))
			broker_client_remove(b, c);
	}
	return !list_empty(&b->dying);
}

void broker_scrubbing(const struct broker *b, uint32_t region, uint64_t *bytesp, uint64_t *blocksp)
{
	size_t n = pool_n_regions(b->pool);

	*bytesp = *blocksp = 0;
	if (!b->scrub.backlog)
		return;
	for (size_t i = region == UINT32_MAX ? 0 : region; i < n; i++) {
		uint64_t bytes, blocks;

		b->scrub.backlog(b->scrub.data, (uint32_t)i, &bytes, &blocks);
		*bytesp += bytes;
		*blocksp += blocks;
		if (region != UINT32_MAX)
			break;
	}
}

struct extents {
	struct buddy_extent *v;
	size_t n, cap;
};

static int add_free_extent(void *data, const struct buddy_extent *e)
{
	struct extents *x = data;

	if (e->allocated)
		return 0;
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 64;
		struct buddy_extent *v = realloc(x->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->v = v;
		x->cap = cap;
	}
	x->v[x->n++] = *e;
	return 0;
}

int broker_scrub_free(struct broker *b, uint32_t region)
{
	const struct pool_region *pr = pool_region(b->pool, region);
	struct extents x = { 0 };
	int ret;

	if (!pr)
		return 0;
	/* Collected first: taking blocks from the pool while walking it would change the walk. */
	ret = buddy_walk(pr->buddy, add_free_extent, &x);
	for (size_t i = 0; ret == 0 && i < x.n; i++)
		scrub_range(b, region, x.v[i].addr, x.v[i].size, NULL);
	free(x.v);
	return ret;
}

/*
 * Whether memory being scrubbed might hold what the pool could not serve now; if so, the
 * scrubber hears that someone waits for it.
 */
static bool worth_waiting(const struct broker *b, enum smh_reg_attr attr, uint64_t size,
			  uint64_t align)
{
	uint64_t need = 1;

	while (need < size && need <= UINT64_MAX / 2)
		need <<= 1;
	need = need > align ? need : align;
	for (size_t i = 0; i < pool_n_regions(b->pool); i++) {
		const struct pool_region *pr = pool_region(b->pool, i);
		uint64_t bytes, blocks;
		struct buddy_stats st;

		if (pr->attr != attr || pr->disabled)
			continue;
		broker_scrubbing(b, (uint32_t)i, &bytes, &blocks);
		if (bytes == 0 || pool_region_stats(b->pool, i, &st) < 0 || need > st.total)
			continue;
		if (st.free + bytes >= need) {
			if (b->scrub.waiting)
				b->scrub.waiting(b->scrub.data);
			return true;
		}
	}
	return false;
}

/*
 * @a's extra part, made (with @name, NULL for none, cut at BUFNAME_MAX, which smhd's checks
 * never let a name pass) if it has none yet. NULL when there is no memory.
 */
static struct broker_alloc_extra *get_extra(struct broker_alloc *a, const char *name)
{
	size_t len = name ? strnlen(name, BUFNAME_MAX) : 0;
	struct broker_alloc_extra *x;

	if (a->extra)
		return a->extra;
	x = malloc(sizeof(*x) + len + 1);
	if (!x)
		return NULL;
	x->token = 0;
	x->owner = broker_alloc_owner(a);
	memcpy(x->name, name ? name : "", len);
	x->name[len] = '\0';
	a->extra = x;
	return x;
}

/* @c's hold on @a, or NULL. */
static struct broker_hold *find_hold(const struct broker_alloc *a, const struct broker_client *c)
{
	for (struct broker_hold *h = broker_first_hold(a); h; h = h->next)
		if (h->client == c)
			return h;
	return NULL;
}

/* Adds @n to @c's hold on @a, creating it, with one journal record. Returns 0, -EMLINK (past
 * BROKER_HOLD_COUNT_MAX) or -ENOMEM. */
static int add_holds(struct broker *b, struct broker_client *c, struct broker_alloc *a, uint64_t n)
{
	struct broker_hold *h = find_hold(a, c);

	if (n > BROKER_HOLD_COUNT_MAX - (h ? h->count : 0))
		return -EMLINK;
	if (!h) {
		bool was_shared = broker_alloc_shared(a);

		if (a->own.client) {
			struct broker_hold **pp = &a->own.next;
			struct broker_hold_more *m;

			/* The owner is no longer the one holder's: it is kept in the extra part. */
			if (!get_extra(a, NULL))
				return -ENOMEM;
			m = slab_alloc(&b->hold_slab);
			if (!m)
				return -ENOMEM;
			m->alloc = a;
			h = &m->hold;
			while (*pp) /* last: holders in the order they came */
				pp = &(*pp)->next;
			*pp = h;
		} else {
			h = &a->own;
		}
		h->client = c;
		list_insert_before(&c->holds, &h->client_link);
		if (!was_shared && broker_alloc_shared(a))
			b->n_shared++;
	}
	h->count += n;
	c->n_buffers += n;
	c->bytes += n * broker_alloc_cost(a);
	JOURNAL(b, hold, h); /* one record, whatever @n */
	return 0;
}

static int add_hold(struct broker *b, struct broker_client *c, struct broker_alloc *a)
{
	return add_holds(b, c, a, 1);
}

struct broker_alloc *broker_find_alloc(struct broker *b, uint64_t handle)
{
	struct treap_node *n = treap_find(&b->by_handle, handle);

	return n ? list_entry(n, struct broker_alloc, by_handle) : NULL;
}

struct broker_hold *broker_find_hold(struct broker *b, struct broker_client *c, uint64_t handle)
{
	struct broker_alloc *a = broker_find_alloc(b, handle);

	return a ? find_hold(a, c) : NULL;
}

/*
 * Puts @a (its handle, the index's key, set; not indexed yet) in the index of allocations. A
 * handle above the last, as every new one and restored ones in the state file's order are, is
 * appended without a search (finding the last walks the right spine: O(log n) expected, on
 * nodes just touched).
 */
static void insert_in_order(struct broker *b, struct broker_alloc *a)
{
	struct treap_node *last = treap_last(&b->by_handle);

	treap_insert(&b->by_handle, &a->by_handle, last && last->key < a->handle ? last : NULL);
}

/* @align: 0 or a power of two. */
static void set_align(struct broker_alloc *a, uint64_t align)
{
	a->own.align_log2p1 = align ? (unsigned)__builtin_ctzll(align) + 1 : 0;
}

/* Most buffers have no name: one is kept in the extra part, as long as it is. */
static int set_name(struct broker_alloc *a, const char *name)
{
	if (!name || !name[0])
		return 0;
	return get_extra(a, name) ? 0 : -ENOMEM;
}

int broker_alloc(struct broker *b, struct broker_client *c, enum smh_reg_attr attr, uint64_t size,
		 uint64_t align, struct broker_alloc **allocp)
{
	return broker_alloc_named(b, c, attr, size, align, NULL, allocp);
}

int broker_alloc_named(struct broker *b, struct broker_client *c, enum smh_reg_attr attr,
		       uint64_t size, uint64_t align, const char *name,
		       struct broker_alloc **allocp)
{
	struct broker_alloc *a = slab_alloc(&b->alloc_slab);
	int ret;

	if (!a)
		return -ENOMEM;
	a->own.inside = 1; /* from the start: broker_hold_alloc() must never read past it */
	ret = set_name(a, name);
	if (ret == 0)
		ret = reserve(b, 2); /* the allocation and its hold */
	if (ret < 0)
		goto err_alloc;
	ret = pool_alloc(b->pool, attr, size, align, &a->blk);
	if (ret == -ENOMEM && worth_waiting(b, attr, size, align))
		ret = -EAGAIN;
	if (ret < 0)
		goto err_alloc;
	a->handle = b->next_handle;
	if (a->extra)
		a->extra->owner = c->id;
	set_align(a, align);
	JOURNAL(b, alloc, a);
	ret = add_hold(b, c, a);
	if (ret < 0)
		goto err_table;
	b->next_handle++;
	insert_in_order(b, a);
	*allocp = a;
	return 0;

err_table:
	JOURNAL(b, alloc_gone, a);
	pool_free(b->pool, &a->blk); /* never written: still clean */
err_alloc:
	free(a->extra);
	slab_free(&b->alloc_slab, a);
	return ret;
}

int broker_free(struct broker *b, struct broker_client *c, uint64_t handle)
{
	struct broker_hold *h = broker_find_hold(b, c, handle);

	if (!h)
		return -EINVAL;
	drop_hold(b, h, 1);
	return 0;
}

int broker_realloc(struct broker *b, struct broker_client *c, uint64_t handle, uint64_t size,
		   struct broker_alloc **allocp)
{
	struct broker_hold *h = broker_find_hold(b, c, handle);
	struct broker_freed from = { .client = c };
	struct pool_block old;
	struct broker_alloc *a;
	uint64_t old_cost;
	int ret;

	if (!h)
		return -EINVAL;
	a = broker_hold_alloc(h);
	if (!broker_alloc_held_by_one(a))
		return -EBUSY;
	ret = reserve(b, 1);
	if (ret < 0)
		return ret;
	old = a->blk;
	from.handle = a->handle;
	old_cost = broker_alloc_cost(a);
	ret = pool_realloc(b->pool, &a->blk, size, broker_alloc_align(a));
	if (ret == -ENOMEM &&
	    worth_waiting(b, pool_region(b->pool, old.region)->attr, size, broker_alloc_align(a)))
		ret = -EAGAIN;
	if (ret < 0)
		return ret;
	/* Recorded before the old block is scrubbed: a crash in between loses no content. */
	JOURNAL(b, alloc, a);
	/* Keep free memory zero: what the old block gave back still holds the contents. */
	if (a->blk.region != old.region || a->blk.addr != old.addr)
		scrub_range(b, old.region, old.addr, old.size, &from);
	else if (a->blk.size < old.size)
		scrub_range(b, old.region, old.addr + a->blk.size, old.size - a->blk.size, &from);
	c->bytes = c->bytes - h->count * old_cost + h->count * broker_alloc_cost(a);
	*allocp = a;
	return 0;
}

int broker_export(struct broker *b, struct broker_client *c, uint64_t handle, uint64_t *tokenp)
{
	struct broker_hold *h = broker_find_hold(b, c, handle);
	struct broker_alloc *a;
	uint64_t t;
	int ret;

	if (!h)
		return -EINVAL;
	a = broker_hold_alloc(h);
	if (broker_alloc_token(a) == 0) {
		bool was_shared = broker_alloc_shared(a);

		ret = reserve(b, 1);
		if (ret < 0)
			return ret;
		if (!get_extra(a, NULL))
			return -ENOMEM;
		do
			t = random_token();
		while (hmap_get(&b->tokens, t));
		ret = hmap_put(&b->tokens, t, a);
		if (ret < 0)
			return ret;
		a->extra->token = t;
		if (!was_shared)
			b->n_shared++;
		JOURNAL(b, alloc, a);
	}
	*tokenp = a->extra->token;
	return 0;
}

struct broker_alloc *broker_alloc_after(struct broker *b, uint64_t handle)
{
	struct treap_node *n = treap_after(&b->by_handle, handle);

	return n ? list_entry(n, struct broker_alloc, by_handle) : NULL;
}

struct broker_alloc *broker_alloc_next(struct broker *b, const struct broker_alloc *a)
{
	struct treap_node *n = treap_next(&a->by_handle);

	(void)b;
	return n ? list_entry(n, struct broker_alloc, by_handle) : NULL;
}

struct broker_alloc *broker_find_token(struct broker *b, uint64_t token)
{
	return token ? hmap_get(&b->tokens, token) : NULL;
}

int broker_import(struct broker *b, struct broker_client *c, uint64_t token,
		  struct broker_alloc **allocp)
{
	struct broker_alloc *a = broker_find_token(b, token);
	int ret;

	if (!a)
		return -ENOENT;
	ret = reserve(b, 1);
	if (ret < 0)
		return ret;
	ret = add_hold(b, c, a);
	if (ret < 0)
		return ret;
	*allocp = a;
	return 0;
}

/* ---------------------------------------------------------------- restoring after a restart */

int broker_orphan_add(struct broker *b, uint64_t session, pid_t pid, uid_t uid, uint64_t proc_start,
		      struct broker_client **orphanp)
{
	struct broker_client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->id = b->next_client_id++;
	c->pid = pid;
	c->uid = uid; /* its quotas count the orphan's holds; only this uid may resume it */
	c->gid = (gid_t)-1;
	c->session = session;
	c->proc_start = proc_start;
	c->orphan = true;
	snprintf(c->comm, sizeof(c->comm), "(orphan)");
	list_init(&c->holds);
	list_insert_before(&b->orphans, &c->link);
	b->n_orphans++;
	*orphanp = c;
	return 0;
}

int broker_restore_alloc(struct broker *b, uint64_t handle, const struct pool_block *blk,
			 uint64_t align, uint64_t token, struct broker_alloc **allocp)
{
	return broker_restore_alloc_named(b, handle, blk, align, token, NULL, allocp);
}

int broker_restore_alloc_named(struct broker *b, uint64_t handle, const struct pool_block *blk,
			       uint64_t align, uint64_t token, const char *name,
			       struct broker_alloc **allocp)
{
	struct broker_alloc *a;
	int ret;

	if (handle == 0 || broker_find_alloc(b, handle) || (token && hmap_get(&b->tokens, token)))
		return -EEXIST;
	/* The alignment is charged (broker_alloc_cost()): one the daemon could have given only. */
	if ((align & (align - 1)) || (align && (blk->addr & (align - 1))) ||
	    (blk->region < pool_n_regions(b->pool) &&
	     align > pool_region(b->pool, blk->region)->size))
		return -EINVAL;
	a = slab_alloc(&b->alloc_slab);
	if (!a)
		return -ENOMEM;
	a->own.inside = 1;
	ret = pool_reserve(b->pool, blk->region, blk->addr, blk->size, &a->blk);
	if (ret < 0)
		goto err_alloc;
	a->handle = handle;
	set_align(a, align);
	ret = set_name(a, name);
	if (ret < 0)
		goto err_block;
	if (token) {
		ret = get_extra(a, NULL) ? hmap_put(&b->tokens, token, a) : -ENOMEM;
		if (ret < 0)
			goto err_block;
		a->extra->token = token;
		b->n_shared++;
	}
	insert_in_order(b, a);
	if (handle >= b->next_handle)
		b->next_handle = handle + 1;
	JOURNAL(b, alloc, a);
	*allocp = a;
	return 0;

err_block:
	pool_free(b->pool, &a->blk);
err_alloc:
	free(a->extra);
	slab_free(&b->alloc_slab, a);
	return ret;
}

int broker_restore_hold(struct broker *b, struct broker_alloc *a, struct broker_client *orphan,
			uint64_t count)
{
	if (a->extra && a->extra->owner == 0)
		a->extra->owner = orphan->id;
	return count ? add_holds(b, orphan, a, count) : 0;
}

void broker_restore_drop(struct broker *b, struct broker_alloc *a)
{
	release(b, a, NULL);
}

struct broker_client *broker_find_orphan(struct broker *b, uint64_t session)
{
	struct list *pos;

	list_for_each(pos, &b->orphans)
	{
		struct broker_client *x = list_entry(pos, struct broker_client, link);

		if (x->session == session)
			return x;
	}
	return NULL;
}

int broker_resume(struct broker *b, struct broker_client *c, uint64_t session,
		  uint64_t *n_reclaimedp)
{
	struct broker_client *o = broker_find_orphan(b, session);
	struct list *pos, *tmp;

	if (!o)
		return -ENOENT;
	if (o->uid != c->uid)
		return -EPERM;
	*n_reclaimedp = o->n_buffers;
	list_for_each_safe(pos, tmp, &o->holds)
	{
		struct broker_hold *h = list_entry(pos, struct broker_hold, client_link);
		struct broker_alloc *a = broker_hold_alloc(h);

		list_remove(&h->client_link);
		list_insert_before(&c->holds, &h->client_link);
		h->client = c;
		if (a->extra && a->extra->owner == o->id)
			a->extra->owner = c->id; /* as it is without the extra part */
		c->n_buffers += h->count;
		c->bytes += h->count * broker_alloc_cost(a);
	}
	c->session = session;
	o->n_buffers = 0;
	o->bytes = 0;
	broker_client_remove(b, o);
	/* The records name the session's process: now this connection's. */
	list_for_each(pos, &c->holds)
		JOURNAL(b, hold, list_entry(pos, struct broker_hold, client_link));
	return 0;
}

/* The @n clients (connections and orphans) that hold the most bytes, largest first. */
static size_t largest_holders(const struct broker *b, const struct broker_client **top, size_t n)
{
	const struct list *lists[] = { &b->clients, &b->orphans };
	size_t k = 0;

	for (size_t l = 0; l < 2; l++) {
		const struct list *pos;

		list_for_each(pos, lists[l])
		{
			const struct broker_client *c = list_entry(pos, struct broker_client, link);
			size_t i;

			if (c->bytes == 0)
				continue;
			for (i = k < n ? k++ : n; i > 0 && top[i - 1]->bytes < c->bytes; i--)
				if (i < n)
					top[i] = top[i - 1];
			if (i < n)
				top[i] = c;
		}
	}
	return k;
}

void broker_explain_nomem(const struct broker *b, enum smh_reg_attr attr, uint64_t size,
			  uint64_t align, char *buf, size_t buf_size)
{
	const struct broker_client *top[3];
	char s1[32], s2[32];
	size_t len, n_top;
	bool any = false;

	units_format_size(size, s1, sizeof(s1));
	units_format_size(align, s2, sizeof(s2));
	len = (size_t)snprintf(buf, buf_size, "No %s region can hold %s%s%s", attr_name(attr), s1,
			       align > 1 ? " aligned " : "", align > 1 ? s2 : "");
	for (size_t i = 0; i < pool_n_regions(b->pool) && len < buf_size; i++) {
		const struct pool_region *r = pool_region(b->pool, i);
		struct buddy_stats st;

		if (r->attr != attr || r->disabled || pool_region_stats(b->pool, i, &st) < 0)
			continue;
		units_format_size(st.free, s1, sizeof(s1));
		units_format_size(st.largest_run, s2, sizeof(s2));
		len += (size_t)snprintf(buf + len, buf_size - len,
					"%s %s has %s free, largest run %s", any ? ";" : ":",
					r->label, s1, s2);
		any = true;
	}
	if (!any && len < buf_size)
		len += (size_t)snprintf(buf + len, buf_size - len,
					": the device tree has none served");
	n_top = largest_holders(b, top, sizeof(top) / sizeof(top[0]));
	for (size_t i = 0; i < n_top && len < buf_size; i++) {
		units_format_size(top[i]->bytes, s1, sizeof(s1));
		len += (size_t)snprintf(buf + len, buf_size - len, "%s %s (pid %d) %s",
					i == 0 ? "; largest holders:" : ",", top[i]->comm,
					(int)top[i]->pid, s1);
	}
}
