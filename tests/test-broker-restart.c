/* SPDX-License-Identifier: MIT */
/*
 * The broker's restart paths on the seed's example pool: the journal (every change reported
 * in order, before the memory it gives back is scrubbed), the restore of recorded allocations
 * and their holds under orphans (at their addresses, refused where the pool disagrees), a
 * connection resuming an orphan's session, and the grace period that releases orphans whose
 * process is gone. daemon/restart/recover.c is compiled in to reach the grace timer's callback;
 * the rest goes through daemon/broker.h.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"
#include "daemon/restart/recover.c"
#include "daemon/restart/state.h"
#include "tests/test-util.h"

enum ev_kind { EV_ALLOC = 1, EV_ALLOC_GONE, EV_HOLD, EV_HOLD_GONE, EV_SCRUB };

/* A journal call or a scrub, with what it saw at that moment. */
struct event {
	enum ev_kind kind;
	uint64_t handle;
	uint64_t client, session, count; /* holds */
	uint32_t region;                 /* allocations and scrubs */
	uint64_t addr, size, token;
	char name[BUFNAME_MAX + 1]; /* allocations: as the journal saw it */
};

#define MAX_EVENTS 64

struct fixture {
	struct pool *pool;
	struct broker b;
	struct event events[MAX_EVENTS];
	unsigned n_events;
	unsigned room; /* records the journal can still take (reserve()); UINT_MAX: any */
	struct broker_client *c1, *c2;
};

static struct event *push(struct fixture *f, enum ev_kind kind)
{
	assert_true(f->n_events < MAX_EVENTS);
	f->events[f->n_events] = (struct event){ .kind = kind };
	return &f->events[f->n_events++];
}

static void on_zero(void *data, uint32_t region, uint64_t addr, uint64_t len)
{
	struct event *e = push(data, EV_SCRUB);

	e->region = region;
	e->addr = addr;
	e->size = len;
}

static void alloc_event(struct fixture *f, enum ev_kind kind, const struct broker_alloc *a)
{
	struct event *e = push(f, kind);

	e->handle = a->handle;
	e->region = a->blk.region;
	e->addr = a->blk.addr;
	e->size = a->blk.size;
	e->token = broker_alloc_token(a);
	snprintf(e->name, sizeof(e->name), "%s", broker_alloc_name(a));
}

static void hold_event(struct fixture *f, enum ev_kind kind, const struct broker_hold *h)
{
	struct event *e = push(f, kind);

	e->handle = broker_hold_alloc(h)->handle;
	e->client = h->client->id;
	e->session = h->client->session;
	e->count = h->count;
}

static void on_alloc(void *data, struct broker_alloc *a)
{
	alloc_event(data, EV_ALLOC, a);
}

static void on_alloc_gone(void *data, struct broker_alloc *a)
{
	alloc_event(data, EV_ALLOC_GONE, a);
}

static void on_hold(void *data, struct broker_hold *h)
{
	hold_event(data, EV_HOLD, h);
}

static void on_hold_gone(void *data, struct broker_hold *h)
{
	hold_event(data, EV_HOLD_GONE, h);
}

