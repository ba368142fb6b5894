/* SPDX-License-Identifier: MIT */
/*
 * Buffers: alloc, realloc, free, export, import, and mapping them.
 *
 * A buffer the daemon describes (a Buffer message) is checked against its region before the
 * caller sees it: the region exists, this connection holds its fd, the attribute is the
 * region's, and the bytes lie inside the region. The region table (for the label and those
 * checks) is fetched once, before the first request that returns a buffer, so that a reply is
 * never half used because the table could not be had.
 *
 * Mapping: a region is mapped once per connection, whole, at the first smh_map() of one of its
 * buffers; buffers point into that mapping. Where the region starts in its fd is not on the
 * wire but follows from any of its buffers: the fd offset of the region's first byte is
 * buf->offset - (buf->phys_addr - region->phys_addr) (0 for memfd regions, the physical address
 * for devmem ones).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/client-internal.h"
#include "common/bufname.h"

_Static_assert(SMH_NAME_MAX == BUFNAME_MAX, "one limit for the library and the daemon");

/*
 * Bytes of region @r from its physical address that buffers may use: the device tree's size.
 * (The allocator manages whole granules inside it, which may start after phys_addr.)
 */
static uint64_t region_bytes(const struct smh_region_info *r)
{
	return r->size;
}

/* Checks @b against its region and this connection's fds. Call with the client's lock held. */
static int check_buffer(struct smh_client *client, const Smh__Buffer *b)
{
	const struct smh_region_info *r;
	uint64_t delta;

	if (b->region >= client->n_regions)
		return client_proto_error(client, "a buffer in a region that does not exist");
	if (client->slots[b->region].fd < 0)
		return client_proto_error(client, "a buffer in a region whose fd we were not sent");
	r = &client->regions[b->region];
	if (b->attr != (uint32_t)r->attr || b->size == 0)
		return client_proto_error(client, "a buffer with a wrong attribute or no size");
	if (b->phys_addr < r->phys_addr)
		return client_proto_error(client, "a buffer before its region");
	delta = b->phys_addr - r->phys_addr;
	if (delta > region_bytes(r) || b->size > region_bytes(r) - delta || b->offset < delta)
		return client_proto_error(client, "a buffer outside its region");
	return 0;
}

/* Fills @buf from @b, checked. buf->addr is NULL. */
static int fill_buffer(struct smh_client *client, const Smh__Buffer *b, struct smh_buffer *buf)
{
	int err = check_buffer(client, b);

	if (err < 0)
		return err;
	memset(buf, 0, sizeof(*buf));
	buf->handle = b->handle;
	buf->fd = client->slots[b->region].fd;
	buf->offset = b->offset;
	buf->size = b->size;
	buf->phys_addr = b->phys_addr;
	buf->attr = (enum smh_reg_attr)b->attr;
	memcpy(buf->region, client->regions[b->region].label, sizeof(buf->region));
	return 0;
}

/* Where a reply describing a new hold goes: the buffer, and its name if the caller wants it. */
struct hold_out {
	struct smh_buffer *buf;
	char *name; /* SMH_NAME_MAX + 1 bytes, or NULL */
};

static int read_buffer(struct smh_client *client, const Smh__Response *resp, void *ctx)
{
	struct hold_out *out = ctx;
	const char *name = resp->buffer->name ? resp->buffer->name : "";
	size_t len = strlen(name);
	int err;

	/* The daemon checks names; one it should have refused is not passed on. */
	if (!bufname_valid(name, len, NULL, 0))
		return client_proto_error(client, "a buffer with a malformed name");
	err = fill_buffer(client, resp->buffer, out->buf);
	if (err == 0 && out->name)
		memcpy(out->name, name, len + 1);
	return err;
}

/*
 * A request whose reply is a Buffer, read by @reader. @hold: the reply is a new hold (an alloc,
 * an import), which a resume must give back.
 */
