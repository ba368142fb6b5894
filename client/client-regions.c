/* SPDX-License-Identifier: MIT */
/*
 * The region slots of each connection, and the process-wide registry of live clients.
 *
 * A Response's fds are region fds: the daemon sends each at most once per connection. They are
 * kept in `slots`, indexed by region, until disconnect. smh_map() gets only a buffer, and finds
 * its client and region by looking for the buffer's fd in the slots of every live client: so
 * the slots live under the process-wide registry lock, with the list of clients.
 *
 * After the daemon restarted, it sends each region's fd again. When it is the same file (the
 * memfd the keeper kept, or the memory device), the new fd is closed and the old one kept. When
 * it is not (the region's memory did not survive), the old fd and its mapping are retired, kept
 * open and mapped until disconnect so that old pointers never fault, and new buffers use the
 * new fd.
 *
 * The fork generation lives here too: it is bumped in the child at every fork(), so that a
 * client made by an ancestor is recognised without getpid() on every call (glibc does not cache
 * it) and without being fooled by pid reuse.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client-internal.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct smh_client *registry;

static _Atomic unsigned fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------------------- slots */

int client_slots_init(struct smh_client *client)
{
	client->slots = calloc(client->n_regions ? client->n_regions : 1, sizeof(*client->slots));
	if (!client->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < client->n_regions; i++)
		client->slots[i].fd = -1;
	return 0;
}

static void retired_finish(struct smh_client *client)
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

void client_slots_finish(struct smh_client *client)
{
	for (uint32_t i = 0; client->slots && i < client->n_regions; i++) {
		struct client_slot *slot = &client->slots[i];

		if (slot->map)
			munmap(slot->map, slot->map_len);
		if (slot->fd >= 0)
			close(slot->fd);
	}
	retired_finish(client);
	free(client->slots);
	client->slots = NULL;
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

/* ---------------------------------------------------------------- the registry */

void client_registry_lock(void)
{
	pthread_mutex_lock(&registry_lock);
}

void client_registry_unlock(void)
{
	pthread_mutex_unlock(&registry_lock);
}

void client_registry_add(struct smh_client *client)
{
	pthread_mutex_lock(&registry_lock);
	client->next = registry;
	registry = client;
	pthread_mutex_unlock(&registry_lock);
}

void client_registry_remove(struct smh_client *client)
{
	pthread_mutex_lock(&registry_lock);
	for (struct smh_client **p = &registry; *p; p = &(*p)->next) {
		if (*p == client) {
			*p = client->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

struct smh_client *client_find_fd(int fd, uint32_t *regionp)
{
	if (fd < 0)
		return NULL;
	for (struct smh_client *c = registry; c; c = c->next) {
		for (uint32_t i = 0; i < c->n_regions; i++) {
			if (c->slots[i].fd == fd) {
				*regionp = i;
				return c;
			}
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- fork() */

static void on_fork_child(void)
{
	fork_generation++;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

unsigned client_fork_generation(void)
{
	pthread_once(&atfork_once, register_atfork);
	return fork_generation;
}