static int on_reserve(void *data, unsigned n)
{
	struct fixture *f = data;

	return n <= f->room ? 0 : -ENOSPC;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct broker_journal j = { on_reserve, on_alloc, on_alloc_gone, on_hold, on_hold_gone, f };

	assert_non_null(f);
	f->room = UINT_MAX;
	f->pool = test_example_pool(64);
	broker_init(&f->b, f->pool, &(struct broker_scrub){ .zero = on_zero, .data = f });
	broker_set_journal(&f->b, &j);
	assert_int_equal(broker_client_add(&f->b, 10, 1000, 1000, "cam", &f->c1), 0);
	assert_int_equal(broker_client_add(&f->b, 11, 1001, 1001, "codec", &f->c2), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	broker_set_journal(&f->b, NULL);
	f->b.scrub.zero = NULL; /* a test may leave more buffers than events fit */
	broker_finish(&f->b);
	test_assert_pool_empty(f->pool);
	pool_destroy(f->pool);
	free(f);
	return 0;
}

static struct buddy_stats stats(struct fixture *f, size_t region)
{
	struct buddy_stats st;

	assert_int_equal(pool_region_stats(f->pool, region, &st), 0);
	return st;
}

/* The events since the last call are exactly @want. */
static void expect(struct fixture *f, const struct event *want, unsigned n)
{
	for (unsigned i = 0; i < n && i < f->n_events; i++) {
		const struct event *e = &f->events[i];

		assert_int_equal(e->kind, want[i].kind);
		assert_int_equal(e->handle, want[i].handle);
		assert_int_equal(e->client, want[i].client);
		assert_int_equal(e->session, want[i].session);
		assert_int_equal(e->count, want[i].count);
		assert_int_equal(e->region, want[i].region);
		assert_int_equal(e->addr, want[i].addr);
		assert_int_equal(e->size, want[i].size);
		assert_int_equal(e->token, want[i].token);
	}
	assert_int_equal(f->n_events, n);
	f->n_events = 0;
}

/* Nothing was reported since the last check. */
static void expect_none(struct fixture *f)
{
	assert_int_equal(f->n_events, 0);
}

#define EXPECT(f, ...)                                                            \
	do {                                                                      \
		const struct event want_[] = { __VA_ARGS__ };                     \
		expect((f), want_, (unsigned)(sizeof(want_) / sizeof(want_[0]))); \
	} while (0)

static struct event alloc_ev(enum ev_kind kind, uint64_t handle, const struct pool_block *blk,
			     uint64_t token)
{
	return (struct event){ .kind = kind,
			       .handle = handle,
			       .region = blk->region,
			       .addr = blk->addr,
			       .size = blk->size,
			       .token = token };
}

static struct event hold_ev(enum ev_kind kind, uint64_t handle, const struct broker_client *c,
			    uint64_t count)
{
	return (struct event){ .kind = kind,
			       .handle = handle,
			       .client = c->id,
			       .session = c->session,
			       .count = count };
}

static struct event scrub_ev(uint32_t region, uint64_t addr, uint64_t len)
{
	return (struct event){ .kind = EV_SCRUB, .region = region, .addr = addr, .size = len };
}

/* ---------------------------------------------------------------- the journal */

static void test_journal_sequence(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b, *x;
	struct broker_client gone;
	struct pool_block old;
	uint64_t t;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 256, 0, &a), 0);
	EXPECT(f, alloc_ev(EV_ALLOC, 1, &a->blk, 0), hold_ev(EV_HOLD, 1, f->c1, 1));
	/* Refusals change nothing and report nothing. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 16384, 0, &x),
			 -ENOMEM);
	assert_int_equal(broker_free(&f->b, f->c2, 1), -EINVAL);
	assert_int_equal(broker_export(&f->b, f->c2, 1, &t), -EINVAL);
	expect_none(f);
	assert_int_equal(broker_export(&f->b, f->c1, 1, &t), 0);
	EXPECT(f, alloc_ev(EV_ALLOC, 1, &a->blk, t));
	assert_int_equal(broker_export(&f->b, f->c1, 1, &t), 0); /* the same token: no change */
	expect_none(f);
	assert_int_equal(broker_import(&f->b, f->c2, t, &x), 0);
	assert_int_equal(broker_import(&f->b, f->c2, t, &x), 0);
	EXPECT(f, hold_ev(EV_HOLD, 1, f->c2, 1), hold_ev(EV_HOLD, 1, f->c2, 2));
	assert_int_equal(broker_realloc(&f->b, f->c1, 1, 1024, &x), -EBUSY);
	assert_int_equal(broker_free(&f->b, f->c2, 1), 0);
	assert_int_equal(broker_free(&f->b, f->c2, 1), 0);
	EXPECT(f, hold_ev(EV_HOLD, 1, f->c2, 1), hold_ev(EV_HOLD_GONE, 1, f->c2, 0));

	/* A move is recorded before the old block is scrubbed. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 256, 0, &b), 0);
	EXPECT(f, alloc_ev(EV_ALLOC, 2, &b->blk, 0), hold_ev(EV_HOLD, 2, f->c1, 1));
	old = a->blk;
	assert_int_equal(broker_realloc(&f->b, f->c1, 1, 1024, &x), 0);
	assert_int_not_equal(a->blk.addr, old.addr);
	EXPECT(f, alloc_ev(EV_ALLOC, 1, &a->blk, t), scrub_ev(old.region, old.addr, 256));

	/* The last hold goes, then the allocation, then the memory is scrubbed. */
	old = a->blk;
	assert_int_equal(broker_free(&f->b, f->c1, 1), 0);
	EXPECT(f, hold_ev(EV_HOLD_GONE, 1, f->c1, 0), alloc_ev(EV_ALLOC_GONE, 1, &old, t),
	       scrub_ev(old.region, old.addr, 1024));
	old = b->blk;
	gone = *f->c1;
	broker_client_remove(&f->b, f->c1);
	f->c1 = NULL;
	EXPECT(f, hold_ev(EV_HOLD_GONE, 2, &gone, 0), alloc_ev(EV_ALLOC_GONE, 2, &old, 0),
	       scrub_ev(old.region, old.addr, 256));

	/* Without a journal, only the scrub is left to see. */
	broker_set_journal(&f->b, NULL);
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a), 0);
	old = a->blk;
	assert_int_equal(broker_free(&f->b, f->c2, a->handle), 0);
	EXPECT(f, scrub_ev(old.region, old.addr, 64));
}

