/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the request path, as the server drives it but without sockets. Datagrams go to
 * the real requests_handle() of up to four simulated connections, over the broker and a pool
 * of the example device tree whose regions live in the memfd backend (so scrubbing and the
 * copies of a moving realloc really touch memory).
 *
 * Two input forms:
 * - raw: chunks of [selector][length (1 or 2 bytes)][datagram bytes]; the selector picks the
 *   connection, may open it anew first, and may have the harness send it a valid hello first;
 * - a first byte 0xFF: the rest is a program of 5-byte operations that the harness turns into
 *   well-formed Requests (smh__request__pack), naming handles and tokens from earlier replies,
 *   so that alloc, free, realloc, export, import and the lists are reached, not only the
 *   unpacking. An operation may also truncate its datagram or send raw bytes.
 * - a first byte 0xFE: the same under an access policy with quotas (POLICY below): connection
 *   3's uid is not allowed, at most two connections are served, and each reply must leave every
 *   connection and uid within its limits.
 *
 * The broker keeps a state journal, as smhd does (one state file for the whole run, in a
 * temporary directory): every change goes through the file's slots and its free list, and once
 * every connection is gone no record may be left in use.
 *
 * Every reply must unpack, echo the request's id, carry the fds it names, and describe buffers
 * inside their region. The harness writes a byte pattern into every buffer it is given, as a
 * client would: a new buffer must read as zeros, an imported one as its pattern, a realloc'd
 * one as its pattern up to the old size and zeros after. At the end every connection goes, and
 * the pool must be as new: nothing used, every block merged back, buddy_check() clean, every
 * byte of every region zero again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/policy-config.h"
#include "daemon/requests.h"
#include "daemon/restart/state.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_DTB
#define FUZZ_DTB "build/dts/example.dtb"
#endif

#define N_CONNS     4
#define HANDLES_MAX 512 /* more than the example's pool can hold at once */
#define TOKENS_MAX  16
#define REGIONS_MAX 8

/* uids of the connections, by slot, and the policy of 0xFE programs. */
static const uid_t conn_uid[N_CONNS] = { 1000, 1001, 1000, 1003 };
static const char POLICY[] = "allow-uid = 1000, 1001\n"
			     "max-clients = 2\n"
			     "max-bytes-per-client = 8K\n"
			     "max-buffers-per-client = 6\n"
			     "max-bytes-per-uid = 12K\n"
			     "max-buffers-per-uid = 9\n"
			     "[uid 1001]\n"
			     "max-bytes-per-client = 2K\n";

/* What the harness remembers of a buffer: where it was last seen, and what was written. */
struct seen {
	uint64_t handle;
	uint32_t region;
	uint64_t phys, size;
};

struct conn {
	struct request_ctx ctx;
	bool fd_sent[REGIONS_MAX];
	bool got_fd[REGIONS_MAX]; /* the fds this connection received, as its client sees them */
	pid_t pid;
};

struct run {
	struct broker broker;
	struct policy *policy; /* &policy for 0xFE programs, else NULL */
	struct conn conns[N_CONNS];
	struct seen seen[HANDLES_MAX];
	size_t n_seen;
	uint64_t tokens[TOKENS_MAX];
	size_t n_tokens;
	uint64_t next_id;
	uint8_t out[SMH_MSG_MAX];
	uint8_t in[SMH_MSG_MAX];
};

static struct backend *backend;
static struct pool *pool;
static size_t n_regions;
static struct buddy_stats initial[REGIONS_MAX];
static struct policy policy;
static struct run run;
static struct state *state;
static char state_dir_name[] = "/tmp/smh-fuzz-state-XXXXXX";

/* ---------------------------------------------------------------- buffers as clients see them */

static uint8_t pattern(uint64_t handle)
{
	return (uint8_t)(handle * 37 + 1) | 1;
}

