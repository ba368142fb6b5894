/* SPDX-License-Identifier: MIT */
/*
 * Request handlers (see requests.h). Each handler fills a `struct reply`: the response
 * envelope, its body, and the heap arrays that list replies need, which are freed once the
 * response is packed. Every id, size and index a client sends is checked here or by the broker
 * before use; a refusal carries an errno and a sentence, so that `smhctl` and the library can
 * say why.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/attr.h"
#include "common/bufname.h"
#include "common/log.h"
#include "config.h"
#include "daemon/policy.h"
#include "daemon/requests.h"
#include "daemon/scrub.h"

/* A list reply stops growing this far below the datagram limit (envelope, status message). */
#define LIST_BUDGET (SMH_MSG_MAX - 1024)

/* Occupancy pictures: at most this many cells. */
#define OCCUPANCY_CELLS_MAX 4096

#define SCRATCH_MAX 8

struct reply {
	Smh__Response resp;
	char message[640];
	uint32_t fd_regions[WIRE_FDS_MAX];
	union {
		Smh__HelloReply hello;
		Smh__Buffer buffer;
		Smh__ExportReply export_;
		Smh__RegionsReply regions;
		Smh__StatsReply stats;
		Smh__ClientsReply clients;
		Smh__AllocsReply allocs;
		Smh__OccupancyReply occupancy;
		Smh__PoisonReply poison;
	} body;
	void *scratch[SCRATCH_MAX]; /* freed after packing */
	size_t n_scratch;
};

static void refuse(struct reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct reply *r, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	r->resp.status = status;
	r->resp.message = r->message;
	r->resp.body_case = SMH__RESPONSE__BODY__NOT_SET;
}

/* A refusal with no sentence of its own: the errno's, or why the state file matters. */
static void refuse_other(struct reply *r, int status, const char *verb)
{
	if (status == -ENOSPC)
		refuse(r, status,
		       "Could not %s: smhd could not record it in its state file (the file system "
		       "holding it is full?), and serves nothing a restart could lose",
		       verb);
	else
		refuse(r, status, "Could not %s: %s", verb, strerror(-status));
}

/* calloc() whose result is freed with the reply. NULL when out of memory or of scratch slots. */
static void *scratch_alloc(struct reply *r, size_t n, size_t size)
{
	void *p;

	if (r->n_scratch == SCRATCH_MAX)
		return NULL;
	p = calloc(n ? n : 1, size);
	if (p)
		r->scratch[r->n_scratch++] = p;
	return p;
}

/* ---------------------------------------------------------------- hello */

/*
 * A reconnecting client takes its session's buffers back (docs/restart.md), if its uid is the
 * session's and its quotas allow. Returns false when the hello is refused (over quota).
 */
static bool requests_resume(struct request_ctx *ctx, uint64_t session, uint64_t *n_reclaimedp,
			    struct reply *r)
{
	struct broker_client *c = ctx->client;
	struct broker_client *o = broker_find_orphan(ctx->broker, session);
	char why[sizeof(r->message)];
	int ret;

	if (o && o->uid == c->uid &&
	    policy_resume(ctx->policy, ctx->broker, c, o, &ctx->quota_logged, why, sizeof(why)) <
		    0) {
		refuse(r, -EDQUOT, "Cannot resume the session: %s", why);
		return false;
	}
	ret = broker_resume(ctx->broker, c, session, n_reclaimedp);
	if (ret == -EPERM)
		log_warning("Client %llu (pid %d, %s, uid %u) asked to resume a session of uid %u: "
			    "refused, it starts a new one",
			    (unsigned long long)c->id, (int)c->pid, c->comm, (unsigned)c->uid,
			    (unsigned)o->uid);
	if (ret < 0) {
		if (ret != -EPERM)
			log_info("Client %llu (pid %d, %s) asked to resume a session this daemon "
				 "does not know: it starts a new one",
				 (unsigned long long)c->id, (int)c->pid, c->comm);
		return true;
	}
	log_info("Client %llu (pid %d, %s) resumed its session: %llu buffers reclaimed",
		 (unsigned long long)c->id, (int)c->pid, c->comm,
		 (unsigned long long)*n_reclaimedp);
	return true;
}

