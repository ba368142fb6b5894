/* SPDX-License-Identifier: MIT */
/*
 * The state file (daemon/restart/state.c, compiled in for its header layout), in a temporary
 * directory: a broker journals into it, the state is closed without cleaning up as a crash
 * leaves it, and the next state_open() must read back exactly what was held. Files written by
 * hand check the reader: torn records, two versions of one record, another configuration's
 * file, and hostile files (bad headers, bounds, sizes, garbage, file types), which are set
 * aside or ignored, never trusted. Then the lock, the directory check and the clean close.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"
#include "daemon/restart/state.c"
#include "tests/test-util.h"

#define FP       UINT64_C(0x5eed5eed5eed5eed)
#define OTHER_FP UINT64_C(0x0123456789abcdef)

struct fixture {
	char dir[64];
	char path[128]; /* DIR/smhd.state */
	struct pool *pool;
	struct broker b;
	struct broker_client *c1, *c2;
	struct state *s;
	struct state_old old;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/smh-test-state-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/smhd.state", f->dir);
	f->pool = test_example_pool(64);
	broker_init(&f->b, f->pool, NULL);
	/* c1's start time is set, so its records say exactly 99; c2's is read from /proc. */
	assert_int_equal(broker_client_add(&f->b, 4321, 1000, 1000, "cam", &f->c1), 0);
	f->c1->proc_start = 99;
	assert_int_equal(broker_client_add(&f->b, getpid(), 1001, 1001, "codec", &f->c2), 0);
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
	chmod(f->dir, 0700);
	assert_int_equal(nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

static void join(const struct fixture *f, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", f->dir, name);
}

static bool exists(const struct fixture *f, const char *name)
{
	char path[192];
	struct stat st;

	join(f, name, path, sizeof(path));
	return lstat(path, &st) == 0;
}

static off_t file_size(const struct fixture *f, const char *name)
{
	char path[192];
	struct stat st;

	join(f, name, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Opens the state of @fp into f->s, reading the previous one into f->old. */
static void open_state(struct fixture *f, uint64_t fp)
{
	state_old_finish(&f->old);
	assert_int_equal(state_open(f->dir, fp, "/run/smh/test.sock", &f->s, &f->old), 0);
}

/* Starts journaling @f's broker into a fresh, committed state. */
static void start_journal(struct fixture *f)
{
	struct broker_journal j;

	open_state(f, FP);
	assert_int_equal(state_commit(f->s), 0);
	j = state_journal(f->s);
	broker_set_journal(&f->b, &j);
}

/* What a SIGKILL leaves: the mapping's contents in the file, no cleanup. */
static void crash(struct fixture *f)
{
	state_close(f->s, false);
	f->s = NULL;
	broker_set_journal(&f->b, NULL);
}

static void assert_alloc_record(const struct state_record *r, const struct broker_alloc *a)
{
	assert_int_equal(r->kind, STATE_ALLOC);
	assert_int_equal(r->handle, a->handle);
	assert_int_equal(r->region, a->blk.region);
	assert_int_equal(r->addr, a->blk.addr);
	assert_int_equal(r->size, a->blk.size);
	assert_int_equal(r->align, broker_alloc_align(a));
	assert_int_equal(r->token, broker_alloc_token(a));
	assert_int_equal(r->check, state_record_check(r));
}

static void assert_hold_record(const struct state_record *r, uint64_t handle,
			       const struct broker_client *c, uint64_t count)
{
	assert_int_equal(r->kind, STATE_HOLD);
	assert_int_equal(r->handle, handle);
	assert_int_equal(r->session, c->session);
	assert_int_equal(r->count, count);
	assert_int_equal(r->pid, c->pid);
	assert_int_equal(r->proc_start, c->proc_start);
	assert_int_equal(r->uid, c->uid); /* its quotas and who may resume it, after a restart */
	assert_int_equal(r->check, state_record_check(r));
}

/* ---------------------------------------------------------------- the journal, read back */

static void test_crash_reads_back(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b, *c, *x;
	const struct broker_client *lo, *hi;
	uint64_t token;

	start_journal(f);
	assert_false(f->old.found);
	assert_int_equal(f->old.n_records, 0);
	assert_string_equal(state_dir(f->s), f->dir);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 100, 0, &a), 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 4096, 4096, &b), 0);
	assert_int_equal(broker_export(&f->b, f->c1, b->handle, &token), 0);
	assert_int_equal(broker_import(&f->b, f->c2, token, &x), 0);
	assert_int_equal(broker_import(&f->b, f->c2, token, &x), 0);
	/* A buffer freed before the crash leaves no record. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &c), 0);
	assert_int_equal(broker_free(&f->b, f->c1, c->handle), 0);
	crash(f);

	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.next_handle, 4);
	assert_int_equal(f->old.n_records, 5);
	assert_alloc_record(&f->old.records[0], a);
	assert_int_equal(f->old.records[0].addr, 0x42000000);
	assert_int_equal(f->old.records[0].size, 128);
	assert_alloc_record(&f->old.records[1], b);
	assert_int_equal(f->old.records[1].token, token);
	assert_int_equal(f->old.records[1].align, 4096);
	assert_hold_record(&f->old.records[2], a->handle, f->c1, 1);
	assert_int_equal(f->old.records[2].proc_start, 99);
	/* The holds of one buffer come in session order. */
	lo = f->c1->session < f->c2->session ? f->c1 : f->c2;
	hi = lo == f->c1 ? f->c2 : f->c1;
	assert_hold_record(&f->old.records[3], b->handle, lo, lo == f->c1 ? 1 : 2);
	assert_hold_record(&f->old.records[4], b->handle, hi, hi == f->c1 ? 1 : 2);
	/* c2's start time was read from /proc at its first hold. */
	assert_int_not_equal(f->c2->proc_start, 0);
	assert_int_equal(f->c2->proc_start, proc_start_time(getpid()));
}