/* ---------------------------------------------------------------- restore */

#define S1 UINT64_C(0x1111111111111111)
#define S2 UINT64_C(0x2222222222222222)
#define T1 UINT64_C(0x7070707070707070)

static const struct pool_block blk7 = { .region = 0, .addr = 0x42000100, .size = 256 };

/* Buffer 7 at 0x42000100, exported as T1, held twice by S1's orphan and once by S2's. */
static struct broker_alloc *restore_shared(struct fixture *f, struct broker_client **o1p,
					   struct broker_client **o2p)
{
	struct broker_alloc *a;

	assert_int_equal(broker_orphan_add(&f->b, S1, 77, 1000, 5, o1p), 0);
	assert_int_equal(broker_orphan_add(&f->b, S2, 78, 1001, 6, o2p), 0);
	assert_int_equal(broker_restore_alloc(&f->b, 7, &blk7, 64, T1, &a), 0);
	assert_int_equal(broker_restore_hold(&f->b, a, *o1p, 2), 0);
	assert_int_equal(broker_restore_hold(&f->b, a, *o2p, 1), 0);
	return a;
}

static void test_restore(void **state)
{
	struct fixture *f = *state;
	struct broker_client *o1, *o2;
	struct broker_alloc *a, *x;
	uint64_t n = 0;

	a = restore_shared(f, &o1, &o2);
	/* A count of 2 is one record, not one per count. */
	EXPECT(f, alloc_ev(EV_ALLOC, 7, &blk7, T1), hold_ev(EV_HOLD, 7, o1, 2),
	       hold_ev(EV_HOLD, 7, o2, 1));
	assert_int_equal(a->handle, 7);
	assert_int_equal(a->blk.region, blk7.region);
	assert_int_equal(a->blk.addr, blk7.addr);
	assert_int_equal(a->blk.size, blk7.size);
	assert_int_equal(broker_alloc_align(a), 64);
	assert_int_equal(broker_alloc_owner(a), o1->id);
	assert_int_equal(broker_alloc_n_holders(a), 2);
	assert_ptr_equal(broker_find_token(&f->b, T1), a);
	assert_int_equal(f->b.n_shared, 1);
	/* Orphans are not clients. */
	assert_true(o1->orphan);
	assert_int_equal(o1->session, S1);
	assert_int_equal(o1->pid, 77);
	assert_int_equal(o1->proc_start, 5);
	assert_string_equal(o1->comm, "(orphan)");
	assert_int_equal(o1->n_buffers, 2);
	assert_int_equal(o1->bytes, 512);
	assert_int_equal(broker_find_hold(&f->b, o1, 7)->count, 2);
	assert_int_equal(broker_find_hold(&f->b, o2, 7)->count, 1);
	assert_int_equal(f->b.n_orphans, 2);
	assert_int_equal(f->b.n_clients, 2);
	/* The pool agrees, and handles continue after it. */
	assert_int_equal(stats(f, 0).used, 256);
	assert_int_equal(stats(f, 0).n_allocs, 1);
	assert_int_equal(f->b.next_handle, 8);
	broker_set_journal(&f->b, NULL);
	while (broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &x) == 0) {
		assert_int_equal(x->handle, 8 + n);
		assert_true(x->blk.region != 0 || x->blk.addr + 64 <= blk7.addr ||
			    x->blk.addr >= blk7.addr + blk7.size);
		n++;
	}
	assert_int_equal(n, (4096 - 256 + 12288) / 64); /* everything else, nothing of it */
}

