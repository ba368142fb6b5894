/* SPDX-License-Identifier: MIT */
/*
 * Buffer names in the state file (daemon/restart/state.c, compiled in for its record layouts):
 * a named buffer's record carries its name, under the check; a file of version 2 (main's
 * records, without names) is read whole, its buffers unnamed, so an upgrade loses nothing;
 * a header that mixes the versions' sizes is set aside; and names the check vouches for but
 * smhd would never have written (not terminated, control bytes, on a hold) are dropped, the
 * buffer kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/restart/state.c"
#include "tests/test-util.h"

#define FP UINT64_C(0x5eed5eed5eed5eed)

struct fixture {
	char dir[64];
	char path[128]; /* DIR/smhd.state */
	struct pool *pool;
	struct broker b;
	struct broker_client *c;
	struct state *s;
	struct state_old old;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/smh-test-state-names-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/smhd.state", f->dir);
	f->pool = test_example_pool(64);
	broker_init(&f->b, f->pool, NULL);
	assert_int_equal(broker_client_add(&f->b, 4321, 1000, 1000, "cam", &f->c), 0);
	f->c->proc_start = 99;
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	broker_set_journal(&f->b, NULL);
	broker_finish(&f->b);
	pool_destroy(f->pool);
	state_close(f->s, false);
	state_old_finish(&f->old);
	assert_int_equal(nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

static void open_state(struct fixture *f)
{
	state_close(f->s, false);
	f->s = NULL;
	state_old_finish(&f->old);
	assert_int_equal(state_open(f->dir, FP, "/run/smh/test.sock", &f->s, &f->old), 0);
}

static bool exists(const struct fixture *f, const char *name)
{
	char path[192];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	return lstat(path, &st) == 0;
}

/* A header of @version and @record_size, then @len bytes of records. */
static void write_file(const struct fixture *f, uint32_t version, uint32_t record_size,
		       const void *recs, size_t len)
{
	struct state_header h = {
		.version = version, .record_size = record_size, .fingerprint = FP, .next_handle = 50
	};
	int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	memcpy(h.magic, STATE_MAGIC, 8);
	assert_int_equal(write(fd, &h, sizeof(h)), sizeof(h));
	assert_int_equal(write(fd, recs, len), (ssize_t)len);
	close(fd);
}

static struct state_record_v2 v2_rec(uint32_t kind, uint64_t handle, uint64_t seq)
{
	struct state_record_v2 r = {
		.kind = kind,
		.region = 2,
		.handle = handle,
		.addr = 0x44000000 + 64 * handle,
		.size = 64,
		.align = kind == STATE_ALLOC ? 64 : 0,
		.token = kind == STATE_ALLOC ? 0xabc : 0,
		.session = kind == STATE_HOLD ? 777 : 0,
		.count = kind == STATE_HOLD ? 3 : 0,
		.proc_start = 5,
		.pid = 88,
		.uid = 1000,
		.seq = seq,
	};
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, &r, offsetof(struct state_record_v2, check));

	r.check = h ? h : 1;
	return r;
}

static struct state_record named_rec(uint64_t handle, const void *name, size_t len, uint64_t seq)
{
	struct state_record r = {
		.kind = STATE_ALLOC, .handle = handle, .addr = 0x42000000, .size = 64, .seq = seq
	};

	memcpy(r.name, name, len);
	r.check = state_record_check(&r);
	return r;
}

/* The journal writes the name; a crash leaves it in the file, read back. */
static void test_name_journaled(void **state)
{
	struct fixture *f = *state;
	struct broker_journal j;
	struct broker_alloc *a, *b;

	open_state(f);
	assert_int_equal(state_commit(f->s), 0);
	j = state_journal(f->s);
	broker_set_journal(&f->b, &j);
	assert_int_equal(broker_alloc_named(&f->b, f->c, SMH_REG_ATTR_CACHEABLE, 64, 0,
					    "camera0/frame3", &a),
			 0);
	assert_int_equal(broker_alloc(&f->b, f->c, SMH_REG_ATTR_CACHEABLE, 64, 0, &b), 0);
	broker_set_journal(&f->b, NULL); /* what a SIGKILL leaves */
	open_state(f);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 4);
	assert_int_equal(f->old.records[0].handle, a->handle);
	assert_string_equal(f->old.records[0].name, "camera0/frame3");
	assert_int_equal(f->old.records[1].handle, b->handle);
	assert_string_equal(f->old.records[1].name, "");
	assert_string_equal(f->old.records[2].name, ""); /* holds have none */
}

