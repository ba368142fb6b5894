/* SPDX-License-Identifier: MIT */
/*
 * smhctl's listing commands: regions, stats, clients (allocs is in smhctl-allocs.c). Each
 * connects, asks the daemon once (the library pages long lists), and prints a table sized to its
 * contents or, with --json, an array (an object for stats) whose sizes and addresses are plain
 * numbers in bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/attr.h"
#include "common/escape.h"
#include "common/units.h"
#include "core/memtype.h"
#include "smhctl/smhctl.h"

/* Options for a command that takes only the common ones. Returns -1 to go on, else the exit. */
static int parse_plain(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { CTL_COMMON_OPTIONS, { 0 } };
	int c, status;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((status = ctl_option(ctl, c)) >= 0)
			return status;
	}
	return ctl_no_args(ctl, argc, argv);
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

/* The width of a REGION column: the longest label, at least the heading's. */
static int label_width(const struct smh_region_info *regions, size_t n_regions)
{
	int w = (int)strlen("REGION");

	for (size_t i = 0; i < n_regions; i++)
		w = max_int(w, (int)strlen(regions[i].label));
	return w;
}

/* ---------------------------------------------------------------- regions */

static void region_range(char *buf, size_t size, const struct smh_region_info *r)
{
	char base[24], last[24];

	ctl_hex(base, sizeof(base), r->phys_addr);
	ctl_hex(last, sizeof(last), r->phys_addr + (r->size ? r->size - 1 : 0));
	snprintf(buf, size, "%s-%s", base, last);
}

static void regions_table(const struct smh_region_info *regions, size_t n)
{
	int w_label = (int)strlen("LABEL"), w_range = (int)strlen("PHYSICAL RANGE");
	int w_map = (int)strlen("MAPPING");
	char range[64], size[32], managed[32];

	for (size_t i = 0; i < n; i++) {
		region_range(range, sizeof(range), &regions[i]);
		w_label = max_int(w_label, (int)strlen(regions[i].label));
		w_range = max_int(w_range, (int)strlen(range));
		w_map = max_int(w_map, (int)strlen(regions[i].mapping));
	}
	printf("%-*s  %-13s  %-*s  %10s  %10s  %-7s  %-13s  %-*s  %s\n", w_label, "LABEL",
	       "ATTRIBUTE", w_range, "PHYSICAL RANGE", "SIZE", "MANAGED", "BACKEND", "MEMORY",
	       w_map, "MAPPING", "NO-MAP");
	for (size_t i = 0; i < n; i++) {
		const struct smh_region_info *r = &regions[i];

		region_range(range, sizeof(range), r);
		units_format_size(r->size, size, sizeof(size));
		units_format_size(r->managed, managed, sizeof(managed));
		printf("%-*s  %-13s  %-*s  %10s  %10s  %-7s  %-13s  %-*s  %s\n", w_label, r->label,
		       attr_name(r->attr), w_range, range, size, managed, r->backend,
		       memtype_name((enum memtype)r->mapping_kind), w_map, r->mapping,
		       r->no_map ? "yes" : "no");
	}
}