/* The daemon's mapping of [phys, phys + size) in @region, checked to lie inside it. */
static uint8_t *bytes_of(uint32_t region, uint64_t phys, uint64_t size)
{
	const struct backend_region *br = backend_region(backend, region);

	FUZZ_CHECK(phys >= br->map_phys && phys - br->map_phys <= br->map_len);
	FUZZ_CHECK(size <= br->map_len - (phys - br->map_phys));
	return br->map + (phys - br->map_phys);
}

/* Whether the @len bytes at @p are all @v. No loop: this code is instrumented, memcmp() not. */
static bool all(const uint8_t *p, uint64_t len, uint8_t v)
{
	return len == 0 || (p[0] == v && memcmp(p, p + 1, len - 1) == 0);
}

static struct seen *find_seen(uint64_t handle)
{
	for (size_t i = 0; i < run.n_seen; i++)
		if (run.seen[i].handle == handle)
			return &run.seen[i];
	return NULL;
}

/* Forgets buffers the broker no longer has (their last holder let them go). */
static void prune_seen(void)
{
	for (size_t i = 0; i < run.n_seen;)
		if (!broker_find_alloc(&run.broker, run.seen[i].handle))
			run.seen[i] = run.seen[--run.n_seen];
		else
			i++;
}

/*
 * A Buffer reply to @kind on @c: checks what the buffer holds, then writes its pattern over it.
 * The connection must have its region's fd by now.
 */
static void got_buffer(const struct conn *c, Smh__Request__BodyCase kind, const Smh__Buffer *b)
{
	const struct backend_region *br;
	struct seen *s = find_seen(b->handle);
	uint8_t *p;

	FUZZ_CHECK(b->region < n_regions && b->size > 0 && c->got_fd[b->region]);
	FUZZ_CHECK(b->attr == (uint32_t)pool_region(pool, b->region)->attr);
	br = backend_region(backend, b->region);
	FUZZ_CHECK(b->offset == b->phys_addr - br->fd_phys_base);
	p = bytes_of(b->region, b->phys_addr, b->size);
	if (kind == SMH__REQUEST__BODY_ALLOC) {
		FUZZ_CHECK(s == NULL && all(p, b->size, 0));
	} else if (kind == SMH__REQUEST__BODY_IMPORT) {
		FUZZ_CHECK(s != NULL && s->size == b->size && s->phys == b->phys_addr);
		FUZZ_CHECK(all(p, b->size, pattern(b->handle)));
	} else {
		uint64_t kept = s->size < b->size ? s->size : b->size;

		FUZZ_CHECK(kind == SMH__REQUEST__BODY_REALLOC && s != NULL);
		FUZZ_CHECK(all(p, kept, pattern(b->handle)) && all(p + kept, b->size - kept, 0));
	}
	memset(p, pattern(b->handle), b->size);
	if (!s) {
		FUZZ_CHECK(run.n_seen < HANDLES_MAX);
		s = &run.seen[run.n_seen++];
	}
	*s = (struct seen){ b->handle, b->region, b->phys_addr, b->size };
}

/* ---------------------------------------------------------------- connections */

static void conn_open(struct conn *c, size_t slot)
{
	memset(c, 0, sizeof(*c));
	c->pid = (pid_t)(100 + slot);
	FUZZ_CHECK(broker_client_add(&run.broker, c->pid, conn_uid[slot], conn_uid[slot], "fuzz",
				     &c->ctx.client) == 0);
	c->ctx.broker = &run.broker;
	c->ctx.backend = backend;
	c->ctx.policy = run.policy;
	c->ctx.fd_sent = c->fd_sent;
	/* As the server does: a refused connection is kept until its hello is answered. */
	policy_admit(run.policy, &run.broker, c->ctx.client, NULL, c->ctx.refusal,
		     sizeof(c->ctx.refusal));
	FUZZ_CHECK(run.policy || c->ctx.client->refused == 0);
}

static void conn_close(struct conn *c)
{
	broker_client_remove(&run.broker, c->ctx.client);
	c->ctx.client = NULL;
	prune_seen();
}

