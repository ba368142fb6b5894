/* SPDX-License-Identifier: MIT */
/*
 * Restart without loss (see recover.h and docs/restart.md).
 *
 * The records are trusted only as far as the pool agrees: an allocation whose block is not
 * free (overlapping another record) or outside its region is skipped with a warning, and so
 * are its holds; a hold of an allocation that has no record is skipped; an allocation left
 * without holds (its last hold went, or the crash came before the first was recorded) is
 * released at once. A memfd region the keeper did not give back is new memory: its records
 * mean nothing there (its old buffers live in memory nobody else can be given) and are
 * skipped.
 *
 * Under systemd the keeper would die with the service's control group: when the unit has a
 * file descriptor store (systemd_fdstore_enabled(), or the store passed regions back), the
 * store holds the memfds instead, by label, and passes them back at the next start.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/proc.h"
#include "daemon/restart/keeper.h"
#include "daemon/restart/recover.h"
#include "daemon/restart/state.h"

struct recover {
	struct recover_options opts;
	struct state *state;
	struct state_old old;
	size_t n_regions;
	struct keeper_fds kept; /* from the keeper, by label */
	int *memfds;            /* per region, -1 or an fd of `kept` (for the backend) */
	pid_t keeper;
	bool fdstore; /* the service manager's fd store holds the regions, not the keeper */
	struct broker *broker;
	uv_timer_t timer;
	bool timer_started;
};

void recover_default_dir(const char *socket, char *dir, size_t size)
{
	const char *slash = strrchr(socket, '/');

	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == socket)
		snprintf(dir, size, "/");
	else
		snprintf(dir, size, "%.*s", (int)(slash - socket), socket);
}

uint64_t recover_fingerprint(const struct dt_config *cfg, enum backend_kind backend,
			     uint64_t granule)
{
	uint64_t h = HASH_FNV1A_INIT, kind = (uint64_t)backend;

	h = hash_fnv1a(h, &kind, sizeof(kind));
	h = hash_fnv1a(h, &granule, sizeof(granule));
	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct dt_region *r = &cfg->regions[i];
		uint64_t attr = (uint64_t)r->attr;

		h = hash_fnv1a(h, r->label, strnlen(r->label, sizeof(r->label)) + 1);
		h = hash_fnv1a(h, &r->base, sizeof(r->base));
		h = hash_fnv1a(h, &r->size, sizeof(r->size));
		h = hash_fnv1a(h, &attr, sizeof(attr));
	}
	return h;
}

static bool has_label(const struct dt_config *cfg, const char *label)
{
	for (size_t i = 0; i < cfg->n_regions; i++)
		if (strcmp(cfg->regions[i].label, label) == 0)
			return true;
	return false;
}

/*
 * Takes the regions the store passed back into `kept` when they are of this configuration's
 * previous daemon (@same), and removes the others from the store. Returns how many it took.
 */
static int take_stored(struct recover *rec, const struct dt_config *cfg, bool same)
{
	struct systemd_stored *st = rec->opts.stored;

	for (size_t i = 0; st && i < st->n; i++) {
		if (!same || !has_label(cfg, st->labels[i]) || rec->kept.n == KEEPER_FDS_MAX) {
			systemd_fdstore_remove(st->labels[i]);
			continue;
		}
		rec->kept.fds[rec->kept.n] = st->fds[i];
		snprintf(rec->kept.names[rec->kept.n++], DT_LABEL_MAX, "%s", st->labels[i]);
		st->fds[i] = -1;
	}
	if (rec->kept.n)
		log_info("The service manager's fd store gave back %zu region(s)", rec->kept.n);
	return rec->kept.n > 0;
}

