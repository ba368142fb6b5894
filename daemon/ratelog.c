/* SPDX-License-Identifier: MIT */
/*
 * The warnings' rate limit (see ratelog.h). A linear search of 64 slots per event: cheaper
 * than the log line it may save, and no allocation, so an event can always be judged.
 */
#include <stddef.h>

#include "daemon/ratelog.h"

static struct ratelog_slot *find(struct ratelog *r, uint32_t uid, unsigned kind)
{
	struct ratelog_slot *oldest = &r->slots[0];

	for (size_t i = 0; i < RATELOG_SLOTS; i++) {
		struct ratelog_slot *s = &r->slots[i];

		if (s->used && s->uid == uid && s->kind == kind)
			return s;
		if (!s->used || (oldest->used && s->last_ms < oldest->last_ms))
			oldest = s;
	}
	/* A slot given up loses its count of suppressed lines: at worst one count unsaid. */
	*oldest = (struct ratelog_slot){ .uid = uid, .kind = kind, .used = true };
	oldest->window_ms = INT64_MIN;
	return oldest;
}

struct ratelog_verdict ratelog_check(struct ratelog *r, uint32_t uid, unsigned kind, int64_t now_ms)
{
	struct ratelog_slot *s = find(r, uid, kind);
	struct ratelog_verdict v = { .log = false };

	s->last_ms = now_ms;
	if (s->window_ms == INT64_MIN || now_ms - s->window_ms >= RATELOG_WINDOW_MS) {
		s->window_ms = now_ms;
		s->n_logged = 0;
	}
	if (s->n_logged >= RATELOG_BURST) {
		s->n_quiet++;
		return v;
	}
	s->n_logged++;
	v.log = true;
	v.last = s->n_logged == RATELOG_BURST;
	v.n_quiet = s->n_quiet;
	s->n_quiet = 0;
	return v;
}