/* A moved, resized and exported buffer is read back as its latest version only. */
static void test_latest_version_only(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *blocker;
	uint64_t addr, token;

	start_journal(f);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a), 0);
	addr = a->blk.addr;
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &blocker),
			 0);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 1024, &a), 0);
	assert_int_not_equal(a->blk.addr, addr);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &token), 0);
	assert_int_equal(broker_free(&f->b, f->c1, blocker->handle), 0);
	crash(f);

	open_state(f, FP);
	assert_int_equal(f->old.n_records, 2);
	assert_alloc_record(&f->old.records[0], a);
	assert_int_equal(f->old.records[0].size, 1024);
	assert_int_equal(f->old.records[0].token, token);
	assert_hold_record(&f->old.records[1], a->handle, f->c1, 1);
	assert_int_equal(f->old.next_handle, 3);
}

/*
 * The new file is read only once committed: a crash while restoring leaves the old one to the
 * next try. A committed file with no record still carries the handles given.
 */
static void test_commit_and_next_handle(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;

	start_journal(f);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	crash(f);

	open_state(f, FP);
	assert_int_equal(f->old.n_records, 2);
	assert_true(exists(f, "smhd.state.new"));
	state_close(f->s, false); /* crashed again before the commit */
	f->s = NULL;
	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 2);
	assert_alloc_record(&f->old.records[0], a);
	state_set_next_handle(f->s, 40);
	state_set_next_handle(f->s, 7); /* never lowered */
	assert_int_equal(state_commit(f->s), 0);
	assert_false(exists(f, "smhd.state.new"));
	state_close(f->s, false);
	f->s = NULL;

	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 0);
	assert_int_equal(f->old.next_handle, 40);
}

/* Whole pages of records: the first ones hold 256 and more. */
static uint64_t slots_in(off_t size)
{
	return ((uint64_t)size - sizeof(struct state_header)) / sizeof(struct state_record);
}

/* Past its first slots the file doubles (while small), and every record is still there. */
static void test_grows(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;
	uint64_t n = 0;
	off_t size;

	start_journal(f);
	while (n < 300 && broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a) == 0)
		n++;
	assert_int_equal(n, 256); /* res0 and res2: 16 KiB of 64-byte blocks */
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a), 0);
	n++;
	size = file_size(f, "smhd.state");
	assert_int_equal(size % sysconf(_SC_PAGESIZE), 0);
	assert_true(slots_in(size) >= 2 * n);
	assert_true(slots_in(size) < 4 * n); /* doubled twice at most, from 256 or more */
	crash(f);

	open_state(f, FP);
	assert_int_equal(f->old.n_records, 2 * n);
	for (uint64_t i = 0; i < n; i++) {
		const struct state_record *r = &f->old.records[i], *h = &f->old.records[n + i];

		assert_int_equal(r->kind, STATE_ALLOC);
		assert_int_equal(r->handle, i + 1);
		assert_int_equal(r->check, state_record_check(r));
		assert_int_equal(h->kind, STATE_HOLD);
		assert_int_equal(h->handle, i + 1);
		assert_int_equal(h->session, i + 1 < n ? f->c1->session : f->c2->session);
	}
	assert_int_equal(f->old.records[n - 1].region, 1);
	assert_int_equal(f->old.next_handle, n + 1);
}

/*
 * Freed slots are taken again (the free list threaded through the free records): churn in a
 * mixed order never grows the file, and no record taken twice overwrites a live one: the
 * records read back are exactly the live buffers and their holds.
 */
