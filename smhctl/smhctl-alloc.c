/* SPDX-License-Identifier: MIT */
/*
 * smhctl alloc: a test allocation, the whole path a real client takes. It allocates, maps the
 * buffer, checks that it arrives zeroed, writes a pattern through the mapping and reads it
 * back, optionally exports it (printing the token another process can import), and frees it
 * at exit or, with --hold, when SIGINT or SIGTERM arrives, so that `smhctl map` and `smhctl
 * allocs` can be watched meanwhile. --name names the buffer (smh_alloc_named()); the library
 * and smhd check the name, and their reason is printed when they refuse it.
 *
 * Memory is touched with byte and aligned 8-byte volatile accesses only: on arm64 a
 * non-cacheable region may be mapped as Device memory, where an unaligned access faults, and
 * memset/memcmp may use one (or DC ZVA, which faults there too).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/attr.h"
#include "common/escape.h"
#include "common/units.h"
#include "smhctl/smhctl.h"

struct alloc_opts {
	enum smh_reg_attr attr;
	uint64_t size;
	uint64_t align;
	bool hold;
	bool export;
	const char *name; /* --name, or NULL */
};

static int parse_attr(struct ctl *ctl, const char *name, enum smh_reg_attr *attrp)
{
	char names[128];

	if (attr_from_name(name, attrp) == 0)
		return -1;
	attr_list_names(names, sizeof(names));
	return ctl_usage_error(ctl, "--attr %s: unknown attribute (valid: %s)", name, names);
}

static int parse_size(struct ctl *ctl, const char *what, const char *s, uint64_t *sizep)
{
	if (units_parse_size(s, sizep) < 0 || *sizep > SIZE_MAX)
		return ctl_usage_error(ctl, "%s%s: not a size (examples: 4096, 4K, 1MiB, 0x1000)",
				       what, s);
	return -1;
}

static int parse_alloc(struct ctl *ctl, int argc, char **argv, struct alloc_opts *o)
{
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "attr", required_argument, NULL, 'a' },
		{ "align", required_argument, NULL, 'A' },
		{ "hold", no_argument, NULL, 'H' },
		{ "export", no_argument, NULL, 'E' },
		{ "name", required_argument, NULL, 'N' },
		{ 0 },
	};
	int c, status = -1;

	optind = 0;
	while (status < 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'a')
			status = parse_attr(ctl, optarg, &o->attr);
		else if (c == 'A')
			status = parse_size(ctl, "--align ", optarg, &o->align);
		else if (c == 'H')
			o->hold = true;
		else if (c == 'E')
			o->export = true;
		else if (c == 'N')
			o->name = optarg;
		else
			status = ctl_option(ctl, c);
	}
	if (status >= 0)
		return status;
	if (o->align & (o->align - 1))
		return ctl_usage_error(ctl, "--align %s: not a power of two", argv[optind - 1]);
	if (optind != argc - 1)
		return ctl_usage_error(ctl, "expected one SIZE (smhctl alloc [OPTION]... SIZE)");
	if ((status = parse_size(ctl, "", argv[optind], &o->size)) >= 0)
		return status;
	return o->size ? -1 : ctl_usage_error(ctl, "the size must be more than 0");
}

static uint64_t word_at(uint64_t seed, uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
}

static unsigned char byte_at(uint64_t seed, uint64_t i)
{
	return (unsigned char)(word_at(seed, i) >> 56);
}

/*
 * Writes the pattern (@check false) or compares with it, or with zeros (@zero). Returns the
 * offset of the first difference (rounded down to 8 inside the word part), or @size.
 */
static uint64_t walk(volatile unsigned char *p, uint64_t size, uint64_t seed, bool check, bool zero)
{
	uint64_t i = 0;

	for (; i < size && ((uintptr_t)(p + i) & 7); i++) {
		if (!check)
			p[i] = byte_at(seed, i);
		else if (p[i] != (zero ? 0 : byte_at(seed, i)))
			return i;
	}
	for (; size - i >= 8; i += 8) {
		volatile uint64_t *w = (volatile uint64_t *)(void *)(p + i);

		if (!check)
			*w = word_at(seed, i);
		else if (*w != (zero ? 0 : word_at(seed, i)))
			return i;
	}
	for (; i < size; i++) {
		if (!check)
			p[i] = byte_at(seed, i);
		else if (p[i] != (zero ? 0 : byte_at(seed, i)))
			return i;
	}
	return size;
}

/* Maps @buf and checks it: zeroed on arrival, keeps what is written. Returns 0 or 1. */
static int verify(struct smh_buffer *buf)
{
	uint64_t bad;
	int err = smh_map(buf);

	if (err < 0)
		return ctl_failed(NULL, NULL, "could not map the buffer", err);
	if ((bad = walk(buf->addr, buf->size, buf->handle, true, true)) != buf->size) {
		fprintf(stderr, "smhctl: error: the new buffer is not zeroed (offset %llu)\n",
			(unsigned long long)bad);
		return CTL_EXIT_FAILURE;
	}
	walk(buf->addr, buf->size, buf->handle, false, false);
	if ((bad = walk(buf->addr, buf->size, buf->handle, true, false)) != buf->size) {
		fprintf(stderr,
			"smhctl: error: the pattern written through the mapping reads back "
			"different at offset %llu\n",
			(unsigned long long)bad);
		return CTL_EXIT_FAILURE;
	}
	return 0;
}

