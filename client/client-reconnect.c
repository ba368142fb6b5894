/* SPDX-License-Identifier: MIT */
/*
 * Reconnecting after smhd restarted (docs/restart.md).
 *
 * When a round trip finds the connection gone (EPIPE, ECONNRESET, end of file), the library
 * connects again to the same socket path, retrying with a growing pause for up to
 * $SMH_RECONNECT_MS milliseconds (default 5000; 0 turns reconnecting off), says hello with
 * the session secret the daemon gave at the first hello, and so takes back the buffers the
 * old daemon recorded. The interrupted request is then sent again, once: at most once is
 * not promised for it (an alloc the old daemon completed but never answered leaves an extra
 * buffer, held by the session, freed at disconnect).
 *
 * Region fds and mappings stay: buffers keep their fd, offset and address. A restarted
 * daemon sends each region's fd again; when it is the same file (the memfd the keeper kept,
 * or the memory device), the new fd is closed and the old one kept. When it is not (the
 * region's memory did not survive), the old fd and its mapping are retired, kept open and
 * mapped until disconnect so that old pointers never fault, and new buffers use the new fd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/client-internal.h"

#define RECONNECT_ENV        "SMH_RECONNECT_MS"
#define RECONNECT_DEFAULT_MS 5000
#define PAUSE_FIRST_MS       10
#define PAUSE_MAX_MS         250

int client_transport_lost(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN;
}

int client_reconnect_init(struct smh_client *client, const char *path)
{
	const char *env = getenv(RECONNECT_ENV);
	char *end;
	long ms = RECONNECT_DEFAULT_MS;

	if (env && *env) {
		ms = strtol(env, &end, 10);
		if (*end || ms < 0)
			ms = RECONNECT_DEFAULT_MS;
	}
	client->reconnect_ms = ms > 600000 ? 600000 : (int)ms;
	client->path = strdup(path);
	return client->path ? 0 : -ENOMEM;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* One attempt: connect and resume. Returns 0, or a negative errno. */
static int attempt(struct smh_client *client)
{
	int sock = client_open_socket(client->path), err;

	if (sock < 0)
		return sock;
	close(client->sock);
	client->sock = sock;
	client->dead = 0;
	client->reconnecting = 1;
	err = client_hello(client);
	client->reconnecting = 0;
	if (err < 0 && !client->dead)
		client->dead = err;
	return err;
}

int client_reconnect(struct smh_client *client)
{
	int64_t deadline = now_ms() + client->reconnect_ms;
	int pause = PAUSE_FIRST_MS, err = client->dead ? client->dead : -ECONNRESET;
	int lost = err;

	if (client->reconnecting || client->reconnect_ms == 0 || !client->path)
		return err;
	for (;;) {
		err = attempt(client);
		if (err == 0)
			break;
		/* Only a daemon not (yet) there is worth waiting for. */
		if (err != -ENOENT && err != -ECONNREFUSED && !client_transport_lost(err))
			break;
		if (now_ms() + pause > deadline)
			break;
		pause_ms(pause);
		pause = pause * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS : pause * 2;
	}
	if (err < 0) {
		/* -ESTALE: reconnected, but our buffers are gone; it sticks like a lost socket. */
		client->dead = err == -ESTALE ? err : lost;
		client_log(SMH_LOG_ERROR, "smh: could not reconnect to %s: %s", client->path,
			   smh_strerror(err));
		return err;
	}
	client_log(SMH_LOG_INFO, "smh: reconnected to %s; %llu buffer(s) reclaimed", client->path,
		   (unsigned long long)client->n_reclaimed);
	return 0;
}

static int same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

void client_slot_set_fd(struct smh_client *client, uint32_t index, int fd)
{
	struct client_slot *slot = &client->slots[index];
	struct client_retired *r;

	if (slot->fd < 0) {
		slot->fd = fd;
		return;
	}
	if (same_file(slot->fd, fd)) {
		close(fd);
		return;
	}
	r = realloc(client->retired, (client->n_retired + 1) * sizeof(*r));
	if (!r) {
		close(fd); /* keep the old one: better than losing the mapping */
		return;
	}
	client->retired = r;
	r[client->n_retired++] = (struct client_retired){
		.fd = slot->fd,
		.map = slot->map,
		.map_len = slot->map_len,
	};
	client_log(SMH_LOG_WARNING,
		   "smh: region %u is new memory after the daemon restarted: buffers of the old "
		   "one are lost",
		   index);
	slot->fd = fd;
	slot->map = NULL;
	slot->map_len = 0;
	slot->map_base = 0;
}

void client_retired_finish(struct smh_client *client)
{
	for (size_t i = 0; i < client->n_retired; i++) {
		if (client->retired[i].map)
			munmap(client->retired[i].map, client->retired[i].map_len);
		close(client->retired[i].fd);
	}
	free(client->retired);
	client->retired = NULL;
	client->n_retired = 0;
}
