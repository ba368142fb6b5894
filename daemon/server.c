/* SPDX-License-Identifier: MIT */
/*
 * The socket server (see server.h).
 *
 * libuv's stream writes cannot carry arbitrary fds (uv_write2 sends only libuv handles), so
 * every socket is a raw fd watched by a uv_poll_t, and the datagrams move with
 * sendmsg()/recvmsg() (proto/wire.c).
 *
 * Back-pressure: when a client's socket has no room for a response, the response is kept and
 * the connection stops being read until it has gone out. A client that sends requests and
 * never reads replies therefore costs one pending datagram, and blocks nobody else.
 *
 * Parked replies are bounded: one per connection, of at most SMH_MSG_MAX bytes, and PARKED_MAX
 * bytes for all connections together; a connection whose reply would pass that is dropped.
 *
 * Whatever a client sends that is not a well-formed request (bytes that do not parse, a
 * datagram over SMH_MSG_MAX, fds, a request before the hello) drops that client only, with one
 * log line (at most a few per uid and kind a minute: daemon/ratelog.h); its buffers are
 * released as if it had closed. smhd never takes a client's fds: datagrams are received with
 * no room for them (no control buffer, or room for the arrival's timestamp alone, which the
 * kernel writes first), so the kernel drops the fds itself. Closing them here would call their
 * files' ->flush on the loop, and the FLUSH of a file on a FUSE filesystem the client serves
 * waits for the client's answer, for ever if it never comes. Where the kernel offers
 * SO_PASSRIGHTS (Linux 6.16), it is turned off, and the sender's sendmsg() fails already.
 *
 * Connections not (yet) served hold an fd each, so they are bounded too: one that says no
 * hello within the hello timeout is closed (one timer for all: they wait in a list in the
 * order they came, which is the order of their deadlines); one uid has at most
 * max_conns_per_uid connections (root is not counted: it can stop smhd anyway, and on a board
 * many services run as root), and the ones past it are answered with a refusal and closed at
 * accept. A connection the policy refuses is answered and closed when its hello is read, at
 * accept already when the hello came with it; until then it counts like any other.
 *
 * Scrubbing (daemon/scrub.h): an allocation only memory being scrubbed could serve parks its
 * connection (the request is kept, the socket not read) until the scrubber's uv_async_t says
 * blocks came back; the loop frees them into the pool in bounded batches and hands the parked
 * requests again. A closed connection's holds are released in bounded slices too. Both are
 * background work (an idle handle): a slice ends early when any of the loop's fds is ready, so
 * a request waits for one step of it, not a slice, and a client with a million buffers does not
 * stall the others.
 *
 * Waits (daemon/waits.h): each client socket has the kernel stamp its datagrams' arrival; a
 * request's wait, from then to its reply written, is counted for the stats reply (a parked
 * request's includes its time parked).
 *
 * Events (daemon/events.h): a connection that subscribed takes no more requests; its queue is
 * sent while its socket has room (a slice per wake-up, like the reads), and the loop never
 * waits for it: what does not fit in the queue is counted as lost there.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "common/proc.h"
#include "daemon/events.h"
#include "daemon/listen.h"
#include "daemon/policy.h"
#include "daemon/ratelog.h"
#include "daemon/requests.h"
#include "daemon/scrub.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/waits.h"

/* Clients accepted per wake-up of the listening socket. */
#define ACCEPT_BATCH 16

/*
 * Loop time spent per iteration releasing closed connections' holds, and again freeing scrubbed
 * blocks into the pool: what another client's request may wait behind them. Counts would not
 * bound it: a hold costs 1-3 us depending on the load and the cache (1024 holds took 1-4 ms,
 * 83 ms under load, and 4096 blocks as long again), so the slices look at the clock every step.
 * They also end at the first step after which an fd is ready (io_ready()).
 */
#define SLICE_NS (UINT64_C(500) * 1000)

/* Holds released, and scrubbed blocks freed, between two looks at the clock. */
#define REAP_STEP    64
#define COLLECT_STEP 128

/* With no fd left for a new client, accepting pauses this long (or until a client leaves). */
#define ACCEPT_PAUSE_MS 200

/* Events sent to one subscriber per wake-up of its socket. */
#define EVENTS_SLICE 64

