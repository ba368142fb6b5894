/* SPDX-License-Identifier: MIT */
/*
 * The x86_64 board's own checks (SMH_BOARD=x86_64): the memory type the kernel really granted,
 * from its PAT list, against what smhd reports.
 *
 * x86 /dev/mem gives uncached-minus with O_SYNC and write-back without, unless PAT or the MTRRs
 * decide otherwise; the kernel records what it granted per mapped range in
 * /sys/kernel/debug/x86/pat_memtype_list. debugfs is mounted before any smhd runs, so smhd
 * (daemon/mapping.c) reads the list too and says "PAT list: TYPE" rather than "kernel's rule".
 * The list is parsed here on its own, not with core/memtype.c, so the two can disagree: each
 * region's whole range (smhd maps it at start) must be listed with the type its attribute asks
 * (cacheable write-back, non-cacheable uncached-minus), and so must a client's mapping of a
 * buffer; smhd's mapping_kind, its text, its start-up log and `smhctl regions` must say the same.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "tests/board/guest.h"

#define PAT_LIST "/sys/kernel/debug/x86/pat_memtype_list"

static bool debugfs_mounted;

static void mount_debugfs(void)
{
	mkdir("/sys/kernel/debug", 0755);
	debugfs_mounted = mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) == 0;
	guest_check(debugfs_mounted, "debugfs is mounted on /sys/kernel/debug before smhd starts");
}

/*
 * One line of the list: "PAT: [mem 0xS-0xE] TYPE" (Debian's 6.1 writes this) or, on older
 * kernels, "TYPE @ 0xS-0xE"; the end is exclusive in both.
 */
static bool pat_line(const char *line, uint64_t *startp, uint64_t *endp, char type[32])
{
	return sscanf(line, "PAT: [mem 0x%" SCNx64 "-0x%" SCNx64 "] %31s", startp, endp, type) ==
		       3 ||
	       sscanf(line, "%31s @ 0x%" SCNx64 "-0x%" SCNx64, type, startp, endp) == 3;
}

static const char *next_line(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? nl + 1 : NULL;
}

/*
 * The type of the entry for exactly [@start, @end) in @list into @type, "" when none.
 * Returns the number of entries overlapping the range with another type (the kernel refuses
 * conflicting requests, so anything but 0 is a finding).
 */
static unsigned pat_lookup(const char *list, uint64_t start, uint64_t end, char type[32])
{
	unsigned n_conflicts = 0;

	*type = '\0';
	for (const char *p = list; p && *p; p = next_line(p)) {
		uint64_t s, e;
		char t[32];

		if (pat_line(p, &s, &e, t) && s == start && e == end)
			snprintf(type, 32, "%s", t);
	}
	for (const char *p = list; *type && p && *p; p = next_line(p)) {
		uint64_t s, e;
		char t[32];

		if (pat_line(p, &s, &e, t) && s < end && start < e && strcmp(t, type) != 0)
			n_conflicts++;
	}
	return n_conflicts;
}

/* The PAT type the attribute asks: cacheable write-back, non-cacheable uncached-minus. */
static const char *wanted_type(enum smh_reg_attr attr)
{
	return attr == SMH_REG_ATTR_CACHEABLE ? "write-back" : "uncached-minus";
}

static enum smh_mapping kind_of(const char *type)
{
	if (strcmp(type, "write-back") == 0)
		return SMH_MAPPING_CACHED;
	if (strcmp(type, "uncached-minus") == 0 || strcmp(type, "uncached") == 0)
		return SMH_MAPPING_UNCACHED;
	if (strcmp(type, "write-combining") == 0)
		return SMH_MAPPING_WRITE_COMBINE;
	return SMH_MAPPING_UNKNOWN;
}

/* The entries for exactly [@start, @end) in @list. */
static unsigned pat_count(const char *list, uint64_t start, uint64_t end)
{
	unsigned n = 0;

	for (const char *p = list; p && *p; p = next_line(p)) {
		uint64_t s, e;
		char t[32];

		n += pat_line(p, &s, &e, t) && s == start && e == end;
	}
	return n;
}

/* The line of @text that starts with (or, @anywhere, contains) @key, copied into @line. */
static bool find_line(const char *text, const char *key, bool anywhere, char *line, size_t size)
{
	for (const char *p = text; p && *p; p = next_line(p)) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		snprintf(line, size, "%.*s", len, p);
		if (anywhere ? strstr(line, key) != NULL : strncmp(line, key, strlen(key)) == 0)
			return true;
	}
	*line = '\0';
	return false;
}

/* The region's range as smhd and the clients map it: whole pages. */
static void page_span(const struct smh_region_info *r, uint64_t *startp, uint64_t *endp)
{
	*startp = r->phys_addr & ~(uint64_t)0xfff;
	*endp = (r->phys_addr + r->size + 0xfff) & ~(uint64_t)0xfff;
}

