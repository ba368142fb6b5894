/* SPDX-License-Identifier: MIT */
/*
 * The access policy and quotas of smhd: which uids and gids may connect (beyond the socket's
 * file mode), how many clients are served at once, and how many bytes and buffers one
 * connection, and all the connections of one uid, may hold.
 *
 * This header is the policy itself (a plain struct and its keys) and the decisions taken from
 * it (policy.c); daemon/policy-config.h builds it from the options and the configuration file
 * (docs/configuration.md). The two halves share the struct and nothing else.
 *
 * The server asks policy_admit() about each new connection, with the identity it read from the
 * socket when it accepted it; the request handlers ask policy_charge() before an allocation, an
 * import or a growing realloc, and policy_resume() before a connection takes a restored session
 * over. Sessions a restart left (orphans) count in their uid's use. Refusals are -EACCES (not allowed), -EMFILE (too many clients)
 * and -EDQUOT (over a quota), each with a sentence for the client, and are logged once: quota
 * refusals once per connection and limit, connection refusals at most once a minute per kind
 * (the ones in between at debug level, counted in the next warning).
 */
#ifndef DAEMON_POLICY_H
#define DAEMON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/broker.h"

/* A limit that is not set, or set to "unlimited". */
#define POLICY_UNLIMITED UINT64_MAX

/*
 * The default buffer caps. Every buffer costs the daemon memory (its records, ~400 bytes of
 * RSS) and the state file two records (320 bytes): unbounded, 500k buffers of 64 B took smhd
 * from 3 to 214 MB and the state file, in /run, to 100 MB. Far above what a camera or codec
 * pipeline holds; "unlimited" lifts them.
 */
#define POLICY_DEFAULT_BUFFERS_PER_CLIENT 4096
#define POLICY_DEFAULT_BUFFERS_PER_UID    16384

/* The keys of the configuration file, which are also the long options' names. */
enum policy_key {
	POLICY_ALLOW_UID,
	POLICY_ALLOW_GID,
	POLICY_MAX_CLIENTS,
	POLICY_MAX_BYTES_PER_UID, /* the limits, in this order, from here on */
	POLICY_MAX_BUFFERS_PER_UID,
	POLICY_MAX_BYTES_PER_CLIENT,
	POLICY_MAX_BUFFERS_PER_CLIENT,
	POLICY_N_KEYS
};

/* The key's name ("max-bytes-per-uid"); "?" for no key. */
static inline const char *policy_key_name(enum policy_key key)
{
	static const char *const names[POLICY_N_KEYS] = {
		[POLICY_ALLOW_UID] = "allow-uid",
		[POLICY_ALLOW_GID] = "allow-gid",
		[POLICY_MAX_CLIENTS] = "max-clients",
		[POLICY_MAX_BYTES_PER_UID] = "max-bytes-per-uid",
		[POLICY_MAX_BUFFERS_PER_UID] = "max-buffers-per-uid",
		[POLICY_MAX_BYTES_PER_CLIENT] = "max-bytes-per-client",
		[POLICY_MAX_BUFFERS_PER_CLIENT] = "max-buffers-per-client",
	};

	return key < POLICY_N_KEYS ? names[key] : "?";
}

/* Whether the key's value is a size in bytes (else a count, or a list). */
static inline bool policy_key_is_size(enum policy_key key)
{
	return key == POLICY_MAX_BYTES_PER_UID || key == POLICY_MAX_BYTES_PER_CLIENT;
}

/* A list of uids or gids. */
struct policy_ids {
	uint32_t *ids;
	size_t n;
};

/* A `[uid N]` section of the configuration file: limits for one uid. */
struct policy_uid {
	uint32_t uid;
	uint64_t value[POLICY_N_KEYS]; /* only the limits are used */
	unsigned set;                  /* bit (1 << key) per limit the section sets */
};

/* Refused connections of one kind, for the log's rate limit. */
struct policy_rate {
	int64_t last_ms;  /* of the last warning; 0: none yet */
	uint64_t n_quiet; /* refusals since, logged at debug level only */
};

struct policy {
	struct policy_ids allow_uids, allow_gids;
	uint64_t value[POLICY_N_KEYS]; /* max-clients and the limits; POLICY_UNLIMITED: none */
	unsigned set;                  /* bit (1 << key) per key given */
	struct policy_uid *uids;       /* [uid N] sections */
	size_t n_uids;
	struct policy_rate rate[2]; /* the decisions': not allowed, too many clients */
};

/* Logs the policy in force (one info line), if it restricts anything. */
void policy_log(const struct policy *p);

/* The limit @key (a limit key) that applies to @uid. */
uint64_t policy_limit(const struct policy *p, uint32_t uid, enum policy_key key);

/*
 * Decides whether the new connection @c of broker @b is served, from what the server read of
 * its peer when it accepted it: @c's uid and gid, and @groups, its supplementary groups (NULL
 * for none). @p NULL is no policy: everyone is. Sets c->refused. Returns 0, or -EACCES (its
 * uid and groups are not allowed) or -EMFILE (max-clients are served already) with the
 * sentence for the client in @why.
 */
int policy_admit(struct policy *p, const struct broker *b, struct broker_client *c,
		 const struct policy_ids *groups, char *why, size_t why_size);

/*
 * Whether @c of broker @b may hold @bytes and @buffers more under @p (NULL: no policy, it
 * may). *@logged (per connection, zero at first) remembers which limits were logged already.
 * Returns 0, or -EDQUOT with the sentence naming the limit and the current use in @why.
 */
int policy_charge(const struct policy *p, const struct broker *b, const struct broker_client *c,
		  uint64_t bytes, uint64_t buffers, unsigned *logged, char *why, size_t why_size);

/*
 * Whether @c may take over the holds of @orphan (broker_resume()): as policy_charge() for
 * what the orphan holds, which its uid's use already counts. Returns 0 or -EDQUOT.
 */
int policy_resume(const struct policy *p, const struct broker *b, const struct broker_client *c,
		  const struct broker_client *orphan, unsigned *logged, char *why, size_t why_size);

#endif