static void check_reply(struct conn *c, const void *req, size_t len,
			const struct request_result *res)
{
	Smh__Request *q = wire_unpack_request(req, len);
	Smh__Response *r;

	FUZZ_CHECK(q != NULL && res->len > 0 && res->len <= SMH_MSG_MAX);
	r = wire_unpack_response(run.out, res->len);
	FUZZ_CHECK(r != NULL && r->id == q->id);
	FUZZ_CHECK(r->n_fd_regions == res->n_fds && res->n_fds <= WIRE_FDS_MAX);
	for (size_t i = 0; i < res->n_fds; i++) { /* each region's fd once per connection */
		FUZZ_CHECK(r->fd_regions[i] < n_regions && !c->got_fd[r->fd_regions[i]]);
		FUZZ_CHECK(res->fds[i] == backend_region(backend, r->fd_regions[i])->fd);
		c->got_fd[r->fd_regions[i]] = true;
	}
	if (r->status < 0)
		FUZZ_CHECK(r->message && r->message[0] && r->body_case == 0 && res->n_fds == 0);
	else
		FUZZ_CHECK(r->status == 0);
	if (r->body_case == SMH__RESPONSE__BODY_BUFFER)
		got_buffer(c, q->body_case, r->buffer);
	if (r->body_case == SMH__RESPONSE__BODY_EXPORT) {
		FUZZ_CHECK(r->export->token != 0);
		if (run.n_tokens < TOKENS_MAX)
			run.tokens[run.n_tokens++] = r->export->token;
	}
	if (q->body_case == SMH__REQUEST__BODY_FREE && r->status == 0)
		prune_seen();
	wire_free_response(r);
	wire_free_request(q);
}

/* Under the policy, no connection and no uid holds more than its limits. */
static void check_quotas(void)
{
	uint64_t bytes[N_CONNS] = { 0 }, buffers[N_CONNS] = { 0 };

	if (!run.policy)
		return;
	for (size_t i = 0; i < N_CONNS; i++) {
		const struct broker_client *c = run.conns[i].ctx.client;

		FUZZ_CHECK(c->bytes <= policy_limit(&policy, c->uid, POLICY_MAX_BYTES_PER_CLIENT));
		FUZZ_CHECK(c->n_buffers <=
			   policy_limit(&policy, c->uid, POLICY_MAX_BUFFERS_PER_CLIENT));
		FUZZ_CHECK(c->refused == 0 || c->n_buffers == 0);
		for (size_t j = 0; j < N_CONNS; j++) {
			if (run.conns[j].ctx.client->uid == c->uid) {
				bytes[j] += c->bytes;
				buffers[j] += c->n_buffers;
			}
		}
	}
	for (size_t j = 0; j < N_CONNS; j++) {
		uid_t uid = run.conns[j].ctx.client->uid;

		FUZZ_CHECK(bytes[j] <= policy_limit(&policy, uid, POLICY_MAX_BYTES_PER_UID));
		FUZZ_CHECK(buffers[j] <= policy_limit(&policy, uid, POLICY_MAX_BUFFERS_PER_UID));
	}
}

/* Hands one datagram to connection @slot; drops and reopens it as the server would. */
static void deliver(size_t slot, const void *data, size_t len)
{
	struct conn *c = &run.conns[slot];
	struct request_result res;

	requests_handle(&c->ctx, data, len, run.out, &res);
	if (res.violation) {
		FUZZ_CHECK(res.len == 0 && res.n_fds == 0);
		conn_close(c);
		conn_open(c, slot);
		return;
	}
	check_reply(c, data, len, &res);
	check_quotas();
	if (res.close_after) {
		conn_close(c);
		conn_open(c, slot);
	}
}

/* Delivers the next @len bytes of @in (or what is left) from a buffer of exactly that size. */
static void deliver_copy(size_t slot, struct fuzz_input *in, size_t len)
{
	uint8_t *copy;

	if (len > in->n)
		len = in->n;
	copy = malloc(len ? len : 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, in->p, len);
	in->p += len;
	in->n -= len;
	deliver(slot, copy, len);
	free(copy);
}