/* All the connections' parked replies together (each is at most SMH_MSG_MAX). */
#define PARKED_MAX (16u << 20)

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

/* Linux 6.16; older kernels answer ENOPROTOOPT (the value is the same on every architecture). */
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

/* Supplementary groups of a peer read without an allocation; more take one. */
#define PEER_GROUPS_SMALL 256

/* NGROUPS_MAX of the kernel: a larger answer is not believed. */
#define PEER_GROUPS_MAX 65536

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gids are 32-bit");

struct server {
	uv_loop_t loop;
	uv_poll_t listen_poll;
	uv_timer_t accept_timer; /* resumes accepting after running out of fds */
	bool accept_paused;
	bool out_of_fds; /* logged; cleared by the next accept that succeeds */
	uv_signal_t sig[2];
	int listen_fd;
	char *path;
	bool owns_path; /* created the socket file (not socket-activated): removes it at exit */
	struct service service;
	struct broker *broker;
	struct policy *policy;
	struct backend *backend;
	struct list conns;
	struct list waiting; /* connections without a hello yet, oldest first */
	uv_timer_t hello_timer;
	struct server_limits limits;
	struct ratelog ratelog;
	struct refusals refusals; /* by kind, since the start: the stats reply carries them */
	struct waits waits;       /* the requests' waits in smhd, since the start: likewise */
	size_t parked;            /* bytes of all the parked replies */
	struct scrub *scrub;
	uv_async_t scrub_async;  /* the scrubber finished blocks */
	uv_idle_t work_idle;     /* background work is left: */
	bool reaping;            /* closed connections' holds are being released */
	bool collecting;         /* scrubbed blocks wait to be freed into the pool */
	struct list parked_reqs; /* connections waiting for memory being scrubbed */
	struct events events;
	bool stopping;
	unsigned char in[SMH_MSG_MAX];
	unsigned char out[SMH_MSG_MAX];
};

struct conn {
	struct server *srv;
	int fd;
	uv_poll_t poll;
	struct request_ctx ctx;
	struct list link;
	struct list wait_link; /* in srv->waiting while waiting */
	bool waiting;
	uint64_t deadline; /* of the hello, in uv_now() milliseconds */
	/* A response the socket had no room for; its fds are the backend's (borrowed). */
	unsigned char *pending;
	size_t pending_len;
	int pending_fds[WIRE_FDS_MAX];
	size_t n_pending_fds;
	bool close_after; /* after the pending response goes out */
	/* A request waiting for memory being scrubbed (the socket is not read meanwhile). */
	unsigned char *parked;
	size_t parked_len;
	struct list park_link;   /* server's parked_reqs */
	bool stamped;            /* the kernel stamps its datagrams' arrival (waits.h) */
	struct timespec arrived; /* the request being handled's, or zero */
};

/* A new peer's supplementary groups (SO_PEERGROUPS), for the policy. */
struct peer_groups {
	struct policy_ids list; /* in small, or allocated */
	uint32_t small[PEER_GROUPS_SMALL];
};

/* What the warnings about a uid's connections are about, each rate-limited on its own. */
enum warn_kind { WARN_DROPPED, WARN_FDS, WARN_SILENT, WARN_REFUSED };

static void on_conn_event(uv_poll_t *poll, int status, int events);
static void resume_accepting(struct server *srv);
static void reap(struct server *srv, struct broker_client *bc);

static void warn(struct server *srv, uint32_t uid, enum warn_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A warning about @uid's connections, or a debug line once it has had its share. */
static void warn(struct server *srv, uint32_t uid, enum warn_kind kind, const char *fmt, ...)
{
	struct ratelog_verdict v =
		ratelog_check(&srv->ratelog, uid, kind, (int64_t)uv_now(&srv->loop));
	char msg[512], quiet[64] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!v.log) {
		log_debug("%s", msg);
		return;
	}
	if (v.n_quiet)
		snprintf(quiet, sizeof(quiet), " (%llu more like it were not logged)",
			 (unsigned long long)v.n_quiet);
	log_warning("%s%s%s", msg, quiet,
		    v.last ? " (more like it from this uid are not logged for a minute)" : "");
}

