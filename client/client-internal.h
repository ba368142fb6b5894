/* SPDX-License-Identifier: MIT */
/*
 * What the files of libsmh-client share. Nothing here is exported (libsmh-client.sym keeps
 * only smh_* and shared_multi_heap_*). One section per file; the files depend on each other
 * one way only, each on those above it:
 *
 *   client-diag.c       log handler, error strings, this thread's last refusal
 *   client-regions.c    region slots, retired regions, the registry of live clients, fork()
 *   client-exchange.c   one request and its reply on the socket; the connection's state
 *   client-reconnect.c  the hello, and reconnecting after the daemon restarted
 *   client.c            connect, calls (a loop: exchange, on a hang-up reconnect and re-send)
 *   client-query.c, client-buffer.c, client-access.c, shared-multi-heap.c: the public calls
 *   client-cache.c      cache maintenance (the public API only: smh_buffer_mapping())
 *   client-events.c     the event subscription (its own receive path after the subscribe)
 *
 * Locks: each client's `lock` serialises its round trips and guards everything that only round
 * trips touch. The process-wide registry lock (client_registry_lock()) guards the list of live
 * clients and, in each client, what smh_map() reads without a client at hand: the region slots
 * (fd, mapping) and the published region table. Order: a client's lock, then the registry's.
 */
#ifndef CLIENT_CLIENT_INTERNAL_H
#define CLIENT_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/wire.h"
#include "smh/client.h"

/* More regions than this in a hello is a protocol error (the daemon serves at most 1024). */
#define CLIENT_REGIONS_MAX 4096

/* One region as this connection sees it: its fd once received, its mapping once mapped. */
struct client_slot {
	int fd;            /* -1 until a reply brings it */
	void *map;         /* NULL until the first smh_map() of a buffer of this region */
	size_t map_len;    /* bytes mapped */
	uint64_t map_base; /* fd offset of map[0] (page aligned) */
};

/* A region fd (and its mapping) a restarted daemon no longer serves: kept until disconnect. */
struct client_retired {
	int fd;
	void *map;
	size_t map_len;
};

/*
 * Where a connection stands. client_set_state() is the only writer (under the client's lock).
 * fork() is not a state: a child must not take the parent's lock, so client_begin() compares
 * generations before it (-ECHILD) and the state stays the parent's.
 */
enum client_state {
	CLIENT_CONNECTED, /* requests go out on `sock` */
	CLIENT_LOST,      /* the daemon went away (`error`: how): the next call reconnects */
	CLIENT_DEAD,      /* over (`error`: -EPROTO, -ESTALE, ...): every call returns `error` */
};

struct smh_client {
	pthread_mutex_t lock;
	int sock;
	enum client_state state;
	int error;      /* 0 when connected; else what every call returns until a reconnect */
	int timeout_ms; /* a round trip's bound ($SMH_TIMEOUT_MS, smh_set_timeout()); 0: none */

	/* Reconnection after the daemon restarted (client/client-reconnect.c). */
	char *path;           /* the socket connected to */
	int64_t server_uid;   /* the uid the daemon must run as (or root); -1: the first one's */
	int reconnect_ms;     /* $SMH_RECONNECT_MS at connect; 0: never reconnect */
	uint64_t session;     /* HelloReply.session: resumed after a reconnect */
	uint64_t n_reclaimed; /* from the last resume */
	/*
	 * Holds this connection took (allocs and imports, less frees): a resume that reclaims
	 * fewer lost some of them, and the connection must not go on as if it had not.
	 */
	uint64_t n_held;
	unsigned generation; /* client_fork_generation() at connect: a fork since makes it stale */
	bool subscribed;     /* to events (client-events.c): no more requests */

	uint64_t next_id;
	uint64_t granule;
	uint64_t client_id;

	/* n_regions from the hello; slots[i] is region i. Written under both the client's lock
	 * and the registry lock, so either is enough to read them. */
	uint32_t n_regions;
	struct client_slot *slots;
	struct client_retired *retired;
	size_t n_retired;
	/* Region table, fetched at the first need and kept: NULL until then. Published under the
	 * registry lock, then read-only. */
	struct smh_region_info *regions;

	struct smh_client *next; /* registry list */

	/* Messages out and in, one round trip at a time (under `lock`). */
	uint8_t msg[SMH_MSG_MAX];
};

/* ---------------------------------------------------------------- client-diag.c */

