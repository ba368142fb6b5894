/* SPDX-License-Identifier: MIT */
/*
 * The socket server: a libuv loop over a SOCK_SEQPACKET listening socket and one uv_poll_t per
 * connection. It moves datagrams and fds; requests.c decides what they mean.
 */
#ifndef DAEMON_SERVER_H
#define DAEMON_SERVER_H

#include <stdbool.h>

#include "daemon/backend.h"
#include "daemon/broker.h"

#include <uv.h>

struct policy;

struct server;

/* Bounds on connections that hold an fd of the daemon without being served (main.c's options). */
struct server_limits {
	unsigned hello_timeout_s; /* a connection that says no hello in time is closed; 0: never */
	unsigned
		max_conns_per_uid; /* connections of one uid at once, root's not counted; 0: none */
	unsigned max_subscribers;  /* connections following events at once (daemon/events.h) */
};

#define SERVER_DEFAULT_HELLO_TIMEOUT_S   5
#define SERVER_DEFAULT_MAX_CONNS_PER_UID 64

/*
 * Serves on @listen_fd, a listening socket bound to @path that the service manager passed
 * (socket activation; consumed: the server closes it, and leaves the socket file, which is the
 * manager's). With @listen_fd -1, creates the listening socket at @path itself (mode 0660; its
 * directory is created 0755 when missing; a stale socket file nobody listens on is replaced; a
 * live one is an error). A directory others may write to (group or world writable, or owned
 * by another user than ours or root) is refused with -EPERM unless @shared_dir_ok: whoever
 * may write there can listen on @path once we stop.
 * Each new connection is admitted by @policy (NULL: everyone is, without limits), from the
 * credentials and groups its socket gives when accepted, and held to @limits (NULL: the
 * defaults). @broker, @policy and @backend are borrowed and must outlive the server.
 * Returns 0 or a negative errno (logged).
 */
int server_create(const char *path, int listen_fd, bool shared_dir_ok, struct broker *broker,
		  struct policy *policy, struct backend *backend,
		  const struct server_limits *limits, struct server **serverp);

/* Tells the service manager it is ready, then serves until SIGINT or SIGTERM. Returns 0. */
int server_run(struct server *server);

struct scrub;

/*
 * Frees what @scrub finished into the pool when it says so, and hands the requests parked for
 * memory being scrubbed again (@scrub borrowed; it must outlive the server). Without it, no
 * request is parked for long: none is, as the broker then scrubs at once.
 */
void server_set_scrub(struct server *server, struct scrub *scrub);

/* The server's event loop, for timers of other modules (daemon/restart/recover.c). */
uv_loop_t *server_loop(struct server *server);

/*
 * Closes every connection (releasing what they hold), removes the socket file if the server
 * created it, frees.
 */
void server_destroy(struct server *server);

#endif