static void regions_json(const struct smh_region_info *regions, size_t n)
{
	struct json j;

	json_init(&j, stdout);
	json_array_begin(&j);
	for (size_t i = 0; i < n; i++) {
		const struct smh_region_info *r = &regions[i];

		json_object_begin(&j);
		json_key(&j, "index");
		json_uint(&j, r->index);
		json_key(&j, "label");
		json_string(&j, r->label);
		ctl_json_addr(&j, "phys_addr", r->phys_addr);
		json_key(&j, "size");
		json_uint(&j, r->size);
		json_key(&j, "managed");
		json_uint(&j, r->managed);
		json_key(&j, "attr");
		json_string(&j, attr_name(r->attr));
		json_key(&j, "backend");
		json_string(&j, r->backend);
		json_key(&j, "mapping");
		json_string(&j, r->mapping);
		json_key(&j, "mapping_kind");
		json_string(&j, memtype_name((enum memtype)r->mapping_kind));
		json_key(&j, "no_map");
		json_bool(&j, r->no_map);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_finish(&j);
}

int cmd_regions(struct ctl *ctl, int argc, char **argv)
{
	struct smh_client *client;
	struct smh_region_info *regions = NULL;
	size_t n = 0;
	int status, err;

	if ((status = parse_plain(ctl, argc, argv)) >= 0 || (status = ctl_connect(ctl, &client)))
		return status;
	err = ctl_get_regions(client, &regions, &n);
	if (err < 0)
		status = ctl_failed(ctl, client, "could not get the regions", err);
	else if (ctl->json)
		regions_json(regions, n);
	else
		regions_table(regions, n);
	free(regions);
	smh_disconnect(client);
	return status;
}

/* ---------------------------------------------------------------- stats */

/* The scrub backlog: memory given back, being zeroed, neither free nor used. */
struct backlog {
	uint64_t bytes, blocks;
};

/* The requests' waits in smhd: "1234 requests answered, longest wait ...; over 1 ms: 3, ...". */
static void waits_table(const struct smh_waits *w)
{
	static const char *const bounds[SMH_WAIT_BOUNDS] = { "1 ms", "5 ms", "20 ms", "100 ms",
							     "1 s" };

	printf("%llu request%s answered, longest wait in smhd %llu.%03llu ms",
	       (unsigned long long)w->requests, w->requests == 1 ? "" : "s",
	       (unsigned long long)(w->longest_us / 1000),
	       (unsigned long long)(w->longest_us % 1000));
	for (int i = 0; i < SMH_WAIT_BOUNDS; i++)
		printf("%sover %s: %llu", i ? ", " : "; ", bounds[i],
		       (unsigned long long)w->over[i]);
	printf("\n");
}

static void stats_table(const struct smh_stats *st, const struct backlog *scrub,
			const struct smh_waits *waits, const struct smh_poison_info *poison,
			const struct smh_region_info *regions, size_t n_regions)
{
	int w_label = label_width(regions, n_regions);
	char label[16], total[32], used[32], free_[32], largest[32], frag[16];

	printf("%-*s  %10s  %10s  %10s  %12s  %8s  %13s\n", w_label, "REGION", "TOTAL", "USED",
	       "FREE", "LARGEST FREE", "ALLOCS", "FRAGMENTATION");
	for (size_t i = 0; i < st->n_regions; i++) {
		const struct smh_region_stats *r = &st->regions[i];

		units_format_size(r->total, total, sizeof(total));
		units_format_size(r->used, used, sizeof(used));
		units_format_size(r->free, free_, sizeof(free_));
		units_format_size(r->largest_free, largest, sizeof(largest));
		ctl_permille(frag, sizeof(frag), r->fragmentation);
		printf("%-*s  %10s  %10s  %10s  %12s  %8llu  %13s\n", w_label,
		       ctl_region_label(regions, n_regions, r->region, label, sizeof(label)), total,
		       used, free_, largest, (unsigned long long)r->n_allocs, frag);
	}
	printf("granule %llu bytes, %u client%s, %llu allocation%s (%llu shared)\n",
	       (unsigned long long)st->granule, st->n_clients, st->n_clients == 1 ? "" : "s",
	       (unsigned long long)st->n_allocs, st->n_allocs == 1 ? "" : "s",
	       (unsigned long long)st->n_shared);
	if (scrub->bytes > 0) {
		units_format_size(scrub->bytes, used, sizeof(used));
		printf("scrubbing %s in %llu block%s (given back, free once zeroed)\n", used,
		       (unsigned long long)scrub->blocks, scrub->blocks == 1 ? "" : "s");
	}
	if (waits) /* NULL: an smhd older than the counts */
		waits_table(waits);
	ctl_poison_stats_table(poison);
}

static void region_stats_json(struct json *j, const struct smh_region_stats *r, const char *label)
{
	json_object_begin(j);
	json_key(j, "region");
	json_uint(j, r->region);
	json_key(j, "label");
	json_string(j, label);
	json_key(j, "total");
	json_uint(j, r->total);
	json_key(j, "used");
	json_uint(j, r->used);
	json_key(j, "free");
	json_uint(j, r->free);
	json_key(j, "largest_free");
	json_uint(j, r->largest_free);
	json_key(j, "allocs");
	json_uint(j, r->n_allocs);
	json_key(j, "fragmentation_permille");
	json_uint(j, r->fragmentation);
	json_object_end(j);
}

static void waits_json(struct json *j, const struct smh_waits *w)
{
	static const char *const keys[SMH_WAIT_BOUNDS] = { "1ms", "5ms", "20ms", "100ms", "1s" };

	json_key(j, "requests");
	json_uint(j, w->requests);
	json_key(j, "wait_longest_us");
	json_uint(j, w->longest_us);
	json_key(j, "waits_over");
	json_object_begin(j);
	for (int i = 0; i < SMH_WAIT_BOUNDS; i++) {
		json_key(j, keys[i]);
		json_uint(j, w->over[i]);
	}
	json_object_end(j);
}

static void stats_json(const struct smh_stats *st, const struct backlog *scrub,
		       const struct smh_waits *waits, const struct smh_poison_info *poison,
		       const struct smh_region_info *regions, size_t n_regions)
{
	struct json j;
	char label[16];

	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "granule");
	json_uint(&j, st->granule);
	json_key(&j, "clients");
	json_uint(&j, st->n_clients);
	json_key(&j, "allocations");
	json_uint(&j, st->n_allocs);
	json_key(&j, "shared");
	json_uint(&j, st->n_shared);
	json_key(&j, "scrubbing_bytes");
	json_uint(&j, scrub->bytes);
	json_key(&j, "scrubbing_blocks");
	json_uint(&j, scrub->blocks);
	if (waits)
		waits_json(&j, waits);
	ctl_poison_stats_json(&j, poison);
	json_key(&j, "regions");
	json_array_begin(&j);
	for (size_t i = 0; i < st->n_regions; i++)
		region_stats_json(&j, &st->regions[i],
				  ctl_region_label(regions, n_regions, st->regions[i].region, label,
						   sizeof(label)));
	json_array_end(&j);
	json_object_end(&j);
	json_finish(&j);
}