/*
 * Reads the supplementary groups of the peer on @fd, as they were when it connected. Without
 * them (a kernel before 4.13, no memory) the list is empty: the policy then judges the peer by
 * its uid and primary gid.
 */
static void read_groups(int fd, struct peer_groups *g)
{
	socklen_t len = sizeof(g->small);
	uint32_t *ids = g->small;

	g->list = (struct policy_ids){ 0 };
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ids, &len) < 0) {
		if (errno != ERANGE || len > PEER_GROUPS_MAX * sizeof(*ids) || !(ids = malloc(len)))
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ids, &len) < 0)
			len = 0;
	}
	g->list.ids = ids;
	g->list.n = len / sizeof(*ids);
}

static void groups_finish(struct peer_groups *g)
{
	if (g->list.ids != g->small)
		free(g->list.ids);
}

static void on_conn_closed(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	close(c->fd);
	if (c->pending)
		c->srv->parked -= c->pending_len;
	free(c->parked);
	free(c->pending);
	free(c->ctx.fd_sent);
	free(c);
}

static void stop_waiting(struct conn *c)
{
	if (c->waiting)
		list_remove(&c->wait_link);
	c->waiting = false;
}

/*
 * Releases what the client holds and closes it. @why (NULL for a plain hang-up) is logged, as
 * a warning of @kind.
 */
static void conn_drop(struct conn *c, enum warn_kind kind, const char *why)
{
	struct broker_client *bc = c->ctx.client;

	events_unsubscribe(&c->srv->events, c->ctx.sub);
	c->ctx.sub = NULL;
	if (c->ctx.hello_done)
		events_left(&c->srv->events, bc, why);
	if (why)
		warn(c->srv, bc->uid, kind, "Dropping client %llu (pid %d, %s, uid %u): %s",
		     (unsigned long long)bc->id, (int)bc->pid, bc->comm, (unsigned)bc->uid, why);
	else
		log_debug("Client %llu (pid %d, %s) disconnected, releasing %llu buffers",
			  (unsigned long long)bc->id, (int)bc->pid, bc->comm,
			  (unsigned long long)bc->n_buffers);
	if (c->parked)
		list_remove(&c->park_link);
	reap(c->srv, bc);
	list_remove(&c->link);
	stop_waiting(c);
	service_changed(&c->srv->service);
	resume_accepting(c->srv); /* an fd is free again */
	uv_poll_stop(&c->poll);
	uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

static void conn_close(struct conn *c, const char *why)
{
	conn_drop(c, WARN_DROPPED, why);
}

static void on_work(uv_idle_t *idle);

/* Releases a few of @bc's holds now, the rest in slices on the next loop iterations. */
static void reap(struct server *srv, struct broker_client *bc)
{
	if (broker_client_retire(srv->broker, bc, REAP_STEP) && !srv->stopping) {
		srv->reaping = true;
		uv_idle_start(&srv->work_idle, on_work);
	}
}

static int watch(struct conn *c, int events)
{
	int ret = uv_poll_start(&c->poll, events | UV_DISCONNECT, on_conn_event);

	if (ret < 0)
		log_error("Could not watch client %llu: %s", (unsigned long long)c->ctx.client->id,
			  uv_strerror(ret));
	return ret;
}

/* Watches @c for requests, and for room for its events if it subscribed and has some. */
static int watch_conn(struct conn *c)
{
	bool more = c->ctx.sub && events_peek(c->ctx.sub);

	return watch(c, UV_READABLE | (more ? UV_WRITABLE : 0));
}

/*
 * An event landed in @data's empty queue: send it once the socket has room. Called while the
 * events go round the subscribers, so it must not close one (that would unsubscribe it under
 * the walk); a watch that fails was logged, and the hang-up still shows.
 */
static void events_ready(void *data)
{
	struct conn *c = data;

	if (!c->pending && !uv_is_closing((uv_handle_t *)&c->poll))
		watch_conn(c);
}

/* Sends a slice of @c's events. Returns false when @c was closed. */
static bool send_events(struct conn *c)
{
	const struct events_item *item;

	for (int i = 0; i < EVENTS_SLICE && (item = events_peek(c->ctx.sub)); i++) {
		size_t len = requests_pack_event(item, c->srv->out);
		int ret = wire_send(c->fd, c->srv->out, len, NULL, 0);

		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			conn_close(c, ret == -EPIPE || ret == -ECONNRESET ? NULL : strerror(-ret));
			return false;
		}
		events_pop(c->ctx.sub);
	}
	if (watch_conn(c) < 0) {
		conn_close(c, "cannot watch the socket");
		return false;
	}
	return true;
}

