/* SPDX-License-Identifier: MIT */
/*
 * The hello, and reconnecting after smhd restarted (docs/restart.md).
 *
 * When a round trip finds the connection gone (EPIPE, ECONNRESET, end of file), client.c's call
 * loop asks client_reconnect() to connect again to the same socket path, retrying with a
 * growing pause for up to $SMH_RECONNECT_MS milliseconds (default 5000; 0 turns reconnecting
 * off). The new connection's hello carries the session secret the daemon gave at the first
 * hello, and so takes back the buffers the old daemon recorded; the call loop then sends the
 * interrupted request again, once. At most once is not promised for it (an alloc the old
 * daemon completed but never answered leaves an extra buffer, held by the session, freed at
 * disconnect). Region fds and mappings stay (client-regions.c): buffers keep their fd, offset
 * and address.
 *
 * Each new connection is checked before its hello (client_check_server()): the socket may sit
 * in a directory others can write to, and after smhd stopped another user may listen at the
 * same path. The server must run as root or as the uid the first connection found (or
 * $SMH_SERVER_UID): an impostor is closed at once, before it could receive the session secret,
 * a re-sent request (an import's token) or give us an fd to write our data into.
 *
 * The hello goes through client_exchange() directly: a reconnect's own hello cannot start
 * another reconnect, and a hang-up during it is one failed attempt.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client-internal.h"
#include "common/clock.h"

#define RECONNECT_ENV        "SMH_RECONNECT_MS"
#define SERVER_UID_ENV       "SMH_SERVER_UID"
#define TIMEOUT_ENV          "SMH_TIMEOUT_MS"
#define TIMEOUT_DEFAULT_MS   5000
#define RECONNECT_DEFAULT_MS 5000
#define PAUSE_FIRST_MS       10
#define PAUSE_MAX_MS         250

/* Bytes of a Hello's client_name (smh.proto). */
#define CLIENT_NAME_MAX 64

/* $SMH_SERVER_UID, a uid in decimal, into client->server_uid (-1 when unset). */
static int server_uid_init(struct smh_client *client)
{
	const char *env = getenv(SERVER_UID_ENV);
	unsigned long long uid;
	char *end;

	client->server_uid = -1;
	if (!env || !*env)
		return 0;
	errno = 0;
	uid = strtoull(env, &end, 10);
	if (errno || *end || env[0] == '-' || uid >= UINT32_MAX) {
		client_log(SMH_LOG_ERROR, "smh: %s=%s is not a uid", SERVER_UID_ENV, env);
		return -EINVAL;
	}
	client->server_uid = (int64_t)uid;
	return 0;
}

/* $SMH_TIMEOUT_MS (milliseconds, 0: none) into client->timeout_ms; malformed: the default. */
static void timeout_init(struct smh_client *client)
{
	const char *env = getenv(TIMEOUT_ENV);
	long ms = TIMEOUT_DEFAULT_MS;
	char *end;

	if (env && *env) {
		ms = strtol(env, &end, 10);
		if (*end || ms < 0 || ms > INT32_MAX)
			ms = TIMEOUT_DEFAULT_MS;
	}
	client->timeout_ms = (int)ms;
}

