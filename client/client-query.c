/* SPDX-License-Identifier: MIT */
/*
 * Inspection calls (what smhctl shows): regions, statistics, clients, allocations, occupancy.
 *
 * Each converts a reply into the public structures and checks it on the way: counts and region
 * indexes against what the hello announced, labels that fit, per mille values that are per
 * mille. Lists come in pages (so that a reply fits one datagram); a page that does not move
 * forward, or a list that never ends, is a protocol error rather than a loop.
 *
 * The region table is also what buffers are checked against: it is fetched once and cached
 * (regions do not change while the daemon runs).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

/* Longest list a client accepts, in entries, whatever the daemon says. */
#define LIST_MAX (1u << 20)

/* Copies @src into @dst (@size bytes) or fails when it does not fit. */
static int copy_label(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n == 0 || n >= size)
		return -EPROTO;
	memcpy(dst, src, n + 1);
	return 0;
}

static int convert_region(const Smh__Region *in, uint32_t index, struct smh_region_info *out)
{
	memset(out, 0, sizeof(*out));
	if (in->index != index || in->attr >= SMH_REG_ATTR_NUM || in->managed > in->size ||
	    in->phys_addr + in->size < in->phys_addr)
		return -EPROTO;
	if (copy_label(out->label, sizeof(out->label), in->label) < 0)
		return -EPROTO;
	out->index = index;
	out->phys_addr = in->phys_addr;
	out->size = in->size;
	out->managed = in->managed;
	out->attr = (enum smh_reg_attr)in->attr;
	out->no_map = in->no_map;
	/* Free text: cut rather than refuse. */
	snprintf(out->backend, sizeof(out->backend), "%s", in->backend);
	snprintf(out->mapping, sizeof(out->mapping), "%s", in->mapping);
	return 0;
}

static int convert_regions(struct smh_client *client, const Smh__RegionsReply *reply,
			   struct smh_region_info **regionsp)
{
	struct smh_region_info *regions;

	if (reply->n_regions != client->n_regions)
		return client_proto_error(client, "a region count other than the hello's");
	regions = calloc(reply->n_regions ? reply->n_regions : 1, sizeof(*regions));
	if (!regions)
		return -ENOMEM;
	for (uint32_t i = 0; i < client->n_regions; i++) {
		if (convert_region(reply->regions[i], i, &regions[i]) < 0) {
			free(regions);
			return client_proto_error(client, "a malformed region");
		}
	}
	*regionsp = regions;
	return 0;
}

int client_load_regions(struct smh_client *client)
{
	Smh__RegionsRequest body = SMH__REGIONS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct smh_region_info *regions = NULL;
	Smh__Response *resp;
	int err;

	if (client->regions)
		return 0;
	req.body_case = SMH__REQUEST__BODY_REGIONS;
	req.regions = &body;
	err = client_call(client, &req, SMH__RESPONSE__BODY_REGIONS, &resp);
	if (err < 0)
		return err;
	err = convert_regions(client, resp->regions, &regions);
	wire_free_response(resp);
	if (err < 0)
		return err;
	client_registry_lock();
	client->regions = regions;
	client_registry_unlock();
	return 0;
}

int smh_get_regions(struct smh_client *client, struct smh_region_info **regionsp, size_t *np)
{
	struct smh_region_info *copy = NULL;
	int err;

	if (!regionsp || !np)
		return -EINVAL;
	err = client_begin(client);
	if (err < 0)
		return err;
	err = client_load_regions(client);
	if (err == 0 && client->n_regions) {
		copy = malloc(client->n_regions * sizeof(*copy));
		if (copy)
			memcpy(copy, client->regions, client->n_regions * sizeof(*copy));
		else
			err = -ENOMEM;
	}
	if (err == 0) {
		*regionsp = copy;
		*np = client->n_regions;
	}
	client_end(client);
	return err;
}

/* ---------------------------------------------------------------- statistics */