static int buffer_call(struct smh_client *client, Smh__Request *req, client_read_fn *reader,
		       void *ctx, bool hold)
{
	int err = client_begin(client);

	if (err < 0)
		return err;
	err = client_load_regions(client);
	if (err == 0)
		err = client_request(client, req, SMH__RESPONSE__BODY_BUFFER, reader, ctx);
	if (err == 0 && hold)
		client->n_held++;
	client_end(client);
	return err;
}

/* An alloc or an import: a request whose reply is a new hold, described into @buf and @name. */
static int hold_call(struct smh_client *client, Smh__Request *req, struct smh_buffer *buf,
		     char *name)
{
	struct hold_out out = { .buf = buf, .name = name };

	if (!buf)
		return -EINVAL;
	return buffer_call(client, req, read_buffer, &out, true);
}

/*
 * Whether this process could map a buffer of @size bytes: no object may exceed PTRDIFF_MAX
 * (malloc() refuses larger ones too), which on a 32-bit system is 2 GiB. Asked before the
 * daemon is, so a 32-bit process never holds a buffer it cannot map.
 */
static int check_mappable(struct smh_client *client, size_t size)
{
	char msg[160];

	if (size <= PTRDIFF_MAX)
		return 0;
	snprintf(msg, sizeof(msg),
		 "%zu bytes do not fit in this process's address space: a buffer is at most %td "
		 "bytes (PTRDIFF_MAX) here",
		 size, (ptrdiff_t)PTRDIFF_MAX);
	client_set_last_error(client, msg);
	return -EOVERFLOW;
}

int smh_alloc(struct smh_client *client, enum smh_reg_attr attr, size_t size, size_t align,
	      struct smh_buffer *buf)
{
	return smh_alloc_named(client, attr, size, align, NULL, buf);
}

int smh_alloc_named(struct smh_client *client, enum smh_reg_attr attr, size_t size, size_t align,
		    const char *name, struct smh_buffer *buf)
{
	Smh__AllocRequest body = SMH__ALLOC_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	char why[128];

	int err = client ? check_mappable(client, size) : 0;

	if (err < 0)
		return err;
	/* Checked here too: refused without a round trip, the reason in smh_last_error(). */
	if (name && !bufname_valid(name, strnlen(name, SMH_NAME_MAX + 1), why, sizeof(why))) {
		if (client)
			client_set_last_error(client, why);
		return -EINVAL;
	}
	body.attr = (uint32_t)attr;
	body.size = size;
	body.align = align;
	body.name = name ? (char *)name : (char *)"";
	req.body_case = SMH__REQUEST__BODY_ALLOC;
	req.alloc = &body;
	return hold_call(client, &req, buf, NULL);
}

int smh_import(struct smh_client *client, uint64_t token, struct smh_buffer *buf)
{
	return smh_import_named(client, token, buf, NULL);
}

int smh_import_named(struct smh_client *client, uint64_t token, struct smh_buffer *buf, char *name)
{
	Smh__ImportRequest body = SMH__IMPORT_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	body.token = token;
	req.body_case = SMH__REQUEST__BODY_IMPORT;
	req.import = &body;
	return hold_call(client, &req, buf, name);
}

/* ---------------------------------------------------------------- mapping */

/* Maps region @index of @client, using @buf to place it in the fd. Under the registry lock. */
static int map_region(struct smh_client *client, uint32_t index, const struct smh_buffer *buf)
{
	const struct smh_region_info *r = &client->regions[index];
	struct client_slot *slot = &client->slots[index];
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t base, start, end;
	void *map;

	if (buf->phys_addr < r->phys_addr || buf->offset < buf->phys_addr - r->phys_addr)
		return -EINVAL;
	base = buf->offset - (buf->phys_addr - r->phys_addr);
	if (base + region_bytes(r) < base || base + region_bytes(r) > UINT64_MAX - page)
		return -EINVAL;
	start = base & ~(page - 1);
	end = (base + region_bytes(r) + page - 1) & ~(page - 1);
	if (start > (uint64_t)INT64_MAX || end - start > PTRDIFF_MAX)
		return -EOVERFLOW; /* an offset beyond off_t, or more than this process can map */
	map = mmap(NULL, (size_t)(end - start), PROT_READ | PROT_WRITE, MAP_SHARED, slot->fd,
		   (off_t)start);
	if (map == MAP_FAILED)
		return -errno;
	slot->map = map;
	slot->map_len = (size_t)(end - start);
	slot->map_base = start;
	return 0;
}