static void on_hello(struct request_ctx *ctx, const Smh__Hello *req, struct reply *r,
		     struct request_result *res)
{
	Smh__HelloReply *h = &r->body.hello;

	if (ctx->client->refused) { /* by the access policy, when it connected */
		refuse(r, ctx->client->refused, "%s", ctx->refusal);
		res->close_after = true;
		return;
	}
	if (req->version != SMH_PROTOCOL_VERSION) {
		refuse(r, -EPROTONOSUPPORT,
		       "Protocol version %u is not supported: smhd %s speaks version %u",
		       req->version, SMH_VERSION, SMH_PROTOCOL_VERSION);
		res->close_after = true;
		return;
	}
	ctx->hello_done = true;
	log_debug("Client %llu (pid %d) says hello: %.64s", (unsigned long long)ctx->client->id,
		  (int)ctx->client->pid, req->client_name ? req->client_name : "");
	smh__hello_reply__init(h);
	h->version = SMH_PROTOCOL_VERSION;
	h->features = 0;
	h->server = "smhd " SMH_VERSION;
	h->granule = pool_granule(ctx->broker->pool);
	h->n_regions = (uint32_t)pool_n_regions(ctx->broker->pool);
	h->client_id = ctx->client->id;
	if (req->resume_session && !requests_resume(ctx, req->resume_session, &h->n_reclaimed, r)) {
		ctx->hello_done = false;
		res->close_after = true;
		return;
	}
	h->session = ctx->client->session;
	events_client(ctx->events, EVENTS_CONNECT, ctx->client);
	r->resp.body_case = SMH__RESPONSE__BODY_HELLO;
	r->resp.hello = h;
}

/* ---------------------------------------------------------------- buffers */

/* Whether the policy lets this connection hold @bytes and @buffers more; refuses if not. */
static bool quota_ok(struct request_ctx *ctx, uint64_t bytes, uint64_t buffers, struct reply *r)
{
	char why[sizeof(r->message)];

	if (policy_charge(ctx->policy, ctx->broker, ctx->client, bytes, buffers, &ctx->quota_logged,
			  why, sizeof(why)) == 0)
		return true;
	refuse(r, -EDQUOT, "%s", why);
	return false;
}

/* What @size costs: the pool rounds it up to the granule. */
static uint64_t charged(const struct request_ctx *ctx, uint64_t size)
{
	uint64_t g = pool_granule(ctx->broker->pool);

	return size > UINT64_MAX - (g - 1) ? UINT64_MAX : (size + g - 1) & ~(g - 1);
}

/* Fills the Buffer body for @a and attaches its region's fd if this connection lacks it. */
static void reply_buffer(struct request_ctx *ctx, const struct broker_alloc *a, struct reply *r,
			 struct request_result *res)
{
	const struct backend_region *br = backend_region(ctx->backend, a->blk.region);
	const struct pool_region *pr = pool_region(ctx->broker->pool, a->blk.region);
	Smh__Buffer *b = &r->body.buffer;

	smh__buffer__init(b);
	b->handle = a->handle;
	b->region = a->blk.region;
	b->offset = a->blk.addr - br->fd_phys_base;
	b->size = a->blk.size;
	b->phys_addr = a->blk.addr;
	b->attr = (uint32_t)pr->attr;
	b->name = (char *)broker_alloc_name(a);
	r->resp.body_case = SMH__RESPONSE__BODY_BUFFER;
	r->resp.buffer = b;
	if (!ctx->fd_sent[a->blk.region]) {
		ctx->fd_sent[a->blk.region] = true;
		r->fd_regions[res->n_fds] = a->blk.region;
		res->fds[res->n_fds++] = br->fd;
		r->resp.n_fd_regions = res->n_fds;
		r->resp.fd_regions = r->fd_regions;
	}
}

static void on_alloc(struct request_ctx *ctx, const Smh__AllocRequest *req, struct reply *r,
		     struct request_result *res)
{
	const char *name = req->name ? req->name : "";
	struct broker_alloc *a;
	char bad[128];
	int ret;