static void print_human(const struct smh_buffer *buf, const char *name, bool exported,
			uint64_t token)
{
	char size[32], hex[24], region[ESCAPE_SIZE(sizeof(buf->region))];
	char safe[ESCAPE_SIZE(SMH_NAME_MAX)];

	escape_string(region, sizeof(region), buf->region);
	units_format_size(buf->size, size, sizeof(size));
	if (buf->size < 1024 || strchr(size, '~'))
		printf("allocated %llu bytes %s from region %s\n", (unsigned long long)buf->size,
		       attr_name(buf->attr), region);
	else
		printf("allocated %s (%llu bytes) %s from region %s\n", size,
		       (unsigned long long)buf->size, attr_name(buf->attr), region);
	printf("  handle     %llu\n", (unsigned long long)buf->handle);
	if (name && *name)
		printf("  name       %s\n", escape_string(safe, sizeof(safe), name));
	ctl_hex(hex, sizeof(hex), buf->phys_addr);
	printf("  phys       %s\n", hex);
	ctl_hex(hex, sizeof(hex), buf->offset);
	printf("  fd offset  %s\n", hex);
	if (exported)
		printf("  token      0x%016llx\n", (unsigned long long)token);
	printf("  check      arrived zeroed; pattern written and read back through the mapping\n");
}

static void print_json(const struct smh_buffer *buf, const char *name, bool exported,
		       uint64_t token)
{
	struct json j;

	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "handle");
	json_uint(&j, buf->handle);
	json_key(&j, "name");
	json_string(&j, name ? name : "");
	json_key(&j, "label");
	json_string(&j, buf->region);
	json_key(&j, "attr");
	json_string(&j, attr_name(buf->attr));
	ctl_json_addr(&j, "phys_addr", buf->phys_addr);
	json_key(&j, "size");
	json_uint(&j, buf->size);
	json_key(&j, "offset");
	json_uint(&j, buf->offset);
	if (exported)
		ctl_json_addr(&j, "token", token);
	json_key(&j, "verified");
	json_bool(&j, true);
	json_object_end(&j);
	json_finish(&j);
}

/* Blocks until SIGINT or SIGTERM (blocked by the caller before it said it holds). */
static void wait_for_signal(const sigset_t *set)
{
	int sig;

	sigwait(set, &sig);
}

static int hold(const struct ctl *ctl, const struct smh_buffer *buf)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		fprintf(stderr, "smhctl: error: could not block SIGINT/SIGTERM: %s\n",
			strerror(errno));
		return CTL_EXIT_FAILURE;
	}
	if (!ctl->json)
		printf("holding handle %llu until SIGINT (Ctrl-C) or SIGTERM\n",
		       (unsigned long long)buf->handle);
	fflush(stdout);
	wait_for_signal(&set);
	return 0;
}

static int run(const struct ctl *ctl, struct smh_client *client, const struct alloc_opts *o,
	       struct smh_buffer *buf)
{
	uint64_t token = 0;
	int err, status;

	if ((status = verify(buf)) != 0)
		return status;
	if (o->export && (err = smh_export(client, buf, &token)) < 0)
		return ctl_failed(ctl, client, "could not export the buffer", err);
	if (ctl->json)
		print_json(buf, o->name, o->export, token);
	else
		print_human(buf, o->name, o->export, token);
	return o->hold ? hold(ctl, buf) : 0;
}

int cmd_alloc(struct ctl *ctl, int argc, char **argv)
{
	struct alloc_opts o = { .attr = SMH_REG_ATTR_CACHEABLE };
	struct smh_buffer buf;
	struct smh_client *client;
	char what[96], size[32];
	int status, err;

	if ((status = parse_alloc(ctl, argc, argv, &o)) >= 0 ||
	    (status = ctl_connect(ctl, &client)))
		return status;
	err = smh_alloc_named(client, o.attr, (size_t)o.size, (size_t)o.align, o.name, &buf);
	if (err < 0) {
		units_format_size(o.size, size, sizeof(size));
		snprintf(what, sizeof(what), "could not allocate %s of %s memory", size,
			 attr_name(o.attr));
		status = ctl_failed(ctl, client, what, err);
		goto err_client;
	}
	status = run(ctl, client, &o, &buf);
	if ((err = smh_free(client, &buf)) < 0)
		status = ctl_failed(ctl, client, "could not free the buffer", err);
	else if (!ctl->json)
		printf("freed handle %llu\n", (unsigned long long)buf.handle);
err_client:
	smh_disconnect(client);
	return status;
}
