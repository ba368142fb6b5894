/* SPDX-License-Identifier: MIT */
/*
 * The daemon as one object: the device-tree configuration, the recovery of a previous smhd's
 * buffers (daemon/restart/recover.h), the backend, the pool, the broker, the access policy and
 * the server. smhd_create() builds them in start-up order, smhd_run() serves, smhd_destroy()
 * takes them down. main.c parses the options and calls the three.
 *
 * Built with the executable, not in smhd's library: it is the one user of daemon/restart/,
 * which links against that library.
 */
#ifndef DAEMON_SMHD_H
#define DAEMON_SMHD_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/backend.h"
#include "daemon/server.h"

struct policy;

struct smhd_options {
	const char *dtb;
	enum backend_kind backend;
	const char *mem_path;
	const char *socket;
	bool allow_shared_socket_dir; /* serve from a directory others may write to */
	uint64_t granule;
	bool strict;
	const char *state_dir; /* NULL: the socket's directory */
	bool no_state;
	unsigned reclaim_grace;
	struct server_limits limits; /* on connections not served */
	bool debug_poison;           /* use-after-free detection (daemon/poison.h) */
	uint64_t poison_quarantine;  /* bytes per region; 0: a quarter of each region */
};

struct smhd;

/*
 * Builds the daemon, in this order: the listening socket the service manager passed (checked
 * before anything else), the device tree, the state a previous smhd left, the backend, the pool,
 * the broker under @policy, the buffers restored, the listening server. @policy is moved in:
 * *@policy is left zeroed, and the daemon finishes it (on failure too).
 * Returns 0 or a negative errno (logged).
 */
int smhd_create(const struct smhd_options *opts, struct policy *policy, struct smhd **smhdp);

/*
 * Starts the grace period of restored buffers, tells the service manager smhd is ready and
 * serves until SIGINT or SIGTERM, or SIGUSR1: a stop for a restart, after which the buffers
 * clients hold stay recorded (as after a crash) for the next smhd. Returns 0 (nothing in the
 * loop fails it: errors are some client's, and end that client only).
 */
int smhd_run(struct smhd *d);

/*
 * Closes the connections, releases every buffer and frees. The state of the buffers held is
 * removed (nothing is left to recover) only after smhd_run() returned 0 at SIGINT or SIGTERM;
 * otherwise it stays, for the next smhd. smhd_destroy(NULL) is a no-op.
 */
void smhd_destroy(struct smhd *d);

#endif