static void test_freed_slots_reused(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *live[128] = { 0 };
	struct broker_client *by[128];
	uint64_t seed = 12345, n_moved = 0;
	size_t n_live = 0;
	off_t size;

	start_journal(f);
	for (size_t i = 0; i < 128; i++) {
		by[i] = f->c1;
		assert_int_equal(
			broker_alloc(&f->b, by[i], SMH_REG_ATTR_CACHEABLE, 64, 0, &live[i]), 0);
	}
	n_live = 128;
	size = file_size(f, "smhd.state");
	for (int round = 0; round < 2000; round++) {
		size_t i;

		seed = seed * 6364136223846793005u + 1442695040888963407u;
		i = (size_t)(seed >> 33) % 128;
		if (live[i] && (seed >> 24) % 3 == 0) {
			/* Grown or shrunk, in place or moved: one record replaces the other. */
			uint64_t to = 64u << ((seed >> 26) % 4);

			uint64_t was = live[i]->blk.addr;
			int ret = broker_realloc(&f->b, by[i], live[i]->handle, to, &live[i]);

			assert_true(ret == 0 || ret == -ENOMEM); /* full: unchanged */
			n_moved += ret == 0 && live[i]->blk.addr != was;
			assert_int_not_equal(live[i]->blk.tag, 0);
		} else if (live[i]) {
			assert_int_equal(broker_free(&f->b, by[i], live[i]->handle), 0);
			live[i] = NULL;
			n_live--;
		} else {
			int ret;

			by[i] = (seed >> 20) & 1 ? f->c1 : f->c2;
			ret = broker_alloc(&f->b, by[i], SMH_REG_ATTR_CACHEABLE, 64, 0, &live[i]);
			assert_true(ret == 0 || ret == -ENOMEM); /* full: nothing given */
			n_live += ret == 0;
		}
	}
	assert_true(n_moved > 10); /* the slot went along with the block */
	assert_int_equal(file_size(f, "smhd.state"), size);
	{
		uint64_t handles[128];
		size_t k = 0;

		for (size_t i = 0; i < 128; i++)
			if (live[i])
				handles[k++] = live[i]->handle;
		assert_int_equal(k, n_live);
		crash(f);
		open_state(f, FP);
		assert_int_equal(f->old.n_records, 2 * n_live);
		/* Allocations first, in handle order, then their holds. */
		for (size_t i = 0; i < n_live; i++) {
			const struct state_record *r = &f->old.records[i];
			bool found = false;

			assert_int_equal(r->kind, STATE_ALLOC);
			assert_int_equal(r->check, state_record_check(r));
			for (size_t j = 0; j < n_live; j++)
				found |= handles[j] == r->handle;
			assert_true(found);
			/* Holds in the same order, each the buffer's one hold. */
			assert_int_equal(f->old.records[n_live + i].kind, STATE_HOLD);
			assert_int_equal(f->old.records[n_live + i].handle, r->handle);
			assert_int_equal(f->old.records[n_live + i].count, 1);
		}
	}
}

/*
 * The free list lives in the file, where another process of smhd's user could write: links
 * that name a live record, or no record at all, cost the free slots, never a live record, and
 * never a store outside the file. Each freed record's link is set to @bad.
 */
static void free_list_overwritten(struct fixture *f, uint64_t bad)
{
	struct broker_alloc *a[8];
	struct state_record rec;
	char path[192];
	int fd, n_bad = 0;

	start_journal(f);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a[i]),
				 0);
	/* Buffer 1's two records (slots 1 and 2) go on the free list. */
	assert_int_equal(broker_free(&f->b, f->c1, a[0]->handle), 0);
	join(f, "smhd.state", path, sizeof(path));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	for (off_t off = sizeof(struct state_header);
	     pread(fd, &rec, sizeof(rec), off) == (ssize_t)sizeof(rec); off += sizeof(rec)) {
		if (rec.check == 0 && rec.handle != 0) { /* used, then freed */
			rec.seq = bad;
			assert_int_equal(pwrite(fd, &rec, sizeof(rec), off), sizeof(rec));
			n_bad++;
		}
	}
	close(fd);
	assert_int_equal(n_bad, 2);
	for (size_t i = 4; i < 8; i++)
		assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_CACHEABLE, 64, 0, &a[i]),
				 0);
	crash(f);
	open_state(f, FP);
	/* Buffers 2-8, each with its hold: none overwritten. */
	assert_int_equal(f->old.n_records, 14);
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(f->old.records[i].kind, STATE_ALLOC);
		assert_int_equal(f->old.records[i].handle, a[i + 1]->handle);
		assert_int_equal(f->old.records[7 + i].kind, STATE_HOLD);
		assert_int_equal(f->old.records[7 + i].handle, a[i + 1]->handle);
	}
}

/* Slot 3: buffer 2's allocation record. */
static void test_free_list_names_live_record(void **state)
{
	free_list_overwritten(*state, 3);
}

