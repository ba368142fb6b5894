/* SPDX-License-Identifier: MIT */
/*
 * The fake smhd (see fake-smhd.h). A bump allocator per region is enough: the tests only need
 * each reply to be what smhd would send, with the region fd attached the first time a reply
 * names its region. Each buffer's first bytes are stamped "buffer HANDLE" in the memfd, so
 * that a test can check where a mapping points.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "tests/fake-smhd.h"

const struct fake_region fake_regions[N_REGIONS] = {
	{ "ram", "memfd", 0x80000000, 0x100000, 0, SMH_REG_ATTR_CACHEABLE },
	{ "dma", "devmem", 0x100800, 0x10000, 0x100800, SMH_REG_ATTR_NON_CACHEABLE },
};

/* ---------------------------------------------------------------- the fake's answers */

static uint64_t fd_offset(const struct fake_alloc *a)
{
	return fake_regions[a->region].fd_base + a->rel;
}

static void fill_buffer(const struct fake_alloc *a, Smh__Buffer *b)
{
	smh__buffer__init(b);
	b->handle = a->handle;
	b->region = a->region;
	b->offset = fd_offset(a);
	b->size = a->size;
	b->phys_addr = fake_regions[a->region].phys + a->rel;
	b->attr = fake_regions[a->region].attr;
}

/* Carves @size bytes from region @r (a bump allocator: enough for a test). */
static struct fake_alloc *fake_carve(struct fake *f, uint32_t r, uint64_t size, uint64_t align)
{
	struct fake_alloc *a = &f->allocs[f->n_allocs++];
	uint64_t rel = f->next_rel[r];

	if (align > 64)
		rel = (rel + align - 1) & ~(align - 1);
	*a = (struct fake_alloc){ ++f->next_handle, r, rel, (size + 63) & ~63ull };
	f->next_rel[r] = rel + a->size;
	return a;
}

static struct fake_alloc *fake_find(struct fake *f, uint64_t handle)
{
	for (size_t i = 0; i < f->n_allocs; i++) {
		if (f->allocs[i].handle == handle && f->allocs[i].size)
			return &f->allocs[i];
	}
	return NULL;
}

/* Answers with a Buffer, attaching the region's fd the first time. */
static void answer_buffer(struct fake *f, const struct fake_alloc *a, Smh__Response *resp,
			  Smh__Buffer *b, uint32_t *fd_region, int *fds, size_t *n_fds)
{
	fill_buffer(a, b);
	resp->body_case = SMH__RESPONSE__BODY_BUFFER;
	resp->buffer = b;
	if (f->fd_sent[a->region] && f->mode != FAKE_MISSING_FD)
		return;
	f->fd_sent[a->region] = 1;
	*fd_region = a->region;
	resp->n_fd_regions = 1;
	resp->fd_regions = fd_region;
	if (f->mode != FAKE_MISSING_FD)
		fds[(*n_fds)++] = f->memfd[a->region];
}

static void refuse(Smh__Response *resp, int status, const char *msg)
{
	resp->status = status;
	resp->message = (char *)msg;
}

/* A label-shaped pattern at a buffer's first bytes, so that the test knows where it points. */
static void stamp(struct fake *f, const struct fake_alloc *a)
{
	char text[32];

	snprintf(text, sizeof(text), "buffer %llu", (unsigned long long)a->handle);
	assert_int_equal(pwrite(f->memfd[a->region], text, strlen(text) + 1, (off_t)fd_offset(a)),
			 (ssize_t)strlen(text) + 1);
}

static void move_contents(struct fake *f, const struct fake_alloc *from,
			  const struct fake_alloc *to)
{
	char bytes[4096];
	size_t n = from->size < sizeof(bytes) ? from->size : sizeof(bytes);

	assert_int_equal(pread(f->memfd[from->region], bytes, n, (off_t)fd_offset(from)), n);
	assert_int_equal(pwrite(f->memfd[to->region], bytes, n, (off_t)fd_offset(to)), n);
}

/* Everything an answer may point to, so that it outlives the handler. */
struct answer {
	Smh__Response resp;
	Smh__HelloReply hello;
	Smh__Buffer buffer;
	Smh__ExportReply export;
	Smh__RegionsReply regions;
	Smh__Region region[N_REGIONS], *region_ptr[N_REGIONS];
	Smh__StatsReply stats;
	Smh__ClientsReply clients;
	Smh__ClientInfo client[2], *client_ptr[2];
	Smh__AllocsReply allocs;
	Smh__AllocInfo alloc[2], *alloc_ptr[2];
	Smh__OccupancyReply occupancy;
	uint32_t used[4096];
	uint32_t fd_region;
	int fds[WIRE_FDS_MAX];
	size_t n_fds;
};

