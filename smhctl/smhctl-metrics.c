/* SPDX-License-Identifier: MIT */
/*
 * smhctl metrics: smhd's statistics in the Prometheus text exposition format (version 0.0.4),
 * for the node exporter's textfile collector (docs/metrics.md has a unit and timer that write
 * the file). Per region, labelled with its label and attribute: the bytes managed, used, free
 * and in the largest free block, fragmentation as a ratio, and live allocations; then the
 * clients, allocations and shared allocations over all regions, and the granule.
 *
 * smh_up is 1 when smhd answered. When it cannot be reached the output is smh_up 0 alone (and
 * the exit status 1), so that an alert can fire on it rather than on a stale file.
 * The scrub backlog (memory given back and being zeroed) is exported over all regions, and the
 * requests smhd refused since it started, a counter per kind (smh_refusals_total{kind=...}),
 * every kind the daemon counts, zeros included, so that rate() has a series from the start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/attr.h"
#include "smhctl/smhctl.h"

/* A metric family: its name and help, and how to read one region's value. */
struct family {
	const char *name;
	const char *help;
	uint64_t (*value)(const struct smh_region_stats *r);
	bool ratio; /* printed as value / 1000 */
};

static uint64_t total(const struct smh_region_stats *r)
{
	return r->total;
}

static uint64_t used(const struct smh_region_stats *r)
{
	return r->used;
}

static uint64_t free_bytes(const struct smh_region_stats *r)
{
	return r->free;
}

static uint64_t largest_free(const struct smh_region_stats *r)
{
	return r->largest_free;
}

static uint64_t fragmentation(const struct smh_region_stats *r)
{
	return r->fragmentation;
}

static uint64_t allocations(const struct smh_region_stats *r)
{
	return r->n_allocs;
}

static const struct family families[] = {
	{ "smh_region_size_bytes", "Bytes the allocator manages in the region.", total, false },
	{ "smh_region_used_bytes", "Bytes allocated in the region.", used, false },
	{ "smh_region_free_bytes", "Bytes free in the region.", free_bytes, false },
	{ "smh_region_largest_free_bytes",
	  "Bytes of the region's largest free block: the largest allocation that can succeed.",
	  largest_free, false },
	{ "smh_region_fragmentation_ratio",
	  "Share of the region's free bytes outside its largest free block (0 to 1).",
	  fragmentation, true },
	{ "smh_region_allocations", "Live allocations in the region.", allocations, false },
};

/* @s (already escaped for a terminal) as a label value: backslash and quote escaped. */
static void print_label_value(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			putchar('\\');
		putchar(*s == '\n' ? ' ' : *s);
	}
	putchar('"');
}