/* Past the file's end. */
static void test_free_list_names_no_record(void **state)
{
	free_list_overwritten(*state, UINT64_C(0xffffffff));
}

static void test_free_list_link_zero(void **state)
{
	free_list_overwritten(*state, 0);
}

/* Past what a slot number can say: cut to 32 bits it would be slot 3. */
static void test_free_list_link_too_large(void **state)
{
	free_list_overwritten(*state, (UINT64_C(1) << 32) + 3);
}

/* ---------------------------------------------------------------- files written by hand */

static struct state_record alloc_rec(uint64_t handle, uint64_t addr, uint64_t seq)
{
	struct state_record r = {
		.kind = STATE_ALLOC, .handle = handle, .addr = addr, .size = 64, .seq = seq
	};

	r.check = state_record_check(&r);
	return r;
}

static struct state_record hold_rec(uint64_t handle, uint64_t session, uint64_t count, uint64_t seq)
{
	struct state_record r = { .kind = STATE_HOLD,
				  .handle = handle,
				  .session = session,
				  .count = count,
				  .pid = 77,
				  .proc_start = 5,
				  .seq = seq };

	r.check = state_record_check(&r);
	return r;
}

static void write_bytes(const struct fixture *f, const void *buf, size_t len)
{
	int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), len);
	close(fd);
}

/* A header of @fp, then @n records, then @tail bytes of @extra. */
static void write_file(const struct fixture *f, uint64_t fp, const struct state_record *recs,
		       size_t n, const void *extra, size_t tail)
{
	size_t len = sizeof(struct state_header) + n * sizeof(*recs) + tail;
	unsigned char *buf = calloc(1, len);
	struct state_header h = { .version = STATE_VERSION,
				  .record_size = sizeof(struct state_record),
				  .fingerprint = fp,
				  .next_handle = 1000 };

	assert_non_null(buf);
	memcpy(h.magic, STATE_MAGIC, 8);
	memcpy(buf, &h, sizeof(h));
	if (n)
		memcpy(buf + sizeof(h), recs, n * sizeof(*recs));
	if (tail)
		memcpy(buf + sizeof(h) + n * sizeof(*recs), extra, tail);
	write_bytes(f, buf, len);
	free(buf);
}

/* The fixture's broker over one 64 MiB region at granule 64: a million 64-byte buffers fit. */
static void use_big_pool(struct fixture *f)
{
	struct pool_hooks hooks = { 0 };
	struct dt_config cfg = { 0 };

	broker_finish(&f->b);
	pool_destroy(f->pool);
	cfg.regions = calloc(1, sizeof(*cfg.regions));
	assert_non_null(cfg.regions);
	cfg.n_regions = 1;
	cfg.regions[0] = (struct dt_region){ .label = "big",
					     .base = UINT64_C(0x50000000),
					     .size = UINT64_C(64) << 20,
					     .attr = SMH_REG_ATTR_CACHEABLE };
	cfg.regions[0].path = strdup("/reserved-memory/big@50000000");
	assert_non_null(cfg.regions[0].path);
	assert_int_equal(pool_create(&cfg, 64, &hooks, NULL, &f->pool), 0);
	dt_config_finish(&cfg);
	broker_init(&f->b, f->pool, NULL);
	assert_int_equal(broker_client_add(&f->b, 4321, 1000, 1000, "cam", &f->c1), 0);
	f->c1->proc_start = 99;
	assert_int_equal(broker_client_add(&f->b, getpid(), 1001, 1001, "codec", &f->c2), 0);
}

/*
 * Large files grow GROW_MAX at a time, not by doubling (which cost one allocation 20-30 ms at
 * two million records), and in place: the mapping does not move. Every record is read back.
 */
static void test_grows_in_steps_in_place(void **state)
{
	struct fixture *f = *state;
	const uint64_t n = 80000; /* 160,000 records: 25.6 MB, many GROW_MAX past doubling */
	uint64_t need = sizeof(struct state_header) + 2 * n * sizeof(struct state_record);
	struct broker_alloc *a;
	void *header;
	off_t size;

	use_big_pool(f);
	start_journal(f);
	header = f->s->header;
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_ptr_equal(f->s->header, header);
	size = file_size(f, "smhd.state");
	assert_true((uint64_t)size >= need);
	/* Doubling would have made it 46 MB or more. */
	assert_true((uint64_t)size <= need + GROW_MAX + (uint64_t)sysconf(_SC_PAGESIZE));
	crash(f);
	open_state(f, FP);
	assert_int_equal(f->old.n_records, 2 * n);
	assert_int_equal(f->old.records[n - 1].handle, n);
}

/*
 * The file cannot grow (a full file system, here RLIMIT_FSIZE at its current size): every
 * allocation that fits is recorded, the next one is refused with ENOSPC and leaves the pool
 * as it was; nothing is ever served unrecorded.
 */