	if (!bufname_valid(name, strlen(name), bad, sizeof(bad))) {
		refuse(r, -EINVAL, "%s", bad);
		return;
	}
	if (req->attr >= SMH_REG_ATTR_NUM) {
		refuse(r, -EINVAL, "Attribute %u is out of range (0..%d)", req->attr,
		       SMH_REG_ATTR_NUM - 1);
		return;
	}
	if (req->size > 0 && !quota_ok(ctx, broker_cost(charged(ctx, req->size), req->align), 1, r))
		return;
	ret = broker_alloc_named(ctx->broker, ctx->client, (enum smh_reg_attr)req->attr, req->size,
				 req->align, name, &a);
	if (ret == -EAGAIN) {
		res->park = true;
		return;
	}
	if (ret == -EINVAL) {
		refuse(r, ret,
		       req->size == 0 ? "Size 0 cannot be allocated"
				      : "Alignment %llu is not a power of two",
		       (unsigned long long)req->align);
		return;
	}
	if (ret == -ENOMEM) {
		char nomem[sizeof(r->message)];

		broker_explain_nomem(ctx->broker, (enum smh_reg_attr)req->attr, req->size,
				     req->align, nomem, sizeof(nomem));
		refuse(r, ret, "%s", nomem);
		return;
	}
	if (ret < 0) {
		refuse_other(r, ret, "allocate");
		return;
	}
	events_buffer(ctx->events, EVENTS_ALLOC, ctx->client, a);
	reply_buffer(ctx, a, r, res);
}

static void on_free(struct request_ctx *ctx, const Smh__FreeRequest *req, struct reply *r)
{
	struct broker_hold *h = broker_find_hold(ctx->broker, ctx->client, req->handle);

	if (h) /* the free cannot fail then */
		events_free(ctx->events, ctx->client, h);
	if (broker_free(ctx->broker, ctx->client, req->handle) < 0)
		refuse(r, -EINVAL, "This connection holds no buffer %llu",
		       (unsigned long long)req->handle);
}

static void on_realloc(struct request_ctx *ctx, const Smh__ReallocRequest *req, struct reply *r,
		       struct request_result *res)
{
	struct broker_hold *h = broker_find_hold(ctx->broker, ctx->client, req->handle);
	const struct broker_alloc *cur = h ? broker_hold_alloc(h) : NULL;
	struct broker_alloc *a;
	int ret;

	/* Growing costs the difference, as many times as this connection holds the buffer. */
	if (cur && req->size > 0 && broker_alloc_held_by_one(cur) &&
	    broker_cost(charged(ctx, req->size), broker_alloc_align(cur)) >
		    broker_alloc_cost(cur)) {
		uint64_t more = broker_cost(charged(ctx, req->size), broker_alloc_align(cur)) -
				broker_alloc_cost(cur);

		if (!quota_ok(ctx, more > UINT64_MAX / h->count ? UINT64_MAX : more * h->count, 0,
			      r))
			return;
	}
	ret = broker_realloc(ctx->broker, ctx->client, req->handle, req->size, &a);
	if (ret == -EAGAIN) {
		res->park = true;
		return;
	}
	if (ret == -EINVAL) {
		refuse(r, ret,
		       req->size == 0 ? "Size 0: free the buffer instead"
				      : "This connection holds no buffer %llu",
		       (unsigned long long)req->handle);
		return;
	}
	if (ret == -EBUSY) {
		refuse(r, ret, "Buffer %llu is held by another client too: it cannot be resized",
		       (unsigned long long)req->handle);
		return;
	}
	if (ret == -ENOMEM) {
		refuse(r, ret, "No region can hold %llu bytes; the buffer is unchanged",
		       (unsigned long long)req->size);
		return;
	}
	if (ret < 0) {
		refuse_other(r, ret, "resize");
		return;
	}
	events_buffer(ctx->events, EVENTS_REALLOC, ctx->client, a);
	reply_buffer(ctx, a, r, res);
}