/* Packs @req with the next id and delivers it, cut to @cut bytes when @cut is not 0. */
static void send_request(size_t slot, Smh__Request *req, size_t cut)
{
	size_t len;

	req->id = ++run.next_id;
	len = smh__request__pack(req, run.in);
	FUZZ_CHECK(len <= SMH_MSG_MAX);
	deliver(slot, run.in, cut && cut < len ? cut : len);
}

static void send_hello(size_t slot, uint32_t version, const char *name)
{
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Hello hello = SMH__HELLO__INIT;

	hello.version = version;
	hello.client_name = (char *)name;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &hello;
	send_request(slot, &req, 0);
}

/* ---------------------------------------------------------------- raw datagrams */

static void run_raw(struct fuzz_input *in)
{
	while (in->n > 0) {
		uint8_t sel = fuzz_u8(in);
		size_t slot = sel % N_CONNS, len = sel & 0x10 ? fuzz_u16(in) : fuzz_u8(in);

		if (sel & 0x08) {
			conn_close(&run.conns[slot]);
			conn_open(&run.conns[slot], slot);
		}
		if (sel & 0x04 && !run.conns[slot].ctx.hello_done)
			send_hello(slot, SMH_PROTOCOL_VERSION, "raw");
		deliver_copy(slot, in, len);
	}
}

/* ---------------------------------------------------------------- the operation program */

struct op {
	uint8_t kind, slot, a, b;
	uint16_t v;
	bool no_hello, cut;
};

static uint64_t pick_size(uint8_t mode, uint16_t v)
{
	switch (mode & 3) {
	case 0:
		return (uint64_t)v + 1;
	case 1:
		return (uint64_t)v * 64;
	case 2:
		return (uint64_t)1 << (v % 64);
	default:
		return UINT64_MAX - v;
	}
}

static uint64_t pick_align(uint8_t code)
{
	code &= 63;
	if (code == 0)
		return 0;
	if (code == 63)
		return 3 << (code & 7);                      /* not a power of two */
	return (uint64_t)1 << (code < 20 ? code : code + 1); /* up to 2^63 */
}

static uint64_t pick_handle(const struct op *op)
{
	if (op->a == 0xff || run.n_seen == 0)
		return op->v;
	return run.seen[op->a % run.n_seen].handle;
}

static uint64_t pick_token(const struct op *op)
{
	if (op->a == 0xff || run.n_tokens == 0)
		return (uint64_t)op->b << 16 | op->v;
	return run.tokens[op->a % run.n_tokens];
}

/* Builds the request of @op in @req, with its body in @u. Returns false for no request. */
static bool build(const struct op *op, Smh__Request *req, void *u)
{
	switch (op->kind) {
	case 1:
	case 15: {
		Smh__AllocRequest *m = u;

		smh__alloc_request__init(m);
		m->attr = op->a % (SMH_REG_ATTR_NUM + 1);
		m->align = pick_align(op->a >> 2);
		m->size = pick_size(op->b >> 6, op->v);
		req->body_case = SMH__REQUEST__BODY_ALLOC;
		req->alloc = m;
		return true;
	}
	case 2: {
		Smh__FreeRequest *m = u;

		smh__free_request__init(m);
		m->handle = pick_handle(op);
		req->body_case = SMH__REQUEST__BODY_FREE;
		req->free = m;
		return true;
	}
	case 3: {
		Smh__ReallocRequest *m = u;

		smh__realloc_request__init(m);
		m->handle = pick_handle(op);
		m->size = pick_size(op->b, op->v);
		req->body_case = SMH__REQUEST__BODY_REALLOC;
		req->realloc = m;
		return true;
	}
	case 4: {
		Smh__ExportRequest *m = u;

		smh__export_request__init(m);
		m->handle = pick_handle(op);
		req->body_case = SMH__REQUEST__BODY_EXPORT;
		req->export = m;
		return true;
	}
	case 5: {
		Smh__ImportRequest *m = u;

		smh__import_request__init(m);
		m->token = pick_token(op);
		req->body_case = SMH__REQUEST__BODY_IMPORT;
		req->import = m;
		return true;
	}
	default:
		return false;
	}
}

