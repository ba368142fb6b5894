/* SPDX-License-Identifier: MIT */
/*
 * The daemon as one object (see smhd.h).
 *
 * smhd_create() builds in the order start-up must follow and unwinds in reverse on failure.
 * One part does not keep that order at the end: the recovery, opened before the backend, holds
 * on to what comes after it (its journal hears every change of the broker, its grace timer runs
 * on the server's loop), so smhd_destroy() closes it first. On the way out of a failed start it
 * is enough to stop the journal before the broker releases the buffers restored, which the next
 * smhd must find recorded still.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/attr.h"
#include "common/log.h"
#include "common/units.h"
#include "core/pool.h"
#include "daemon/broker.h"
#include "daemon/policy-config.h"
#include "daemon/restart/recover.h"
#include "daemon/restart/state.h"
#include "daemon/scrub.h"
#include "daemon/server.h"
#include "daemon/smhd.h"
#include "daemon/systemd.h"

struct smhd {
	struct dt_config cfg;
	struct recover *rec; /* NULL without state (--no-state, or no directory for it) */
	struct backend *backend;
	struct pool *pool;
	struct scrub *scrub;
	struct policy policy;
	struct broker broker;
	struct server *server;
	struct systemd_stored stored; /* fds the service manager's store passed back */
	uv_signal_t restart_sig;      /* SIGUSR1: stop, keeping the buffers for the next smhd */
	bool restart_sig_open;
	bool keep;  /* stopping for a restart: nothing released is recorded or scrubbed */
	bool clean; /* served and stopped without error: nothing is left to recover */
	char default_state_dir[4096]; /* the recovery keeps a pointer to it */
};

static void log_diag(void *data, enum diag_level level, const char *msg)
{
	if (level == DIAG_ERROR)
		log_error("%s", msg);
	else
		log_warning("%s", msg);
}

static void scrub_zero(void *data, uint32_t region, uint64_t addr, uint64_t len)
{
	struct smhd *d = data;

	/* Stopping for a restart: the clients' bytes stay for the next smhd to give back. */
	if (!d->keep)
		backend_zero(d->backend, region, addr, len);
}

static void scrub_queue_block(void *data, const struct pool_block *blk)
{
	struct smhd *d = data;

	/* Stopping for a restart: not zeroed; the block stays taken until the pool goes. */
	if (!d->keep)
		scrub_queue(d->scrub, blk);
}

/* --debug-poison: the scrubber reports a write after free with whose block it was. */
static void scrub_queue_freed(void *data, const struct pool_block *blk,
			      const struct broker_freed *from)
{
	struct smhd *d = data;
	struct poison_origin origin = { .handle = from->handle };

	if (d->keep)
		return;
	/* No holder (a restore dropped it): no process left to write after free. */
	if (!from->client) {
		scrub_queue(d->scrub, blk);
		return;
	}
	origin.pid = from->client->pid;
	snprintf(origin.comm, sizeof(origin.comm), "%s", from->client->comm);
	scrub_queue_from(d->scrub, blk, &origin);
}

static void scrub_waiting(void *data)
{
	struct smhd *d = data;

	scrub_drain(d->scrub);
}

static void scrub_get_backlog(void *data, uint32_t region, uint64_t *bytesp, uint64_t *blocksp)
{
	struct smhd *d = data;

	scrub_backlog(d->scrub, region, bytesp, blocksp);
}

/*
 * The scrubber, at full speed unless a test slows it down to watch it busy
 * (SMHD_TEST_SCRUB_RATE, bytes per second): read only when set.
 */
static int create_scrub(struct smhd *d, const struct smhd_options *opts)
{
	const char *rate_s = getenv("SMHD_TEST_SCRUB_RATE");
	uint64_t rate = rate_s ? strtoull(rate_s, NULL, 10) : 0;
	int ret = scrub_create(d->backend, d->pool, rate, &d->scrub);
	struct broker_scrub bs = { .zero = scrub_zero,
				   .queue = scrub_queue_block,
				   .backlog = scrub_get_backlog,
				   .data = d };

	if (ret < 0) {
		log_error("Could not start the scrubber: %s", strerror(-ret));
		return ret;
	}
	/* Off by default, and then the broker's path is the plain one: no callback more. */
	if (opts->debug_poison) {
		ret = scrub_set_poison(d->scrub, opts->poison_quarantine);
		if (ret < 0) {
			log_error("Could not start the poison quarantine: %s", strerror(-ret));
			scrub_destroy(d->scrub);
			d->scrub = NULL;
			return ret;
		}
		bs.queue_freed = scrub_queue_freed;
		bs.waiting = scrub_waiting;
		log_info("Use-after-free detection on (--debug-poison): freed blocks are filled "
			 "with 0x%02x and checked when they leave the quarantine",
			 POISON_BYTE);
	}
	bs.depot = scrub_depot(d->scrub);
	bs.unmap = scrub_unmap_hook;
	bs.unmap_data = d->scrub;
	bs.populate = scrub_populate_hook;
	broker_init(&d->broker, d->pool, &bs);
	/* The allocators' old tables and shrunk arrays are unmapped by the scrubber's thread. */
	pool_set_unmap(d->pool, scrub_unmap_hook, d->scrub);
	/* Their new tables of live allocations are faulted in by that thread too. */
	pool_set_populate(d->pool, scrub_populate_hook);
	return 0;
}

