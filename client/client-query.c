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
#include "common/bufname.h"

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
	/* A type this library does not know is one it cannot act on: unknown. */
	out->mapping_kind = in->mapping_kind <= SMH_MAPPING_DEVICE
				    ? (enum smh_mapping)in->mapping_kind
				    : SMH_MAPPING_UNKNOWN;
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

static int read_regions(struct smh_client *client, const Smh__Response *resp, void *regionsp)
{
	return convert_regions(client, resp->regions, regionsp);
}

int client_load_regions(struct smh_client *client)
{
	Smh__RegionsRequest body = SMH__REGIONS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct smh_region_info *regions = NULL;
	int err;

	if (client->regions)
		return 0;
	req.body_case = SMH__REQUEST__BODY_REGIONS;
	req.regions = &body;
	err = client_request(client, &req, SMH__RESPONSE__BODY_REGIONS, read_regions, &regions);
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

static int read_stats(struct smh_client *client, const Smh__Response *resp, void *stats)
{
	return convert_stats(client, resp->stats, stats);
}

/* A stats request, its reply read by @reader into @data: what every stats getter asks. */
static int stats_round_trip(struct smh_client *client, client_read_fn *reader, void *data)
{
	Smh__StatsRequest body = SMH__STATS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	req.body_case = SMH__REQUEST__BODY_STATS;
	req.stats = &body;
	return client_round_trip(client, &req, SMH__RESPONSE__BODY_STATS, reader, data);
}

int smh_get_stats(struct smh_client *client, struct smh_stats *stats)
{
	if (!stats)
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	return stats_round_trip(client, read_stats, stats);
}

struct scrubbing {
	uint64_t bytes, blocks;
};

static int read_scrubbing(struct smh_client *client, const Smh__Response *resp, void *data)
{
	struct scrubbing *s = data;

	s->bytes = resp->stats->scrubbing_bytes;
	s->blocks = resp->stats->scrubbing_blocks;
	return 0;
}

int smh_get_scrubbing(struct smh_client *client, uint64_t *bytesp, uint64_t *blocksp)
{
	struct scrubbing s = { 0 };
	int ret;

	if (!bytesp || !blocksp)
		return -EINVAL;
	ret = stats_round_trip(client, read_scrubbing, &s);
	if (ret == 0) {
		*bytesp = s.bytes;
		*blocksp = s.blocks;
	}
	return ret;
}

static int read_waits(struct smh_client *client, const Smh__Response *resp, void *data)
{
	static const uint32_t bounds[SMH_WAIT_BOUNDS] = { 1, 5, 20, 100, 1000 };
	const Smh__StatsReply *st = resp->stats;
	struct smh_waits *w = data;

	(void)client;
	if (st->n_waits == 0) /* a daemon from before the counts */
		return -EOPNOTSUPP;
	w->requests = st->requests;
	w->longest_us = st->wait_longest_us;
	for (size_t i = 0; i < st->n_waits; i++) { /* a bound not known here is left out */
		for (size_t k = 0; k < SMH_WAIT_BOUNDS; k++) {
			if (st->waits[i] && st->waits[i]->over_ms == bounds[k])
				w->over[k] = st->waits[i]->count;
		}
	}
	return 0;
}

int smh_get_waits(struct smh_client *client, struct smh_waits *waits)
{
	int ret;

	if (!waits)
		return -EINVAL;
	memset(waits, 0, sizeof(*waits));
	ret = stats_round_trip(client, read_waits, waits);
	if (ret < 0)
		memset(waits, 0, sizeof(*waits));
	return ret;
}

/* More kinds than this is not a daemon's answer. */
#define REFUSAL_KINDS_MAX 64

struct refusals {
	struct smh_refusal_count *counts;
	size_t n;
};

/* A kind is a label value: lower-case letters and '_', not empty, NUL-terminated in its field. */
static bool kind_ok(const char *kind)
{
	size_t len = kind ? strlen(kind) : 0;

	if (len == 0 || len >= sizeof(((struct smh_refusal_count *)0)->kind))
		return false;
	return strspn(kind, "abcdefghijklmnopqrstuvwxyz_") == len;
}

static int read_refusals(struct smh_client *client, const Smh__Response *resp, void *data)
{
	const Smh__StatsReply *s = resp->stats;
	struct refusals *out = data;

	if (s->n_refusals > REFUSAL_KINDS_MAX)
		return client_proto_error(client, "too many refusal kinds");
	for (size_t i = 0; i < s->n_refusals; i++)
		if (!kind_ok(s->refusals[i]->kind))
			return client_proto_error(client, "a malformed refusal kind");
	out->counts = calloc(s->n_refusals ? s->n_refusals : 1, sizeof(*out->counts));
	if (!out->counts)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_refusals; i++) {
		snprintf(out->counts[i].kind, sizeof(out->counts[i].kind), "%s",
			 s->refusals[i]->kind);
		out->counts[i].count = s->refusals[i]->count;
	}
	out->n = s->n_refusals;
	return 0;
}