/* The requests without ids or sizes in them: the lists and the pictures. */
static bool build_query(const struct op *op, Smh__Request *req, void *u)
{
	switch (op->kind) {
	case 6:
		smh__regions_request__init(u);
		req->body_case = SMH__REQUEST__BODY_REGIONS;
		req->regions = u;
		return true;
	case 7:
		smh__stats_request__init(u);
		req->body_case = SMH__REQUEST__BODY_STATS;
		req->stats = u;
		return true;
	case 8:
		smh__clients_request__init(u);
		((Smh__ClientsRequest *)u)->after = op->a;
		req->body_case = SMH__REQUEST__BODY_CLIENTS;
		req->clients = u;
		return true;
	case 9:
		smh__allocs_request__init(u);
		((Smh__AllocsRequest *)u)->after = op->a;
		req->body_case = SMH__REQUEST__BODY_ALLOCS;
		req->allocs = u;
		return true;
	case 10:
		smh__occupancy_request__init(u);
		((Smh__OccupancyRequest *)u)->region = op->a % (n_regions + 2);
		((Smh__OccupancyRequest *)u)->cells = op->v % 5000;
		req->body_case = SMH__REQUEST__BODY_OCCUPANCY;
		req->occupancy = u;
		return true;
	case 12: /* no body: a request kind this daemon does not know */
		return true;
	default:
		return false;
	}
}

static void run_op(const struct op *op, struct fuzz_input *in)
{
	Smh__Request req = SMH__REQUEST__INIT;
	union {
		Smh__AllocRequest alloc;
		Smh__FreeRequest free;
		Smh__ReallocRequest realloc;
		Smh__ExportRequest export_;
		Smh__ImportRequest import;
		Smh__ClientsRequest clients;
		Smh__AllocsRequest allocs;
		Smh__OccupancyRequest occupancy;
		Smh__RegionsRequest regions;
		Smh__StatsRequest stats;
	} u;
	struct conn *c = &run.conns[op->slot];
	char name[80];

	if (op->kind != 0 && op->kind != 11 && op->kind != 13 && !op->no_hello &&
	    !c->ctx.hello_done)
		send_hello(op->slot, SMH_PROTOCOL_VERSION, "fuzz");
	if (build(op, &req, &u) || build_query(op, &req, &u)) {
		send_request(op->slot, &req, op->cut ? op->b : 0);
		return;
	}
	switch (op->kind) {
	case 0: /* hello, maybe of another version, with a name of up to 79 bytes */
	case 14:
		memset(name, 'n', sizeof(name));
		name[op->b % sizeof(name)] = '\0';
		send_hello(op->slot, op->a == 0xff ? op->v : SMH_PROTOCOL_VERSION, name);
		return;
	case 11: /* the connection closes; a new one takes its place */
		conn_close(c);
		conn_open(c, op->slot);
		return;
	case 13: /* raw bytes from the program */
		deliver_copy(op->slot, in, op->a % 64);
		return;
	}
}

static void run_program(struct fuzz_input *in)
{
	while (in->n >= 5) {
		uint8_t o = fuzz_u8(in);
		struct op op = {
			.kind = o & 15,
			.slot = (o >> 4) & 3,
			.no_hello = o & 0x40,
			.cut = o & 0x80,
		};

		op.a = fuzz_u8(in);
		op.b = fuzz_u8(in);
		op.v = fuzz_u16(in);
		if (op.no_hello && op.cut) /* both bits: a plain op on slot 3 */
			op.no_hello = op.cut = false;
		run_op(&op, in);
	}
}