static int convert_stats(struct smh_client *client, const Smh__StatsReply *in,
			 struct smh_stats *out)
{
	if (in->n_regions != client->n_regions)
		return client_proto_error(client, "statistics for another region count");
	out->regions = calloc(in->n_regions ? in->n_regions : 1, sizeof(*out->regions));
	if (!out->regions)
		return -ENOMEM;
	for (size_t i = 0; i < in->n_regions; i++) {
		const Smh__RegionStats *s = in->regions[i];

		if (s->region >= client->n_regions || s->fragmentation > 1000) {
			smh_stats_finish(out);
			return client_proto_error(client, "malformed region statistics");
		}
		out->regions[i] = (struct smh_region_stats){
			.region = s->region,
			.total = s->total,
			.used = s->used,
			.free = s->free,
			.largest_free = s->largest_free,
			.n_allocs = s->n_allocs,
			.fragmentation = s->fragmentation,
		};
	}
	out->n_regions = in->n_regions;
	out->granule = in->granule;
	out->n_clients = in->n_clients;
	out->n_allocs = in->n_allocs;
	out->n_shared = in->n_shared;
	return 0;
}

int smh_get_stats(struct smh_client *client, struct smh_stats *stats)
{
	Smh__StatsRequest body = SMH__STATS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	int err;

	if (!stats)
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	err = client_begin(client);
	if (err < 0)
		return err;
	req.body_case = SMH__REQUEST__BODY_STATS;
	req.stats = &body;
	err = client_call(client, &req, SMH__RESPONSE__BODY_STATS, &resp);
	if (err == 0) {
		err = convert_stats(client, resp->stats, stats);
		wire_free_response(resp);
	}
	client_end(client);
	return err;
}

void smh_stats_finish(struct smh_stats *stats)
{
	if (!stats)
		return;
	free(stats->regions);
	memset(stats, 0, sizeof(*stats));
}

/* ---------------------------------------------------------------- paged lists */

/* A growing array of @size-byte entries. */
struct list {
	void *items;
	size_t n, cap, size;
};

/* Room for @more entries. */
static int list_reserve(struct list *l, size_t more)
{
	size_t cap = l->cap ? l->cap : 16;
	void *items;

	if (more > LIST_MAX - l->n)
		return -EPROTO;
	while (cap < l->n + more)
		cap *= 2;
	if (cap == l->cap)
		return 0;
	items = realloc(l->items, cap * l->size);
	if (!items)
		return -ENOMEM;
	l->items = items;
	l->cap = cap;
	return 0;
}

static int take_clients(struct smh_client *client, const Smh__ClientsReply *reply, struct list *l,
			uint64_t *afterp)
{
	struct smh_client_info *out;
	int err = list_reserve(l, reply->n_clients);

	if (err < 0)
		return err == -EPROTO ? client_proto_error(client, "an endless client list") : err;
	out = (struct smh_client_info *)l->items + l->n;
	for (size_t i = 0; i < reply->n_clients; i++) {
		const Smh__ClientInfo *c = reply->clients[i];

		if (c->id <= *afterp)
			return client_proto_error(client, "a client list out of order");
		*afterp = c->id;
		out[i] = (struct smh_client_info){
			.id = c->id,
			.pid = c->pid,
			.uid = c->uid,
			.gid = c->gid,
			.n_buffers = c->n_buffers,
			.bytes = c->bytes,
		};
		snprintf(out[i].comm, sizeof(out[i].comm), "%s", c->comm);
		l->n++;
	}
	return 0;
}

static int list_clients_locked(struct smh_client *client, struct list *l)
{
	Smh__ClientsRequest body = SMH__CLIENTS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	bool more;
	int err;

	req.body_case = SMH__REQUEST__BODY_CLIENTS;
	req.clients = &body;
	do {
		err = client_call(client, &req, SMH__RESPONSE__BODY_CLIENTS, &resp);
		if (err < 0)
			return err;
		more = resp->clients->more;
		if (more && resp->clients->n_clients == 0)
			err = client_proto_error(client, "an empty page with more to come");
		else
			err = take_clients(client, resp->clients, l, &body.after);
		wire_free_response(resp);
	} while (err == 0 && more);
	return err;
}

int smh_list_clients(struct smh_client *client, struct smh_client_info **clientsp, size_t *np)
{
	struct list l = { .size = sizeof(struct smh_client_info) };
	int err;

	if (!clientsp || !np)
		return -EINVAL;
	err = client_begin(client);
	if (err < 0)
		return err;
	err = list_clients_locked(client, &l);
	client_end(client);
	if (err < 0) {
		free(l.items);
		return err;
	}
	*clientsp = l.items;
	*np = l.n;
	return 0;
}