/* Matches the keeper's (or the store's) fds to the regions by label. */
static int take_memfds(struct recover *rec, const struct dt_config *cfg)
{
	int ret = rec->fdstore ? take_stored(rec, cfg, true)
			       : keeper_fetch(rec->opts.state_dir, &rec->kept, &rec->keeper);

	if (ret < 0) {
		/* New memfds: the restored buffers are kept out of them, clients keep the old. */
		log_warning("The region keeper did not give the regions back (%s): new memory for "
			    "them; clients keep mapping the old",
			    strerror(-ret));
		keeper_fds_close(&rec->kept);
		rec->keeper = 0;
		return 0;
	}
	if (ret == 0)
		return 0;
	for (size_t i = 0; i < cfg->n_regions; i++)
		for (size_t k = 0; k < rec->kept.n; k++)
			if (strcmp(rec->kept.names[k], cfg->regions[i].label) == 0)
				rec->memfds[i] = rec->kept.fds[k];
	if (!rec->fdstore)
		log_info("The region keeper (pid %d) gave back %zu region(s)", (int)rec->keeper,
			 rec->kept.n);
	return 0;
}

int recover_open(const struct recover_options *opts, const struct dt_config *cfg,
		 struct recover **recp)
{
	struct recover *rec;
	int ret;

	*recp = NULL;
	if (!opts->state_dir)
		return 0;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	rec->opts = *opts;
	rec->n_regions = cfg->n_regions;
	rec->memfds = calloc(cfg->n_regions ? cfg->n_regions : 1, sizeof(int));
	if (!rec->memfds) {
		free(rec);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_regions; i++)
		rec->memfds[i] = -1;
	ret = state_open(opts->state_dir, recover_fingerprint(cfg, opts->backend, opts->granule),
			 opts->socket, &rec->state, &rec->old);
	rec->fdstore = opts->backend == BACKEND_MEMFD &&
		       (systemd_fdstore_enabled() || (opts->stored && opts->stored->n));
	/* Only memory of this very configuration: other regions' old buffers may still be mapped. */
	if (ret == 0 && opts->backend == BACKEND_MEMFD && rec->old.found)
		ret = take_memfds(rec, cfg);
	else if (ret == 0 && rec->fdstore)
		take_stored(rec, cfg, false);
	if (ret < 0) {
		recover_close(rec, NULL, false);
		return ret;
	}
	*recp = rec;
	return 0;
}

const int *recover_memfds(const struct recover *rec)
{
	return rec ? rec->memfds : NULL;
}

bool recover_keep_contents(const struct recover *rec)
{
	return rec != NULL;
}

/* ---------------------------------------------------------------- restoring */

/* The orphan of @session, made at its first hold. */
static struct broker_client *orphan_of(struct broker *b, struct hmap *orphans,
				       const struct state_record *r)
{
	struct broker_client *o = hmap_get(orphans, r->session);

	if (o || r->session == 0)
		return o;
	if (broker_orphan_add(b, r->session, r->pid, (uid_t)r->uid, r->proc_start, &o) < 0)
		return NULL;
	if (hmap_put(orphans, r->session, o) < 0) {
		broker_client_remove(b, o);
		return NULL;
	}
	return o;
}

static void restore_alloc(struct recover *rec, struct backend *backend,
			  const struct state_record *r)
{
	const struct backend_region *br = backend_region(backend, r->region);
	struct pool_block blk = { .region = r->region, .addr = r->addr, .size = r->size };
	struct broker_alloc *a;
	int ret;

	if (!br || !br->usable || !br->kept)
		return; /* new memory: nothing of the old buffers is there */
	ret = broker_restore_alloc_named(rec->broker, r->handle, &blk, r->align, r->token, r->name,
					 &a);
	/* The name (checked by the state file's reader) says whose buffer the loss is. */
	if (ret < 0)
		log_warning(
			"Could not restore buffer %llu%s%s%s (region %u, 0x%llx, %llu bytes): %s",
			(unsigned long long)r->handle, r->name[0] ? " \"" : "", r->name,
			r->name[0] ? "\"" : "", r->region, (unsigned long long)r->addr,
			(unsigned long long)r->size, strerror(-ret));
}