static void answer_hello(struct fake *f, struct answer *an)
{
	if (f->mode == FAKE_OLD_VERSION) {
		refuse(&an->resp, -EPROTONOSUPPORT, "smhd speaks protocol 2 only");
		return;
	}
	smh__hello_reply__init(&an->hello);
	an->hello.version = SMH_PROTOCOL_VERSION;
	an->hello.granule = 64;
	an->hello.n_regions = N_REGIONS;
	an->hello.client_id = 7;
	an->hello.session = f->session;
	an->hello.n_reclaimed = f->n_reclaimed;
	an->resp.body_case = SMH__RESPONSE__BODY_HELLO;
	an->resp.hello = &an->hello;
}

static int answer_alloc(struct fake *f, const Smh__AllocRequest *req, struct answer *an)
{
	struct fake_alloc *a;

	if (f->mode == FAKE_HANG_UP)
		return -1;
	if (req->size == 0 || req->attr >= N_REGIONS) {
		refuse(&an->resp, -EINVAL, "size 0 or bad attribute");
		return 0;
	}
	a = fake_carve(f, req->attr, req->size, req->align);
	stamp(f, a);
	answer_buffer(f, a, &an->resp, &an->buffer, &an->fd_region, an->fds, &an->n_fds);
	if (f->mode == FAKE_WRONG_BODY) {
		an->resp.body_case = SMH__RESPONSE__BODY_EXPORT;
		smh__export_reply__init(&an->export);
		an->resp.export = &an->export;
	} else if (f->mode == FAKE_BAD_REGION) {
		an->buffer.region = 5;
	}
	return 0;
}

static void answer_realloc(struct fake *f, const Smh__ReallocRequest *req, struct answer *an)
{
	struct fake_alloc *old = fake_find(f, req->handle), *moved;

	if (!old) {
		refuse(&an->resp, -EINVAL, "not held");
		return;
	}
	/* Always moves, so that the test sees the contents follow. */
	moved = fake_carve(f, old->region, req->size, 0);
	move_contents(f, old, moved);
	moved->handle = old->handle;
	f->next_handle--;
	old->size = 0;
	answer_buffer(f, moved, &an->resp, &an->buffer, &an->fd_region, an->fds, &an->n_fds);
}

static void answer_free(struct fake *f, uint64_t handle, struct answer *an)
{
	struct fake_alloc *a = fake_find(f, handle);

	if (a)
		a->size = 0;
	else
		refuse(&an->resp, -EINVAL, "no buffer with that handle is held by this client");
}

static void answer_token(struct fake *f, const Smh__Request *req, struct answer *an)
{
	struct fake_alloc *a;

	if (req->body_case == SMH__REQUEST__BODY_EXPORT) {
		a = fake_find(f, req->export->handle);
		smh__export_reply__init(&an->export);
		an->export.token = a ? a->handle ^ 0x5a5a0000 : 0;
		an->resp.body_case = SMH__RESPONSE__BODY_EXPORT;
		an->resp.export = &an->export;
		return;
	}
	a = fake_find(f, req->import->token ^ 0x5a5a0000);
	if (!a) {
		refuse(&an->resp, -ENOENT, "no such token");
		return;
	}
	answer_buffer(f, a, &an->resp, &an->buffer, &an->fd_region, an->fds, &an->n_fds);
}

static void answer_regions(struct answer *an)
{
	smh__regions_reply__init(&an->regions);
	for (uint32_t i = 0; i < N_REGIONS; i++) {
		Smh__Region *r = &an->region[i];

		smh__region__init(r);
		r->index = i;
		r->label = (char *)fake_regions[i].label;
		r->phys_addr = fake_regions[i].phys;
		r->size = fake_regions[i].size;
		r->managed = fake_regions[i].size;
		r->attr = fake_regions[i].attr;
		r->backend = (char *)fake_regions[i].backend;
		r->mapping = "cached";
		an->region_ptr[i] = r;
	}
	an->regions.n_regions = N_REGIONS;
	an->regions.regions = an->region_ptr;
	an->resp.body_case = SMH__RESPONSE__BODY_REGIONS;
	an->resp.regions = &an->regions;
}