/* The check covers the name: a record whose name changed after it is torn, and dropped. */
static void test_name_under_check(void **state)
{
	struct fixture *f = *state;
	struct state_record recs[2] = { named_rec(1, "cam", 3, 1), named_rec(2, "dsp", 3, 2) };

	recs[1].name[BUFNAME_MAX] = 'x'; /* the last byte of the field */
	write_file(f, STATE_VERSION, sizeof(struct state_record), recs, sizeof(recs));
	open_state(f);
	assert_int_equal(f->old.n_records, 1);
	assert_memory_equal(&f->old.records[0], &recs[0], sizeof(recs[0]));
}

/* main's version 2 file: every record read, upgraded, unnamed; torn ones dropped as before. */
static void test_version_2_read(void **state)
{
	struct fixture *f = *state;
	struct state_record_v2 recs[] = {
		v2_rec(STATE_ALLOC, 1, 1),
		v2_rec(STATE_HOLD, 1, 2),
		v2_rec(STATE_ALLOC, 2, 3),
		v2_rec(STATE_ALLOC, 3, 4),
	};
	const struct state_record *r;

	recs[2].size = 128; /* torn: stored after its check */
	write_file(f, 2, sizeof(struct state_record_v2), recs, sizeof(recs));
	open_state(f);
	assert_true(f->old.found);
	assert_int_equal(f->old.next_handle, 50);
	assert_int_equal(f->old.n_records, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct state_record_v2 *v = &recs[i == 0 ? 0 : i == 1 ? 3 : 1];

		r = &f->old.records[i];
		assert_int_equal(r->kind, v->kind);
		assert_int_equal(r->region, v->region);
		assert_int_equal(r->handle, v->handle);
		assert_int_equal(r->addr, v->addr);
		assert_int_equal(r->size, v->size);
		assert_int_equal(r->align, v->align);
		assert_int_equal(r->token, v->token);
		assert_int_equal(r->session, v->session);
		assert_int_equal(r->count, v->count);
		assert_int_equal(r->proc_start, v->proc_start);
		assert_int_equal(r->pid, v->pid);
		assert_int_equal(r->uid, v->uid);
		assert_int_equal(r->seq, v->seq);
		assert_string_equal(r->name, "");
		assert_int_equal(r->check, state_record_check(r));
	}
	/* The new file is version 3. */
	assert_int_equal(f->s->header->version, 3);
	assert_int_equal(f->s->header->record_size, 160);
}

/* A version with the other version's record size is no file of ours: set aside. */
static void test_mixed_header_set_aside(void **state)
{
	struct fixture *f = *state;
	struct state_record rec = named_rec(1, "cam", 3, 1);
	struct state_record_v2 old = v2_rec(STATE_ALLOC, 1, 1);

	write_file(f, 2, sizeof(struct state_record), &rec, sizeof(rec));
	open_state(f);
	assert_false(f->old.found);
	assert_true(exists(f, "smhd.state.old"));
	state_close(f->s, true);
	f->s = NULL;
	write_file(f, STATE_VERSION, sizeof(struct state_record_v2), &old, sizeof(old));
	open_state(f);
	assert_false(f->old.found);
	assert_int_equal(f->old.n_records, 0);
}

/* Names with a valid check that smhd would not have written: the buffer kept, unnamed. */
static void test_hostile_names(void **state)
{
	struct fixture *f = *state;
	char over[BUFNAME_MAX + 1];
	struct state_record recs[5];

	memset(over, 'a', sizeof(over)); /* 64 bytes, no NUL: an over-long name */
	recs[0] = named_rec(1, over, sizeof(over), 1);
	recs[1] = named_rec(2, "a\033[2J", 5, 2);
	recs[2] = named_rec(3, "ok\nforged", 9, 3);
	recs[3] = named_rec(4, "camera0/frame3", 14, 4); /* kept, with its name */
	recs[4] = (struct state_record){
		.kind = STATE_HOLD, .handle = 4, .session = 9, .count = 1, .seq = 5, .name = "x"
	};
	recs[4].check = state_record_check(&recs[4]);
	write_file(f, STATE_VERSION, sizeof(struct state_record), recs, sizeof(recs));
	open_state(f);
	assert_int_equal(f->old.n_records, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct state_record *r = &f->old.records[i];

		assert_int_equal(r->handle, i < 4 ? i + 1 : 4);
		assert_string_equal(r->name, i == 3 ? "camera0/frame3" : "");
		assert_int_equal(r->check, state_record_check(r));
		assert_int_equal(r->addr, recs[i].addr);
	}
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_name_journaled),         T(test_name_under_check), T(test_version_2_read),
		T(test_mixed_header_set_aside), T(test_hostile_names),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