static void on_export(struct request_ctx *ctx, const Smh__ExportRequest *req, struct reply *r)
{
	uint64_t token;
	int ret = broker_export(ctx->broker, ctx->client, req->handle, &token);

	if (ret == -EINVAL) {
		refuse(r, ret, "This connection holds no buffer %llu",
		       (unsigned long long)req->handle);
		return;
	}
	if (ret < 0) {
		refuse_other(r, ret, "export");
		return;
	}
	events_buffer(ctx->events, EVENTS_EXPORT, ctx->client,
		      broker_hold_alloc(broker_find_hold(ctx->broker, ctx->client, req->handle)));
	smh__export_reply__init(&r->body.export_);
	r->body.export_.token = token;
	r->resp.body_case = SMH__RESPONSE__BODY_EXPORT;
	r->resp.export = &r->body.export_;
}

static void on_import(struct request_ctx *ctx, const Smh__ImportRequest *req, struct reply *r,
		      struct request_result *res)
{
	struct broker_alloc *a = broker_find_token(ctx->broker, req->token);
	int ret;

	if (a && !quota_ok(ctx, broker_alloc_cost(a), 1, r)) /* the importer pays */
		return;
	ret = broker_import(ctx->broker, ctx->client, req->token, &a);
	if (ret == -ENOENT) {
		refuse(r, ret, "No live buffer has this token");
		return;
	}
	if (ret == -EMLINK) {
		refuse(r, ret,
		       "This connection holds this buffer %llu times already, the most smhd keeps "
		       "across a restart; free one of them first",
		       (unsigned long long)BROKER_HOLD_COUNT_MAX);
		return;
	}
	if (ret < 0) {
		refuse_other(r, ret, "import");
		return;
	}
	events_buffer(ctx->events, EVENTS_IMPORT, ctx->client, a);
	reply_buffer(ctx, a, r, res);
}

/* ---------------------------------------------------------------- inspection */

