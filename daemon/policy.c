/* SPDX-License-Identifier: MIT */
/*
 * The access policy's decisions (see policy.h), from the struct policy-config.c built.
 *
 * A client's identity is what the server read from its socket when it accepted it (SO_PEERCRED
 * into the broker's client record, and the supplementary groups SO_PEERGROUPS gave): nothing
 * here looks at a socket, so every decision can be taken, and tested, from a record alone.
 * Root is always allowed: it can reach the socket whatever its mode, and the administration
 * tools run as root; the quotas and max-clients apply to root as to everyone.
 *
 * Use per uid is summed over the broker's clients and orphans at each check that a per-uid
 * limit needs (the default buffer cap makes that every charge): one pass over the
 * connections, which max-connections-per-uid bounds (64 per uid by default; root's are not
 * capped), against a second set of counters kept in step with every path that gives memory
 * back (free, realloc, the sliced release of a closed connection). Counters per uid would
 * make it O(1); they are the next step if boards run thousands of connections.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"
#include "daemon/policy.h"

/* A refused connection is logged at warning level at most once in this many milliseconds. */
#define RATE_WINDOW_MS 60000

static bool ids_has(const struct policy_ids *l, uint32_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ids[i] == id)
			return true;
	return false;
}

/* ---------------------------------------------------------------- the log */

static void format_limit(enum policy_key key, uint64_t v, char *buf, size_t size)
{
	if (v == POLICY_UNLIMITED)
		snprintf(buf, size, "unlimited");
	else if (policy_key_is_size(key))
		units_format_size(v, buf, size);
	else
		snprintf(buf, size, "%" PRIu64, v);
}

