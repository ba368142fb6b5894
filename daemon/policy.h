/* SPDX-License-Identifier: MIT */
/*
 * The access policy and quotas of smhd: which uids and gids may connect (beyond the socket's
 * file mode), how many clients are served at once, and how many bytes and buffers one
 * connection, and all the connections of one uid, may hold. Set by options and by a
 * configuration file (docs/configuration.md); options override the file.
 *
 * The broker carries the policy (broker->policy) but never looks at it: the server asks
 * policy_admit() about each new connection, the request handlers ask policy_charge() before
 * an allocation, an import or a growing realloc. Refusals are -EACCES (not allowed), -EMFILE
 * (too many clients) and -EDQUOT (over a quota), each with a sentence for the client, and are
 * logged once: quota refusals once per connection and limit, connection refusals at most once
 * a minute per kind (the ones in between at debug level, counted in the next warning).
 */
#ifndef DAEMON_POLICY_H
#define DAEMON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "daemon/broker.h"

#define POLICY_DEFAULT_CONFIG "/etc/smh/smhd.conf"

/* A limit that is not set, or set to "unlimited". */
#define POLICY_UNLIMITED UINT64_MAX

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

/* The key's name ("max-bytes-per-uid"). */
const char *policy_key_name(enum policy_key key);

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
	struct policy_rate rate[2]; /* not allowed, too many clients */
};

/* Everything allowed, nothing limited. */
void policy_init(struct policy *p);
/* Frees the lists; policy_finish() on a zeroed or finished policy is a no-op. */
void policy_finish(struct policy *p);

/*
 * Sets @key from @value as the option --KEY VALUE does: a list (comma- or space-separated uids
 * or gids, numbers or names) adds to what the option gave before, a number or size
 * ("unlimited" lifts the limit) replaces it. On failure @err (of @err_size bytes) says why.
 * Returns 0 or a negative errno: -EINVAL (malformed), -ENOENT (unknown user or group),
 * -ENOMEM.
 */
int policy_set(struct policy *p, enum policy_key key, const char *value, char *err,
	       size_t err_size);

/*
 * Parses the configuration text @text (NUL-terminated) of the file @name into @p.
 * On failure @err says "NAME:LINE: what". Returns 0 or a negative errno (-EINVAL, -ENOENT,
 * -ENOMEM).
 */
int policy_parse(struct policy *p, const char *name, const char *text, char *err, size_t err_size);

/*
 * Builds @p (initialised by the caller) from the configuration file @path (NULL: the default,
 * which may be missing) and then the options @cli, which override the file: a list the
 * options give replaces the file's. On failure @err says why. Returns 0 or a negative errno
 * (the file's, -EINVAL, -ENOENT, -ENOMEM).
 */
int policy_configure(struct policy *p, const char *path, const struct policy *cli, char *err,
		     size_t err_size);

/* The option lines of `smhd --help`. */
void policy_usage(FILE *f);

/* Logs the policy in force (one info line), if it restricts anything. */
void policy_log(const struct policy *p);

/* The limit @key (a limit key) that applies to @uid. */
uint64_t policy_limit(const struct policy *p, uint32_t uid, enum policy_key key);

/*
 * Decides whether the new connection @c of broker @b (whose policy, NULL for none, decides;
 * @fd is its socket, for the peer's supplementary groups) is served. Sets c->refused.
 * Returns 0, or -EACCES (its uid and groups are not allowed) or -EMFILE (max-clients are
 * served already) with the sentence for the client in @why.
 */
int policy_admit(struct broker *b, struct broker_client *c, int fd, char *why, size_t why_size);

/*
 * Whether @c of broker @b may hold @bytes and @buffers more. *@logged (per connection, zero
 * at first) remembers which limits were logged already. Returns 0, or -EDQUOT with the
 * sentence naming the limit and the current use in @why.
 */
int policy_charge(struct broker *b, const struct broker_client *c, uint64_t bytes, uint64_t buffers,
		  unsigned *logged, char *why, size_t why_size);

#endif