/*
 * Names: broker_alloc_named() keeps its name where the journal reads it, at its first record;
 * a restored buffer gets its recorded name back, and a name past BUFNAME_MAX (which smhd's
 * checks never let through) is cut, never overrun.
 */
static void test_names(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *r, *r9, *plain;
	char long_name[BUFNAME_MAX + 20];

	assert_int_equal(broker_alloc_named(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0,
					    "camera0/frame3", &a),
			 0);
	assert_string_equal(broker_alloc_name(a), "camera0/frame3");
	assert_int_equal(f->events[0].kind, EV_ALLOC);
	assert_int_equal(f->events[0].handle, a->handle);
	assert_string_equal(f->events[0].name, "camera0/frame3");
	assert_int_equal(broker_restore_alloc_named(&f->b, 7, &blk7, 0, 0, "dsp/in", &r), 0);
	assert_string_equal(broker_alloc_name(r), "dsp/in");
	assert_int_equal(f->events[2].kind, EV_ALLOC); /* after the first one's hold */
	assert_string_equal(f->events[2].name, "dsp/in");
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(
		broker_restore_alloc_named(
			&f->b, 9,
			&(struct pool_block){ .region = 0, .addr = 0x42000800, .size = 64 }, 0, 0,
			long_name, &r9),
		0);
	assert_int_equal(strlen(broker_alloc_name(r9)), BUFNAME_MAX);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &plain), 0);
	assert_string_equal(broker_alloc_name(plain), "");
	assert_null(plain->extra);     /* nothing kept for no name */
	broker_restore_drop(&f->b, r); /* no hold came back for them */
	broker_restore_drop(&f->b, r9);
}

static void test_restore_refused(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint64_t handle, token;
		struct pool_block blk;
		uint64_t align;
		int ret;
	} cases[] = {
		{ 9,
		  0,
		  { .region = 0, .addr = 0x42000100, .size = 64 },
		  0,
		  -EBUSY }, /* inside buffer 7 */
		{ 9, 0, { .region = 0, .addr = 0x42000000, .size = 512 }, 0, -EBUSY }, /* over it */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x420001c0, .size = 128 },
		  0,
		  -EBUSY }, /* its tail and beyond */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x42000010, .size = 64 },
		  0,
		  -EINVAL }, /* not granule-aligned */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x42000fc0, .size = 128 },
		  0,
		  -EINVAL }, /* past the region's end */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x41fffff0, .size = 64 },
		  0,
		  -EINVAL }, /* before it */
		{ 9,
		  0,
		  { .region = 3, .addr = 0x42000000, .size = 64 },
		  0,
		  -EINVAL }, /* no such region */
		{ 9, 0, { .region = 0, .addr = 0x42000400, .size = 0 }, 0, -EINVAL }, /* empty */
		{ 7,
		  0,
		  { .region = 0, .addr = 0x42000400, .size = 64 },
		  0,
		  -EEXIST }, /* handle restored twice */
		{ 0,
		  0,
		  { .region = 0, .addr = 0x42000400, .size = 64 },
		  0,
		  -EEXIST }, /* no handle */
		{ 9,
		  T1,
		  { .region = 0, .addr = 0x42000400, .size = 64 },
		  0,
		  -EEXIST }, /* token restored twice */
		/* A record's alignment, which the broker charges: anyone's bytes, so checked. */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x42000400, .size = 64 },
		  3,
		  -EINVAL }, /* not a power of two */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x42000400, .size = 64 },
		  0x2000,
		  -EINVAL }, /* more than the region */
		{ 9,
		  0,
		  { .region = 0, .addr = 0x42000440, .size = 64 },
		  0x100,
		  -EINVAL }, /* the address is not aligned */
	};
	struct broker_client *o1, *o2;
	struct broker_alloc *a;

	restore_shared(f, &o1, &o2);
	f->n_events = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %zu\n", i);
		a = NULL;
		assert_int_equal(broker_restore_alloc(&f->b, cases[i].handle, &cases[i].blk,
						      cases[i].align, cases[i].token, &a),
				 cases[i].ret);
		assert_null(a);
		assert_int_equal(stats(f, 0).used, 256);
		assert_int_equal(stats(f, 0).n_allocs, 1);
		assert_int_equal(broker_n_allocs(&f->b), 1);
		assert_int_equal(f->b.tokens.n, 1);
		assert_int_equal(f->b.n_shared, 1);
		assert_int_equal(f->b.next_handle, 8);
	}
	expect_none(f);
	/* Beside it is free. */
	assert_int_equal(broker_restore_alloc(&f->b, 9,
					      &(struct pool_block){
						      .region = 0, .addr = 0x42000200, .size = 64 },
					      0, 0, &a),
			 0);
	broker_restore_drop(&f->b, a);
}