int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	struct smh_client *client;
	struct smh_region_info *regions = NULL;
	struct smh_stats st = { 0 };
	struct backlog scrub = { 0 };
	struct smh_waits waits;
	bool have_waits = false;
	struct smh_poison_info poison;
	size_t n = 0;
	int status, err;

	if ((status = parse_plain(ctl, argc, argv)) >= 0 || (status = ctl_connect(ctl, &client)))
		return status;
	if ((err = ctl_get_regions(client, &regions, &n)) < 0)
		status = ctl_failed(ctl, client, "could not get the regions", err);
	else if ((err = smh_get_stats(client, &st)) < 0 ||
		 (err = smh_get_scrubbing(client, &scrub.bytes, &scrub.blocks)) < 0 ||
		 (err = ctl_get_waits(client, &waits, &have_waits)) < 0 ||
		 (err = ctl_get_poison(client, &poison)) < 0)
		status = ctl_failed(ctl, client, "could not get the statistics", err);
	else if (ctl->json)
		stats_json(&st, &scrub, have_waits ? &waits : NULL, &poison, regions, n);
	else
		stats_table(&st, &scrub, have_waits ? &waits : NULL, &poison, regions, n);
	smh_stats_finish(&st);
	free(regions);
	smh_disconnect(client);
	return status;
}

/* ---------------------------------------------------------------- clients */

static void clients_table(const struct smh_client_info *clients, size_t n, uint64_t self)
{
	char bytes[32], comm[ESCAPE_SIZE(sizeof(clients->comm))];

	printf("%8s  %8s  %6s  %6s  %-16s  %8s  %10s\n", "ID", "PID", "UID", "GID", "COMMAND",
	       "BUFFERS", "BYTES");
	for (size_t i = 0; i < n; i++) {
		const struct smh_client_info *c = &clients[i];

		units_format_size(c->bytes, bytes, sizeof(bytes));
		printf("%8llu  %8d  %6u  %6u  %-16s  %8llu  %10s%s\n", (unsigned long long)c->id,
		       c->pid, c->uid, c->gid, escape_string(comm, sizeof(comm), c->comm),
		       (unsigned long long)c->n_buffers, bytes,
		       c->id == self ? "  (this smhctl)" : "");
	}
}

static void clients_json(const struct smh_client_info *clients, size_t n, uint64_t self)
{
	struct json j;

	json_init(&j, stdout);
	json_array_begin(&j);
	for (size_t i = 0; i < n; i++) {
		const struct smh_client_info *c = &clients[i];

		json_object_begin(&j);
		json_key(&j, "id");
		json_uint(&j, c->id);
		json_key(&j, "pid");
		json_int(&j, c->pid);
		json_key(&j, "uid");
		json_uint(&j, c->uid);
		json_key(&j, "gid");
		json_uint(&j, c->gid);
		json_key(&j, "comm");
		json_string(&j, c->comm);
		json_key(&j, "buffers");
		json_uint(&j, c->n_buffers);
		json_key(&j, "bytes");
		json_uint(&j, c->bytes);
		json_key(&j, "self");
		json_bool(&j, c->id == self);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_finish(&j);
}

int cmd_clients(struct ctl *ctl, int argc, char **argv)
{
	struct smh_client *client;
	struct smh_client_info *clients = NULL;
	size_t n = 0;
	int status, err;

	if ((status = parse_plain(ctl, argc, argv)) >= 0 || (status = ctl_connect(ctl, &client)))
		return status;
	err = smh_list_clients(client, &clients, &n);
	if (err < 0)
		status = ctl_failed(ctl, client, "could not list the clients", err);
	else if (ctl->json)
		clients_json(clients, n, smh_client_id(client));
	else
		clients_table(clients, n, smh_client_id(client));
	free(clients);
	smh_disconnect(client);
	return status;
}
