/* SPDX-License-Identifier: MIT */
/*
 * libsmh-client's connection: connect and disconnect, and the calls.
 *
 * A call is a loop, not a recursion: client_exchange() does one round trip; when it leaves the
 * client CLIENT_LOST (the daemon hung up), client_reconnect() connects again and resumes the
 * session, and the request goes again, once (CALL_SENDS). The state says everything a later
 * call needs: CLIENT_LOST reconnects in client_begin(), CLIENT_DEAD returns its error.
 *
 * The public calls build their request and hand the reply's reading to a client_read_fn, so
 * that sending, checking, reading and freeing are written once, here and in client-exchange.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "client/client-internal.h"

/* Times a request is sent at most: once, and once more after a reconnect. */
#define CALL_SENDS 2

int client_begin(struct smh_client *client)
{
	if (!client)
		return -EINVAL;
	/* Every call's failure is its own: not a refusal of an earlier call (or the parent's). */
	client_clear_last_error(client);
	if (client->generation != client_fork_generation())
		return -ECHILD;
	pthread_mutex_lock(&client->lock);
	if (client->subscribed) { /* it only receives events now */
		pthread_mutex_unlock(&client->lock);
		return -EBUSY;
	}
	if (client->state == CLIENT_LOST)
		client_reconnect(client, 0);
	if (client->state != CLIENT_CONNECTED) {
		int err = client->error;

		pthread_mutex_unlock(&client->lock);
		return err;
	}
	return 0;
}

void client_end(struct smh_client *client)
{
	pthread_mutex_unlock(&client->lock);
}

/*
 * client_request(), telling whether @req went again after a reconnect (*resentp) and how many
 * holds it may have released before the daemon died (@n_releasing).
 */
static int call(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		client_read_fn *reader, void *ctx, uint64_t n_releasing, bool *resentp)
{
	int err;

	*resentp = false;
	for (int sends = 1;; sends++) {
		err = client_exchange(client, req, expect, reader, ctx);
		if (client->state != CLIENT_LOST || sends == CALL_SENDS)
			return err;
		err = client_reconnect(client, n_releasing);
		if (err < 0)
			return err;
		*resentp = true;
	}
}

int client_request(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		   client_read_fn *reader, void *ctx)
{
	bool resent;

	return call(client, req, expect, reader, ctx, 0, &resent);
}

int client_request_release(struct smh_client *client, Smh__Request *req)
{
	bool resent;
	int err = call(client, req, SMH__RESPONSE__BODY__NOT_SET, NULL, NULL, 1, &resent);

	/* Re-sent, and the resumed session does not hold it: the old daemon had done it. */
	return err == -EINVAL && resent ? 0 : err;
}

int client_round_trip(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		      client_read_fn *reader, void *ctx)
{
	int err = client_begin(client);

	if (err < 0)
		return err;
	err = client_request(client, req, expect, reader, ctx);
	client_end(client);
	return err;
}

/* ---------------------------------------------------------------- connect and disconnect */

static const char *socket_path(const char *path)
{
	if (path)
		return path;
	path = getenv(SMH_SOCKET_ENV);
	return path && *path ? path : SMH_DEFAULT_SOCKET;
}

int smh_connect(const char *path, struct smh_client **clientp)
{
	struct smh_client *client;
	int err;

	if (!clientp)
		return -EINVAL;
	*clientp = NULL; /* so that smh_disconnect(*clientp) is safe on every path */
	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	err = pthread_mutex_init(&client->lock, NULL);
	if (err)
		goto err_free;
	client->generation = client_fork_generation();
	err = client_reconnect_init(client, socket_path(path));
	if (err < 0)
		goto err_path;
	client->sock = client_open_socket(client->path, client->timeout_ms);
	if (client->sock < 0) {
		err = client->sock;
		goto err_path;
	}
	err = client_check_server(client, client->sock);
	if (err == 0)
		err = client_hello(client);
	if (err == 0)
		err = client_slots_init(client);
	if (err < 0)
		goto err_sock;
	client_registry_add(client);
	*clientp = client;
	return 0;

err_sock:
	close(client->sock);
err_path:
	free(client->path);
	pthread_mutex_destroy(&client->lock);
err_free:
	client_clear_last_error(client);
	free(client);
	return err > 0 ? -err : err;
}

void smh_disconnect(struct smh_client *client)
{
	if (!client)
		return;
	client_registry_remove(client);
	client_slots_finish(client);
	free(client->regions);
	free(client->path);
	close(client->sock);
	pthread_mutex_destroy(&client->lock);
	client_clear_last_error(client);
	free(client);
}

int smh_set_timeout(struct smh_client *client, int timeout_ms)
{
	int err;

	if (!client || timeout_ms < 0)
		return -EINVAL;
	if (client->generation != client_fork_generation())
		return -ECHILD;
	pthread_mutex_lock(&client->lock);
	client->timeout_ms = timeout_ms;
	err = client_socket_timeout(client->sock, timeout_ms);
	pthread_mutex_unlock(&client->lock);
	return err;
}

uint64_t smh_client_id(const struct smh_client *client)
{
	return client ? client->client_id : 0;
}

uint64_t smh_granule(const struct smh_client *client)
{
	return client ? client->granule : 0;
}