static void test_full_refuses(void **state)
{
	struct fixture *f = *state;
	struct rlimit old_lim, lim;
	struct buddy_stats before, after;
	struct broker_alloc *a;
	void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
	uint64_t n = 0;
	int ret, refused;

	start_journal(f);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
	lim = old_lim;
	lim.rlim_cur = (rlim_t)file_size(f, "smhd.state");
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0); /* unchecked until restored */
	while ((ret = broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a)) == 0)
		n++;
	pool_region_stats(f->pool, 0, &before);
	refused = broker_alloc(&f->b, f->c2, SMH_REG_ATTR_CACHEABLE, 64, 0, &a);
	pool_region_stats(f->pool, 0, &after);
	/* Restored before any assertion: a failure must not leave the limit to the next tests. */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
	signal(SIGXFSZ, old_sig);
	assert_int_equal(refused, -ENOSPC);
	assert_int_equal(ret, -ENOSPC);
	/* The first slots (256 and what fills their last page): an allocation and its hold each. */
	assert_int_equal(n, slots_in(lim.rlim_cur) / 2);
	assert_true(n >= 128);
	assert_int_equal(after.used, before.used);
	assert_int_equal(f->c2->n_buffers, 0);
	assert_int_equal(broker_n_allocs(&f->b), n);
	/* Room again: served again. */
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	n++;
	crash(f);
	open_state(f, FP);
	assert_int_equal(f->old.n_records, 2 * n);
}
static void test_torn_records(void **state)
{
	struct fixture *f = *state;
	struct state_record recs[6], r = alloc_rec(9, 0x42000000, 1);
	unsigned char *p = (unsigned char *)&r;

	/* The check covers every byte before it: no field can change unseen. */
	for (size_t i = 0; i < offsetof(struct state_record, check); i++) {
		p[i] ^= 0x01;
		assert_int_not_equal(state_record_check(&r), r.check);
		p[i] ^= 0x01;
	}
	recs[0] = alloc_rec(1, 0x42000000, 1);
	recs[1] = alloc_rec(2, 0x42000040, 2);
	recs[1].check ^= 1; /* the check does not match */
	recs[2] = alloc_rec(3, 0x42000080, 3);
	recs[2].addr = 0x42000100;            /* a field stored after the check was computed */
	recs[3] = (struct state_record){ 0 }; /* a free slot */
	/* A valid version and a newer, torn one: the valid one stands. */
	recs[4] = alloc_rec(4, 0x420000c0, 4);
	recs[5] = alloc_rec(4, 0x42000200, 5);
	recs[5].size = 128;
	write_file(f, FP, recs, 6, NULL, 0);

	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.next_handle, 1000);
	assert_int_equal(f->old.n_records, 2);
	assert_memory_equal(&f->old.records[0], &recs[0], sizeof(recs[0]));
	assert_memory_equal(&f->old.records[1], &recs[4], sizeof(recs[4]));
}

static void test_duplicates_highest_seq_wins(void **state)
{
	struct fixture *f = *state;
	struct state_record recs[] = {
		alloc_rec(5, 0x42000000, 9), alloc_rec(5, 0x42000040, 4), hold_rec(5, 200, 5, 1),
		alloc_rec(5, 0x42000080, 7), hold_rec(5, 100, 1, 3),      hold_rec(5, 100, 2, 8),
		hold_rec(5, 100, 3, 6),
	};

	write_file(f, FP, recs, sizeof(recs) / sizeof(recs[0]), NULL, 0);
	open_state(f, FP);
	assert_int_equal(f->old.n_records, 3);
	assert_memory_equal(&f->old.records[0], &recs[0], sizeof(recs[0]));
	/* Holds are one per session: session 100's newest, then session 200's only. */
	assert_memory_equal(&f->old.records[1], &recs[5], sizeof(recs[5]));
	assert_memory_equal(&f->old.records[2], &recs[2], sizeof(recs[2]));
}

/* Another configuration's records mean nothing: set aside as smhd.state.old, not read. */
static void test_fingerprint_mismatch(void **state)
{
	struct fixture *f = *state;
	struct state_record recs[] = { alloc_rec(1, 0x42000000, 1), hold_rec(1, 100, 1, 2) };
	off_t len = sizeof(struct state_header) + sizeof(recs);

	write_file(f, OTHER_FP, recs, 2, NULL, 0);
	open_state(f, FP);
	assert_false(f->old.found);
	assert_int_equal(f->old.n_records, 0);
	assert_null(f->old.records);
	assert_int_equal(f->old.next_handle, 0);
	assert_false(exists(f, "smhd.state"));
	assert_int_equal(file_size(f, "smhd.state.old"), len);
	assert_int_equal(state_commit(f->s), 0);
	state_close(f->s, false);
	f->s = NULL;

	/* The file now in place is this configuration's, with nothing in it. */
	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 0);
	assert_int_equal(f->old.next_handle, 1);
	assert_int_equal(file_size(f, "smhd.state.old"), len);
}

