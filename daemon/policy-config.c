/* SPDX-License-Identifier: MIT */
/*
 * The access policy's configuration (see policy-config.h): option values, the configuration
 * file's lines and sections, and the file under the options.
 *
 * Names of users and groups are resolved once, here, when the policy is built: the decisions
 * (policy.c) compare numbers only. Every error is a sentence for the user that names the value,
 * and the file's errors its line.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/units.h"
#include "daemon/policy-config.h"

_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t),
	       "uids and gids are 32-bit");

static bool is_limit(enum policy_key key)
{
	return key >= POLICY_MAX_BYTES_PER_UID && key < POLICY_N_KEYS;
}

void policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	for (int k = 0; k < POLICY_N_KEYS; k++)
		p->value[k] = POLICY_UNLIMITED;
	p->value[POLICY_MAX_BUFFERS_PER_CLIENT] = POLICY_DEFAULT_BUFFERS_PER_CLIENT;
	p->value[POLICY_MAX_BUFFERS_PER_UID] = POLICY_DEFAULT_BUFFERS_PER_UID;
}

void policy_finish(struct policy *p)
{
	free(p->allow_uids.ids);
	free(p->allow_gids.ids);
	free(p->uids);
	p->allow_uids = (struct policy_ids){ 0 };
	p->allow_gids = (struct policy_ids){ 0 };
	p->uids = NULL;
	p->n_uids = 0;
}

/* ---------------------------------------------------------------- values */

static int ids_add(struct policy_ids *l, uint32_t id)
{
	uint32_t *ids;

	for (size_t i = 0; i < l->n; i++)
		if (l->ids[i] == id)
			return 0;
	ids = realloc(l->ids, (l->n + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	ids[l->n++] = id;
	l->ids = ids;
	return 0;
}

/* A plain decimal number (no sign, no space). Returns 0, -EINVAL or -ERANGE. */
static int parse_number(const char *s, uint64_t *np)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*np = strtoull(s, &end, 10);
	if (*end)
		return -EINVAL;
	return errno == ERANGE ? -ERANGE : 0;
}

/* One uid or gid: a number, or a name looked up in the user or group database. */
static int parse_id(const char *s, bool group, uint32_t *idp, char *err, size_t err_size)
{
	uint64_t n;

	if (parse_number(s, &n) == 0) {
		if (n >= UINT32_MAX) {
			snprintf(err, err_size, "%s is not a valid %s", s, group ? "gid" : "uid");
			return -EINVAL;
		}
		*idp = (uint32_t)n;
		return 0;
	}
	if (group) {
		struct group *g = getgrnam(s);

		if (g) {
			*idp = g->gr_gid;
			return 0;
		}
	} else {
		struct passwd *pw = getpwnam(s);

		if (pw) {
			*idp = pw->pw_uid;
			return 0;
		}
	}
	snprintf(err, err_size, "unknown %s '%s'", group ? "group" : "user", s);
	return -ENOENT;
}

static int parse_ids(struct policy_ids *l, const char *value, bool group, char *err,
		     size_t err_size)
{
	char *copy = strdup(value), *save = NULL;
	int n = 0, ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ", \t", &save); t && ret == 0;
	     t = strtok_r(NULL, ", \t", &save)) {
		uint32_t id;

		ret = parse_id(t, group, &id, err, err_size);
		if (ret == 0)
			ret = ids_add(l, id);
		n++;
	}
	free(copy);
	if (ret == 0 && n == 0) {
		snprintf(err, err_size, "an empty list");
		ret = -EINVAL;
	}
	return ret;
}

/* A count or a size (by @key), or "unlimited". */
static int parse_limit(enum policy_key key, const char *value, uint64_t *np, char *err,
		       size_t err_size)
{
	int ret;

	if (strcmp(value, "unlimited") == 0) {
		*np = POLICY_UNLIMITED;
		return 0;
	}
	ret = policy_key_is_size(key) ? units_parse_size(value, np) : parse_number(value, np);
	if (ret == 0 && *np == POLICY_UNLIMITED)
		ret = -ERANGE;
	if (ret < 0)
		snprintf(err, err_size, "'%s' is not %s, nor \"unlimited\"", value,
			 policy_key_is_size(key) ? "a size (4096, 64K, 16M...)" : "a number");
	return ret < 0 ? -EINVAL : 0;
}