/* Restored handles keep the list in order; one left without holds is dropped and scrubbed. */
static void test_restore_order_and_drop(void **state)
{
	struct fixture *f = *state;
	const struct pool_block b3 = { .region = 2, .addr = 0x44000000, .size = 128 },
				b5 = { .region = 2, .addr = 0x44001000, .size = 64 };
	struct broker_client *o;
	struct broker_alloc *a3, *a5, *a6, *a;
	uint64_t expect_order[] = { 3, 5, 6 };
	size_t i = 0;

	assert_int_equal(broker_orphan_add(&f->b, S1, 77, 1000, 5, &o), 0);
	assert_int_equal(broker_restore_alloc(&f->b, 5, &b5, 0, 0, &a5), 0);
	assert_int_equal(broker_restore_alloc(&f->b, 3, &b3, 0, T1, &a3), 0);
	assert_int_equal(broker_restore_hold(&f->b, a5, o, 1), 0);
	assert_int_equal(f->b.next_handle, 6);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a6), 0);
	assert_int_equal(a6->handle, 6);
	for (a = broker_alloc_after(&f->b, 0); a; a = broker_alloc_next(&f->b, a)) {
		assert_true(i < 3);
		assert_int_equal(a->handle, expect_order[i++]);
	}
	assert_int_equal(i, 3);
	assert_int_equal(f->b.n_shared, 1);
	f->n_events = 0;

	broker_restore_drop(&f->b, a3);
	EXPECT(f, alloc_ev(EV_ALLOC_GONE, 3, &b3, T1), scrub_ev(2, 0x44000000, 128));
	assert_null(broker_find_token(&f->b, T1));
	assert_null(broker_find_alloc(&f->b, 3));
	assert_int_equal(f->b.n_shared, 0);
	assert_int_equal(stats(f, 2).used, 64);
	assert_int_equal(stats(f, 0).used, 64);
}

/* Restored out of order, handles still list in order, and the listing's cursor finds them. */
static void test_restore_any_order(void **state)
{
	static const uint64_t handles[] = { 40, 10, 30, 50, 20, 5, 45, 60 };
	struct fixture *f = *state;
	struct broker_client *o;
	struct broker_alloc *a;
	uint64_t last = 0;
	size_t n = 0;

	assert_int_equal(broker_orphan_add(&f->b, S1, 77, 1000, 5, &o), 0);
	for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
		struct pool_block blk = { .region = 2,
					  .addr = 0x44000000 + 64 * handles[i],
					  .size = 64 };

		assert_int_equal(broker_restore_alloc(&f->b, handles[i], &blk, 0, 0, &a), 0);
		assert_int_equal(broker_restore_hold(&f->b, a, o, 1), 0);
	}
	for (a = broker_alloc_after(&f->b, 0); a; a = broker_alloc_next(&f->b, a)) {
		assert_true(a->handle > last);
		last = a->handle;
		n++;
	}
	assert_int_equal(n, 8);
	assert_int_equal(last, 60);
	assert_int_equal(broker_alloc_after(&f->b, 0)->handle, 5);
	assert_int_equal(broker_alloc_after(&f->b, 11)->handle, 20);
	assert_int_equal(broker_alloc_after(&f->b, 45)->handle, 50);
	assert_null(broker_alloc_after(&f->b, 60));
	assert_int_equal(f->b.next_handle, 61);
}