/* A file that is not a state file of this smhd is set aside too, whatever its bytes. */
static void test_hostile_headers(void **state)
{
	struct fixture *f = *state;
	struct state_record rec = alloc_rec(1, 0x42000000, 1);
	struct state_header h = { .version = STATE_VERSION,
				  .record_size = sizeof(struct state_record),
				  .fingerprint = FP,
				  .next_handle = 2 };
	unsigned char buf[sizeof(h) + sizeof(rec)];
	const size_t n_cases = 6;

	memcpy(h.magic, STATE_MAGIC, 8);
	for (size_t i = 0; i < n_cases; i++) {
		struct state_header bad = h;
		size_t len = sizeof(buf);

		switch (i) {
		case 0: /* empty */
			len = 0;
			break;
		case 1: /* a torn header */
			len = offsetof(struct state_header, next_handle);
			break;
		case 2:
			bad.magic[7] = '2';
			break;
		case 3:
			bad.version = STATE_VERSION + 1;
			break;
		case 4:
			bad.record_size = sizeof(struct state_record) + 8;
			break;
		default: /* a header one byte short */
			len = sizeof(h) - 1;
			break;
		}
		memcpy(buf, &bad, sizeof(bad));
		memcpy(buf + sizeof(bad), &rec, sizeof(rec));
		write_bytes(f, buf, len);
		open_state(f, FP);
		assert_false(f->old.found);
		assert_int_equal(f->old.n_records, 0);
		assert_false(exists(f, "smhd.state"));
		assert_int_equal(file_size(f, "smhd.state.old"), len);
		state_close(f->s, true);
		f->s = NULL;
	}
}

/* Valid checks do not make sane numbers: records out of bounds are dropped one by one. */
static void test_hostile_records(void **state)
{
	struct fixture *f = *state;
	struct state_record recs[] = {
		alloc_rec(0, 0x42000000, 1),
		alloc_rec(STATE_HANDLE_MAX, 0x42000000, 2),
		alloc_rec(UINT64_MAX, 0x42000000, 3),
		alloc_rec(STATE_HANDLE_MAX - 1, 0x42000000, 4), /* kept */
		hold_rec(STATE_HANDLE_MAX, 100, 1, 5),
		hold_rec(7, 100, 0, 6),
		hold_rec(7, 101, STATE_COUNT_MAX + 1, 7),
		hold_rec(7, 102, UINT64_MAX, 8),
		hold_rec(7, 103, STATE_COUNT_MAX, 9), /* kept */
		alloc_rec(8, 0x42000000, 10),
		alloc_rec(9, 0x42000000, 11),
	};

	recs[9].kind = STATE_NONE;
	recs[9].check = state_record_check(&recs[9]);
	recs[10].kind = 3;
	recs[10].check = state_record_check(&recs[10]);
	write_file(f, FP, recs, sizeof(recs) / sizeof(recs[0]), NULL, 0);
	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 2);
	assert_memory_equal(&f->old.records[0], &recs[3], sizeof(recs[3]));
	assert_memory_equal(&f->old.records[1], &recs[8], sizeof(recs[8]));
}

/* A size that is no multiple of a record, and bytes that are no records. */
static void test_hostile_sizes_and_garbage(void **state)
{
	struct fixture *f = *state;
	struct state_record recs[] = { alloc_rec(1, 0x42000000, 1), hold_rec(1, 100, 1, 2) };
	unsigned char garbage[4000];
	uint64_t x = UINT64_C(0x9e3779b97f4a7c15);

	for (size_t i = 0; i < sizeof(garbage); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		garbage[i] = (unsigned char)x;
	}
	write_file(f, FP, recs, 2, garbage, sizeof(recs[0]) - 1);
	open_state(f, FP);
	assert_int_equal(f->old.n_records, 2);
	assert_memory_equal(f->old.records, recs, sizeof(recs));
	state_close(f->s, true);
	f->s = NULL;

	write_file(f, FP, NULL, 0, garbage, sizeof(garbage));
	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 0);
	state_close(f->s, true);
	f->s = NULL;

	write_file(f, FP, NULL, 0, NULL, 0); /* a header alone */
	open_state(f, FP);
	assert_true(f->old.found);
	assert_int_equal(f->old.n_records, 0);
	assert_int_equal(f->old.next_handle, 1000);
}