/* ---------------------------------------------------------------- setup and the final checks */

static void scrub_zero(void *data, uint32_t region, uint64_t addr, uint64_t len)
{
	backend_zero(data, region, addr, len);
}

static void check_pool_as_new(void)
{
	for (size_t i = 0; i < n_regions; i++) {
		const struct pool_region *r = pool_region(pool, i);
		const struct backend_region *br = backend_region(backend, i);
		struct buddy_stats st;
		char why[256];

		FUZZ_CHECK(pool_region_stats(pool, i, &st) == 0);
		FUZZ_CHECK(st.used == 0 && st.n_allocs == 0 && st.free == st.total);
		FUZZ_CHECK(fuzz_same_stats(&st, &initial[i]));
		if (buddy_check(r->buddy, why, sizeof(why)) != 0)
			fuzz_fail(__FILE__, __LINE__, why);
		FUZZ_CHECK(all(br->map, br->map_len, 0));
	}
}

/* At exit (libFuzzer has no teardown hook): the state file goes, and its directory. */
static void state_done(void)
{
	state_close(state, true);
	rmdir(state_dir_name);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dtb = getenv("SMH_FUZZ_DTB") ? getenv("SMH_FUZZ_DTB") : FUZZ_DTB;
	struct backend_options opts = { .kind = BACKEND_MEMFD };
	struct dt_config cfg = { 0 };
	struct pool_hooks hooks;
	char err[256];

	log_set_level(LOG_ERROR);
	policy_init(&policy);
	if (policy_parse(&policy, "POLICY", POLICY, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz-requests: %s\n", err);
		abort();
	}
	if (dt_load(dtb, &cfg, NULL) != 0) {
		fprintf(stderr, "fuzz-requests: cannot load %s (set SMH_FUZZ_DTB)\n", dtb);
		abort();
	}
	FUZZ_CHECK(cfg.n_regions > 0 && cfg.n_regions <= REGIONS_MAX);
	FUZZ_CHECK(backend_create(&opts, &cfg, NULL, &backend) == 0);
	hooks = backend_pool_hooks(backend);
	FUZZ_CHECK(pool_create(&cfg, POOL_DEFAULT_GRANULE, &hooks, NULL, &pool) == 0);
	n_regions = cfg.n_regions;
	dt_config_finish(&cfg);
	for (size_t i = 0; i < n_regions; i++)
		FUZZ_CHECK(pool_region_stats(pool, i, &initial[i]) == 0);
	FUZZ_CHECK(mkdtemp(state_dir_name) != NULL);
	{
		struct state_old old;

		FUZZ_CHECK(state_open(state_dir_name, 1, "fuzz", &state, &old) == 0);
		FUZZ_CHECK(!old.found);
		state_old_finish(&old);
	}
	FUZZ_CHECK(state_commit(state) == 0);
	atexit(state_done);
	/* The rest is freed at exit by the operating system. */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct broker_journal journal = state_journal(state);

	memset(&run, 0, offsetof(struct run, out));
	broker_init(&run.broker, pool,
		    &(struct broker_scrub){ .zero = scrub_zero, .data = backend });
	broker_set_journal(&run.broker, &journal);
	if (size > 0 && data[0] == 0xfe)
		run.policy = &policy;
	for (size_t i = 0; i < N_CONNS; i++)
		conn_open(&run.conns[i], i);
	if (size > 0 && data[0] >= 0xfe) {
		in.p++;
		in.n--;
		run_program(&in);
	} else {
		run_raw(&in);
	}
	for (size_t i = 0; i < N_CONNS; i++)
		conn_close(&run.conns[i]);
	FUZZ_CHECK(run.broker.n_clients == 0 && broker_n_allocs(&run.broker) == 0);
	FUZZ_CHECK(run.broker.tokens.n == 0 && run.broker.n_shared == 0);
	FUZZ_CHECK(state_n_records(state) == 0);
	broker_finish(&run.broker);
	check_pool_as_new();
	return 0;
}