/* ---------------------------------------------------------------- resume */

static void test_resume(void **state)
{
	struct fixture *f = *state;
	const struct pool_block b8 = { .region = 1, .addr = 0x43000000, .size = 1024 };
	struct broker_client *o1, *o2;
	struct broker_alloc *a, *a8, *own;
	uint64_t n = 99, c2_session = f->c2->session;

	a = restore_shared(f, &o1, &o2);
	assert_int_equal(broker_restore_alloc(&f->b, 8, &b8, 0, 0, &a8), 0);
	assert_int_equal(broker_restore_hold(&f->b, a8, o1, 1), 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &own), 0);
	assert_int_equal(own->handle, 9);
	f->n_events = 0;

	/* An unknown session: refused, the connection keeps its own. */
	assert_int_equal(broker_resume(&f->b, f->c2, S1 ^ 1, &n), -ENOENT);
	assert_int_equal(n, 99);
	assert_int_equal(f->c2->session, c2_session);
	assert_int_equal(f->b.n_orphans, 2);
	expect_none(f);
	/* Another uid's session (S1 was uid 1000's, c2 is 1001): refused, nothing moves. */
	assert_ptr_equal(broker_find_orphan(&f->b, S1), o1);
	assert_int_equal(o1->uid, 1000);
	assert_int_equal(broker_resume(&f->b, f->c2, S1, &n), -EPERM);
	assert_int_equal(f->c2->session, c2_session);
	assert_int_equal(f->c2->n_buffers, 0);
	assert_int_equal(o1->n_buffers, 3);
	assert_int_equal(f->b.n_orphans, 2);
	expect_none(f);

	/* Each owned by the orphan restored holding it first... */
	assert_int_equal(broker_alloc_owner(a), o1->id);
	assert_null(a8->extra);
	assert_int_equal(broker_alloc_owner(a8), o1->id);
	assert_int_equal(broker_resume(&f->b, f->c1, S1, &n), 0);
	/* ...then by the connection that resumed its session, shared (kept aside) or not. */
	assert_non_null(a->extra);
	assert_int_equal(broker_alloc_owner(a), f->c1->id);
	assert_int_equal(broker_alloc_owner(a8), f->c1->id);
	assert_int_equal(n, 3);
	assert_int_equal(f->c1->session, S1);
	assert_int_equal(f->b.n_orphans, 1);
	assert_int_equal(f->b.n_clients, 2);
	assert_int_equal(f->c1->n_buffers, 4);
	assert_int_equal(f->c1->bytes, 64 + 2 * 256 + 1024);
	assert_int_equal(broker_find_hold(&f->b, f->c1, 7)->count, 2);
	assert_int_equal(broker_find_hold(&f->b, f->c1, 8)->count, 1);
	assert_int_equal(broker_alloc_n_holders(a), 2);
	/* Every hold of the connection is recorded again, under its process and the session. */
	EXPECT(f, hold_ev(EV_HOLD, 9, f->c1, 1), hold_ev(EV_HOLD, 7, f->c1, 2),
	       hold_ev(EV_HOLD, 8, f->c1, 1));
	/* A session is resumed once. */
	assert_int_equal(broker_resume(&f->b, f->c2, S1, &n), -ENOENT);

	/* The resumed holds are the connection's: freed, they go; the other holder keeps it. */
	assert_int_equal(broker_free(&f->b, f->c1, 7), 0);
	assert_int_equal(broker_free(&f->b, f->c1, 7), 0);
	assert_int_equal(broker_free(&f->b, f->c1, 7), -EINVAL);
	assert_int_equal(stats(f, 0).used, 256 + 64);
	assert_int_equal(f->c1->n_buffers, 2);
	assert_int_equal(broker_resume(&f->b, f->c2, S2, &n), 0);
	assert_int_equal(n, 1);
	/* The other orphan's session resumed: the owner stays who it was (c1, which let go). */
	assert_int_equal(a->handle, 7);
	assert_int_equal(broker_alloc_owner(a), f->c1->id);
	assert_int_equal(f->b.n_orphans, 0);
	f->n_events = 0;
	assert_int_equal(broker_free(&f->b, f->c2, 7), 0);
	EXPECT(f, hold_ev(EV_HOLD_GONE, 7, f->c2, 0), alloc_ev(EV_ALLOC_GONE, 7, &blk7, T1),
	       scrub_ev(0, blk7.addr, blk7.size));
	assert_int_equal(stats(f, 0).used, 64);
	assert_int_equal(f->b.n_shared, 0);
	assert_int_equal(broker_import(&f->b, f->c2, T1, &a), -ENOENT);
	/* Its memory is the pool's again. */
	assert_int_equal(broker_restore_alloc(&f->b, 10, &blk7, 0, 0, &a), 0);
	broker_restore_drop(&f->b, a);
	/* Closing the connection releases what it resumed. */
	broker_client_remove(&f->b, f->c1);
	f->c1 = NULL;
	assert_int_equal(stats(f, 1).used, 0);
	assert_int_equal(broker_n_allocs(&f->b), 0);
}