/* Sends a response, or keeps it for when the socket has room. Returns 0 or a negative errno. */
static int respond(struct conn *c, const struct request_result *res)
{
	int ret = wire_send(c->fd, c->srv->out, res->len, res->fds, res->n_fds);

	if (ret != -EAGAIN)
		return ret;
	if (res->len > PARKED_MAX - c->srv->parked)
		return -ENOBUFS;
	c->pending = malloc(res->len ? res->len : 1);
	if (!c->pending)
		return -ENOMEM;
	memcpy(c->pending, c->srv->out, res->len);
	c->pending_len = res->len;
	c->srv->parked += res->len;
	memcpy(c->pending_fds, res->fds, sizeof(res->fds));
	c->n_pending_fds = res->n_fds;
	c->close_after = res->close_after;
	return watch(c, UV_WRITABLE);
}

/* Keeps the request in srv->in and stops reading @c until a scrub ends (see the top). */
static void park(struct conn *c, size_t n)
{
	c->parked = malloc(n);
	if (!c->parked) {
		conn_close(c, "out of memory");
		return;
	}
	memcpy(c->parked, c->srv->in, n);
	c->parked_len = n;
	list_insert_before(&c->srv->parked_reqs, &c->park_link);
	if (watch(c, 0) < 0) /* a hang-up still shows */
		conn_close(c, "cannot watch the socket");
}

static void handle(struct conn *c, ssize_t n);

/* Hands the parked requests again: memory came back. */
static void unpark_all(struct server *srv)
{
	struct list todo, *pos, *tmp;

	list_init(&todo);
	list_for_each_safe(pos, tmp, &srv->parked_reqs)
	{
		list_remove(pos);
		list_insert_before(&todo, pos);
	}
	list_for_each_safe(pos, tmp, &todo)
	{
		struct conn *c = list_entry(pos, struct conn, park_link);
		size_t n = c->parked_len;

		list_remove(pos);
		memcpy(srv->in, c->parked, n);
		free(c->parked);
		c->parked = NULL;
		if (watch(c, UV_READABLE) < 0)
			conn_close(c, "cannot watch the socket");
		else
			handle(c, (ssize_t)n);
	}
}

/*
 * Whether an fd of the loop is ready (a request, a new client, the scrubber's wake): the
 * background work ends its slice early, so that a request waits for a step, not a slice.
 */
