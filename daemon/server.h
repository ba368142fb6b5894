/* SPDX-License-Identifier: MIT */
/*
 * The socket server: a libuv loop over a SOCK_SEQPACKET listening socket and one uv_poll_t per
 * connection. It moves datagrams and fds; requests.c decides what they mean.
 */
#ifndef DAEMON_SERVER_H
#define DAEMON_SERVER_H

#include "daemon/backend.h"
#include "daemon/broker.h"

struct server;

/*
 * Creates the listening socket at @path (mode 0660; its directory is created 0755 when
 * missing; a stale socket file nobody listens on is replaced; a live one is an error).
 * Returns 0 or a negative errno (logged).
 */
int server_create(const char *path, struct broker *broker, struct backend *backend,
		  struct server **serverp);

/* Serves until SIGINT or SIGTERM. Returns 0 or a negative errno. */
int server_run(struct server *server);

/* Closes every connection (releasing what they hold), removes the socket file, frees. */
void server_destroy(struct server *server);

#endif
