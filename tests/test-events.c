/* SPDX-License-Identifier: MIT */
/*
 * The event stream's queues (daemon/events.c), no socket involved: who may subscribe and how
 * many, events in the order they happened, a full queue counting what it drops and telling it
 * once (EVENTS_LOST) in the stream's place, a death told from a clean disconnect, a free that
 * releases the memory told from one that does not, and the Event message a queued event packs
 * to (daemon/requests.c), read back as the library reads it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/events.h"
#include "daemon/requests.h"

#define OWNER 1000

static struct events ev;
static unsigned n_wakes;

static void on_wake(void *data)
{
	(void)data;
	n_wakes++;
}

static struct broker_client client(uint64_t id, uid_t uid)
{
	struct broker_client c = { .id = id, .pid = (pid_t)(100 + id), .uid = uid };

	snprintf(c.comm, sizeof(c.comm), "cam%llu", (unsigned long long)id);
	return c;
}

static struct events_sub *subscribe(uid_t uid)
{
	struct broker_client c = client(99, uid);
	struct events_sub *sub = NULL;
	char why[256];

	assert_int_equal(events_subscribe(&ev, &c, on_wake, NULL, &sub, why, sizeof(why)), 0);
	assert_non_null(sub);
	return sub;
}

static int setup(void **state)
{
	(void)state;
	events_init(&ev, 2, OWNER);
	n_wakes = 0;
	return 0;
}

/* An allocation event of client @id with handle @handle. */
static void emit_alloc(uint64_t id, uint64_t handle)
{
	struct broker_client c = client(id, OWNER);
	struct broker_alloc a = { .handle = handle,
				  .blk = { .region = 1, .addr = 0x1000, .size = 64 } };

	events_buffer(&ev, EVENTS_ALLOC, &c, &a);
}

static void test_who_may_subscribe(void **state)
{
	struct broker_client other = client(7, 1001);
	struct events_sub *root, *owner, *sub = NULL;
	char why[256] = "";

	(void)state;
	assert_int_equal(events_subscribe(&ev, &other, NULL, NULL, &sub, why, sizeof(why)), -EPERM);
	assert_null(sub);
	assert_non_null(strstr(why, "uid 1001 may not see them"));
	assert_int_equal(ev.n_subs, 0);
	root = subscribe(0);
	owner = subscribe(OWNER);
	/* max_subs 2: a third is refused, even root's, until one leaves */
	other.uid = 0;
	assert_int_equal(events_subscribe(&ev, &other, NULL, NULL, &sub, why, sizeof(why)),
			 -EMFILE);
	assert_non_null(strstr(why, "max-subscribers"));
	events_unsubscribe(&ev, root);
	root = subscribe(0);
	events_unsubscribe(&ev, root);
	events_unsubscribe(&ev, owner);
	assert_int_equal(ev.n_subs, 0);
	assert_false(events_active(&ev));
}

static void test_order_and_wake(void **state)
{
	struct events_sub *sub = subscribe(0);
	const struct events_item *it;

	(void)state;
	assert_null(events_peek(sub));
	for (uint64_t h = 1; h <= 3; h++)
		emit_alloc(5, h);
	assert_int_equal(n_wakes, 1); /* only when the queue stopped being empty */
	for (uint64_t h = 1; h <= 3; h++) {
		it = events_peek(sub);
		assert_non_null(it);
		assert_int_equal(it->kind, EVENTS_ALLOC);
		assert_int_equal(it->handle, h);
		assert_int_equal(it->client, 5);
		assert_int_equal(it->pid, 105);
		assert_string_equal(it->comm, "cam5");
		assert_int_equal(it->region, 1);
		assert_int_equal(it->size, 64);
		assert_int_equal(it->phys_addr, 0x1000);
		assert_true(it->time_us > 0);
		events_pop(sub);
	}
	assert_null(events_peek(sub));
	emit_alloc(5, 4);
	assert_int_equal(n_wakes, 2);
	events_unsubscribe(&ev, sub);
}

/* A full queue drops and counts; the count comes where the dropped events would have been. */
static void test_overflow_counts_lost(void **state)
{
	struct events_sub *sub = subscribe(0);
	const struct events_item *it;
	uint64_t h;

	(void)state;
	for (h = 1; h <= EVENTS_QUEUE_MAX + 100; h++)
		emit_alloc(5, h);
	assert_int_equal(sub->n, EVENTS_QUEUE_MAX); /* memory bounded, whatever was sent */
	assert_int_equal(sub->lost, 100);
	for (uint64_t i = 1; i <= 10; i++) {
		assert_int_equal(events_peek(sub)->handle, i);
		events_pop(sub);
	}
	/* Room again: the count goes in first, then the new event. */
	emit_alloc(5, h);
	assert_int_equal(sub->lost, 0);
	for (uint64_t i = 11; i <= EVENTS_QUEUE_MAX; i++) {
		assert_int_equal(events_peek(sub)->kind, EVENTS_ALLOC);
		assert_int_equal(events_peek(sub)->handle, i);
		events_pop(sub);
	}
	it = events_peek(sub);
	assert_int_equal(it->kind, EVENTS_LOST);
	assert_int_equal(it->lost, 100);
	events_pop(sub);
	assert_int_equal(events_peek(sub)->handle, h);
	events_pop(sub);
	assert_null(events_peek(sub));
	events_unsubscribe(&ev, sub);
}