int client_reconnect_init(struct smh_client *client, const char *path)
{
	const char *env = getenv(RECONNECT_ENV);
	char *end;
	long ms = RECONNECT_DEFAULT_MS;
	int err = server_uid_init(client);

	if (err < 0)
		return err;
	timeout_init(client);

	if (env && *env) {
		ms = strtol(env, &end, 10);
		if (*end || ms < 0)
			ms = RECONNECT_DEFAULT_MS;
	}
	client->reconnect_ms = ms > 600000 ? 600000 : (int)ms;
	client->path = strdup(path);
	return client->path ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- the hello */

/* Our program name, cut to CLIENT_NAME_MAX bytes on a UTF-8 character boundary. */
static void client_name(char *name)
{
	size_t n;

	snprintf(name, CLIENT_NAME_MAX + 1, "%s", program_invocation_short_name);
	n = strlen(name);
	if (n == CLIENT_NAME_MAX) {
		while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
		name[n] = '\0';
	}
}

/* A resume: the daemon serves what we knew, and gave back every hold we still count on. */
static int check_resume(struct smh_client *client, const Smh__HelloReply *hello,
			uint64_t n_releasing)
{
	/* The slots are sized for the regions we knew. */
	if (hello->n_regions != client->n_regions) {
		client_log(SMH_LOG_ERROR, "smh: the restarted daemon serves %u regions, not %u",
			   hello->n_regions, client->n_regions);
		return -ESTALE; /* not worth retrying: each try would make it release our holds */
	}
	/*
	 * A reconnection that did not get all our holds back (the state was lost, or the grace
	 * period released them): the memory we map may be someone else's now. Going on would
	 * let us write into it; the connection is over instead.
	 */
	if (client->n_held > 0 && (hello->session != client->session ||
				   hello->n_reclaimed + n_releasing < client->n_held)) {
		client_log(SMH_LOG_ERROR,
			   "smh: the restarted daemon gave back %llu of this connection's %llu "
			   "buffers; the others are lost: connect again",
			   (unsigned long long)(hello->session == client->session
							? hello->n_reclaimed
							: 0),
			   (unsigned long long)client->n_held);
		return -ESTALE;
	}
	return 0;
}

struct hello_ctx {
	uint64_t n_releasing;
};

static int read_hello(struct smh_client *client, const Smh__Response *resp, void *ctx)
{
	const Smh__HelloReply *hello = resp->hello;
	const struct hello_ctx *h = ctx;
	int err;

	if (hello->version != SMH_PROTOCOL_VERSION) {
		client_log(SMH_LOG_ERROR, "smh: the daemon speaks protocol %u, we speak %d",
			   hello->version, SMH_PROTOCOL_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (hello->granule == 0 || (hello->granule & (hello->granule - 1)) ||
	    hello->n_regions > CLIENT_REGIONS_MAX)
		return client_proto_error(client, "a hello with a bad granule or region count");
	if (client->slots) {
		err = check_resume(client, hello, h->n_releasing);
		if (err < 0)
			return err;
	}
	client->granule = hello->granule;
	client->client_id = hello->client_id;
	client->n_regions = hello->n_regions;
	client->session = hello->session;
	client->n_reclaimed = hello->n_reclaimed;
	return 0;
}

/* The hello (resuming client->session if set). */
static int hello(struct smh_client *client, uint64_t n_releasing)
{
	char name[CLIENT_NAME_MAX + 1];
	struct hello_ctx ctx = { .n_releasing = n_releasing };
	Smh__Hello body = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	int err;

	client_name(name);
	body.version = SMH_PROTOCOL_VERSION;
	body.client_name = name;
	body.resume_session = client->session;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &body;
	err = client_exchange(client, &req, SMH__RESPONSE__BODY_HELLO, read_hello, &ctx);
	if (err < 0 && *smh_last_error(client))
		client_log(SMH_LOG_ERROR, "smh: hello refused: %s", smh_last_error(client));
	return err;
}

int client_hello(struct smh_client *client)
{
	return hello(client, 0);
}

/* ---------------------------------------------------------------- reconnecting */

static void pause_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* One attempt: connect and resume. Returns 0, or a negative errno. */
static int attempt(struct smh_client *client, uint64_t n_releasing)
{
	int sock = client_open_socket(client->path, client->timeout_ms);
	int err;

	if (sock < 0)
		return sock;
	/* Another user listening where smhd was gets nothing: no hello, no session secret. */
	err = client_check_server(client, sock);
	if (err < 0) {
		close(sock);
		return err;
	}
	close(client->sock);
	client->sock = sock;
	return hello(client, n_releasing);
}

/* Only a daemon not (yet) there is worth waiting for. */
static bool worth_retrying(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || client_transport_lost(err);
}

int client_reconnect(struct smh_client *client, uint64_t n_releasing)
{
	int64_t deadline = clock_ms() + client->reconnect_ms;
	int pause = PAUSE_FIRST_MS, lost = client->error, err;

	if (client->reconnect_ms == 0 || !client->path)
		return lost;
	while ((err = attempt(client, n_releasing)) < 0 && worth_retrying(err) &&
	       clock_ms() + pause <= deadline) {
		pause_ms(pause);
		pause = pause * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS : pause * 2;
	}
	if (err < 0) {
		if (client->state == CLIENT_DEAD) {
			/*
			 * The hello went out and then timed out, or its reply was garbage: the daemon
			 * may have resumed our session on this connection. Closing it (as the next
			 * attempt would) would make it release buffers we still map: dead, like a
			 * time-out of any other call.
			 */
		} else if (err == -ESTALE) {
			/* Reconnected, but our buffers are gone (or the regions changed): it sticks. */
			client_set_state(client, CLIENT_DEAD, -ESTALE);
		} else {
			/* Not there yet (say so as the call's own error), or refused: try next time. */
			client_set_state(client, CLIENT_LOST, worth_retrying(err) ? lost : err);
		}
		client_log(SMH_LOG_ERROR, "smh: could not reconnect to %s: %s", client->path,
			   smh_strerror(err));
		return client->error;
	}
	client_set_state(client, CLIENT_CONNECTED, 0);
	client_log(SMH_LOG_INFO, "smh: reconnected to %s; %llu buffer(s) reclaimed", client->path,
		   (unsigned long long)client->n_reclaimed);
	return 0;
}
