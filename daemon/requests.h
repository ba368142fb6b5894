/* SPDX-License-Identifier: MIT */
/*
 * Request handlers: turn one request datagram of a connection into one response datagram.
 * The only daemon code that sees the generated protobuf types; the server around it moves
 * bytes and fds, the broker below it decides who holds what.
 */
#ifndef DAEMON_REQUESTS_H
#define DAEMON_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/backend.h"
#include "daemon/broker.h"
#include "daemon/events.h"
#include "daemon/refusals.h"
#include "daemon/waits.h"
#include "proto/wire.h"

struct policy;
struct scrub;

/* What the handlers need of the daemon, and of the connection a request came on. */
struct request_ctx {
	struct broker *broker;
	struct backend *backend;
	const struct policy *policy; /* the access policy and quotas (daemon/policy.h), or NULL */
	struct scrub *scrub;         /* the scrubber (daemon/scrub.h), or NULL */
	struct broker_client *client;
	bool *fd_sent;          /* per region: its fd went to this connection already */
	bool hello_done;        /* the first request was a hello with a version we speak */
	char refusal[192];      /* why the policy refuses the connection (client->refused) */
	unsigned quota_logged;  /* the quotas this connection was logged over (policy_charge) */
	struct events *events;  /* the event stream to report to, or NULL */
	struct events_sub *sub; /* set once this connection subscribed: it takes no requests */
	void (*events_wake)(void *data); /* for its queue (events_subscribe()) */
	void *events_data;
	struct refusals *refusals; /* the daemon's counts, shared by every connection; or NULL */
	const struct waits *waits; /* the requests' waits in smhd (the stats reply), or NULL */
};

/* The outcome of one request. */
struct request_result {
	size_t len;            /* of the packed response */
	int fds[WIRE_FDS_MAX]; /* to attach, borrowed from the backend */
	size_t n_fds;
	bool close_after;      /* send the response, then close (refused hello) */
	const char *violation; /* set when the client broke the protocol: drop it */
	/*
	 * The request waits for memory being scrubbed: nothing is to be sent, nothing changed;
	 * hand the same datagram again when a scrub has ended (daemon/scrub.h).
	 */
	bool park;
};

/*
 * Handles the datagram @in of @len bytes and packs the response into @out (SMH_MSG_MAX bytes).
 * On a protocol violation (not a message, first request not a hello) result->violation
 * says what, and nothing is to be sent. Refusals (bad size, not held, ...) are responses with a
 * negative status; both are counted by kind in ctx->refusals. Marks in ctx->fd_sent the region
 * fds the response carries. An allocation
 * that only memory being scrubbed could serve sets result->park instead of answering.
 */
void requests_handle(struct request_ctx *ctx, const void *in, size_t len, void *out,
		     struct request_result *result);

/* Packs @item as the Response with id 0 that carries it into @out (SMH_MSG_MAX bytes). Returns
 * its length (a few hundred bytes at most). */
size_t requests_pack_event(const struct events_item *item, void *out);

#endif
