/* SPDX-License-Identifier: MIT */
/*
 * What the files of libsmh-client share: the client structure, the round trip and the region
 * cache. Nothing here is exported (libsmh-client.sym keeps only smh_* and
 * shared_multi_heap_*).
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

struct smh_client {
	pthread_mutex_t lock;
	int sock;
	/* Reconnection after the daemon restarted (client/client-reconnect.c). */
	char *path;           /* the socket connected to */
	uint64_t session;     /* HelloReply.session: resumed after a reconnect */
	uint64_t n_reclaimed; /* from the last resume */
	/*
	 * Holds this connection took (allocs and imports, less frees): a resume that reclaims
	 * fewer lost some of them, and the connection must not go on as if it had not.
	 */
	uint64_t n_held;
	bool freeing;     /* a free is in flight: its hold may be gone from the resumed session */
	int reconnect_ms; /* $SMH_RECONNECT_MS at connect; 0: never reconnect */
	int reconnecting; /* a reconnect's own hello must not reconnect */
	int resent;       /* the last client_call() re-sent its request after reconnecting */
	struct client_retired *retired;
	size_t n_retired;
	unsigned generation; /* client_fork_generation() at connect: a fork since makes it stale */
	int dead;            /* 0, or the error that ended the connection (every call returns it) */
	uint64_t next_id;
	uint64_t granule;
	uint64_t client_id;

	/* n_regions from the hello; slots[i] is region i. Written under both the client's lock
	 * and the registry lock, so either is enough to read them. */
	uint32_t n_regions;
	struct client_slot *slots;
	/* Region table, fetched at the first need and kept: NULL until then. Published under the
	 * registry lock, then read-only. */
	struct smh_region_info *regions;

	struct smh_client *next; /* registry list */

	/* Messages out and in, one round trip at a time (under `lock`). */
	uint8_t msg[SMH_MSG_MAX];
};

/* Logs through the handler set by smh_set_log_handler(), if any. */
void client_log(enum smh_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Starts a call on @client: checks the caller's process, takes the lock, clears this thread's
 * last error. Returns 0 (the lock is held), -EINVAL for NULL, -ECHILD after fork(), or the
 * error that ended the connection (the lock is not held).
 */
int client_begin(struct smh_client *client);
void client_end(struct smh_client *client);

/*
 * Sends @req (its id is set here) and receives its Response into *respp, keeping the fds it
 * brings. Call with the lock held. @expect is the body the reply must carry on success
 * (SMH__RESPONSE__BODY__NOT_SET: any, unread). A refusal returns the daemon's status (its
 * message becomes smh_last_error()) with *respp NULL.
 * Returns 0 or a negative errno: the daemon's, -EPROTO (malformed or unexpected reply; the
 * connection is then dead), -EPIPE/-ECONNRESET (the daemon went away), -ENOMEM.
 */
int client_call(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		Smh__Response **respp);

/* Marks the connection dead after a protocol error in a reply; returns -EPROTO. */
int client_proto_error(struct smh_client *client, const char *what);

/* A connected socket to @path, or a negative errno. */
int client_open_socket(const char *path);

/* The hello (resuming client->session if set). Call with the lock held. */
int client_hello(struct smh_client *client);

/* Whether @err says the daemon went away (the connection, not the request, failed). */
int client_transport_lost(int err);

/* Reads $SMH_RECONNECT_MS and keeps @path for reconnecting. Returns 0 or -ENOMEM. */
int client_reconnect_init(struct smh_client *client, const char *path);

/*
 * Connects again to client->path (retrying with a backoff for up to client->reconnect_ms),
 * resumes the session and clears `dead`. Call with the lock held.
 * Returns 0 or a negative errno (the connection stays dead).
 */
int client_reconnect(struct smh_client *client);

/* Stores @fd (owned) as region @index's fd: see client-reconnect.c. Under the registry lock. */
void client_slot_set_fd(struct smh_client *client, uint32_t index, int fd);

/* Unmaps and closes the retired regions. */
void client_retired_finish(struct smh_client *client);

/* Fetches the region table if not yet cached. Call with the lock held. */
int client_load_regions(struct smh_client *client);

/* The registry lock (see above). */
void client_registry_lock(void);
void client_registry_unlock(void);

/* The live client and region index whose slot holds @fd, or NULL. Under the registry lock. */
struct smh_client *client_find_fd(int fd, uint32_t *regionp);

#endif
