/* SPDX-License-Identifier: MIT */
/*
 * The event stream (`smhctl events`): what smhd does, pushed to the connections that
 * subscribed. The request handlers and the server report what happens (events_emit() and its
 * helpers); each subscriber has a bounded queue the server drains when its socket has room
 * (requests_pack_event() packs each). Knows nothing of sockets nor of protobuf.
 */
#ifndef DAEMON_EVENTS_H
#define DAEMON_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/list.h"
#include "daemon/broker.h"

/* Events queued per subscriber; past that they are counted as lost. */
#define EVENTS_QUEUE_MAX 1024

/* Subscribers at once, unless --max-subscribers says otherwise. */
#define EVENTS_DEFAULT_MAX_SUBSCRIBERS 8

/* The kinds, numbered as the protocol's EventKind. */
enum events_kind {
	EVENTS_CONNECT = 1,
	EVENTS_DISCONNECT,
	EVENTS_DEATH,
	EVENTS_ALLOC,
	EVENTS_FREE,
	EVENTS_REALLOC,
	EVENTS_EXPORT,
	EVENTS_IMPORT,
	EVENTS_LOST,
};

/* One event as it waits in a queue: what its Event message carries. */
struct events_item {
	enum events_kind kind;
	uint64_t time_us; /* CLOCK_REALTIME */
	uint64_t client;
	int32_t pid;
	uint32_t uid;
	char comm[32];
	uint64_t handle;
	uint32_t region;
	uint64_t size, phys_addr;
	uint64_t n_buffers, bytes; /* released at a death */
	bool released;             /* a free that gave the memory back */
	uint64_t lost;
	char why[64]; /* why a client was dropped, "" for a hang-up */
};

struct events_sub {
	struct list link;
	struct events_item ring[EVENTS_QUEUE_MAX];
	size_t head, n;
	uint64_t lost;            /* dropped since the last EVENTS_LOST queued */
	void (*wake)(void *data); /* the queue was empty and is not any more */
	void *data;
};

struct events {
	struct list subs;
	unsigned n_subs;
	unsigned max_subs;
	uid_t owner_uid; /* besides root, the uid that may subscribe: smhd's */
};

/* No subscriber yet; at most @max_subs at once (0: none allowed); @owner_uid may subscribe. */
void events_init(struct events *ev, unsigned max_subs, uid_t owner_uid);

/*
 * Subscribes @c (whose identity decides) with a new empty queue; @wake(@data) is called when
 * an event lands in it while it is empty. Returns 0, or -EPERM (not root nor the owner uid),
 * -EMFILE (max_subs reached), -ENOMEM, with a sentence for the client in @why.
 */
int events_subscribe(struct events *ev, const struct broker_client *c, void (*wake)(void *data),
		     void *data, struct events_sub **subp, char *why, size_t why_size);

/* Removes and frees @sub (NULL: nothing). */
void events_unsubscribe(struct events *ev, struct events_sub *sub);

/* Whether anyone subscribed: the callers skip building events otherwise. */
static inline bool events_active(const struct events *ev)
{
	return ev && ev->n_subs > 0;
}

/* Queues a copy of @item (its time set now) for every subscriber, or counts it lost there. */
void events_emit(struct events *ev, struct events_item *item);

/* Reports @kind (a connect) about @c. */
void events_client(struct events *ev, enum events_kind kind, const struct broker_client *c);

/* Reports @kind about buffer @a of @c. */
void events_buffer(struct events *ev, enum events_kind kind, const struct broker_client *c,
		   const struct broker_alloc *a);

/* Reports that @c drops hold @h (before it does: the buffer may go with it). */
void events_free(struct events *ev, const struct broker_client *c, const struct broker_hold *h);

/*
 * Reports that @c left: a death when it still held buffers (how many, and their bytes), else a
 * disconnect. @why: why the daemon dropped it, NULL for a hang-up.
 */
void events_left(struct events *ev, const struct broker_client *c, const char *why);

/*
 * The oldest event of @sub's queue, or NULL when there is none; when the queue is empty but
 * events were lost, an EVENTS_LOST saying how many is queued first.
 */
const struct events_item *events_peek(struct events_sub *sub);

/* Takes the oldest event off the queue (after events_peek() returned it). */
void events_pop(struct events_sub *sub);

#endif