static void restore_hold(struct recover *rec, struct hmap *orphans, const struct state_record *r)
{
	struct broker_alloc *a = broker_find_alloc(rec->broker, r->handle);
	struct broker_client *o;

	if (!a || r->count == 0)
		return;
	o = orphan_of(rec->broker, orphans, r);
	if (!o || broker_restore_hold(rec->broker, a, o, r->count) < 0)
		log_warning("Could not restore a hold on buffer %llu",
			    (unsigned long long)r->handle);
}

/* Releases the allocations no hold came back for. */
static void drop_unheld(struct broker *b)
{
	struct broker_alloc *a = broker_alloc_after(b, 0), *next;

	for (; a; a = next) {
		next = broker_alloc_next(b, a);
		if (!broker_first_hold(a))
			broker_restore_drop(b, a);
	}
}

struct zero_walk {
	struct backend *backend;
	size_t region;
};

static int zero_free(void *data, const struct buddy_extent *e)
{
	struct zero_walk *z = data;

	if (!e->allocated)
		backend_zero(z->backend, z->region, e->addr, e->size);
	return 0;
}

/*
 * Free memory is zero: a crash may have come between a free and its scrub. The broker queues
 * it for the scrubber, and the allocator hands none of it out before it is clean; without
 * memory for that, what is still free is zeroed here.
 */
static void scrub_free_memory(struct broker *b, struct backend *backend)
{
	for (size_t i = 0; i < pool_n_regions(b->pool); i++) {
		const struct backend_region *br = backend_region(backend, i);
		struct zero_walk z = { .backend = backend, .region = i };

		if (br->usable && br->kept && broker_scrub_free(b, (uint32_t)i) < 0)
			buddy_walk(pool_region(b->pool, i)->buddy, zero_free, &z);
	}
}

/* Replaces whatever the store holds under each usable region's label with its memfd. */
static void hand_to_store(struct recover *rec, struct backend *backend)
{
	for (size_t i = 0; i < rec->n_regions; i++) {
		const struct backend_region *br = backend_region(backend, i);
		const char *label = pool_region(rec->broker->pool, i)->label;

		if (!br->usable)
			continue;
		systemd_fdstore_remove(label);
		systemd_fdstore_put(label, br->fd);
	}
}

static int hand_to_keeper(struct recover *rec, struct backend *backend)
{
	struct keeper_fds *fds = calloc(1, sizeof(*fds));
	int ret;

	if (!fds)
		return -ENOMEM;
	for (size_t i = 0; i < rec->n_regions && fds->n < KEEPER_FDS_MAX; i++) {
		const struct backend_region *br = backend_region(backend, i);

		if (!br->usable)
			continue;
		fds->fds[fds->n] = br->fd;
		snprintf(fds->names[fds->n++], DT_LABEL_MAX, "%s",
			 pool_region(rec->broker->pool, i)->label);
	}
	ret = keeper_store(rec->opts.state_dir, fds, &rec->keeper);
	free(fds);
	return ret;
}