static bool io_ready(struct server *srv)
{
	struct pollfd p = { .fd = uv_backend_fd(&srv->loop), .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* A slice of releasing closed connections' holds, then one of freeing scrubbed blocks. */
static void on_work(uv_idle_t *idle)
{
	struct server *srv = idle->data;
	uint64_t end = uv_hrtime() + SLICE_NS;
	size_t n = 0;

	if (srv->reaping) {
		do
			srv->reaping = broker_reap(srv->broker, REAP_STEP);
		while (srv->reaping && uv_hrtime() < end && !io_ready(srv));
	}
	if (srv->collecting) { /* set only with a scrubber (on_scrubbed()) */
		end = uv_hrtime() + SLICE_NS;
		do
			n += scrub_collect(srv->scrub, COLLECT_STEP, &srv->collecting);
		while (srv->collecting && uv_hrtime() < end && !io_ready(srv));
		if (n > 0) {
			service_changed(&srv->service);
			unpark_all(srv);
		}
	}
	if (!srv->reaping && !srv->collecting)
		uv_idle_stop(idle);
}

/* The scrubber finished blocks: they are freed into the pool as background work. */
static void on_scrubbed(uv_async_t *async)
{
	struct server *srv = async->data;

	if (!srv->scrub || srv->stopping)
		return;
	srv->collecting = true;
	uv_idle_start(&srv->work_idle, on_work);
}

/* Called on the scrubber's thread. */
static void wake(void *data)
{
	struct server *srv = data;

	uv_async_send(&srv->scrub_async);
}

void server_set_scrub(struct server *srv, struct scrub *scrub)
{
	srv->scrub = scrub;
	scrub_set_wake(scrub, wake, srv);
}

/* Handles one datagram: answers it, or drops the client. */
static void handle(struct conn *c, ssize_t n)
{
	struct request_result res;
	int ret;

	requests_handle(&c->ctx, c->srv->in, (size_t)n, c->srv->out, &res);
	if (res.violation) {
		conn_close(c, res.violation);
		return;
	}
	if (c->ctx.hello_done)
		stop_waiting(c);
	if (res.park) {
		park(c, (size_t)n);
		return;
	}
	service_changed(&c->srv->service);
	ret = respond(c, &res);
	if (ret >= 0 && (c->arrived.tv_sec || c->arrived.tv_nsec)) /* parked: since it came */
		waits_add(&c->srv->waits, waits_since(&c->arrived));
	if (ret == -ENOBUFS)
		conn_close(c, "its replies are not read, and no more can be kept for it");
	else if (ret < 0)
		conn_close(c, ret == -EPIPE || ret == -ECONNRESET ? NULL : strerror(-ret));
	else if (res.close_after && !c->pending)
		conn_close(c, NULL);
}

/*
 * One datagram per wake-up: the poll is level-triggered, so more waiting datagrams wake us
 * again, after the other ready connections had their turn. A client doing one round trip at a
 * time so costs one recvmsg() and one sendmsg(), with no recvmsg() that finds nothing.
 */
static void on_readable(struct conn *c)
{
	ssize_t n = c->stamped
			    ? wire_recv_stamped(c->fd, c->srv->in, sizeof(c->srv->in), &c->arrived)
			    : wire_recv_no_fds(c->fd, c->srv->in, sizeof(c->srv->in));

	if (n == -EAGAIN)
		return;
	if (n == 0 || n == -ECONNRESET)
		conn_close(c, NULL);
	else if (n == -EMSGSIZE)
		conn_close(c, "a datagram larger than the protocol's 65536 bytes");
	else if (n == -EPROTO)
		conn_drop(c, WARN_FDS, "sent file descriptors (smhd takes none; not opened)");
	else if (n < 0)
		conn_close(c, strerror((int)-n));
	else
		handle(c, n);
}

static void on_writable(struct conn *c)
{
	int ret = wire_send(c->fd, c->pending, c->pending_len, c->pending_fds, c->n_pending_fds);

	if (ret == -EAGAIN)
		return;
	free(c->pending);
	c->pending = NULL;
	c->srv->parked -= c->pending_len;
	if (ret < 0 || c->close_after) {
		conn_close(c,
			   ret < 0 && ret != -EPIPE && ret != -ECONNRESET ? strerror(-ret) : NULL);
		return;
	}
	if (watch_conn(c) < 0)
		conn_close(c, "cannot watch the socket");
}

static void on_conn_event(uv_poll_t *poll, int status, int events)
{
	struct conn *c = poll->data;

	if (status < 0) {
		/* libuv reports EPOLLERR as UV_EBADF: the peer hung up with replies unread. */
		conn_close(c, status == UV_EBADF ? NULL : uv_strerror(status));
		return;
	}
	if (c->parked) {
		if (events & UV_DISCONNECT)
			conn_close(c, NULL);
		return;
	}
	if (c->pending && (events & UV_WRITABLE)) {
		on_writable(c);
		return;
	}
	if (c->ctx.sub && (events & UV_WRITABLE) && !send_events(c))
		return;
	if (events & UV_READABLE) {
		on_readable(c);
		return;
	}
	if (events & UV_DISCONNECT)
		conn_close(c, NULL);
}

static void on_hello_timer(uv_timer_t *timer)
{
	struct server *srv = timer->data;
	uint64_t now = uv_now(&srv->loop);
	char why[64];

	snprintf(why, sizeof(why), "said no hello within %u s", srv->limits.hello_timeout_s);
	while (!list_empty(&srv->waiting)) {
		struct conn *c = list_entry(srv->waiting.next, struct conn, wait_link);

		if (c->deadline > now) {
			uv_timer_start(timer, on_hello_timer, c->deadline - now, 0);
			return;
		}
		conn_drop(c, WARN_SILENT, why);
	}
}

/* The hello timeout starts. The list stays in deadline order: every wait is as long. */
static void start_waiting(struct conn *c)
{
	struct server *srv = c->srv;
	uint64_t ms = srv->limits.hello_timeout_s * (uint64_t)1000;

	if (ms == 0)
		return;
	c->deadline = uv_now(&srv->loop) + ms;
	if (list_empty(&srv->waiting))
		uv_timer_start(&srv->hello_timer, on_hello_timer, ms, 0);
	list_insert_before(&srv->waiting, &c->wait_link);
	c->waiting = true;
}

/* Whether @c is one connection too many of its uid; if so, refuses it (c->ctx.refusal). */
static bool over_cap(struct server *srv, struct conn *c)
{
	struct broker_client *bc = c->ctx.client;
	unsigned max = srv->limits.max_conns_per_uid;
	struct list *pos;
	unsigned n = 0;

	if (max == 0 || bc->uid == 0)
		return false;
	list_for_each(pos, &srv->conns)
	{
		n += list_entry(pos, struct conn, link)->ctx.client->uid == bc->uid;
		if (n > max)
			break;
	}
	if (n <= max) /* @c counted */
		return false;
	snprintf(c->ctx.refusal, sizeof(c->ctx.refusal),
		 "uid %u has %u connections to smhd already (max-connections-per-uid)",
		 (unsigned)bc->uid, max);
	bc->refused = -EMFILE;
	warn(srv, bc->uid, WARN_REFUSED, "Refusing client %llu (pid %d, %s, uid %u): %s",
	     (unsigned long long)bc->id, (int)bc->pid, bc->comm, (unsigned)bc->uid, c->ctx.refusal);
	return true;
}

/*
 * A refused connection is answered when its hello is read, and closed: now, if it came with
 * the connection. One over its uid's cap is not kept to wait for it: without a hello yet, the
 * refusal goes out unasked, as the answer to request 1 (a client's first is its hello).
 */
static void refuse_early(struct conn *c, bool capped)
{
	ssize_t len;

	on_readable(c);
	if (!capped || uv_is_closing((uv_handle_t *)&c->poll))
		return;
	len = wire_pack_refusal(1, c->ctx.client->refused, c->ctx.refusal, c->srv->out);
	if (len > 0)
		wire_send(c->fd, c->srv->out, (size_t)len, NULL, 0); /* best effort: it goes */
	conn_close(c, NULL);
}

/* "?" for a peer /proc does not show (gone already, or hidden by hidepid=). */
static void read_comm(pid_t pid, char *buf, size_t size)
{
	if (proc_comm(pid, buf, size) < 0)
		snprintf(buf, size, "?");
}

static int conn_add(struct server *srv, int fd)
{
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	size_t n_regions = pool_n_regions(srv->broker->pool);
	struct peer_groups groups;
	struct conn *c;
	char comm[32];
	bool capped;
	int ret;

	/* Read once, now: the peer's identity as it was when it connected. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		log_warning("Could not read the credentials of a new client: %s", strerror(errno));
	read_comm(cred.pid, comm, sizeof(comm));
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx.fd_sent = calloc(n_regions ? n_regions : 1, sizeof(*c->ctx.fd_sent));
	if (!c->ctx.fd_sent) {
		ret = -ENOMEM;
		goto err_conn;
	}
	ret = uv_poll_init(&srv->loop, &c->poll, fd);
	if (ret < 0)
		goto err_conn;
	ret = broker_client_add(srv->broker, cred.pid, cred.uid, cred.gid, comm, &c->ctx.client);
	if (ret < 0) {
		/* The handle is initialised: it must be closed through the loop. */
		c->fd = fd;
		c->poll.data = c;
		uv_close((uv_handle_t *)&c->poll, on_conn_closed);
		return ret;
	}
	c->srv = srv;
	c->fd = fd;
	c->poll.data = c;
	c->ctx.broker = srv->broker;
	c->ctx.backend = srv->backend;
	c->ctx.policy = srv->policy;
	c->ctx.scrub = srv->scrub;
	c->ctx.events = &srv->events;
	c->ctx.events_wake = events_ready;
	c->ctx.events_data = c;
	c->ctx.refusals = &srv->refusals;
	c->ctx.waits = &srv->waits;
	c->stamped = wire_stamp_on(fd) == 0;
	list_insert_before(&srv->conns, &c->link);
	capped = over_cap(srv, c);
	if (!capped) {
		/* Read now too, with the credentials: its groups as they were when it connected. */
		read_groups(fd, &groups);
		policy_admit(srv->policy, srv->broker, c->ctx.client, &groups.list, c->ctx.refusal,
			     sizeof(c->ctx.refusal));
		groups_finish(&groups);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &(int){ 0 }, sizeof(int)) < 0 &&
	    errno != ENOPROTOOPT)
		log_debug("Could not turn SO_PASSRIGHTS off: %s", strerror(errno));
	if (watch(c, UV_READABLE) < 0) {
		conn_close(c, "cannot watch the socket");
		return 0;
	}
	log_debug("Client %llu connected: pid %d, uid %u, %s",
		  (unsigned long long)c->ctx.client->id, (int)cred.pid, (unsigned)cred.uid, comm);
	service_changed(&srv->service);
	start_waiting(c);
	if (c->ctx.client->refused)
		refuse_early(c, capped);
	return 0;

err_conn:
	free(c->ctx.fd_sent);
	free(c);
	close(fd);
	return ret;
}