static void on_regions(struct request_ctx *ctx, struct reply *r)
{
	struct pool *pool = ctx->broker->pool;
	size_t n = pool_n_regions(pool);
	Smh__Region *regions = scratch_alloc(r, n, sizeof(*regions));
	Smh__Region **ptrs = scratch_alloc(r, n, sizeof(*ptrs));

	if (!regions || !ptrs) {
		refuse(r, -ENOMEM, "Out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pool_region *pr = pool_region(pool, i);
		const struct backend_region *br = backend_region(ctx->backend, i);
		struct buddy_stats st;
		Smh__Region *g = &regions[i];

		pool_region_stats(pool, i, &st);
		smh__region__init(g);
		g->index = (uint32_t)i;
		g->label = (char *)pr->label;
		g->phys_addr = pr->base;
		g->size = pr->size;
		g->attr = (uint32_t)pr->attr;
		g->no_map = pr->no_map;
		g->backend = (char *)backend_name(ctx->backend);
		g->mapping = (char *)br->mapping;
		g->mapping_kind = (uint32_t)br->type;
		g->managed = pr->disabled ? 0 : st.total;
		ptrs[i] = g;
	}
	smh__regions_reply__init(&r->body.regions);
	r->body.regions.n_regions = n;
	r->body.regions.regions = ptrs;
	r->resp.body_case = SMH__RESPONSE__BODY_REGIONS;
	r->resp.regions = &r->body.regions;
}

/* The refusal counts, every kind (zeros too: a series that appears late breaks rate()). */
static bool stats_refusals(struct request_ctx *ctx, struct reply *r, Smh__StatsReply *s)
{
	Smh__RefusalCount *counts = scratch_alloc(r, REFUSAL_N, sizeof(*counts));
	Smh__RefusalCount **ptrs = scratch_alloc(r, REFUSAL_N, sizeof(*ptrs));

	if (!counts || !ptrs) {
		refuse(r, -ENOMEM, "Out of memory");
		return false;
	}
	for (size_t k = 0; k < REFUSAL_N; k++) {
		smh__refusal_count__init(&counts[k]);
		counts[k].kind = (char *)refusal_name((enum refusal_kind)k);
		counts[k].count = ctx->refusals ? ctx->refusals->n[k] : 0;
		ptrs[k] = &counts[k];
	}
	s->n_refusals = REFUSAL_N;
	s->refusals = ptrs;
	return true;
}

/* The requests' waits in smhd (daemon/waits.h). */
static bool stats_waits(struct request_ctx *ctx, struct reply *r, Smh__StatsReply *s)
{
	Smh__WaitCount *counts = scratch_alloc(r, WAITS_N, sizeof(*counts));
	Smh__WaitCount **ptrs = scratch_alloc(r, WAITS_N, sizeof(*ptrs));

	if (!counts || !ptrs) {
		refuse(r, -ENOMEM, "Out of memory");
		return false;
	}
	for (size_t k = 0; k < WAITS_N; k++) {
		smh__wait_count__init(&counts[k]);
		counts[k].over_ms = waits_over_ms[k];
		counts[k].count = ctx->waits ? ctx->waits->over[k] : 0;
		ptrs[k] = &counts[k];
	}
	if (ctx->waits) {
		s->requests = ctx->waits->requests;
		s->wait_longest_us = ctx->waits->longest_ns / 1000;
	}
	s->n_waits = WAITS_N;
	s->waits = ptrs;
	return true;
}

static void on_stats(struct request_ctx *ctx, struct reply *r)
{
	struct broker *b = ctx->broker;
	size_t n = pool_n_regions(b->pool);
	Smh__RegionStats *stats = scratch_alloc(r, n, sizeof(*stats));
	Smh__RegionStats **ptrs = scratch_alloc(r, n, sizeof(*ptrs));
	Smh__StatsReply *s = &r->body.stats;

	if (!stats || !ptrs) {
		refuse(r, -ENOMEM, "Out of memory");
		return;
	}
	smh__stats_reply__init(s);
	for (size_t i = 0; i < n; i++) {
		uint64_t bytes, blocks;
		struct buddy_stats st;

		pool_region_stats(b->pool, i, &st);
		if (pool_region(b->pool, i)->disabled) /* not served: nothing to offer */
			memset(&st, 0, sizeof(st));
		/* The pool counts blocks being scrubbed as allocated: no client holds them. */
		broker_scrubbing(b, (uint32_t)i, &bytes, &blocks);
		smh__region_stats__init(&stats[i]);
		stats[i].region = (uint32_t)i;
		stats[i].total = st.total;
		stats[i].used = st.used - bytes;
		stats[i].free = st.free;
		stats[i].largest_free = st.largest_free;
		stats[i].n_allocs = st.n_allocs - blocks;
		stats[i].fragmentation = st.fragmentation;
		stats[i].scrubbing_bytes = bytes;
		stats[i].scrubbing_blocks = blocks;
		s->scrubbing_bytes += bytes;
		s->scrubbing_blocks += blocks;
		ptrs[i] = &stats[i];
	}
	s->n_regions = n;
	s->regions = ptrs;
	s->granule = pool_granule(b->pool);
	s->n_clients = (uint32_t)b->n_clients;
	s->n_allocs = broker_n_allocs(b);
	s->n_shared = b->n_shared;
	if (!stats_refusals(ctx, r, s) || !stats_waits(ctx, r, s))
		return;
	r->resp.body_case = SMH__RESPONSE__BODY_STATS;
	r->resp.stats = s;
}

static void on_clients(struct request_ctx *ctx, const Smh__ClientsRequest *req, struct reply *r)
{
	struct broker *b = ctx->broker;
	Smh__ClientInfo *infos = scratch_alloc(r, b->n_clients, sizeof(*infos));
	Smh__ClientInfo **ptrs = scratch_alloc(r, b->n_clients, sizeof(*ptrs));
	Smh__ClientsReply *c = &r->body.clients;
	size_t n = 0, budget = 0;
	struct list *pos;

	if (!infos || !ptrs) {
		refuse(r, -ENOMEM, "Out of memory");
		return;
	}
	smh__clients_reply__init(c);
	list_for_each(pos, &b->clients)
	{
		struct broker_client *bc = list_entry(pos, struct broker_client, link);
		Smh__ClientInfo *i = &infos[n];

		if (bc->id <= req->after)
			continue;
		smh__client_info__init(i);
		i->id = bc->id;
		i->pid = bc->pid;
		i->uid = bc->uid;
		i->gid = bc->gid;
		i->comm = bc->comm;
		i->n_buffers = bc->n_buffers;
		i->bytes = bc->bytes;
		budget += smh__client_info__get_packed_size(i) + 4;
		if (budget > LIST_BUDGET) {
			c->more = true;
			break;
		}
		ptrs[n++] = i;
	}
	c->n_clients = n;
	c->clients = ptrs;
	r->resp.body_case = SMH__RESPONSE__BODY_CLIENTS;
	r->resp.clients = c;
}

/* Fills @i for @a; its holders array is taken from @holders, which has room for them. */
static void alloc_info(struct request_ctx *ctx, const struct broker_alloc *a, Smh__AllocInfo *i,
		       uint64_t *holders)
{
	const struct backend_region *br = backend_region(ctx->backend, a->blk.region);

	smh__alloc_info__init(i);
	i->handle = a->handle;
	i->region = a->blk.region;
	i->offset = a->blk.addr - br->fd_phys_base;
	i->size = a->blk.size;
	i->phys_addr = a->blk.addr;
	i->owner = broker_alloc_owner(a);
	i->shared = broker_alloc_shared(a);
	i->name = (char *)broker_alloc_name(a);
	i->holders = holders;
	for (const struct broker_hold *h = broker_first_hold(a); h; h = h->next)
		holders[i->n_holders++] = h->client->id;
}

static void on_allocs(struct request_ctx *ctx, const Smh__AllocsRequest *req, struct reply *r)
{
	/* Every entry takes at least 16 bytes packed: the budget bounds the page. */
	enum { PAGE_MAX = LIST_BUDGET / 16 };
	struct broker *b = ctx->broker;
	size_t page = broker_n_allocs(b) < PAGE_MAX ? broker_n_allocs(b) : PAGE_MAX;
	Smh__AllocInfo *infos = scratch_alloc(r, page, sizeof(*infos));
	Smh__AllocInfo **ptrs = scratch_alloc(r, page, sizeof(*ptrs));
	/* Orphans hold too (after a restart): one allocation may have every holder there is. */
	size_t n_holders_max = page + b->n_clients + b->n_orphans;
	uint64_t *holders = scratch_alloc(r, n_holders_max, sizeof(*holders));
	Smh__AllocsReply *a = &r->body.allocs;
	size_t n = 0, n_holders = 0, budget = 0;
	struct broker_alloc *ba;

	if (!infos || !ptrs || !holders) {
		refuse(r, -ENOMEM, "Out of memory");
		return;
	}
	smh__allocs_reply__init(a);
	/* From where the last page stopped, not from the first: a page costs its own length. */
	for (ba = broker_alloc_after(b, req->after); ba; ba = broker_alloc_next(b, ba)) {
		size_t k = broker_alloc_n_holders(ba);

		if (n == page || n_holders + k > n_holders_max) {
			a->more = true;
			break;
		}
		alloc_info(ctx, ba, &infos[n], holders + n_holders);
		budget += smh__alloc_info__get_packed_size(&infos[n]) + 4;
		if (budget > LIST_BUDGET) {
			a->more = true;
			break;
		}
		n_holders += k;
		ptrs[n] = &infos[n];
		n++;
	}
	a->n_allocs = n;
	a->allocs = ptrs;
	r->resp.body_case = SMH__RESPONSE__BODY_ALLOCS;
	r->resp.allocs = a;
}

struct occupancy {
	uint64_t start, cell_bytes, total;
	uint64_t *used; /* bytes in use per cell */
	bool started;
};

static int occupancy_extent(void *data, const struct buddy_extent *e)
{
	struct occupancy *o = data;
	uint64_t from, to;

	if (!o->started) {
		o->start = e->addr;
		o->started = true;
	}
	if (!e->allocated)
		return 0;
	from = e->addr - o->start;
	to = from + e->size;
	while (from < to) {
		uint64_t cell = from / o->cell_bytes;
		uint64_t end = (cell + 1) * o->cell_bytes;
		uint64_t part = (end < to ? end : to) - from;

		o->used[cell] += part;
		from += part;
	}
	return 0;
}

static void on_occupancy(struct request_ctx *ctx, const Smh__OccupancyRequest *req, struct reply *r)
{
	const struct pool_region *pr = pool_region(ctx->broker->pool, req->region);
	Smh__OccupancyReply *o = &r->body.occupancy;
	struct occupancy occ = { 0 };
	struct buddy_stats st;
	uint32_t *permille;

	if (!pr) {
		refuse(r, -EINVAL, "There is no region %u", req->region);
		return;
	}
	if (req->cells == 0 || req->cells > OCCUPANCY_CELLS_MAX) {
		refuse(r, -EINVAL, "Cells must be 1 to %d", OCCUPANCY_CELLS_MAX);
		return;
	}
	buddy_stats(pr->buddy, &st);
	occ.total = st.total;
	occ.cell_bytes = (st.total + req->cells - 1) / req->cells;
	occ.used = scratch_alloc(r, req->cells, sizeof(*occ.used));
	permille = scratch_alloc(r, req->cells, sizeof(*permille));
	if (!occ.used || !permille) {
		refuse(r, -ENOMEM, "Out of memory");
		return;
	}
	buddy_walk(pr->buddy, occupancy_extent, &occ);
	for (uint32_t i = 0; i < req->cells; i++) {
		uint64_t from = (uint64_t)i * occ.cell_bytes;
		uint64_t len = from >= st.total ? 0 : st.total - from;

		len = len < occ.cell_bytes ? len : occ.cell_bytes;
		permille[i] = len ? (uint32_t)(occ.used[i] * 1000 / len) : 0;
	}
	smh__occupancy_reply__init(o);
	o->n_used = req->cells;
	o->used = permille;
	o->cell_bytes = occ.cell_bytes;
	r->resp.body_case = SMH__RESPONSE__BODY_OCCUPANCY;
	r->resp.occupancy = o;
}

/* smhd --debug-poison's findings (a copy of them: the scrubber's thread adds to them). */
static void on_poison(struct request_ctx *ctx, struct reply *r)
{
	struct poison_stats *st = scratch_alloc(r, 1, sizeof(*st));
	Smh__PoisonReport *reps = scratch_alloc(r, POISON_LAST, sizeof(*reps));
	Smh__PoisonReport **ptrs = scratch_alloc(r, POISON_LAST, sizeof(*ptrs));
	Smh__PoisonReply *p = &r->body.poison;

	if (!st || !reps || !ptrs) {
		refuse(r, -ENOMEM, "Out of memory");
		return;
	}
	if (ctx->scrub)
		scrub_poison_stats(ctx->scrub, st);
	smh__poison_reply__init(p);
	p->enabled = st->enabled;
	p->n_reports = st->n_reports;
	p->quarantine_bytes = st->quarantine_bytes;
	for (size_t i = 0; i < st->n_last; i++) {
		const struct poison_report *x = &st->last[i];

		smh__poison_report__init(&reps[i]);
		reps[i] = (Smh__PoisonReport){ .base = reps[i].base,
					       .region = x->region,
					       .offset = x->offset,
					       .size = x->size,
					       .first = x->first,
					       .changed = x->changed,
					       .handle = x->origin.handle,
					       .pid = x->origin.pid,
					       .comm = st->last[i].origin.comm };
		ptrs[i] = &reps[i];
	}
	p->n_last = st->n_last;
	p->last = ptrs;
	r->resp.body_case = SMH__RESPONSE__BODY_POISON;
	r->resp.poison = p;
}

/* The reply goes out before the first event: the server queues none before it. */
static void on_subscribe(struct request_ctx *ctx, struct reply *r)
{
	char why[sizeof(r->message)];
	int ret;

	if (!ctx->events) {
		refuse(r, -EOPNOTSUPP, "This daemon has no event stream");
		return;
	}
	ret = events_subscribe(ctx->events, ctx->client, ctx->events_wake, ctx->events_data,
			       &ctx->sub, why, sizeof(why));
	if (ret < 0)
		refuse(r, ret, "%s", why);
}

size_t requests_pack_event(const struct events_item *item, void *out)
{
	Smh__Event e = SMH__EVENT__INIT;
	Smh__Response resp = SMH__RESPONSE__INIT;
	ssize_t n;

	e.kind = (Smh__EventKind)item->kind;
	e.time_us = item->time_us;
	e.client = item->client;
	e.pid = item->pid;
	e.uid = item->uid;
	e.comm = (char *)item->comm;
	e.handle = item->handle;
	e.region = item->region;
	e.size = item->size;
	e.phys_addr = item->phys_addr;
	e.n_buffers = item->n_buffers;
	e.bytes = item->bytes;
	e.released = item->released;
	e.lost = item->lost;
	e.why = (char *)item->why;
	resp.body_case = SMH__RESPONSE__BODY_EVENT;
	resp.event = &e;
	n = wire_pack_response(&resp, out); /* fixed-size strings: it fits */
	return n < 0 ? 0 : (size_t)n;
}

/* ---------------------------------------------------------------- dispatch */

static void dispatch(struct request_ctx *ctx, const Smh__Request *req, struct reply *r,
		     struct request_result *res)
{
	switch (req->body_case) {
	case SMH__REQUEST__BODY_HELLO:
		if (ctx->hello_done) {
			refuse(r, -EINVAL, "Hello was already exchanged");
			return;
		}
		on_hello(ctx, req->hello, r, res);
		return;
	case SMH__REQUEST__BODY_ALLOC:
		on_alloc(ctx, req->alloc, r, res);
		return;
	case SMH__REQUEST__BODY_FREE:
		on_free(ctx, req->free, r);
		return;
	case SMH__REQUEST__BODY_REALLOC:
		on_realloc(ctx, req->realloc, r, res);
		return;
	case SMH__REQUEST__BODY_EXPORT:
		on_export(ctx, req->export, r);
		return;
	case SMH__REQUEST__BODY_IMPORT:
		on_import(ctx, req->import, r, res);
		return;
	case SMH__REQUEST__BODY_REGIONS:
		on_regions(ctx, r);
		return;
	case SMH__REQUEST__BODY_STATS:
		on_stats(ctx, r);
		return;
	case SMH__REQUEST__BODY_CLIENTS:
		on_clients(ctx, req->clients, r);
		return;
	case SMH__REQUEST__BODY_ALLOCS:
		on_allocs(ctx, req->allocs, r);
		return;
	case SMH__REQUEST__BODY_OCCUPANCY:
		on_occupancy(ctx, req->occupancy, r);
		return;
	case SMH__REQUEST__BODY_POISON:
		on_poison(ctx, r);
		return;
	case SMH__REQUEST__BODY_SUBSCRIBE:
		on_subscribe(ctx, r);
		return;
	default: {
		refuse(r, -EOPNOTSUPP, "Unknown request");
		return;
	}
	}
}

void requests_handle(struct request_ctx *ctx, const void *in, size_t len, void *out,
		     struct request_result *res)
{
	Smh__Request *req = wire_unpack_request(in, len);
	struct reply r;
	ssize_t n;

	memset(res, 0, sizeof(*res));
	if (!req) {
		res->violation = "a datagram that is not a request message";
		if (ctx->refusals)
			ctx->refusals->n[REFUSAL_PROTOCOL]++;
		return;
	}
	/*
	 * Id 0 is reserved: its successful free would pack to an empty Response, a zero-length
	 * datagram, which on SOCK_SEQPACKET reads the same as the daemon hanging up.
	 */
	if (req->id == 0) {
		res->violation = "a request with id 0 (ids start at 1)";
		goto out;
	}
	if (!ctx->hello_done && req->body_case != SMH__REQUEST__BODY_HELLO) {
		res->violation = "a request before the hello";
		goto out;
	}
	if (ctx->sub) {
		res->violation = "a request after subscribing to events";
		goto out;
	}
	memset(&r, 0, sizeof(r));
	smh__response__init(&r.resp);
	r.resp.id = req->id;
	dispatch(ctx, req, &r, res);
	if (res->park)
		goto out_scratch;
	if (r.resp.status < 0 && ctx->refusals)
		ctx->refusals->n[refusal_kind_of(r.resp.status)]++;
	n = wire_pack_response(&r.resp, out);
	if (n < 0) { /* the list pages are sized to fit: this is a bug, not the client's */
		refuse(&r, -EOVERFLOW, "Reply too large");
		r.resp.n_fd_regions = 0;
		res->n_fds = 0;
		n = wire_pack_response(&r.resp, out);
	}
	res->len = (size_t)n;
out_scratch:
	for (size_t i = 0; i < r.n_scratch; i++)
		free(r.scratch[i]);
out:
	if (res->violation && ctx->refusals)
		ctx->refusals->n[REFUSAL_PROTOCOL]++;
	wire_free_request(req);
}