/* What is not a regular file of sane size is refused, and the refusal leaves nothing held. */
/* A header's next handle past STATE_HANDLE_MAX is not believed (handles would wrap to 0). */
static void test_next_handle_bounded(void **state)
{
	struct fixture *f = *state;
	struct state_record rec = alloc_rec(5, 0x42000000, 1);
	struct state_header h = { .version = STATE_VERSION,
				  .record_size = sizeof(struct state_record),
				  .fingerprint = FP };
	unsigned char buf[sizeof(h) + sizeof(rec)];

	memcpy(h.magic, STATE_MAGIC, 8);
	rec.check = state_record_check(&rec);
	for (int i = 0; i < 2; i++) {
		h.next_handle = i == 0 ? UINT64_MAX : STATE_HANDLE_MAX;
		memcpy(buf, &h, sizeof(h));
		memcpy(buf + sizeof(h), &rec, sizeof(rec));
		write_bytes(f, buf, sizeof(buf));
		open_state(f, FP);
		assert_true(f->old.found);
		assert_int_equal(f->old.n_records, 1);
		assert_true(f->old.next_handle < STATE_HANDLE_MAX);
		state_close(f->s, false);
		f->s = NULL;
	}
}

/* A FIFO where the state file should be is refused at once (opening it used to block). */
static void test_fifo_refused(void **state)
{
	struct fixture *f = *state;
	struct state *s = NULL;

	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(state_open(f->dir, FP, "sock", &s, &f->old), -EINVAL);
	assert_null(s);
	assert_int_equal(unlink(f->path), 0);
}

static void test_hostile_file_types(void **state)
{
	struct fixture *f = *state;
	struct state *s = (struct state *)&s;
	char target[192];
	int fd;

	join(f, "elsewhere", target, sizeof(target));
	write_file(f, FP, NULL, 0, NULL, 0);
	assert_int_equal(rename(f->path, target), 0);
	assert_int_equal(symlink(target, f->path), 0);
	assert_int_equal(state_open(f->dir, FP, "sock", &s, &f->old), -ELOOP);
	assert_ptr_equal(s, (struct state *)&s); /* not set */
	assert_false(f->old.found);
	assert_null(f->old.records);
	assert_int_equal(unlink(f->path), 0);

	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(state_open(f->dir, FP, "sock", &s, &f->old), -EINVAL);
	assert_int_equal(rmdir(f->path), 0);

	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, STATE_FILE_MAX + 1), 0); /* sparse: no disk used */
	close(fd);
	assert_int_equal(state_open(f->dir, FP, "sock", &s, &f->old), -EINVAL);
	assert_int_equal(unlink(f->path), 0);

	/* None of the refusals kept the lock. */
	open_state(f, FP);
	assert_false(f->old.found);
}

/* ---------------------------------------------------------------- lock, directory, clean close */

static void test_lock_held(void **state)
{
	struct fixture *f = *state;
	struct state_old old = { .found = true };
	struct state *s = NULL;

	open_state(f, FP);
	assert_true(exists(f, "smhd.lock"));
	assert_int_equal(state_open(f->dir, FP, "/run/smh/test.sock", &s, &old), -EADDRINUSE);
	assert_null(s);
	assert_false(old.found);
	assert_null(old.records);
	/* A crashed daemon's lock goes with its process (here: its close). */
	state_close(f->s, false);
	f->s = NULL;
	assert_true(exists(f, "smhd.lock"));
	open_state(f, FP);
}