int policy_set(struct policy *p, enum policy_key key, const char *value, char *err, size_t err_size)
{
	if (key == POLICY_ALLOW_UID || key == POLICY_ALLOW_GID) {
		int ret = parse_ids(key == POLICY_ALLOW_UID ? &p->allow_uids : &p->allow_gids,
				    value, key == POLICY_ALLOW_GID, err, err_size);

		if (ret == 0)
			p->set |= 1u << key;
		return ret;
	}
	if (key >= POLICY_N_KEYS) {
		snprintf(err, err_size, "no such setting");
		return -EINVAL;
	}
	if (parse_limit(key, value, &p->value[key], err, err_size) < 0)
		return -EINVAL;
	p->set |= 1u << key;
	return 0;
}

/* ---------------------------------------------------------------- the configuration file */

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

static int find_key(const char *name, enum policy_key *keyp)
{
	for (int k = 0; k < POLICY_N_KEYS; k++) {
		if (strcmp(name, policy_key_name((enum policy_key)k)) == 0) {
			*keyp = (enum policy_key)k;
			return 0;
		}
	}
	return -ENOENT;
}

/* Opens the section "[uid NAME]" (@line without its brackets). Returns 0 or a negative errno. */
static int open_section(struct policy *p, char *line, struct policy_uid **secp, char *err,
			size_t err_size)
{
	char *who = trim(line);
	struct policy_uid *uids;
	uint32_t uid;
	int ret;

	if (strncmp(who, "uid", 3) != 0 || !isspace((unsigned char)who[3])) {
		snprintf(err, err_size, "unknown section [%s] (valid: [uid NUMBER-OR-NAME])", who);
		return -EINVAL;
	}
	ret = parse_id(trim(who + 3), false, &uid, err, err_size);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < p->n_uids; i++) {
		if (p->uids[i].uid == uid) {
			snprintf(err, err_size, "a second section for uid %" PRIu32, uid);
			return -EINVAL;
		}
	}
	uids = realloc(p->uids, (p->n_uids + 1) * sizeof(*uids));
	if (!uids)
		return -ENOMEM;
	p->uids = uids;
	*secp = &uids[p->n_uids++];
	memset(*secp, 0, sizeof(**secp));
	(*secp)->uid = uid;
	return 0;
}

/* One line, comments and surrounding space removed, not empty. */
static int parse_line(struct policy *p, char *line, struct policy_uid **secp, char *err,
		      size_t err_size)
{
	char *eq = strchr(line, '='), *name, *value;
	struct policy_uid *sec = *secp;
	enum policy_key key;
	char why[192];
	int ret;

	if (line[0] == '[') {
		size_t n = strlen(line);

		if (line[n - 1] != ']') {
			snprintf(err, err_size, "a section header without its ']'");
			return -EINVAL;
		}
		line[n - 1] = '\0';
		return open_section(p, line + 1, secp, err, err_size);
	}
	if (!eq) {
		snprintf(err, err_size, "expected 'key = value', got '%s'", line);
		return -EINVAL;
	}
	*eq = '\0';
	name = trim(line);
	value = trim(eq + 1);
	if (find_key(name, &key) < 0) {
		snprintf(err, err_size,
			 "unknown key '%s' (valid: allow-uid, allow-gid, max-clients, "
			 "max-{bytes,buffers}-per-{uid,client})",
			 name);
		return -EINVAL;
	}
	if (!*value) {
		snprintf(err, err_size, "%s has no value", name);
		return -EINVAL;
	}
	if (sec && !is_limit(key)) {
		snprintf(err, err_size,
			 "%s cannot be set in a [uid] section, only before the first", name);
		return -EINVAL;
	}
	ret = sec ? parse_limit(key, value, &sec->value[key], why, sizeof(why))
		  : policy_set(p, key, value, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, err_size, "%s: %s", name, why);
		return ret;
	}
	if (sec)
		sec->set |= 1u << key;
	return 0;
}

int policy_parse(struct policy *p, const char *name, const char *text, char *err, size_t err_size)
{
	struct policy_uid *sec = NULL;
	char msg[256];
	int ret = 0;
	unsigned line_no = 0;
	char *copy = strdup(text), *line, *next;

	if (!copy)
		return -ENOMEM;
	for (line = copy; line && ret == 0; line = next) {
		char *hash;

		line_no++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		line = trim(line);
		if (!*line)
			continue;
		ret = parse_line(p, line, &sec, msg, sizeof(msg));
		if (ret < 0)
			snprintf(err, err_size, "%s:%u: %s", name, line_no, msg);
	}
	free(copy);
	return ret;
}