/* devmem: the regions' contents are unknown; served as the scrubber clears them. */
static int scrub_new_regions(struct smhd *d)
{
	for (size_t i = 0; i < pool_n_regions(d->pool); i++) {
		const struct backend_region *br = backend_region(d->backend, i);

		if (br->usable && br->scrub_first &&
		    broker_scrub_free(&d->broker, (uint32_t)i) < 0) {
			log_error("Out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/* The device tree's regions; having none is an error. Returns 0 or a negative errno (logged). */
static int load_config(const char *dtb, struct dt_config *cfg, const struct diag *diag)
{
	int ret = dt_load(dtb, cfg, diag);

	if (ret == 0 && cfg->n_regions == 0) {
		log_error("%s has no shared-multi-heap region: nothing to serve", dtb);
		ret = -ENODEV;
	}
	return ret;
}

/* Where the state goes (@buf holds the default), or NULL for no state. */
static const char *choose_state_dir(const struct smhd_options *opts, char *buf, size_t size)
{
	const char *dir;

	recover_default_dir(opts->socket, buf, size);
	dir = opts->no_state ? NULL : opts->state_dir ? opts->state_dir : buf;
	/*
	 * By default the state lives beside the socket, in a directory clients must traverse:
	 * made 0755 here, as the server would (an explicit --state-dir is made 0700). It may be one
	 * others write to (/tmp, say): then no state there.
	 */
	if (dir == buf && mkdir(dir, 0755) < 0 && errno != EEXIST)
		log_debug("Could not create %s: %s", dir, strerror(errno));
	if (dir == buf && state_dir_check(dir, false) == -EPERM) {
		log_warning(
			"Restart without loss is off: %s is not a directory of ours that only we "
			"may write to; give --state-dir",
			dir);
		dir = NULL;
	}
	return dir;
}

static void log_regions(const struct pool *pool, const struct backend *backend)
{
	for (size_t i = 0; i < pool_n_regions(pool); i++) {
		const struct pool_region *r = pool_region(pool, i);
		char size[32];

		units_format_size(r->size, size, sizeof(size));
		log_info("Region %s: %s, 0x%llx-0x%llx (%s), %s%s", r->label, attr_name(r->attr),
			 (unsigned long long)r->base, (unsigned long long)(r->base + r->size - 1),
			 size, backend_region(backend, i)->mapping,
			 r->disabled ? " (not served)" : "");
	}
}

/* The pool over the backend's regions; those the backend could not map are not served. */
static int create_pool(struct smhd *d, uint64_t granule, const struct diag *diag)
{
	struct pool_hooks hooks = backend_pool_hooks(d->backend);
	int ret = pool_create(&d->cfg, granule, &hooks, diag, &d->pool);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < pool_n_regions(d->pool); i++)
		if (!backend_region(d->backend, i)->usable)
			pool_region_disable(d->pool, i);
	log_regions(d->pool, d->backend);
	return 0;
}

/*
 * SIGUSR1 waits blocked from the start until smhd_run() watches it: the socket accepts before
 * that (a client counting the daemon as up may send it at once), and its default action would
 * kill smhd instead of stopping it for a restart. Threads started meanwhile (the scrubber's)
 * keep it blocked, so that it always comes to the loop's thread.
 */
static void restart_signal_mask(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(how, &set, NULL);
}

int smhd_create(const struct smhd_options *opts, struct policy *policy, struct smhd **smhdp)
{
	const struct diag diag = { .report = log_diag };
	struct backend_options bopts = {
		.kind = opts->backend,
		.mem_path = opts->mem_path,
		.strict = opts->strict,
	};
	struct smhd *d = calloc(1, sizeof(*d));
	int listen_fd = -1;
	int ret;

	if (!d) {
		log_error("Out of memory");
		policy_finish(policy);
		return -ENOMEM;
	}
	d->policy = *policy;
	*policy = (struct policy){ 0 };
	restart_signal_mask(SIG_BLOCK);
	/* First: a socket-activated smhd with the wrong socket should say so before anything. */
	ret = systemd_listen_fd(opts->socket, &listen_fd, &d->stored);
	if (ret < 0)
		goto err_smhd;
	ret = load_config(opts->dtb, &d->cfg, &diag);
	if (ret < 0)
		goto err_config;
	ret = recover_open(
		&(struct recover_options){
			.state_dir = choose_state_dir(opts, d->default_state_dir,
						      sizeof(d->default_state_dir)),
			.socket = opts->socket,
			.grace_s = opts->reclaim_grace,
			.backend = opts->backend,
			.granule = opts->granule,
			.stored = &d->stored,
		},
		&d->cfg, &d->rec);
	systemd_stored_close(&d->stored); /* what the recovery did not take */
	if (ret < 0)
		goto err_config;
	bopts.memfds = recover_memfds(d->rec);
	bopts.keep_contents = recover_keep_contents(d->rec);
	ret = backend_create(&bopts, &d->cfg, &diag, &d->backend);
	if (ret < 0)
		goto err_recover;
	ret = create_pool(d, opts->granule, &diag);
	if (ret < 0)
		goto err_backend;
	ret = create_scrub(d, opts);
	if (ret < 0)
		goto err_pool;
	policy_log(&d->policy);
	ret = recover_restore(d->rec, &d->broker, d->backend);
	if (ret == 0)
		ret = scrub_new_regions(d);
	if (ret < 0)
		goto err_broker;
	ret = server_create(opts->socket, listen_fd, opts->allow_shared_socket_dir, &d->broker,
			    &d->policy, d->backend, &opts->limits, &d->server);
	listen_fd = -1; /* consumed */
	if (ret < 0)
		goto err_broker;
	server_set_scrub(d->server, d->scrub);
	*smhdp = d;
	return 0;

err_broker:
	broker_set_journal(&d->broker, NULL); /* the buffers restored stay recorded */
	broker_finish(&d->broker);
	pool_set_unmap(d->pool, NULL, NULL); /* the scrubber goes */
	scrub_destroy(d->scrub);
	d->scrub = NULL;
err_pool:
	pool_destroy(d->pool);
err_backend:
	backend_destroy(d->backend);
err_recover:
	recover_close(d->rec, NULL, false);
err_config:
	systemd_stored_close(&d->stored);
	dt_config_finish(&d->cfg);
	if (listen_fd >= 0)
		close(listen_fd);
err_smhd:
	restart_signal_mask(SIG_UNBLOCK);
	policy_finish(&d->policy);
	free(d);
	return ret;
}

/*
 * SIGUSR1 (the unit's KillSignal=): stop as at SIGTERM, but as a restart, not a clean stop: the
 * buffers clients hold stay recorded, their bytes unscrubbed, the memfd regions in the keeper
 * or the fd store, so that the next smhd gives them back as after a crash.
 */
static void on_restart_signal(uv_signal_t *sig, int signum)
{
	struct smhd *d = sig->data;

	log_info(
		"SIGUSR1: stopping for a restart: the buffers clients hold stay for the next smhd");
	d->keep = true;
	broker_set_journal(&d->broker, NULL); /* the releases of the shutdown are not recorded */
	uv_close((uv_handle_t *)sig, NULL);
	d->restart_sig_open = false;
	raise(SIGTERM); /* the server's shutdown */
}

int smhd_run(struct smhd *d)
{
	uv_loop_t *loop = server_loop(d->server);
	int ret;

	recover_arm(d->rec, loop);
	uv_signal_init(loop, &d->restart_sig);
	d->restart_sig.data = d;
	d->restart_sig_open = true;
	if (uv_signal_start(&d->restart_sig, on_restart_signal, SIGUSR1) < 0)
		log_warning("Could not watch SIGUSR1: it stops smhd without keeping the buffers");
	restart_signal_mask(SIG_UNBLOCK); /* one sent meanwhile comes now */
	uv_unref((uv_handle_t *)&d->restart_sig);
	ret = server_run(d->server);
	d->clean = ret == 0 && !d->keep;
	return ret;
}

void smhd_destroy(struct smhd *d)
{
	if (!d)
		return;
	if (d->restart_sig_open) {
		uv_close((uv_handle_t *)&d->restart_sig, NULL);
		uv_run(server_loop(d->server), UV_RUN_NOWAIT);
	}
	recover_close(d->rec, server_loop(d->server), d->clean); /* first: see the top */
	server_destroy(d->server);
	broker_finish(&d->broker);
	if (d->pool)
		pool_set_unmap(d->pool, NULL, NULL); /* the scrubber goes */
	scrub_destroy(d->scrub); /* finishes the queue: every block back in the pool */
	pool_destroy(d->pool);
	backend_destroy(d->backend);
	dt_config_finish(&d->cfg);
	policy_finish(&d->policy);
	free(d);
}
