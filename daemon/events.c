/* SPDX-License-Identifier: MIT */
/*
 * The event stream (see events.h).
 *
 * The loop never waits for a subscriber: an event is copied into each subscriber's ring, and
 * the server sends the ring out when the subscriber's socket has room. A full ring drops the
 * event and counts it; the count goes out as one EVENTS_LOST in the stream's order, either
 * before the next event that finds room or, once the subscriber has read everything, on its
 * own. So a subscriber that never reads costs one ring (EVENTS_QUEUE_MAX events) and no time,
 * and one that reads late learns how much it missed.
 *
 * Who may subscribe: the events name every client's pid, command and buffers, so only root
 * and smhd's own uid, who could read all that from smhd anyway, may; the number of subscribers
 * is bounded too (--max-subscribers), so that the rings are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/events.h"

void events_init(struct events *ev, unsigned max_subs, uid_t owner_uid)
{
	list_init(&ev->subs);
	ev->n_subs = 0;
	ev->max_subs = max_subs;
	ev->owner_uid = owner_uid;
}

int events_subscribe(struct events *ev, const struct broker_client *c, void (*wake)(void *data),
		     void *data, struct events_sub **subp, char *why, size_t why_size)
{
	struct events_sub *sub;

	if (c->uid != 0 && c->uid != ev->owner_uid) {
		snprintf(why, why_size,
			 "Only root and smhd's user (uid %u) may follow events: they show every "
			 "client's buffers, and uid %u may not see them",
			 (unsigned)ev->owner_uid, (unsigned)c->uid);
		return -EPERM;
	}
	if (ev->n_subs >= ev->max_subs) {
		snprintf(why, why_size, "%u connections follow events already (max-subscribers)",
			 ev->n_subs);
		return -EMFILE;
	}
	sub = calloc(1, sizeof(*sub));
	if (!sub) {
		snprintf(why, why_size, "Out of memory");
		return -ENOMEM;
	}
	sub->wake = wake;
	sub->data = data;
	list_insert_before(&ev->subs, &sub->link);
	ev->n_subs++;
	*subp = sub;
	return 0;
}

void events_unsubscribe(struct events *ev, struct events_sub *sub)
{
	if (!sub)
		return;
	list_remove(&sub->link);
	ev->n_subs--;
	free(sub);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void push(struct events_sub *sub, const struct events_item *item)
{
	sub->ring[(sub->head + sub->n) % EVENTS_QUEUE_MAX] = *item;
	sub->n++;
}

static void push_lost(struct events_sub *sub)
{
	struct events_item lost = { .kind = EVENTS_LOST, .time_us = now_us(), .lost = sub->lost };

	push(sub, &lost);
	sub->lost = 0;
}

/* Queues @item for @sub, after the count of what was lost before it if any. */
static void queue(struct events_sub *sub, const struct events_item *item)
{
	bool was_empty = sub->n == 0;

	if (sub->n + (sub->lost ? 2 : 1) > EVENTS_QUEUE_MAX) {
		sub->lost++;
		return;
	}
	if (sub->lost)
		push_lost(sub);
	push(sub, item);
	if (was_empty && sub->wake)
		sub->wake(sub->data);
}

void events_emit(struct events *ev, struct events_item *item)
{
	struct list *pos;

	if (!events_active(ev))
		return;
	item->time_us = now_us();
	list_for_each(pos, &ev->subs) queue(list_entry(pos, struct events_sub, link), item);
}

static void fill_client(struct events_item *item, enum events_kind kind,
			const struct broker_client *c)
{
	memset(item, 0, sizeof(*item));
	item->kind = kind;
	item->client = c->id;
	item->pid = c->pid;
	item->uid = c->uid;
	snprintf(item->comm, sizeof(item->comm), "%s", c->comm);
}

void events_client(struct events *ev, enum events_kind kind, const struct broker_client *c)
{
	struct events_item item;

	if (!events_active(ev))
		return;
	fill_client(&item, kind, c);
	events_emit(ev, &item);
}

void events_buffer(struct events *ev, enum events_kind kind, const struct broker_client *c,
		   const struct broker_alloc *a)
{
	struct events_item item;

	if (!events_active(ev))
		return;
	fill_client(&item, kind, c);
	item.handle = a->handle;
	item.region = a->blk.region;
	item.size = a->blk.size;
	item.phys_addr = a->blk.addr;
	events_emit(ev, &item);
}

void events_free(struct events *ev, const struct broker_client *c, const struct broker_hold *h)
{
	const struct broker_alloc *a = broker_hold_alloc(h);
	struct events_item item;

	if (!events_active(ev))
		return;
	fill_client(&item, EVENTS_FREE, c);
	item.handle = a->handle;
	item.region = a->blk.region;
	item.size = a->blk.size;
	item.phys_addr = a->blk.addr;
	item.released = h->count == 1 && broker_alloc_held_by_one(a);
	events_emit(ev, &item);
}

void events_left(struct events *ev, const struct broker_client *c, const char *why)
{
	struct events_item item;

	if (!events_active(ev))
		return;
	fill_client(&item, c->n_buffers || why ? EVENTS_DEATH : EVENTS_DISCONNECT, c);
	item.n_buffers = c->n_buffers;
	item.bytes = c->bytes;
	snprintf(item.why, sizeof(item.why), "%s", why ? why : "");
	events_emit(ev, &item);
}

const struct events_item *events_peek(struct events_sub *sub)
{
	if (sub->n == 0 && sub->lost)
		push_lost(sub);
	return sub->n ? &sub->ring[sub->head] : NULL;
}

void events_pop(struct events_sub *sub)
{
	if (!sub->n)
		return;
	sub->head = (sub->head + 1) % EVENTS_QUEUE_MAX;
	sub->n--;
}