/*
 * A journal with no room (the state file's file system is full): alloc, import, realloc and a
 * first export fail with its errno and change nothing; memory is never served unrecorded.
 */
static void test_journal_full(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b;
	struct buddy_stats before;
	uint64_t token, t2;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &token), 0);
	f->room = 1; /* an allocation needs two: itself and its hold */
	before = stats(f, 0);
	f->n_events = 0;
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &b), -ENOSPC);
	assert_int_equal(stats(f, 0).used, before.used);
	assert_int_equal(stats(f, 0).n_allocs, before.n_allocs);
	assert_int_equal(broker_n_allocs(&f->b), 1);
	assert_int_equal(f->c1->n_buffers, 1);
	expect_none(f);
	f->room = 0;
	assert_int_equal(broker_import(&f->b, f->c2, token, &b), -ENOSPC);
	assert_null(broker_find_hold(&f->b, f->c2, a->handle));
	assert_int_equal(f->c2->n_buffers, 0);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 128, &b), -ENOSPC);
	assert_int_equal(a->blk.size, 64);
	/* Exporting again gives the same token: nothing new to record. */
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &t2), 0);
	assert_true(t2 == token);
	expect_none(f);
	/* Giving back needs no room. */
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(broker_n_allocs(&f->b), 0);
	f->room = 2;
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &b), 0);
}

/* ---------------------------------------------------------------- the grace period */

static pid_t dead_pid(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return pid;
}