static void append(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n >= size - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

void policy_log(const struct policy *p)
{
	char line[768] = "";

	if (p->allow_uids.n || p->allow_gids.n) {
		append(line, sizeof(line), "; allowed: root");
		for (size_t i = 0; i < p->allow_uids.n; i++)
			append(line, sizeof(line), ", uid %" PRIu32, p->allow_uids.ids[i]);
		for (size_t i = 0; i < p->allow_gids.n; i++)
			append(line, sizeof(line), ", gid %" PRIu32, p->allow_gids.ids[i]);
	}
	for (int k = POLICY_MAX_CLIENTS; k < POLICY_N_KEYS; k++) {
		char v[32];

		if (p->value[k] == POLICY_UNLIMITED)
			continue;
		format_limit((enum policy_key)k, p->value[k], v, sizeof(v));
		append(line, sizeof(line), "; %s %s", policy_key_name((enum policy_key)k), v);
	}
	if (p->n_uids)
		append(line, sizeof(line), "; limits of their own for %zu uids", p->n_uids);
	if (line[0])
		log_info("Access policy:%s", line + 1);
}

/* ---------------------------------------------------------------- decisions */

uint64_t policy_limit(const struct policy *p, uint32_t uid, enum policy_key key)
{
	for (size_t i = 0; i < p->n_uids; i++)
		if (p->uids[i].uid == uid && (p->uids[i].set & (1u << key)))
			return p->uids[i].value[key];
	return p->value[key];
}

/* Whether a refusal at @now deserves a warning; *@quietp: how many since the last did not. */
static bool rate_warn(struct policy_rate *r, int64_t now, uint64_t *quietp)
{
	if (r->last_ms != 0 && now - r->last_ms < RATE_WINDOW_MS) {
		r->n_quiet++;
		return false;
	}
	*quietp = r->n_quiet;
	r->n_quiet = 0;
	r->last_ms = now > 0 ? now : 1;
	return true;
}

/* Whether one of @groups (the peer's supplementary groups, NULL for none) is allowed. */
static bool groups_allowed(const struct policy *p, const struct policy_ids *groups)
{
	for (size_t i = 0; groups && i < groups->n; i++)
		if (ids_has(&p->allow_gids, groups->ids[i]))
			return true;
	return false;
}

static bool allowed(const struct policy *p, const struct broker_client *c,
		    const struct policy_ids *groups)
{
	if (!p->allow_uids.n && !p->allow_gids.n)
		return true;
	if (c->uid == 0 || ids_has(&p->allow_uids, c->uid) || ids_has(&p->allow_gids, c->gid))
		return true;
	return groups_allowed(p, groups);
}

/* Clients served (not refused), @self excepted. */
static uint64_t n_served(const struct broker *b, const struct broker_client *self)
{
	const struct list *pos;
	uint64_t n = 0;

	list_for_each(pos, &b->clients)
	{
		const struct broker_client *x = list_entry(pos, struct broker_client, link);

		n += x != self && x->refused == 0;
	}
	return n;
}

int policy_admit(struct policy *p, const struct broker *b, struct broker_client *c,
		 const struct policy_ids *groups, char *why, size_t why_size)
{
	uint64_t max, quiet = 0;
	char more[64] = "";

	c->refused = 0;
	if (!p)
		return 0;
	max = p->value[POLICY_MAX_CLIENTS];
	if (!allowed(p, c, groups)) {
		snprintf(why, why_size,
			 "uid %u (gid %u) may not use smhd: neither it nor its groups are in "
			 "allow-uid or allow-gid",
			 (unsigned)c->uid, (unsigned)c->gid);
		c->refused = -EACCES;
	} else if (max != POLICY_UNLIMITED && n_served(b, c) >= max) {
		snprintf(why, why_size,
			 "smhd serves at most %" PRIu64 " clients (max-clients) at once", max);
		c->refused = -EMFILE;
	} else {
		return 0;
	}
	if (!rate_warn(&p->rate[c->refused == -EACCES ? 0 : 1], clock_ms(), &quiet)) {
		log_debug("Refusing client %llu (pid %d, %s, uid %u): %s",
			  (unsigned long long)c->id, (int)c->pid, c->comm, (unsigned)c->uid, why);
		return c->refused;
	}
	if (quiet)
		snprintf(more, sizeof(more), " (and %" PRIu64 " more like it since the last)",
			 quiet);
	log_warning("Refusing client %llu (pid %d, %s, uid %u): %s%s", (unsigned long long)c->id,
		    (int)c->pid, c->comm, (unsigned)c->uid, why, more);
	return c->refused;
}

static void add_usage(const struct list *clients, uint32_t uid, uint64_t *bytesp,
		      uint64_t *buffersp)
{
	const struct list *pos;

	list_for_each(pos, clients)
	{
		const struct broker_client *x = list_entry(pos, struct broker_client, link);

		if (x->uid == uid) {
			*bytesp += x->bytes;
			*buffersp += x->n_buffers;
		}
	}
}

/*
 * Bytes and buffers held by all the clients of @uid, and by its sessions a restart left
 * (orphans hold memory as much as connections do: not counting them would let a uid double
 * its quota across a restart).
 */
static void uid_usage(const struct broker *b, uint32_t uid, uint64_t *bytesp, uint64_t *buffersp)
{
	*bytesp = *buffersp = 0;
	add_usage(&b->clients, uid, bytesp, buffersp);
	add_usage(&b->orphans, uid, bytesp, buffersp);
}

static bool over(uint64_t use, uint64_t add, uint64_t max)
{
	return add > 0 && max != POLICY_UNLIMITED && (add > max || use > max - add);
}

static void describe(enum policy_key key, uint32_t uid, uint64_t max, uint64_t use, uint64_t add,
		     char *why, size_t why_size)
{
	char m[32], u[32], a[32];
	bool per_uid = key == POLICY_MAX_BYTES_PER_UID || key == POLICY_MAX_BUFFERS_PER_UID;

	format_limit(key, max, m, sizeof(m));
	format_limit(key, use, u, sizeof(u));
	format_limit(key, add, a, sizeof(a));
	if (per_uid)
		snprintf(why, why_size,
			 "Over quota: %s is %s for uid %" PRIu32 "; its connections hold %s%s and "
			 "this one asks for %s more",
			 policy_key_name(key), m, uid, u, policy_key_is_size(key) ? "" : " buffers",
			 a);
	else
		snprintf(why, why_size,
			 "Over quota: %s is %s; this connection holds %s%s and asks for %s more",
			 policy_key_name(key), m, u, policy_key_is_size(key) ? "" : " buffers", a);
}

/*
 * Whether @c may hold @bytes and @buffers more; @away (NULL for none) is a holder of @c's uid
 * whose holds are about to become @c's, so not counted twice.
 */
static int charge(const struct policy *p, const struct broker *b, const struct broker_client *c,
		  const struct broker_client *away, uint64_t bytes, uint64_t buffers,
		  unsigned *logged, char *why, size_t why_size)
{
	struct {
		enum policy_key key;
		uint64_t use, add;
	} checks[] = {
		{ POLICY_MAX_BYTES_PER_CLIENT, c->bytes, bytes },
		{ POLICY_MAX_BUFFERS_PER_CLIENT, c->n_buffers, buffers },
		{ POLICY_MAX_BYTES_PER_UID, 0, bytes },
		{ POLICY_MAX_BUFFERS_PER_UID, 0, buffers },
	};

	if (!p)
		return 0;
	if (policy_limit(p, c->uid, POLICY_MAX_BYTES_PER_UID) != POLICY_UNLIMITED ||
	    policy_limit(p, c->uid, POLICY_MAX_BUFFERS_PER_UID) != POLICY_UNLIMITED) {
		uid_usage(b, c->uid, &checks[2].use, &checks[3].use);
		if (away && away->uid == c->uid) {
			checks[2].use -= away->bytes;
			checks[3].use -= away->n_buffers;
		}
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		enum policy_key key = checks[i].key;
		uint64_t max = policy_limit(p, c->uid, key);

		if (!over(checks[i].use, checks[i].add, max))
			continue;
		describe(key, c->uid, max, checks[i].use, checks[i].add, why, why_size);
		if (!(*logged & (1u << key)))
			log_warning(
				"Client %llu (pid %d, %s, uid %u): %s; refused (logged once per "
				"connection)",
				(unsigned long long)c->id, (int)c->pid, c->comm, (unsigned)c->uid,
				why);
		*logged |= 1u << key;
		return -EDQUOT;
	}
	return 0;
}

int policy_charge(const struct policy *p, const struct broker *b, const struct broker_client *c,
		  uint64_t bytes, uint64_t buffers, unsigned *logged, char *why, size_t why_size)
{
	return charge(p, b, c, NULL, bytes, buffers, logged, why, why_size);
}

int policy_resume(const struct policy *p, const struct broker *b, const struct broker_client *c,
		  const struct broker_client *orphan, unsigned *logged, char *why, size_t why_size)
{
	return charge(p, b, c, orphan, orphan->bytes, orphan->n_buffers, logged, why, why_size);
}