/* Logs through the handler set by smh_set_log_handler(), if any. */
void client_log(enum smh_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Makes @msg this thread's last refusal, from @client (NULL, "": none). */
void client_set_last_error(const struct smh_client *client, const char *msg);

/* Forgets this thread's last refusal if it came from @client. */
void client_clear_last_error(const struct smh_client *client);

/* ---------------------------------------------------------------- client-regions.c */

/* Allocates client->n_regions empty slots. Returns 0 or -ENOMEM. */
int client_slots_init(struct smh_client *client);

/* Unmaps and closes the slots and the retired regions. */
void client_slots_finish(struct smh_client *client);

/* Stores @fd (owned) as region @index's fd: see client-regions.c. Under the registry lock. */
void client_slot_set_fd(struct smh_client *client, uint32_t index, int fd);

/* The registry lock (see above). */
void client_registry_lock(void);
void client_registry_unlock(void);

/* Adds @client to the registry, or takes it out. */
void client_registry_add(struct smh_client *client);
void client_registry_remove(struct smh_client *client);

/* The live client and region index whose slot holds @fd, or NULL. Under the registry lock. */
struct smh_client *client_find_fd(int fd, uint32_t *regionp);

/* This process's fork generation: it changes in the child at every fork(). */
unsigned client_fork_generation(void);

/* ---------------------------------------------------------------- client-exchange.c */

/* Moves @client to @state with @error (0 for CLIENT_CONNECTED). The only writer of both. */
void client_set_state(struct smh_client *client, enum client_state state, int error);

/* Marks the connection dead after a protocol error in a reply; returns -EPROTO. */
int client_proto_error(struct smh_client *client, const char *what);

/* Whether @err says the daemon went away (the connection, not the request, failed). */
bool client_transport_lost(int err);

/*
 * A connected socket to @path whose sends and receives (and the connect) block at most
 * @timeout_ms (0: no bound), or a negative errno (-ETIMEDOUT).
 */
int client_open_socket(const char *path, int timeout_ms);

/* Bounds @sock's sends and receives by @timeout_ms (0: none). Returns 0 or a negative errno. */
int client_socket_timeout(int sock, int timeout_ms);

/*
 * Checks who listens at the other end of @sock (borrowed), before anything is sent: root, or
 * client->server_uid ($SMH_SERVER_UID, else the uid of the first daemon connected to, which it
 * then becomes). Returns 0 or a negative errno: -EPERM (another user's process; logged).
 */
int client_check_server(struct smh_client *client, int sock);

/* Reads a successful reply (@resp is freed after); returns 0 or a negative errno. */
typedef int client_read_fn(struct smh_client *client, const Smh__Response *resp, void *ctx);

/*
 * One round trip on the socket as it is: sends @req (its id is set here), receives its
 * Response, keeps the region fds it brings, checks it and hands it to @reader (NULL: nothing to
 * read). @expect is the body a success carries (SMH__RESPONSE__BODY__NOT_SET: any). A refusal
 * returns the daemon's status (its message becomes smh_last_error()). Never reconnects: a
 * hang-up leaves the client CLIENT_LOST, a malformed reply or no reply within
 * client->timeout_ms CLIENT_DEAD. Call with the lock held.
 * Returns 0 or a negative errno: @reader's, the daemon's, -EPROTO, -EPIPE/-ECONNRESET,
 * -ETIMEDOUT, -ENOMEM.
 */
int client_exchange(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		    client_read_fn *reader, void *ctx);

/* ---------------------------------------------------------------- client-reconnect.c */

/*
 * Reads $SMH_RECONNECT_MS, $SMH_SERVER_UID and $SMH_TIMEOUT_MS, and keeps @path for reconnecting. Returns 0 or
 * a negative errno: -EINVAL ($SMH_SERVER_UID is not a uid), -ENOMEM.
 */
int client_reconnect_init(struct smh_client *client, const char *path);

/* The first hello on a new connection. Call with the lock held. Returns 0 or a negative errno. */
int client_hello(struct smh_client *client);

/*
 * Connects again to client->path (retrying with a backoff for up to client->reconnect_ms) and
 * resumes the session. @n_releasing: holds the interrupted request may have given up before
 * the daemon died (1 for a free), which the resumed session may lack. Call with the lock held,
 * in CLIENT_LOST. Returns 0 (CLIENT_CONNECTED) or the error the client now keeps: -ESTALE
 * (CLIENT_DEAD: back, but without our buffers), or the one that lost it (still CLIENT_LOST).
 */
int client_reconnect(struct smh_client *client, uint64_t n_releasing);

/* ---------------------------------------------------------------- client.c */

/*
 * Starts a call on @client: checks the caller's process, takes the lock (reconnecting a lost
 * connection), clears this thread's last error. Returns 0 (the lock is held), -EINVAL for
 * NULL, -ECHILD after fork(), or the error that ended the connection (the lock is not held).
 */
int client_begin(struct smh_client *client);
void client_end(struct smh_client *client);

/*
 * A request and its reply, as client_exchange(), surviving a daemon restart: when the daemon
 * hangs up, the client reconnects, resumes, and sends @req again, once. Call with the lock
 * held. Returns 0 or a negative errno: client_exchange()'s, or -ESTALE.
 */
int client_request(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		   client_read_fn *reader, void *ctx);

/*
 * A request that gives up one hold (a free): as client_request(), but a resume may lack that
 * hold, and the re-sent request refused -EINVAL (not held) is a success: the old daemon did
 * it before it died.
 */
int client_request_release(struct smh_client *client, Smh__Request *req);

/* client_begin(), client_request(), client_end(). */
int client_round_trip(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		      client_read_fn *reader, void *ctx);

/* ---------------------------------------------------------------- client-query.c */

/* Fetches the region table if not yet cached. Call with the lock held. */
int client_load_regions(struct smh_client *client);

#endif
