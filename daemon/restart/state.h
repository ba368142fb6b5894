/* SPDX-License-Identifier: MIT */
/*
 * The state file: what a restarted smhd needs to know of the buffers its clients hold
 * (docs/restart.md). DIR/smhd.state is a header and an array of records, mapped MAP_SHARED and
 * updated in memory as the broker's journal (daemon/broker.h): no system call per request, and
 * whatever was stored before a SIGKILL is in the file (the page cache outlives the process).
 *
 * Records: one per allocation (handle, region, address, size, alignment, token, name) and one per
 * hold (handle, session, count, and the holder's pid, start time and uid). A record is valid when
 * its `check` matches a hash of every other field; `check` is written last, after a release
 * fence. A change writes the new version into a free slot first, then clears the old one's
 * `check`: a crash between the two leaves both valid, and the higher sequence number wins.
 * So a record is never torn into a valid one, and never missing while its subject lives.
 *
 * The header carries a fingerprint of the configuration (backend, granule, every region's
 * label, base, size and attribute): records of another configuration mean nothing, and the
 * file is then set aside as smhd.state.old. DIR/smhd.lock, held with flock() while the daemon
 * runs, keeps a second daemon from using the same directory.
 *
 * Versions: 3 (160-byte records, with the buffer's name) is written; 2 (96-byte records, the
 * same without the name) is still read, so an upgrade keeps every buffer, unnamed.
 */
#ifndef DAEMON_RESTART_STATE_H
#define DAEMON_RESTART_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/broker.h"

enum state_kind {
	STATE_NONE = 0,
	STATE_ALLOC = 1,
	STATE_HOLD = 2,
};

/* A record as the file holds it (160 bytes, naturally aligned). */
struct state_record {
	uint32_t kind; /* enum state_kind */
	uint32_t region;
	uint64_t handle;
	uint64_t addr, size, align, token; /* allocations */
	uint64_t session, count;           /* holds */
	uint64_t proc_start;               /* holds: the holder's start time (common/proc.h) */
	int32_t pid;                       /* holds: the holder's pid */
	uint32_t uid;                      /* holds: the holder's uid (its quotas, who resumes) */
	/* Allocations: the buffer's name (common/bufname.h), NUL-padded; "" for none. Version 3. */
	char name[BUFNAME_MAX + 1];
	uint64_t seq;
	uint64_t check; /* written last; 0: free slot */
};

/* What the previous daemon left: its valid records, the latest version of each. */
struct state_old {
	bool found;                   /* a state file of this configuration was there */
	struct state_record *records; /* allocations first (handle order), then holds */
	size_t n_records;
	uint64_t next_handle; /* the handle it would have given next */
};

struct state;

/* Bounds on what a state file may say (it may be anyone's bytes). */
#define STATE_HANDLE_MAX (UINT64_C(1) << 63)
#define STATE_COUNT_MAX  BROKER_HOLD_COUNT_MAX
#define STATE_FILE_MAX   ((off_t)1 << 30)

/*
 * Checks that every directory above @dir is one only root and this uid may change (or sticky,
 * as /tmp), creates @dir (0700) if missing, and checks that it is a directory owned by this
 * uid that nobody else may write to. Returns 0 or a negative errno (-EPERM: unsafe; logged if
 * @loud; -ENOENT when a parent is missing).
 */
int state_dir_check(const char *dir, bool loud);

/* Handles below @next_handle are never given again, even after another crash. */
void state_set_next_handle(struct state *s, uint64_t next_handle);

/*
 * Opens the state directory @dir (checked by state_dir_check()), takes its lock, reads what a
 * previous daemon left into @old (free it with state_old_finish()), and starts a new state
 * file (put in place by state_commit()). @fingerprint names the configuration. @socket is
 * for the message when another daemon holds the lock.
 * Returns 0 or a negative errno (logged): -EADDRINUSE when another smhd runs on @dir.
 */
int state_open(const char *dir, uint64_t fingerprint, const char *socket, struct state **statep,
	       struct state_old *old);

void state_old_finish(struct state_old *old);

/* The journal that keeps the file current; set it on the broker before restoring. */
struct broker_journal state_journal(struct state *state);

/* Replaces the previous daemon's file with the new one (rename). Returns 0 or a negative errno. */
int state_commit(struct state *state);

/*
 * Unmaps and closes. With @clean (everything was released), removes the file and the lock:
 * the next daemon starts with nothing to recover. state_close(NULL, ...) does nothing.
 */
void state_close(struct state *state, bool clean);

/* The directory the state lives in. */
const char *state_dir(const struct state *state);

/* The records in use: slots taken and not freed since (0 once every buffer is released). */
uint64_t state_n_records(const struct state *state);

/* A record's check (FNV-1a of every other field, common/hash.h): never 0. */
uint64_t state_record_check(const struct state_record *r);

#endif