/* Clients 1..N_CLIENTS, two per page. */
static void answer_clients(const Smh__ClientsRequest *req, struct answer *an)
{
	smh__clients_reply__init(&an->clients);
	for (uint64_t id = req->after + 1; id <= N_CLIENTS && an->clients.n_clients < 2; id++) {
		Smh__ClientInfo *c = &an->client[an->clients.n_clients];

		smh__client_info__init(c);
		c->id = id;
		c->pid = (int32_t)(1000 + id);
		c->comm = "fake";
		an->client_ptr[an->clients.n_clients++] = c;
	}
	an->clients.clients = an->client_ptr;
	an->clients.more = req->after + an->clients.n_clients < N_CLIENTS;
	an->resp.body_case = SMH__RESPONSE__BODY_CLIENTS;
	an->resp.clients = &an->clients;
}

/* The live allocations after @after, two per page. */
static void answer_allocs(struct fake *f, const Smh__AllocsRequest *req, struct answer *an)
{
	static uint64_t holders[1] = { 7 };

	smh__allocs_reply__init(&an->allocs);
	for (size_t i = 0; i < f->n_allocs; i++) {
		const struct fake_alloc *a = &f->allocs[i];
		Smh__AllocInfo *info = &an->alloc[an->allocs.n_allocs];

		if (!a->size || a->handle <= req->after)
			continue;
		if (an->allocs.n_allocs == 2) {
			an->allocs.more = 1;
			break;
		}
		smh__alloc_info__init(info);
		info->handle = a->handle;
		info->region = a->region;
		info->size = a->size;
		info->owner = 7;
		info->n_holders = 1;
		info->holders = holders;
		an->alloc_ptr[an->allocs.n_allocs++] = info;
	}
	an->allocs.allocs = an->alloc_ptr;
	an->resp.body_case = SMH__RESPONSE__BODY_ALLOCS;
	an->resp.allocs = &an->allocs;
}

static void answer_inspection(const struct fake *f, const Smh__Request *req, struct answer *an)
{
	if (req->body_case == SMH__REQUEST__BODY_STATS) {
		static Smh__RegionStats rs[N_REGIONS], *rsp[N_REGIONS];
		/* Waits over 5 ms, over a bound the library does not know (7 ms), over 1 s. */
		static Smh__WaitCount wc[3], *wcp[3];
		static const uint32_t over_ms[3] = { 5, 7, 1000 };

		smh__stats_reply__init(&an->stats);
		for (uint32_t i = 0; i < N_REGIONS; i++) {
			smh__region_stats__init(&rs[i]);
			rs[i].region = i;
			rs[i].total = fake_regions[i].size;
			rsp[i] = &rs[i];
		}
		an->stats.n_regions = N_REGIONS;
		an->stats.regions = rsp;
		an->stats.granule = 64;
		an->stats.n_clients = 1;
		for (int i = 0; i < 3; i++) {
			smh__wait_count__init(&wc[i]);
			wc[i].over_ms = over_ms[i];
			wc[i].count = 10u + (unsigned)i;
			wcp[i] = &wc[i];
		}
		an->stats.requests = 42;
		an->stats.wait_longest_us = 1234567;
		an->stats.n_waits = f->stats_without_waits ? 0 : 3;
		an->stats.waits = wcp;
		an->resp.body_case = SMH__RESPONSE__BODY_STATS;
		an->resp.stats = &an->stats;
		return;
	}
	smh__occupancy_reply__init(&an->occupancy);
	an->occupancy.n_used = req->occupancy->cells;
	for (uint32_t i = 0; i < req->occupancy->cells && i < 4096; i++)
		an->used[i] = i % 1001;
	an->occupancy.used = an->used;
	an->occupancy.cell_bytes = 256;
	an->resp.body_case = SMH__RESPONSE__BODY_OCCUPANCY;
	an->resp.occupancy = &an->occupancy;
}

/* Whether to hang up after doing @req (see fake-smhd.h). */
static int dies_on(struct fake *f, const Smh__Request *req)
{
	if ((int)req->body_case != f->hang_up_on || f->n_hang_ups == 0)
		return 0;
	if (f->hang_up_skip > 0) {
		f->hang_up_skip--;
		return 0;
	}
	f->n_hang_ups--;
	return 1;
}