/* Sets buf->addr, mapping its region if needed. Under the registry lock. */
static int map_locked(struct smh_buffer *buf)
{
	struct smh_client *client;
	struct client_slot *slot;
	uint32_t index;
	int err;

	client = client_find_fd(buf->fd, &index);
	if (!client || !client->regions)
		return -EINVAL;
	slot = &client->slots[index];
	if (!slot->map) {
		err = map_region(client, index, buf);
		if (err < 0)
			return err;
	}
	if (buf->offset < slot->map_base || buf->offset - slot->map_base > slot->map_len ||
	    buf->size > slot->map_len - (buf->offset - slot->map_base))
		return -EINVAL;
	buf->addr = (char *)slot->map + (buf->offset - slot->map_base);
	return 0;
}

int smh_map(struct smh_buffer *buf)
{
	int err;

	if (!buf)
		return -EINVAL;
	client_registry_lock();
	err = map_locked(buf);
	client_registry_unlock();
	return err;
}

int smh_unmap(struct smh_buffer *buf)
{
	if (!buf)
		return -EINVAL;
	buf->addr = NULL;
	return 0;
}

/* ---------------------------------------------------------------- realloc, free, export */

/* A realloc's reply: the buffer @handle, moved. */
struct move {
	uint64_t handle;
	struct smh_buffer moved;
};

static int read_move(struct smh_client *client, const Smh__Response *resp, void *ctx)
{
	struct move *m = ctx;
	int err = fill_buffer(client, resp->buffer, &m->moved);

	if (err == 0 && m->moved.handle != m->handle)
		err = client_proto_error(client, "a realloc reply for another buffer");
	return err;
}

int smh_realloc(struct smh_client *client, struct smh_buffer *buf, size_t size)
{
	Smh__ReallocRequest body = SMH__REALLOC_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	struct move m;
	int err;

	if (!buf)
		return -EINVAL;
	err = client ? check_mappable(client, size) : 0;
	if (err < 0)
		return err;
	m.handle = body.handle = buf->handle;
	body.size = size;
	req.body_case = SMH__REQUEST__BODY_REALLOC;
	req.realloc = &body;
	err = buffer_call(client, &req, read_move, &m, false);
	if (err < 0)
		return err;
	/* The daemon has resized it: from here on @buf must describe the new buffer. */
	if (buf->addr) {
		err = smh_map(&m.moved);
		if (err < 0)
			client_log(SMH_LOG_ERROR, "smh: cannot map a reallocated buffer: %s",
				   smh_strerror(err));
	}
	*buf = m.moved;
	return err;
}

int smh_free(struct smh_client *client, struct smh_buffer *buf)
{
	Smh__FreeRequest body = SMH__FREE_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	int err;

	if (!buf)
		return -EINVAL;
	err = client_begin(client);
	if (err < 0)
		return err;
	body.handle = buf->handle;
	req.body_case = SMH__REQUEST__BODY_FREE;
	req.free = &body;
	err = client_request_release(client, &req);
	if (err == 0 && client->n_held > 0)
		client->n_held--;
	client_end(client);
	if (err < 0)
		return err;
	buf->addr = NULL;
	buf->fd = -1;
	return 0;
}

static int read_token(struct smh_client *client, const Smh__Response *resp, void *tokenp)
{
	(void)client;
	*(uint64_t *)tokenp = resp->export->token;
	return 0;
}

int smh_export(struct smh_client *client, const struct smh_buffer *buf, uint64_t *tokenp)
{
	Smh__ExportRequest body = SMH__EXPORT_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;

	if (!buf || !tokenp)
		return -EINVAL;
	body.handle = buf->handle;
	req.body_case = SMH__REQUEST__BODY_EXPORT;
	req.export = &body;
	return client_round_trip(client, &req, SMH__RESPONSE__BODY_EXPORT, read_token, tokenp);
}
