/* SPDX-License-Identifier: MIT */
/*
 * A rate limit on the daemon's warnings about what one uid's connections do (refused, dropped
 * for a protocol violation, fds sent, silent): at most RATELOG_BURST lines per uid and kind in
 * RATELOG_WINDOW_MS; the ones past that are counted, and the next line of that uid and kind
 * says how many were suppressed. Without it a uid refused by the policy could write thousands
 * of warnings a second, and journald's own rate limit would then hide the daemon's other
 * messages.
 *
 * The table is fixed (RATELOG_SLOTS pairs of uid and kind): memory does not grow with the
 * number of uids; when it is full, the pair seen longest ago gives its slot up.
 */
#ifndef DAEMON_RATELOG_H
#define DAEMON_RATELOG_H

#include <stdbool.h>
#include <stdint.h>

#define RATELOG_BURST     3
#define RATELOG_WINDOW_MS 60000
#define RATELOG_SLOTS     64

struct ratelog_slot {
	uint32_t uid;
	unsigned kind;
	bool used;
	int64_t window_ms; /* start of the current window */
	int64_t last_ms;   /* of the last event, for eviction */
	unsigned n_logged; /* in the current window */
	uint64_t n_quiet;  /* suppressed, not yet reported */
};

struct ratelog {
	struct ratelog_slot slots[RATELOG_SLOTS];
};

/* Whether an event may be logged; ratelog zeroed (static or `= { 0 }`) is ready to use. */
struct ratelog_verdict {
	bool log;
	bool last;        /* the last line of the window: say that more will be suppressed */
	uint64_t n_quiet; /* suppressed since the previous line logged, to report with this one */
};

/* Decides about one event of @kind from @uid at @now_ms (a monotonic clock). */
struct ratelog_verdict ratelog_check(struct ratelog *r, uint32_t uid, unsigned kind,
				     int64_t now_ms);

#endif