int smh_get_refusals(struct smh_client *client, struct smh_refusal_count **countsp, size_t *np)
{
	struct refusals r = { 0 };
	int ret;

	if (!countsp || !np)
		return -EINVAL;
	ret = stats_round_trip(client, read_refusals, &r);
	if (ret < 0) {
		free(r.counts);
		return ret;
	}
	*countsp = r.counts;
	*np = r.n;
	return 0;
}

void smh_stats_finish(struct smh_stats *stats)
{
	if (!stats)
		return;
	free(stats->regions);
	memset(stats, 0, sizeof(*stats));
}

/* ---------------------------------------------------------------- paged lists */

/* A list read page by page: a growing array of @size-byte entries. */
struct pager {
	void *items;
	size_t n, cap, size;
	uint64_t *afterp; /* the request's `after`: the last id taken, where the next page starts */
	bool more;        /* the last page said more were coming */
};

/* Room for @more entries. */
static int reserve(struct pager *pg, size_t more)
{
	size_t cap = pg->cap ? pg->cap : 16;
	void *items;

	if (more > LIST_MAX - pg->n)
		return -EPROTO;
	while (cap < pg->n + more)
		cap *= 2;
	if (cap == pg->cap)
		return 0;
	items = realloc(pg->items, cap * pg->size);
	if (!items)
		return -ENOMEM;
	pg->items = items;
	pg->cap = cap;
	return 0;
}

/* Starts taking a page of @n entries that says @more. */
static int take_page(struct smh_client *client, struct pager *pg, size_t n, bool more)
{
	int err;

	if (more && n == 0)
		return client_proto_error(client, "an empty page with more to come");
	err = reserve(pg, n);
	if (err < 0)
		return err == -EPROTO ? client_proto_error(client, "an endless list") : err;
	pg->more = more;
	return 0;
}

/* Takes entry @id, which must come after the last one. */
static int take_id(struct smh_client *client, struct pager *pg, uint64_t id)
{
	if (id <= *pg->afterp)
		return client_proto_error(client, "a list out of order");
	*pg->afterp = id;
	return 0;
}

/* Reads every page of @req into @pg, each through @reader. */
static int list(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		client_read_fn *reader, struct pager *pg)
{
	int err = client_begin(client);

	if (err < 0)
		return err;
	do {
		pg->more = false;
		err = client_request(client, req, expect, reader, pg);
	} while (err == 0 && pg->more);
	client_end(client);
	return err;
}

static int read_clients(struct smh_client *client, const Smh__Response *resp, void *ctx)
{
	const Smh__ClientsReply *reply = resp->clients;
	struct pager *pg = ctx;
	struct smh_client_info *out;
	int err = take_page(client, pg, reply->n_clients, reply->more);

	for (size_t i = 0; err == 0 && i < reply->n_clients; i++) {
		const Smh__ClientInfo *c = reply->clients[i];

		err = take_id(client, pg, c->id);
		if (err < 0)
			break;
		out = (struct smh_client_info *)pg->items + pg->n++;
		*out = (struct smh_client_info){
			.id = c->id,
			.pid = c->pid,
			.uid = c->uid,
			.gid = c->gid,
			.n_buffers = c->n_buffers,
			.bytes = c->bytes,
		};
		snprintf(out->comm, sizeof(out->comm), "%s", c->comm);
	}
	return err;
}