int recover_restore(struct recover *rec, struct broker *broker, struct backend *backend)
{
	struct broker_journal journal;
	struct hmap orphans;
	int ret;

	if (!rec)
		return 0;
	journal = state_journal(rec->state);
	/*
	 * Room for every record first: a restored buffer the new file could not record would be
	 * forgotten by the next restart while still mapped. Without it, the old file stays (it is
	 * replaced only by state_commit()), and smhd does not start.
	 */
	if (rec->old.n_records > UINT_MAX ||
	    journal.reserve(journal.data, (unsigned)rec->old.n_records) < 0) {
		log_error("No room to record the %zu record(s) of the previous smhd; its state "
			  "file is kept, and smhd does not start until there is room",
			  rec->old.n_records);
		return -ENOSPC;
	}
	rec->broker = broker;
	broker_set_journal(broker, &journal);
	hmap_init(&orphans);
	for (size_t i = 0; i < rec->old.n_records; i++)
		if (rec->old.records[i].kind == STATE_ALLOC)
			restore_alloc(rec, backend, &rec->old.records[i]);
	for (size_t i = 0; i < rec->old.n_records; i++)
		if (rec->old.records[i].kind == STATE_HOLD)
			restore_hold(rec, &orphans, &rec->old.records[i]);
	hmap_finish(&orphans);
	drop_unheld(broker);
	if (rec->old.next_handle > broker->next_handle)
		broker->next_handle = rec->old.next_handle;
	/* Into the new file too: a second crash right after this one must not reuse them. */
	state_set_next_handle(rec->state, broker->next_handle);
	scrub_free_memory(broker, backend);
	if (rec->old.found)
		log_info("Restored %zu buffer(s) held by %zu session(s) of the previous smhd; "
			 "handles continue at %llu",
			 (size_t)broker_n_allocs(broker), broker->n_orphans,
			 (unsigned long long)broker->next_handle);
	state_old_finish(&rec->old);
	ret = state_commit(rec->state);
	if (ret == 0 && rec->fdstore)
		hand_to_store(rec, backend);
	else if (ret == 0 && rec->opts.backend == BACKEND_MEMFD)
		hand_to_keeper(rec, backend); /* not fatal: serving without it is still safe */
	keeper_fds_close(&rec->kept);
	return ret;
}

/* ---------------------------------------------------------------- the grace period */

static bool process_alive(const struct broker_client *c)
{
	if (c->pid <= 0)
		return false;
	if (kill(c->pid, 0) < 0 && errno != EPERM)
		return false;
	return c->proc_start == 0 || proc_start_time(c->pid) == c->proc_start;
}

static void on_grace(uv_timer_t *timer)
{
	struct recover *rec = timer->data;
	struct broker *b = rec->broker;
	struct list *pos, *tmp;
	size_t n_kept = 0;

	list_for_each_safe(pos, tmp, &b->orphans)
	{
		struct broker_client *o = list_entry(pos, struct broker_client, link);

		if (process_alive(o)) {
			n_kept++;
			continue;
		}
		log_info("Releasing %llu buffer(s) of a session nobody resumed (pid %d is gone)",
			 (unsigned long long)o->n_buffers, (int)o->pid);
		broker_client_remove(b, o);
	}
	if (n_kept == 0) {
		uv_timer_stop(timer);
		return;
	}
	log_info("Keeping the buffers of %zu session(s) not resumed yet: their processes live "
		 "and may map them",
		 n_kept);
}

void recover_arm(struct recover *rec, uv_loop_t *loop)
{
	uint64_t ms;

	if (!rec || rec->broker->n_orphans == 0)
		return;
	ms = (uint64_t)rec->opts.grace_s * 1000;
	uv_timer_init(loop, &rec->timer);
	rec->timer.data = rec;
	rec->timer_started = true;
	uv_timer_start(&rec->timer, on_grace, ms, ms ? ms : 1000);
	uv_unref((uv_handle_t *)&rec->timer);
	log_info("%zu session(s) of the previous smhd may resume within %u s",
		 rec->broker->n_orphans, rec->opts.grace_s);
}

void recover_close(struct recover *rec, uv_loop_t *loop, bool clean)
{
	if (!rec)
		return;
	if (rec->broker)
		broker_set_journal(rec->broker, NULL);
	if (rec->timer_started && loop) {
		uv_close((uv_handle_t *)&rec->timer, NULL);
		uv_run(loop, UV_RUN_DEFAULT);
	}
	state_old_finish(&rec->old);
	keeper_fds_close(&rec->kept);
	if (clean && rec->state && rec->fdstore && rec->broker) {
		for (size_t i = 0; i < pool_n_regions(rec->broker->pool); i++)
			systemd_fdstore_remove(pool_region(rec->broker->pool, i)->label);
	} else if (clean && rec->state) {
		keeper_stop(rec->opts.state_dir, rec->keeper);
	}
	state_close(rec->state, clean);
	free(rec->memfds);
	free(rec);
}
