/* SPDX-License-Identifier: MIT */
/*
 * The copy helpers against memcpy: smh_buffer_write/read on a cached mapping (a memfd region,
 * where they are memcpy: target at least 0.9 times memcpy's speed, that is at most 1.11 times
 * its time), and on the same memory treated as Device memory (the aligned-word loops, for
 * reference). The Device-memory rows use a copy of the buffer whose fd is no region's: its type
 * is then unknown, which the helpers treat as Device memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

#define COPY_BYTES (256u << 10) /* fits a core's L2 cache: the copy, not DRAM, is measured */

struct copy_ctx {
	struct smh_buffer buf;
	unsigned char *mem; /* ordinary memory on the caller's side */
	bool helper;        /* smh_buffer_*, else memcpy */
	bool read;          /* from the buffer, else to it */
};

static int op_copy(void *ctx, uint64_t *nsp)
{
	struct copy_ctx *c = ctx;
	uint64_t t0 = bench_now_ns();
	int err = 0;

	if (!c->helper && c->read)
		memcpy(c->mem, c->buf.addr, COPY_BYTES);
	else if (!c->helper)
		memcpy(c->buf.addr, c->mem, COPY_BYTES);
	else if (c->read)
		err = smh_buffer_read(&c->buf, 0, c->mem, COPY_BYTES);
	else
		err = smh_buffer_write(&c->buf, 0, c->mem, COPY_BYTES);
	*nsp = bench_now_ns() - t0;
	return err;
}

/* memcpy, the helper on cached memory, the helper as on Device memory: one direction. */
static int copy_group(const struct bench_options *o, const struct smh_buffer *buf,
		      unsigned char *mem, bool read, struct table *t)
{
	static const char *const names[2][3] = {
		{ "memcpy 256 KiB to cached", "smh_buffer_write, cached",
		  "smh_buffer_write, Device" },
		{ "memcpy 256 KiB from cached", "smh_buffer_read, cached",
		  "smh_buffer_read, Device" },
	};
	struct copy_ctx ctx[3] = {
		{ .buf = *buf, .mem = mem, .read = read },
		{ .buf = *buf, .mem = mem, .read = read, .helper = true },
		{ .buf = *buf, .mem = mem, .read = read, .helper = true },
	};
	struct bench_case cases[3];
	int err = 0;

	ctx[2].buf.fd = -1;
	for (size_t i = 0; i < 3; i++) {
		cases[i] = (struct bench_case){ .op = op_copy, .ctx = &ctx[i] };
		if (err == 0)
			err = samples_init(&cases[i].s, o->iterations);
	}
	if (err == 0)
		err = bench_interleave(cases, 3, o->iterations, o->rounds);
	for (size_t i = 0; i < 3 && err == 0; i++) {
		struct stats st;
		struct row *r;

		samples_stats(&cases[i].s, &st);
		r = table_add(t, names[read][i], &st, i == 0 ? NULL : names[read][0]);
		if (i == 1)
			row_target(r, read ? "read/memcpy" : "write/memcpy", "<= 1.11", 1.11, true);
	}
	for (size_t i = 0; i < 3; i++)
		samples_finish(&cases[i].s);
	return err;
}

int bench_copy(const struct bench_options *o, const char *smh_socket, struct table *t)
{
	struct smh_client *client;
	struct smh_buffer buf;
	unsigned char *mem = malloc(COPY_BYTES);
	int err = mem ? smh_connect(smh_socket, &client) : -ENOMEM;

	if (err < 0) {
		free(mem);
		return err;
	}
	memset(mem, 0x5a, COPY_BYTES);
	err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, COPY_BYTES, 64, &buf);
	if (err == 0 && (err = smh_map(&buf)) == 0) {
		/* A memfd region: the helpers must find it cached, or this measures nothing. */
		if (smh_buffer_mapping(&buf) != SMH_MAPPING_CACHED)
			err = -EPROTO;
		if (err == 0)
			err = copy_group(o, &buf, mem, false, t);
		if (err == 0)
			err = copy_group(o, &buf, mem, true, t);
	}
	smh_disconnect(client);
	free(mem);
	return err;
}