/* Reads @path whole. Returns 0 or a negative errno (-ENOENT when missing, -EINVAL for NUL). */
static int read_file(const char *path, char **textp)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t len = 0;
	int ret = 0;

	if (!f)
		return -errno;
	{
		FILE *mem = open_memstream(&text, &len);
		char buf[4096];
		size_t n;

		if (!mem) {
			fclose(f);
			return -ENOMEM;
		}
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, mem);
		if (ferror(f))
			ret = -EIO;
		if (fclose(mem) != 0 && ret == 0)
			ret = -ENOMEM;
	}
	fclose(f);
	if (ret == 0 && strlen(text) != len)
		ret = -EINVAL;
	if (ret < 0)
		free(text);
	else
		*textp = text;
	return ret;
}

/* The options' values replace the file's. */
static int override(struct policy *p, const struct policy *cli)
{
	for (int k = 0; k < POLICY_N_KEYS; k++) {
		const struct policy_ids *from = k == POLICY_ALLOW_UID   ? &cli->allow_uids
						: k == POLICY_ALLOW_GID ? &cli->allow_gids
									: NULL;
		struct policy_ids *to = k == POLICY_ALLOW_UID ? &p->allow_uids : &p->allow_gids;

		if (!(cli->set & (1u << k)))
			continue;
		p->set |= 1u << k;
		if (!from) {
			p->value[k] = cli->value[k];
			continue;
		}
		to->n = 0;
		for (size_t i = 0; i < from->n; i++)
			if (ids_add(to, from->ids[i]) < 0)
				return -ENOMEM;
	}
	return 0;
}

int policy_configure(struct policy *p, const char *path, const struct policy *cli, char *err,
		     size_t err_size)
{
	const char *file = path ? path : POLICY_DEFAULT_CONFIG;
	char *text = NULL;
	int ret;

	if (err_size)
		err[0] = '\0';
	ret = read_file(file, &text);
	if (ret == -ENOENT && !path) {
		ret = cli ? override(p, cli) : 0;
		goto out;
	}
	if (ret < 0) {
		snprintf(err, err_size, "%s: %s", file,
			 ret == -EINVAL ? "a NUL byte in a text file" : strerror(-ret));
		return ret;
	}
	ret = policy_parse(p, file, text, err, err_size);
	free(text);
	if (ret == 0 && cli)
		ret = override(p, cli);
out:
	/* Out of memory is the one failure the parsers do not describe. */
	if (ret < 0 && err_size && !err[0])
		snprintf(err, err_size, "%s", strerror(-ret));
	return ret;
}

/* ---------------------------------------------------------------- help */

void policy_usage(FILE *f)
{
	fprintf(f,
		"Access policy and quotas (also keys of the configuration file, where a [uid N]\n"
		"section can set the four limits for one uid; see docs/configuration.md):\n"
		"  --config FILE    configuration file (default " POLICY_DEFAULT_CONFIG ", if it\n"
		"                   exists); the options override it\n"
		"  --allow-uid LIST users that may connect: uids or names, comma-separated\n"
		"                   (default: everyone the socket's mode lets in; root always "
		"may)\n"
		"  --allow-gid LIST groups whose members (primary or supplementary group) may "
		"connect\n"
		"  --max-clients N  connections served at once; more are refused with EMFILE\n"
		"  --max-bytes-per-uid SIZE     bytes all connections of one uid may hold\n"
		"  --max-buffers-per-uid N      buffers all connections of one uid may hold\n"
		"  --max-bytes-per-client SIZE  bytes one connection may hold\n"
		"  --max-buffers-per-client N   buffers one connection may hold\n"
		"                   over a quota, a request is refused with EDQUOT; a limit is a\n"
		"                   number (SIZE: K/M/G suffix) or \"unlimited\"; default: "
		"unlimited,\n"
		"                   but %d buffers per client and %d per uid\n",
		POLICY_DEFAULT_BUFFERS_PER_CLIENT, POLICY_DEFAULT_BUFFERS_PER_UID);
}
