/* SPDX-License-Identifier: MIT */
/*
 * smhctl fit: how many buffers of a size (and alignment) the regions hold, now and empty: the
 * sizing question of a board integrator ("how many NV12 frames fit in res0?").
 *
 * The answer is the allocator's own: each region is rebuilt in a core/buddy.c allocator of the
 * daemon's granule over the same physical range, and filled with the request until it is
 * refused. "now" first reserves every live allocation smhd lists; memory being scrubbed is not
 * listed, so "now" counts it as free (the daemon would park the request until it is clean).
 * The count stops at FIT_MAX, printed as "FIT_MAX+".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/attr.h"
#include "common/units.h"
#include "core/buddy.h"
#include "smhctl/smhctl.h"

#define FIT_MAX 1000000

struct fit_opts {
	bool any_attr;
	enum smh_reg_attr attr;
	uint64_t size, align;
};

/* How many more @o fit in @b. */
static uint64_t fill(struct buddy *b, const struct fit_opts *o)
{
	uint64_t n = 0, addr;

	while (n < FIT_MAX && buddy_alloc(b, o->size, o->align, &addr, NULL) == 0)
		n++;
	return n;
}

/* The counts for region @r: empty, and with @allocs (smhd's live allocations) in place. */
static int fit_region(const struct smh_region_info *r, uint64_t granule,
		      const struct smh_alloc_info *allocs, size_t n_allocs,
		      const struct fit_opts *o, uint64_t *nowp, uint64_t *emptyp)
{
	struct buddy *b;
	int ret = buddy_create(r->phys_addr, r->size, granule, &b);

	if (ret < 0)
		return ret;
	*emptyp = fill(b, o);
	buddy_destroy(b);
	ret = buddy_create(r->phys_addr, r->size, granule, &b);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n_allocs && ret == 0; i++)
		if (allocs[i].region == r->index)
			ret = buddy_reserve(b, allocs[i].phys_addr, allocs[i].size);
	*nowp = ret == 0 ? fill(b, o) : 0;
	buddy_destroy(b);
	return ret;
}

static int parse_fit(struct ctl *ctl, int argc, char **argv, struct fit_opts *o)
{
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "attr", required_argument, NULL, 'a' },
		{ "align", required_argument, NULL, 'A' },
		{ 0 },
	};
	char names[128];
	int c, status;

	o->any_attr = true;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'a') {
			o->any_attr = false;
			if (attr_from_name(optarg, &o->attr) < 0) {
				attr_list_names(names, sizeof(names));
				return ctl_usage_error(ctl,
						       "--attr %s: unknown attribute (valid: %s)",
						       optarg, names);
			}
		} else if (c == 'A') {
			if (units_parse_size(optarg, &o->align) < 0 || (o->align & (o->align - 1)))
				return ctl_usage_error(ctl, "--align %s: not a power of two",
						       optarg);
		} else if ((status = ctl_option(ctl, c)) >= 0) {
			return status;
		}
	}
	if (optind != argc - 1)
		return ctl_usage_error(ctl, "expected one SIZE (smhctl fit [OPTION]... SIZE)");
	if (units_parse_size(argv[optind], &o->size) < 0 || o->size == 0)
		return ctl_usage_error(ctl, "%s: not a size above 0 (examples: 3110400, 4K, 1MiB)",
				       argv[optind]);
	return -1;
}

static void print_count(char *buf, size_t size, uint64_t n)
{
	snprintf(buf, size, "%llu%s", (unsigned long long)n, n >= FIT_MAX ? "+" : "");
}

struct fit_row {
	const struct smh_region_info *region;
	uint64_t now, empty;
};

static void print_fit(const struct ctl *ctl, const struct fit_opts *o, const struct fit_row *rows,
		      size_t n)
{
	char s[32], a[32], now[32], empty[32];
	uint64_t total_now = 0, total_empty = 0;
	struct json j;

	for (size_t i = 0; i < n; i++) {
		total_now += rows[i].now;
		total_empty += rows[i].empty;
	}
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j);
		json_key(&j, "size");
		json_uint(&j, o->size);
		json_key(&j, "align");
		json_uint(&j, o->align);
		json_key(&j, "regions");
		json_array_begin(&j);
		for (size_t i = 0; i < n; i++) {
			json_object_begin(&j);
			json_key(&j, "label");
			json_string(&j, rows[i].region->label);
			json_key(&j, "attr");
			json_string(&j, attr_name(rows[i].region->attr));
			json_key(&j, "now");
			json_uint(&j, rows[i].now);
			json_key(&j, "empty");
			json_uint(&j, rows[i].empty);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_key(&j, "now");
		json_uint(&j, total_now);
		json_key(&j, "empty");
		json_uint(&j, total_empty);
		json_object_end(&j);
		json_finish(&j);
		return;
	}
	ctl_size(s, sizeof(s), o->size);
	ctl_size(a, sizeof(a), o->align);
	printf("Buffers of %s%s%s:\n", s, o->align > 1 ? " aligned " : "", o->align > 1 ? a : "");
	printf("%-16s %-14s %10s %10s\n", "REGION", "ATTRIBUTE", "NOW", "EMPTY");
	for (size_t i = 0; i < n; i++) {
		print_count(now, sizeof(now), rows[i].now);
		print_count(empty, sizeof(empty), rows[i].empty);
		printf("%-16s %-14s %10s %10s\n", rows[i].region->label,
		       attr_name(rows[i].region->attr), now, empty);
	}
	print_count(now, sizeof(now), total_now);
	print_count(empty, sizeof(empty), total_empty);
	printf("%-16s %-14s %10s %10s\n", "total", "", now, empty);
}

int cmd_fit(struct ctl *ctl, int argc, char **argv)
{
	struct fit_opts o = { 0 };
	struct smh_region_info *regions = NULL;
	struct smh_alloc_info *allocs = NULL;
	struct fit_row *rows = NULL;
	struct smh_client *client;
	struct smh_stats st = { 0 };
	size_t n_regions = 0, n_allocs = 0, n = 0;
	int status, err;

	if ((status = parse_fit(ctl, argc, argv, &o)) >= 0 || (status = ctl_connect(ctl, &client)))
		return status;
	if ((err = ctl_get_regions(client, &regions, &n_regions)) < 0 ||
	    (err = smh_get_stats(client, &st)) < 0 ||
	    (err = smh_list_allocs(client, &allocs, &n_allocs)) < 0) {
		status = ctl_failed(ctl, client, "could not read the regions and allocations", err);
		goto out;
	}
	rows = calloc(n_regions ? n_regions : 1, sizeof(*rows));
	if (!rows) {
		status = ctl_failed(ctl, client, "out of memory", -ENOMEM);
		goto out;
	}
	for (size_t i = 0; i < n_regions; i++) {
		if (!o.any_attr && regions[i].attr != o.attr)
			continue;
		rows[n].region = &regions[i];
		err = fit_region(&regions[i], st.granule, allocs, n_allocs, &o, &rows[n].now,
				 &rows[n].empty);
		if (err < 0) {
			status = ctl_failed(ctl, NULL, "could not rebuild a region's allocator",
					    err);
			goto out;
		}
		n++;
	}
	print_fit(ctl, &o, rows, n);
out:
	free(rows);
	smh_allocs_free(allocs, n_allocs);
	smh_stats_finish(&st);
	free(regions);
	smh_disconnect(client);
	return status;
}