/* One served region: the PAT list, smhd's reply, its start-up log and `smhctl regions`. */
static void check_region(const struct smh_region_info *r, const char *list, const char *log,
			 const char *regions_out)
{
	const struct guest_expect *e = guest_expected_region(r->label);
	const char *want = wanted_type(r->attr);
	char type[32], said[48], key[48], line[512];
	uint64_t start, end;
	unsigned n_conflicts;

	page_span(r, &start, &end);
	n_conflicts = pat_lookup(list, start, end, type);
	guest_check(strcmp(type, want) == 0 && n_conflicts == 0,
		    "%s (%s): the PAT list grants 0x%llx-0x%llx %s (want %s; %u conflicting "
		    "entries)",
		    r->label, r->attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable",
		    (unsigned long long)start, (unsigned long long)end, *type ? type : "nothing",
		    want, n_conflicts);
	guest_check(e && kind_of(type) == e->mapping && r->mapping_kind == kind_of(type),
		    "%s: smhd's mapping_kind %d (%s) is the PAT list's type and the board's "
		    "expectation",
		    r->label, (int)r->mapping_kind, guest_mapping_name(r->mapping_kind));
	snprintf(said, sizeof(said), "PAT list: %s)", type);
	guest_check(*type && strstr(r->mapping, said), "%s: smhd read the PAT list: \"%s\"",
		    r->label, r->mapping);
	snprintf(key, sizeof(key), "Region %s:", r->label);
	guest_check(find_line(log, key, true, line, sizeof(line)) && *type && strstr(line, said),
		    "%s: smhd's start-up log says it: \"%s\"", r->label, line);
	snprintf(key, sizeof(key), "%s ", r->label);
	guest_check(find_line(regions_out, key, false, line, sizeof(line)) && *type &&
			    strstr(line, said),
		    "%s: smhctl regions says it", r->label);
}

/* A client's mapping of a buffer of @attr is listed once more, with the same type. */
static void check_client_mapping(struct smh_client *client, enum smh_reg_attr attr,
				 const struct smh_region_info *regions, size_t n)
{
	const char *want = wanted_type(attr);
	unsigned before = 0, after = 0, n_conflicts = 1;
	const struct smh_region_info *r = NULL;
	uint64_t start = 0, end = 0;
	struct smh_buffer buf;
	char type[32] = "";
	bool allocated;
	char *list;
	int err;

	err = smh_alloc(client, attr, 4096, 0, &buf);
	allocated = err == 0;
	for (size_t i = 0; allocated && i < n; i++)
		if (strcmp(regions[i].label, buf.region) == 0)
			r = &regions[i];
	if (r) {
		page_span(r, &start, &end);
		list = guest_read_text(PAT_LIST);
		before = pat_count(list, start, end);
		free(list);
		err = smh_map(&buf);
		list = guest_read_text(PAT_LIST);
		after = pat_count(list, start, end);
		n_conflicts = pat_lookup(list, start, end, type);
		guest_show("pat_memtype_list after a client mapped a buffer", list);
		free(list);
	}
	guest_check(r && err == 0 && after == before + 1 && strcmp(type, want) == 0 &&
			    n_conflicts == 0,
		    "%s: a client's mapping of %s adds a PAT entry 0x%llx-0x%llx (%u, then %u), "
		    "%s (want %s)",
		    want, r ? r->label : "?", (unsigned long long)start, (unsigned long long)end,
		    before, after, *type ? type : "nothing", want);
	if (allocated)
		smh_free(client, &buf);
}

static void with_daemon(struct smh_client *client)
{
	char *argv[] = { GUEST_SMHCTL, "regions", NULL };
	struct smh_region_info *regions = NULL;
	char *list, *log, *out;
	size_t n = 0;
	int status;

	list = guest_read_text(PAT_LIST);
	guest_show(PAT_LIST, list);
	guest_check(debugfs_mounted && *list, "the PAT list is readable and not empty");
	log = guest_read_text("/run/smhd.log");
	out = guest_run("smhctl regions", argv, &status);
	if (guest_check(smh_get_regions(client, &regions, &n) == 0,
			"smhd answers the regions request"))
		for (size_t i = 0; i < n; i++) {
			const struct guest_expect *e = guest_expected_region(regions[i].label);

			if (e && !e->refused)
				check_region(&regions[i], list, log, out);
		}
	check_client_mapping(client, SMH_REG_ATTR_CACHEABLE, regions, n);
	check_client_mapping(client, SMH_REG_ATTR_NON_CACHEABLE, regions, n);
	free(regions);
	free(out);
	free(log);
	free(list);
}

static const struct guest_board board = {
	.name = "x86_64",
	.before_daemon = mount_debugfs,
	.with_daemon = with_daemon,
};
GUEST_BOARD(board)