/* Answers @req; returns -1 to hang up instead. */
static int answer(struct fake *f, const Smh__Request *req, struct answer *an)
{
	switch (req->body_case) {
	case SMH__REQUEST__BODY_HELLO:
		answer_hello(f, an);
		return 0;
	case SMH__REQUEST__BODY_ALLOC:
		return answer_alloc(f, req->alloc, an);
	case SMH__REQUEST__BODY_REALLOC:
		answer_realloc(f, req->realloc, an);
		return 0;
	case SMH__REQUEST__BODY_FREE:
		answer_free(f, req->free->handle, an);
		return 0;
	case SMH__REQUEST__BODY_EXPORT:
	case SMH__REQUEST__BODY_IMPORT:
		answer_token(f, req, an);
		return 0;
	case SMH__REQUEST__BODY_REGIONS:
		answer_regions(an);
		return 0;
	case SMH__REQUEST__BODY_CLIENTS:
		answer_clients(req->clients, an);
		return 0;
	case SMH__REQUEST__BODY_ALLOCS:
		answer_allocs(f, req->allocs, an);
		return 0;
	default:
		answer_inspection(f, req, an);
		return 0;
	}
}

/* ---------------------------------------------------------------- the fake's loop */

/* Waits for @fd to be readable; 0 when stopped. */
static int fake_wait(struct fake *f, int fd)
{
	struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
				 { .fd = f->stop[0], .events = POLLIN } };

	while (poll(pfd, 2, -1) < 0)
		assert_int_equal(errno, EINTR);
	return pfd[1].revents ? 0 : 1;
}

/* One request and its answer; 0 when the connection is over. */
static int fake_serve_one(struct fake *f, int conn, uint8_t *msg)
{
	static struct answer an;
	Smh__Request *req;
	ssize_t n;
	int hang_up;

	if (!fake_wait(f, conn))
		return 0;
	n = wire_recv(conn, msg, SMH_MSG_MAX, NULL, NULL);
	if (n <= 0)
		return 0;
	req = wire_unpack_request(msg, (size_t)n);
	assert_non_null(req);
	memset(&an, 0, sizeof(an));
	smh__response__init(&an.resp);
	an.resp.id = req->id;
	assert_in_range(req->body_case, 0, FAKE_KINDS - 1);
	f->n_received[req->body_case]++;
	hang_up = answer(f, req, &an);
	if (dies_on(f, req))
		hang_up = -1;
	if (req->body_case == SMH__REQUEST__BODY_HELLO && f->answered_hellos &&
	    f->n_received[req->body_case] > f->answered_hellos) {
		wire_free_request(req);
		return 1; /* a daemon that never answers (stopped, or stuck) */
	}
	wire_free_request(req);
	if (hang_up < 0)
		return 0;
	n = wire_pack_response(&an.resp, msg);
	assert_true(n > 0);
	assert_int_equal(wire_send(conn, msg, (size_t)n, an.fds, an.n_fds), 0);
	return f->mode != FAKE_OLD_VERSION;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t *msg = malloc(SMH_MSG_MAX);
	int conn;

	assert_non_null(msg);
	while (fake_wait(f, f->listen_fd)) {
		conn = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		assert_true(conn >= 0);
		memset(f->fd_sent, 0, sizeof(f->fd_sent));
		while (fake_serve_one(f, conn, msg))
			;
		close(conn);
		f->n_closed++;
	}
	free(msg);
	return NULL;
}

struct fake *fake_start(enum fake_mode mode)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	assert_non_null(f);
	f->mode = mode;
	strcpy(f->dir, "/tmp/smh-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/smhd.sock", f->dir);
	for (int i = 0; i < N_REGIONS; i++) {
		f->memfd[i] = memfd_create(fake_regions[i].label, MFD_CLOEXEC);
		assert_true(f->memfd[i] >= 0);
		assert_int_equal(ftruncate(f->memfd[i],
					   (off_t)(fake_regions[i].fd_base + fake_regions[i].size)),
				 0);
	}
	assert_int_equal(pipe2(f->stop, O_CLOEXEC), 0);
	f->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	strcpy(addr.sun_path, f->path);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	return f;
}

void fake_stop(struct fake *f)
{
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	close(f->stop[0]);
	close(f->stop[1]);
	for (int i = 0; i < N_REGIONS; i++)
		close(f->memfd[i]);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
}