static void test_dir_check(void **state)
{
	struct fixture *f = *state;
	char sub[192], file[192], link[192];
	struct state *s = NULL;
	struct stat st;

	assert_int_equal(state_dir_check(f->dir, true), 0); /* mkdtemp: 0700 */
	join(f, "sub", sub, sizeof(sub));
	assert_int_equal(state_dir_check(sub, true), 0); /* created */
	assert_int_equal(lstat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	join(f, "missing/deeper", file, sizeof(file));
	assert_int_equal(state_dir_check(file, false), -ENOENT);

	/* Others may write to it: refused, loud or not. */
	assert_int_equal(chmod(sub, 0777), 0);
	assert_int_equal(state_dir_check(sub, false), -EPERM);
	assert_int_equal(state_dir_check(sub, true), -EPERM);
	assert_int_equal(chmod(sub, 0720), 0);
	assert_int_equal(state_dir_check(sub, false), -EPERM);
	assert_int_equal(chmod(sub, 0702), 0);
	assert_int_equal(state_dir_check(sub, false), -EPERM);
	assert_int_equal(state_open(sub, FP, "sock", &s, &f->old), -EPERM);
	assert_null(s);
	join(f, "sub/smhd.lock", file, sizeof(file));
	assert_int_equal(lstat(file, &st), -1); /* nothing was created in it */
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(state_dir_check(sub, false), 0);

	/* Not a directory, or a symlink to one. */
	join(f, "file", file, sizeof(file));
	assert_int_equal(close(open(file, O_WRONLY | O_CREAT, 0600)), 0);
	assert_int_equal(state_dir_check(file, false), -EPERM);
	join(f, "link", link, sizeof(link));
	assert_int_equal(symlink(sub, link), 0);
	assert_int_equal(state_dir_check(link, false), -EPERM);
}

/* Every directory above the state directory must be one nobody else can change. */
static void test_dir_ancestors(void **state)
{
	struct fixture *f = *state;
	char open_dir[192], path[192], link[192], safe[192];
	struct stat st;

	join(f, "open", open_dir, sizeof(open_dir));
	assert_int_equal(mkdir(open_dir, 0700), 0);
	assert_int_equal(chmod(open_dir, 0777), 0); /* anyone may rename what is in it */
	join(f, "open/state", path, sizeof(path));
	assert_int_equal(state_dir_check(path, true), -EPERM);
	assert_int_equal(lstat(path, &st), -1); /* refused before anything was created */
	assert_int_equal(chmod(open_dir, 0770), 0);
	assert_int_equal(state_dir_check(path, false), -EPERM);
	assert_int_equal(chmod(open_dir, 01777), 0); /* sticky, as /tmp: others keep off ours */
	assert_int_equal(state_dir_check(path, true), 0);
	assert_int_equal(rmdir(path), 0);

	/* A link on the way is followed, and its target's parents are checked too. */
	join(f, "safe", safe, sizeof(safe));
	assert_int_equal(mkdir(safe, 0755), 0);
	join(f, "to-safe", link, sizeof(link));
	assert_int_equal(symlink(safe, link), 0);
	join(f, "to-safe/state", path, sizeof(path));
	assert_int_equal(state_dir_check(path, true), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	join(f, "to-open", link, sizeof(link));
	assert_int_equal(symlink(open_dir, link), 0);
	join(f, "to-open/state", path, sizeof(path));
	assert_int_equal(state_dir_check(path, false), -EPERM);
	/* A safe directory of ours whose parent anyone may change: reached through a link too. */
	join(f, "open/ours", safe, sizeof(safe));
	assert_int_equal(mkdir(safe, 0755), 0);
	join(f, "open/ours/state", path, sizeof(path));
	assert_int_equal(state_dir_check(path, false), -EPERM);
	join(f, "to-ours", link, sizeof(link));
	assert_int_equal(symlink(safe, link), 0);
	join(f, "to-ours/state", path, sizeof(path));
	assert_int_equal(state_dir_check(path, true), -EPERM);
	join(f, "to-safe/", path, sizeof(path)); /* trailing slashes: the same directory */
	assert_int_equal(state_dir_check(path, false), 0);

	/* A parent of another user's: only where the test may give it away (root). */
	if (geteuid() == 0) {
		assert_int_equal(chmod(open_dir, 0755), 0);
		assert_int_equal(chown(open_dir, 65534, 65534), 0);
		join(f, "open/state", path, sizeof(path));
		assert_int_equal(state_dir_check(path, false), -EPERM);
		assert_int_equal(chown(open_dir, 0, 0), 0);
		assert_int_equal(state_dir_check(path, false), 0);
		/* A link of another user's, even to a safe place: that user may replace it. */
		join(f, "to-safe", link, sizeof(link));
		assert_int_equal(lchown(link, 65534, 65534), 0);
		join(f, "to-safe/state", path, sizeof(path));
		assert_int_equal(state_dir_check(path, false), -EPERM);
	} else {
		print_message("not root: the case of a parent owned by another user is skipped\n");
	}
}

static void test_clean_close(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;

	start_journal(f);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	broker_set_journal(&f->b, NULL);
	state_close(f->s, true);
	f->s = NULL;
	assert_false(exists(f, "smhd.state"));
	assert_false(exists(f, "smhd.lock"));
	state_close(NULL, true); /* a no-op */

	open_state(f, FP);
	assert_false(f->old.found);
	assert_int_equal(f->old.n_records, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_crash_reads_back),
		T(test_latest_version_only),
		T(test_commit_and_next_handle),
		T(test_grows),
		T(test_freed_slots_reused),
		T(test_free_list_names_live_record),
		T(test_free_list_names_no_record),
		T(test_free_list_link_zero),
		T(test_free_list_link_too_large),
		T(test_grows_in_steps_in_place),
		T(test_full_refuses),
		T(test_next_handle_bounded),
		T(test_fifo_refused),
		T(test_torn_records),
		T(test_duplicates_highest_seq_wins),
		T(test_fingerprint_mismatch),
		T(test_hostile_headers),
		T(test_hostile_records),
		T(test_hostile_sizes_and_garbage),
		T(test_hostile_file_types),
		T(test_lock_held),
		T(test_dir_check),
		T(test_dir_ancestors),
		T(test_clean_close),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