int smh_list_clients(struct smh_client *client, struct smh_client_info **clientsp, size_t *np)
{
	Smh__ClientsRequest body = SMH__CLIENTS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct pager pg = { .size = sizeof(struct smh_client_info), .afterp = &body.after };
	int err;

	if (!clientsp || !np)
		return -EINVAL;
	req.body_case = SMH__REQUEST__BODY_CLIENTS;
	req.clients = &body;
	err = list(client, &req, SMH__RESPONSE__BODY_CLIENTS, read_clients, &pg);
	if (err < 0) {
		free(pg.items);
		return err;
	}
	*clientsp = pg.items;
	*np = pg.n;
	return 0;
}

static int convert_alloc(struct smh_client *client, const Smh__AllocInfo *in,
			 struct smh_alloc_info *out)
{
	const char *name = in->name ? in->name : "";

	if (in->region >= client->n_regions || in->n_holders > LIST_MAX ||
	    !bufname_valid(name, strlen(name), NULL, 0))
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
	memcpy(out->name, name, strlen(name) + 1);
	if (in->n_holders) {
		out->holders = malloc(in->n_holders * sizeof(*out->holders));
		if (!out->holders)
			return -ENOMEM;
		memcpy(out->holders, in->holders, in->n_holders * sizeof(*out->holders));
		out->n_holders = in->n_holders;
	}
	return 0;
}

static int read_allocs(struct smh_client *client, const Smh__Response *resp, void *ctx)
{
	const Smh__AllocsReply *reply = resp->allocs;
	struct pager *pg = ctx;
	int err = take_page(client, pg, reply->n_allocs, reply->more);

	for (size_t i = 0; err == 0 && i < reply->n_allocs; i++) {
		err = take_id(client, pg, reply->allocs[i]->handle);
		if (err == 0)
			err = convert_alloc(client, reply->allocs[i],
					    (struct smh_alloc_info *)pg->items + pg->n);
		if (err == 0)
			pg->n++;
	}
	return err;
}

int smh_list_allocs(struct smh_client *client, struct smh_alloc_info **allocsp, size_t *np)
{
	Smh__AllocsRequest body = SMH__ALLOCS_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct pager pg = { .size = sizeof(struct smh_alloc_info), .afterp = &body.after };
	int err;

	if (!allocsp || !np)
		return -EINVAL;
	req.body_case = SMH__REQUEST__BODY_ALLOCS;
	req.allocs = &body;
	err = list(client, &req, SMH__RESPONSE__BODY_ALLOCS, read_allocs, &pg);
	if (err < 0) {
		smh_allocs_free(pg.items, pg.n);
		return err;
	}
	*allocsp = pg.items;
	*np = pg.n;
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

/* What smh_get_occupancy() asked for, and where the answer goes. */
struct occupancy {
	uint32_t n_cells;
	uint16_t *permille;
	uint64_t *cell_bytesp;
};

static int read_occupancy(struct smh_client *client, const Smh__Response *resp, void *ctx)
{
	const Smh__OccupancyReply *in = resp->occupancy;
	const struct occupancy *o = ctx;

	if (in->n_used != o->n_cells)
		return client_proto_error(client, "an occupancy with another cell count");
	for (uint32_t i = 0; i < o->n_cells; i++) {
		if (in->used[i] > 1000)
			return client_proto_error(client, "an occupancy above 1000 per mille");
	}
	for (uint32_t i = 0; i < o->n_cells; i++)
		o->permille[i] = (uint16_t)in->used[i];
	*o->cell_bytesp = in->cell_bytes;
	return 0;
}

int smh_get_occupancy(struct smh_client *client, uint32_t region, uint32_t n_cells,
		      uint16_t *permille, uint64_t *cell_bytesp)
{
	Smh__OccupancyRequest body = SMH__OCCUPANCY_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct occupancy o = { n_cells, permille, cell_bytesp };
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
	err = client_request(client, &req, SMH__RESPONSE__BODY_OCCUPANCY, read_occupancy, &o);
	client_end(client);
	return err;
}
