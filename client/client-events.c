/* SPDX-License-Identifier: MIT */
/*
 * The event subscription (smh_events_*).
 *
 * Subscribing is one round trip like any call; after it the daemon sends Events unasked, each
 * a Response with id 0, and the connection takes no more requests. So the client is marked
 * subscribed and client_begin() refuses every other call (-EBUSY): a round trip would read an
 * event as its reply. Events are received here, one datagram per call, after a poll() bounded
 * by the caller's time-out rather than the round trips' (waiting for events is not waiting
 * for an answer). A stream never reconnects: a daemon that went away ended it, and events of
 * the new one would not follow on.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "client/client-internal.h"

static const char *const kind_names[] = {
	[SMH_EVENT_CONNECT] = "connect", [SMH_EVENT_DISCONNECT] = "disconnect",
	[SMH_EVENT_DEATH] = "death",     [SMH_EVENT_ALLOC] = "alloc",
	[SMH_EVENT_FREE] = "free",       [SMH_EVENT_REALLOC] = "realloc",
	[SMH_EVENT_EXPORT] = "export",   [SMH_EVENT_IMPORT] = "import",
	[SMH_EVENT_LOST] = "lost",
};

const char *smh_event_kind_name(enum smh_event_kind kind)
{
	if ((unsigned)kind >= sizeof(kind_names) / sizeof(kind_names[0]) || !kind_names[kind])
		return "unknown";
	return kind_names[kind];
}

int smh_events_subscribe(struct smh_client *client)
{
	Smh__SubscribeRequest sub = SMH__SUBSCRIBE_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	int err = client_begin(client);

	if (err < 0)
		return err;
	req.body_case = SMH__REQUEST__BODY_SUBSCRIBE;
	req.subscribe = &sub;
	err = client_request(client, &req, SMH__RESPONSE__BODY__NOT_SET, NULL, NULL);
	if (err == 0)
		client->subscribed = true;
	client_end(client);
	return err;
}

int smh_events_fd(struct smh_client *client)
{
	return client && client->subscribed ? client->sock : -EINVAL;
}

static void convert(const Smh__Event *in, struct smh_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = (enum smh_event_kind)in->kind;
	ev->time_us = in->time_us;
	ev->client = in->client;
	ev->pid = in->pid;
	ev->uid = in->uid;
	/* Free text: cut rather than refuse. */
	snprintf(ev->comm, sizeof(ev->comm), "%s", in->comm ? in->comm : "");
	ev->handle = in->handle;
	ev->region = in->region;
	ev->size = in->size;
	ev->phys_addr = in->phys_addr;
	ev->n_buffers = in->n_buffers;
	ev->bytes = in->bytes;
	ev->released = in->released;
	ev->lost = in->lost;
	snprintf(ev->why, sizeof(ev->why), "%s", in->why ? in->why : "");
}

/* Receives one event that poll() said is there. */
static int receive(struct smh_client *client, struct smh_event *ev)
{
	struct wire_fds fds = { .n = 0 };
	Smh__Response *resp;
	ssize_t n = wire_recv(client->sock, client->msg, sizeof(client->msg), &fds, NULL);

	if (n == -EAGAIN || n == -EINTR)
		return -EAGAIN;
	if (n > 0 && (fds.n || fds.n_closed))
		n = -EPROTO; /* events bring no fds */
	wire_fds_close(&fds);
	if (n == 0 || client_transport_lost((int)n)) {
		client_log(SMH_LOG_ERROR, "smh: the daemon closed the event stream");
		client_set_state(client, CLIENT_DEAD, -ECONNRESET);
		return -ECONNRESET;
	}
	if (n < 0)
		return client_proto_error(client, "an event datagram too long or with fds");
	resp = wire_unpack_response(client->msg, (size_t)n);
	if (!resp || resp->id != 0 || resp->status != 0 ||
	    resp->body_case != SMH__RESPONSE__BODY_EVENT) {
		wire_free_response(resp);
		return client_proto_error(client, "a datagram that is not an event");
	}
	convert(resp->event, ev);
	wire_free_response(resp);
	return 0;
}

int smh_events_next(struct smh_client *client, struct smh_event *ev, int timeout_ms)
{
	struct pollfd pfd;
	int err;

	if (!client || !ev)
		return -EINVAL;
	if (client->generation != client_fork_generation())
		return -ECHILD;
	pthread_mutex_lock(&client->lock);
	if (!client->subscribed) {
		err = -EINVAL;
	} else if (client->state != CLIENT_CONNECTED) {
		err = client->error;
	} else {
		pfd = (struct pollfd){ .fd = client->sock, .events = POLLIN };
		err = poll(&pfd, 1, timeout_ms < 0 ? -1 : timeout_ms);
		if (err > 0)
			err = receive(client, ev);
		else
			err = err == 0 || errno == EINTR ? -EAGAIN : -errno;
	}
	pthread_mutex_unlock(&client->lock);
	return err;
}