static void on_listen(uv_poll_t *poll, int status, int events);

static void on_accept_timer(uv_timer_t *timer)
{
	resume_accepting(timer->data);
}

/*
 * Out of fds: the waiting client cannot be accepted, and the level-triggered poll would wake
 * us for it again at once. Stop watching the listening socket until a client leaves or a
 * short pause has passed; the waiting clients stay in the backlog meanwhile.
 */
static void pause_accepting(struct server *srv)
{
	if (srv->accept_paused)
		return;
	if (!srv->out_of_fds)
		log_warning("Out of file descriptors (%s): new clients wait until some leave",
			    strerror(errno));
	srv->out_of_fds = true;
	srv->accept_paused = true;
	uv_poll_stop(&srv->listen_poll);
	uv_timer_start(&srv->accept_timer, on_accept_timer, ACCEPT_PAUSE_MS, 0);
}

static void resume_accepting(struct server *srv)
{
	if (!srv->accept_paused || srv->stopping)
		return;
	srv->accept_paused = false;
	uv_timer_stop(&srv->accept_timer);
	if (uv_poll_start(&srv->listen_poll, UV_READABLE, on_listen) < 0)
		log_error("Could not watch the listening socket again");
}

static void on_listen(uv_poll_t *poll, int status, int events)
{
	struct server *srv = poll->data;

	if (status < 0) {
		log_error("Listening socket failed: %s", uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int ret;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				pause_accepting(srv);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("Could not accept a client: %s", strerror(errno));
			return;
		}
		if (srv->out_of_fds) {
			log_info("Accepting clients again");
			srv->out_of_fds = false;
		}
		ret = conn_add(srv, fd);
		if (ret < 0)
			log_warning("Could not accept a client: %s", strerror(-ret));
	}
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;
	struct list *pos, *tmp;

	if (srv->stopping)
		return;
	log_info("%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
	srv->stopping = true;
	service_stopping(&srv->service);
	uv_close((uv_handle_t *)&srv->listen_poll, NULL);
	uv_close((uv_handle_t *)&srv->accept_timer, NULL);
	uv_close((uv_handle_t *)&srv->hello_timer, NULL);
	if (srv->scrub)
		scrub_set_wake(srv->scrub, NULL, NULL); /* before the handle goes */
	uv_close((uv_handle_t *)&srv->scrub_async, NULL);
	uv_close((uv_handle_t *)&srv->work_idle, NULL); /* what is left: broker_finish() */
	for (int i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&srv->sig[i], NULL);
	list_for_each_safe(pos, tmp, &srv->conns)
		conn_close(list_entry(pos, struct conn, link), NULL);
}

int server_create(const char *path, int listen_fd, bool shared_dir_ok, struct broker *broker,
		  struct policy *policy, struct backend *backend,
		  const struct server_limits *limits, struct server **serverp)
{
	static const int signums[2] = { SIGINT, SIGTERM };
	struct server *srv = calloc(1, sizeof(*srv));
	int ret;

	if (!srv || !(srv->path = strdup(path))) {
		ret = -ENOMEM;
		goto err_srv;
	}
	srv->listen_fd = -1;
	srv->broker = broker;
	srv->policy = policy;
	srv->backend = backend;
	srv->limits = limits ? *limits
			     : (struct server_limits){
				       .hello_timeout_s = SERVER_DEFAULT_HELLO_TIMEOUT_S,
				       .max_conns_per_uid = SERVER_DEFAULT_MAX_CONNS_PER_UID,
				       .max_subscribers = EVENTS_DEFAULT_MAX_SUBSCRIBERS,
			       };
	events_init(&srv->events, srv->limits.max_subscribers, geteuid());
	list_init(&srv->conns);
	list_init(&srv->waiting);
	list_init(&srv->parked_reqs);
	ret = uv_loop_init(&srv->loop);
	if (ret < 0)
		goto err_srv;
	/*
	 * The handlers come before the socket: a peer that sees it accept may stop smhd at
	 * once, and a SIGTERM with no handler yet would kill it without cleaning up.
	 */
	for (int i = 0; i < 2; i++) {
		uv_signal_init(&srv->loop, &srv->sig[i]);
		srv->sig[i].data = srv;
		ret = ret ? ret : uv_signal_start(&srv->sig[i], on_signal, signums[i]);
	}
	if (ret < 0) {
		log_error("Could not handle SIGINT and SIGTERM: %s", uv_strerror(ret));
		goto err_signals;
	}
	if (listen_fd >= 0) {
		srv->listen_fd = listen_fd;
		ret = listen_adopt(listen_fd);
	} else {
		ret = listen_open(path, shared_dir_ok, &srv->listen_fd);
		srv->owns_path = ret == 0;
	}
	listen_fd = -1;
	if (ret < 0)
		goto err_signals;
	ret = uv_poll_init(&srv->loop, &srv->listen_poll, srv->listen_fd);
	if (ret < 0)
		goto err_signals;
	srv->listen_poll.data = srv;
	uv_timer_init(&srv->loop, &srv->accept_timer);
	srv->accept_timer.data = srv;
	uv_timer_init(&srv->loop, &srv->hello_timer);
	srv->hello_timer.data = srv;
	/* Inherited by the accepted sockets where the kernel has it; set on each of them too. */
	setsockopt(srv->listen_fd, SOL_SOCKET, SO_PASSRIGHTS, &(int){ 0 }, sizeof(int));
	uv_async_init(&srv->loop, &srv->scrub_async, on_scrubbed);
	srv->scrub_async.data = srv;
	uv_idle_init(&srv->loop, &srv->work_idle);
	srv->work_idle.data = srv;
	service_init(&srv->service, &srv->loop, broker);
	ret = uv_poll_start(&srv->listen_poll, UV_READABLE, on_listen);
	if (ret < 0) {
		log_error("Could not start serving: %s", uv_strerror(ret));
		on_signal(&srv->sig[0], SIGTERM);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
		goto err_loop;
	}
	*serverp = srv;
	return 0;

err_signals:
	for (int i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&srv->sig[i], NULL);
	uv_run(&srv->loop, UV_RUN_DEFAULT);
err_loop:
	if (srv->owns_path)
		unlink(srv->path);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	uv_loop_close(&srv->loop);
err_srv:
	if (listen_fd >= 0)
		close(listen_fd);
	if (srv)
		free(srv->path);
	free(srv);
	return ret;
}

int server_run(struct server *srv)
{
	log_info("Listening on %s%s", srv->path,
		 srv->owns_path ? "" : " (socket passed by the service manager)");
	service_ready(&srv->service);
	uv_run(&srv->loop, UV_RUN_DEFAULT); /* it returns once SIGINT or SIGTERM stopped it */
	return 0;
}

uv_loop_t *server_loop(struct server *srv)
{
	return &srv->loop;
}

void server_destroy(struct server *srv)
{
	if (!srv)
		return;
	if (!srv->stopping) {
		on_signal(&srv->sig[0], SIGTERM);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
	}
	if (srv->owns_path)
		unlink(srv->path);
	free(srv->path);
	close(srv->listen_fd);
	if (uv_loop_close(&srv->loop) < 0)
		log_warning("Some handles were still open at exit");
	free(srv);
}