/* Read to the end while events were lost: the count comes alone, once. */
static void test_lost_when_caught_up(void **state)
{
	struct events_sub *sub = subscribe(0), *other = subscribe(OWNER);

	(void)state;
	for (uint64_t h = 1; h <= EVENTS_QUEUE_MAX + 7; h++)
		emit_alloc(5, h);
	while (events_peek(sub) && events_peek(sub)->kind == EVENTS_ALLOC)
		events_pop(sub);
	assert_int_equal(events_peek(sub)->kind, EVENTS_LOST);
	assert_int_equal(events_peek(sub)->lost, 7);
	events_pop(sub);
	assert_null(events_peek(sub));
	/* The other subscriber's queue is its own: still full, its count still pending. */
	assert_int_equal(other->n, EVENTS_QUEUE_MAX);
	assert_int_equal(other->lost, 7);
	events_unsubscribe(&ev, other);
	events_unsubscribe(&ev, sub);
}

static void test_death_and_disconnect(void **state)
{
	struct events_sub *sub = subscribe(0);
	struct broker_client c = client(3, OWNER);
	const struct events_item *it;

	(void)state;
	events_left(&ev, &c, NULL);
	c.n_buffers = 2;
	c.bytes = 8192;
	events_left(&ev, &c, NULL);
	c.n_buffers = 0;
	c.bytes = 0;
	events_left(&ev, &c, "a request before the hello");
	it = events_peek(sub);
	assert_int_equal(it->kind, EVENTS_DISCONNECT);
	assert_int_equal(it->n_buffers, 0);
	events_pop(sub);
	it = events_peek(sub);
	assert_int_equal(it->kind, EVENTS_DEATH);
	assert_int_equal(it->n_buffers, 2);
	assert_int_equal(it->bytes, 8192);
	assert_string_equal(it->why, "");
	events_pop(sub);
	it = events_peek(sub);
	assert_int_equal(it->kind, EVENTS_DEATH); /* dropped by smhd: a death, with why */
	assert_string_equal(it->why, "a request before the hello");
	events_pop(sub);
	events_unsubscribe(&ev, sub);
}

static void test_free_released(void **state)
{
	struct events_sub *sub = subscribe(0);
	struct broker_client c = client(3, OWNER);
	struct broker_client other = client(4, OWNER);
	struct broker_alloc a = { .handle = 9, .blk = { .size = 128 } };
	struct broker_hold *h = &a.own;
	struct broker_hold_more h2 = { .hold = { .client = &other, .count = 1 }, .alloc = &a };

	(void)state;
	*h = (struct broker_hold){ .client = &c, .count = 2, .inside = 1 };
	events_free(&ev, &c, h); /* one of two holds: still held */
	h->count = 1;
	h->next = &h2.hold;
	events_free(&ev, &c, h); /* another client holds it too */
	h->next = NULL;
	events_free(&ev, &c, h); /* the last hold */
	for (int i = 0; i < 3; i++) {
		const struct events_item *it = events_peek(sub);

		assert_int_equal(it->kind, EVENTS_FREE);
		assert_int_equal(it->handle, 9);
		assert_int_equal(it->size, 128);
		assert_int_equal(it->released, i == 2);
		events_pop(sub);
	}
	events_unsubscribe(&ev, sub);
}

/* Nobody subscribed: nothing is built, nothing kept. */
static void test_no_subscriber(void **state)
{
	struct broker_client c = client(3, OWNER);

	(void)state;
	events_client(&ev, EVENTS_CONNECT, &c);
	emit_alloc(3, 1);
	assert_false(events_active(&ev));
	assert_false(events_active(NULL));
}

static void test_pack(void **state)
{
	struct events_item it = {
		.kind = EVENTS_DEATH,
		.time_us = 1234567,
		.client = 42,
		.pid = -1,
		.uid = 7,
		.n_buffers = 3,
		.bytes = 12288,
		.why = "its replies are not read",
	};
	unsigned char out[SMH_MSG_MAX];
	Smh__Response *resp;
	size_t n;

	(void)state;
	snprintf(it.comm, sizeof(it.comm), "%s", "\x1b]0;x\a");
	n = requests_pack_event(&it, out);
	assert_true(n > 0);
	resp = wire_unpack_response(out, n);
	assert_non_null(resp);
	assert_int_equal(resp->id, 0); /* no request has id 0: a push */
	assert_int_equal(resp->status, 0);
	assert_int_equal(resp->body_case, SMH__RESPONSE__BODY_EVENT);
	assert_int_equal(resp->event->kind, SMH__EVENT_KIND__EVENT_DEATH);
	assert_int_equal(resp->event->time_us, 1234567);
	assert_int_equal(resp->event->client, 42);
	assert_int_equal(resp->event->pid, -1);
	assert_int_equal(resp->event->uid, 7);
	assert_string_equal(resp->event->comm, "\x1b]0;x\a");
	assert_int_equal(resp->event->n_buffers, 3);
	assert_int_equal(resp->event->bytes, 12288);
	assert_string_equal(resp->event->why, "its replies are not read");
	wire_free_response(resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_who_may_subscribe, setup),
		cmocka_unit_test_setup(test_order_and_wake, setup),
		cmocka_unit_test_setup(test_overflow_counts_lost, setup),
		cmocka_unit_test_setup(test_lost_when_caught_up, setup),
		cmocka_unit_test_setup(test_death_and_disconnect, setup),
		cmocka_unit_test_setup(test_free_released, setup),
		cmocka_unit_test_setup(test_no_subscriber, setup),
		cmocka_unit_test(test_pack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
