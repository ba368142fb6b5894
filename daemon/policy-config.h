/* SPDX-License-Identifier: MIT */
/*
 * The access policy's configuration: the options (--allow-uid, --max-clients...) and the
 * configuration file (docs/configuration.md), parsed into a struct policy (daemon/policy.h).
 * Options override the file. Names of users and groups are resolved here, once.
 */
#ifndef DAEMON_POLICY_CONFIG_H
#define DAEMON_POLICY_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "daemon/policy.h"

#define POLICY_DEFAULT_CONFIG "/etc/smh/smhd.conf"

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

#endif