static void test_grace_releases_gone(void **state)
{
	struct fixture *f = *state;
	uint64_t start = proc_start_time(getpid());
	struct {
		pid_t pid;
		uint64_t proc_start;
		bool kept;
		struct broker_client *o;
	} orphans[] = {
		{ dead_pid(), 0, false, NULL },       /* its process is gone */
		{ 0, 0, false, NULL },                /* no process recorded */
		{ getpid(), start + 1, false, NULL }, /* the pid is another process now */
		{ getpid(), start, true, NULL },      /* alive: it may map its buffers */
		{ getpid(), 0, true, NULL },          /* alive, start time unknown */
	};
	const size_t n = sizeof(orphans) / sizeof(orphans[0]);
	struct recover *rec = calloc(1, sizeof(*rec));
	uv_loop_t loop;
	uint64_t n_reclaimed;

	assert_non_null(rec);
	assert_int_not_equal(start, 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	rec->broker = &f->b;
	rec->opts.grace_s = 10;
	recover_arm(rec, &loop); /* no orphan: no timer */
	assert_false(rec->timer_started);
	for (size_t i = 0; i < n; i++) {
		struct pool_block blk = { .region = 2, .addr = 0x44000000 + 64 * i, .size = 64 };
		struct broker_alloc *a;

		assert_int_equal(broker_orphan_add(&f->b, S1 + i, orphans[i].pid, 1000,
						   orphans[i].proc_start, &orphans[i].o),
				 0);
		assert_int_equal(broker_restore_alloc(&f->b, 1 + i, &blk, 0, 0, &a), 0);
		assert_int_equal(broker_restore_hold(&f->b, a, orphans[i].o, 1), 0);
	}
	recover_arm(rec, &loop);
	assert_true(uv_is_active((uv_handle_t *)&rec->timer));
	f->n_events = 0;

	on_grace(&rec->timer);
	assert_int_equal(f->b.n_orphans, 2);
	assert_int_equal(stats(f, 2).used, 2 * 64);
	for (size_t i = 0; i < n; i++)
		assert_true((broker_find_alloc(&f->b, 1 + i) != NULL) == orphans[i].kept);
	/* Released as at a disconnect: hold, allocation, scrub, for each of the three. */
	assert_int_equal(f->n_events, 9);
	for (size_t i = 0, k = 0; i < n; i++) {
		if (orphans[i].kept)
			continue;
		assert_int_equal(f->events[k].kind, EV_HOLD_GONE);
		assert_int_equal(f->events[k + 1].kind, EV_ALLOC_GONE);
		assert_int_equal(f->events[k + 1].handle, 1 + i);
		assert_int_equal(f->events[k + 2].kind, EV_SCRUB);
		assert_int_equal(f->events[k + 2].addr, 0x44000000 + 64 * i);
		k += 3;
	}
	/* Those that live are kept, and the timer looks again. */
	f->n_events = 0;
	on_grace(&rec->timer);
	assert_int_equal(f->b.n_orphans, 2);
	assert_int_equal(f->n_events, 0);
	assert_true(uv_is_active((uv_handle_t *)&rec->timer));
	/* One resumes, the other's process dies: nothing left to wait for. */
	assert_int_equal(broker_resume(&f->b, f->c1, S1 + 3, &n_reclaimed), 0);
	assert_int_equal(n_reclaimed, 1);
	orphans[4].o->pid = dead_pid();
	on_grace(&rec->timer);
	assert_int_equal(f->b.n_orphans, 0);
	assert_int_equal(stats(f, 2).used, 64);
	assert_false(uv_is_active((uv_handle_t *)&rec->timer));
	recover_close(rec, &loop, false);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * No room in the new state file for what the previous smhd left: the restore stops before it
 * starts (nothing restored unrecorded), and the old file stays for the next try.
 */
static void test_restore_without_room(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/smh-test-restore-XXXXXX", path[64];
	struct recover *rec = calloc(1, sizeof(*rec));
	struct state_old old;
	struct rlimit saved, lim;
	void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
	int ret;

	assert_non_null(rec);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(state_open(dir, 42, "sock", &rec->state, &old), 0);
	state_old_finish(&old);
	rec->old.n_records = 100000; /* more than a new file has room for */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	lim = saved;
	lim.rlim_cur = 1; /* the file cannot grow */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ret = recover_restore(rec, &f->b, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0); /* before any assertion */
	signal(SIGXFSZ, old_sig);
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(broker_n_allocs(&f->b), 0);
	expect_none(f);
	snprintf(path, sizeof(path), "%s/smhd.state", dir);
	assert_int_equal(access(path, F_OK), -1); /* nothing committed in place of the old one */
	state_close(rec->state, false);
	for (const char *const *name = (const char *const[]){ "smhd.state.new", "smhd.lock", NULL };
	     *name; name++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *name);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
	free(rec);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_journal_sequence),     T(test_restore),
		T(test_restore_refused),      T(test_restore_order_and_drop),
		T(test_restore_any_order),    T(test_resume),
		T(test_journal_full),         T(test_grace_releases_gone),
		T(test_restore_without_room), T(test_names),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