static int convert_alloc(struct smh_client *client, const Smh__AllocInfo *in,
			 struct smh_alloc_info *out)
{
	if (in->region >= client->n_regions || in->n_holders > LIST_MAX)
		return client_proto_error(client, "a malformed allocation");
	*out = (struct smh_alloc_info){
		.handle = in->handle,
		.region = in->region,
		.offset = in->offset,
		.size = in->size,
		.phys_addr = in->phys_addr,
		.owner = in->owner,
		.shared = in->shared,
	};
	if (in->n_holders) {
		out->holders = malloc(in->n_holders * sizeof(*out->holders));
		if (!out->holders)
			return -ENOMEM;
		memcpy(out->holders, in->holders, in->n_holders * sizeof(*out->holders));
		out->n_holders = in->n_holders;
	}
	return 0;
}

static int take_allocs(struct smh_client *client, const Smh__AllocsReply *reply, struct list *l,
		       uint64_t *afterp)
{
	int err = list_reserve(l, reply->n_allocs);

	if (err < 0)
		return err == -EPROTO ? client_proto_error(client, "an endless allocation list")
				      : err;
	for (size_t i = 0; i < reply->n_allocs; i++) {
		const Smh__AllocInfo *a = reply->allocs[i];

		if (a->handle <= *afterp)
			return client_proto_error(client, "an allocation list out of order");
		*afterp = a->handle;
		err = convert_alloc(client, a, (struct smh_alloc_info *)l->items + l->n);
		if (err < 0)
			return err;
		l->n++;
	}
	return 0;
}

static int list_allocs_locked(struct smh_client *client, struct list *l)
{
	Smh__AllocsRequest body = SMH__ALLOCS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	bool more;
	int err;

	req.body_case = SMH__REQUEST__BODY_ALLOCS;
	req.allocs = &body;
	do {
		err = client_call(client, &req, SMH__RESPONSE__BODY_ALLOCS, &resp);
		if (err < 0)
			return err;
		more = resp->allocs->more;
		if (more && resp->allocs->n_allocs == 0)
			err = client_proto_error(client, "an empty page with more to come");
		else
			err = take_allocs(client, resp->allocs, l, &body.after);
		wire_free_response(resp);
	} while (err == 0 && more);
	return err;
}

int smh_list_allocs(struct smh_client *client, struct smh_alloc_info **allocsp, size_t *np)
{
	struct list l = { .size = sizeof(struct smh_alloc_info) };
	int err;

	if (!allocsp || !np)
		return -EINVAL;
	err = client_begin(client);
	if (err < 0)
		return err;
	err = list_allocs_locked(client, &l);
	client_end(client);
	if (err < 0) {
		smh_allocs_free(l.items, l.n);
		return err;
	}
	*allocsp = l.items;
	*np = l.n;
	return 0;
}

void smh_allocs_free(struct smh_alloc_info *allocs, size_t n)
{
	if (!allocs)
		return;
	for (size_t i = 0; i < n; i++)
		free(allocs[i].holders);
	free(allocs);
}

/* ---------------------------------------------------------------- occupancy */

static int convert_occupancy(struct smh_client *client, const Smh__OccupancyReply *in,
			     uint32_t n_cells, uint16_t *permille, uint64_t *cell_bytesp)
{
	if (in->n_used != n_cells)
		return client_proto_error(client, "an occupancy with another cell count");
	for (uint32_t i = 0; i < n_cells; i++) {
		if (in->used[i] > 1000)
			return client_proto_error(client, "an occupancy above 1000 per mille");
	}
	for (uint32_t i = 0; i < n_cells; i++)
		permille[i] = (uint16_t)in->used[i];
	*cell_bytesp = in->cell_bytes;
	return 0;
}

int smh_get_occupancy(struct smh_client *client, uint32_t region, uint32_t n_cells,
		      uint16_t *permille, uint64_t *cell_bytesp)
{
	Smh__OccupancyRequest body = SMH__OCCUPANCY_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	int err;

	if (!permille || !cell_bytesp || n_cells == 0 || n_cells > 4096)
		return -EINVAL;
	err = client_begin(client);
	if (err < 0)
		return err;
	if (region >= client->n_regions) {
		client_end(client);
		return -EINVAL;
	}
	body.region = region;
	body.cells = n_cells;
	req.body_case = SMH__REQUEST__BODY_OCCUPANCY;
	req.occupancy = &body;
	err = client_call(client, &req, SMH__RESPONSE__BODY_OCCUPANCY, &resp);
	if (err == 0) {
		err = convert_occupancy(client, resp->occupancy, n_cells, permille, cell_bytesp);
		wire_free_response(resp);
	}
	client_end(client);
	return err;
}