static void print_header(const char *name, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void print_family(const struct family *f, const struct smh_stats *st,
			 const struct smh_region_info *regions, size_t n_regions)
{
	char label[16];

	print_header(f->name, f->help);
	for (size_t i = 0; i < st->n_regions; i++) {
		const struct smh_region_stats *r = &st->regions[i];
		uint64_t v = f->value(r);
		const char *attr = "unknown";

		for (size_t k = 0; k < n_regions; k++)
			if (regions[k].index == r->region)
				attr = attr_name(regions[k].attr);
		printf("%s{region=", f->name);
		print_label_value(
			ctl_region_label(regions, n_regions, r->region, label, sizeof(label)));
		printf(",attr=\"%s\"} ", attr);
		if (f->ratio)
			printf("%llu.%03llu\n", (unsigned long long)(v / 1000),
			       (unsigned long long)(v % 1000));
		else
			printf("%llu\n", (unsigned long long)v);
	}
}

static void print_metrics(const struct smh_stats *st, const struct smh_region_info *regions,
			  size_t n_regions, uint64_t scrub_bytes, uint64_t scrub_blocks)
{
	print_header("smh_up", "1 when smhd answered, 0 when it could not be reached.");
	printf("smh_up 1\n");
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		print_family(&families[i], st, regions, n_regions);
	print_header("smh_clients", "Clients connected to smhd.");
	printf("smh_clients %u\n", st->n_clients);
	print_header("smh_allocations", "Live allocations over all regions.");
	printf("smh_allocations %llu\n", (unsigned long long)st->n_allocs);
	print_header("smh_shared_allocations", "Live allocations held by more than one client.");
	printf("smh_shared_allocations %llu\n", (unsigned long long)st->n_shared);
	print_header("smh_granule_bytes", "The allocator's smallest block.");
	printf("smh_granule_bytes %llu\n", (unsigned long long)st->granule);
	print_header("smh_scrubbing_bytes",
		     "Bytes given back and being zeroed: neither free nor in use until clean.");
	printf("smh_scrubbing_bytes %llu\n", (unsigned long long)scrub_bytes);
	print_header("smh_scrubbing_blocks", "Blocks given back and being zeroed.");
	printf("smh_scrubbing_blocks %llu\n", (unsigned long long)scrub_blocks);
}

static void print_refusals(const struct smh_refusal_count *counts, size_t n)
{
	printf("# HELP smh_refusals_total Requests smhd refused since it started, by kind "
	       "(docs/metrics.md).\n# TYPE smh_refusals_total counter\n");
	for (size_t i = 0; i < n; i++) /* kinds are [a-z_]: checked by the library */
		printf("smh_refusals_total{kind=\"%s\"} %llu\n", counts[i].kind,
		       (unsigned long long)counts[i].count);
}

int ctl_get_waits(struct smh_client *client, struct smh_waits *w, bool *havep)
{
	int err = smh_get_waits(client, w);

	*havep = err == 0;
	return err == -EOPNOTSUPP ? 0 : err;
}

static void print_waits(const struct smh_waits *w)
{
	static const char *const bounds[SMH_WAIT_BOUNDS] = { "0.001", "0.005", "0.02", "0.1", "1" };

	printf("# HELP smh_requests_total Requests smhd answered since it started.\n"
	       "# TYPE smh_requests_total counter\n");
	printf("smh_requests_total %llu\n", (unsigned long long)w->requests);
	print_header("smh_request_wait_longest_seconds",
		     "The longest a request waited in smhd, from its arrival to its reply.");
	printf("smh_request_wait_longest_seconds %llu.%06llu\n",
	       (unsigned long long)(w->longest_us / 1000000),
	       (unsigned long long)(w->longest_us % 1000000));
	printf("# HELP smh_request_waits_over_total Requests that waited in smhd longer than "
	       "the label's seconds (docs/metrics.md).\n# TYPE smh_request_waits_over_total "
	       "counter\n");
	for (int i = 0; i < SMH_WAIT_BOUNDS; i++)
		printf("smh_request_waits_over_total{over=\"%s\"} %llu\n", bounds[i],
		       (unsigned long long)w->over[i]);
}

static void print_down(void)
{
	print_header("smh_up", "1 when smhd answered, 0 when it could not be reached.");
	printf("smh_up 0\n");
}

int cmd_metrics(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { CTL_COMMON_OPTIONS, { 0 } };
	struct smh_region_info *regions = NULL;
	struct smh_stats st = { 0 };
	struct smh_client *client;
	uint64_t scrub_bytes = 0, scrub_blocks = 0;
	struct smh_refusal_count *refusals = NULL;
	struct smh_waits waits;
	bool have_waits = false;
	size_t n = 0, n_refusals = 0;
	int c, status, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((status = ctl_option(ctl, c)) >= 0)
			return status;
	}
	if ((status = ctl_no_args(ctl, argc, argv)) >= 0)
		return status;
	if (ctl->json)
		return ctl_usage_error(ctl, "the metrics are Prometheus text: use stats --json");
	if ((status = ctl_connect(ctl, &client))) {
		print_down();
		return status;
	}
	if ((err = ctl_get_regions(client, &regions, &n)) < 0)
		status = ctl_failed(ctl, client, "could not get the regions", err);
	else if ((err = smh_get_stats(client, &st)) < 0)
		status = ctl_failed(ctl, client, "could not get the statistics", err);
	else if ((err = smh_get_scrubbing(client, &scrub_bytes, &scrub_blocks)) < 0)
		status = ctl_failed(ctl, client, "could not get the scrub backlog", err);
	else if ((err = smh_get_refusals(client, &refusals, &n_refusals)) < 0)
		status = ctl_failed(ctl, client, "could not get the refusals", err);
	else if ((err = ctl_get_waits(client, &waits, &have_waits)) < 0)
		status = ctl_failed(ctl, client, "could not get the requests' waits", err);
	if (status) {
		print_down();
	} else {
		print_metrics(&st, regions, n, scrub_bytes, scrub_blocks);
		print_refusals(refusals, n_refusals);
		if (have_waits) /* not from an smhd older than the counts */
			print_waits(&waits);
	}
	free(refusals);
	smh_stats_finish(&st);
	free(regions);
	smh_disconnect(client);
	return status;
}
