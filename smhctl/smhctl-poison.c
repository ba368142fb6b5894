/* SPDX-License-Identifier: MIT */
/*
 * `smhctl poison`: what smhd --debug-poison found, the blocks written after they were freed
 * (the count since smhd started and the latest reports, oldest first), and the lines
 * `smhctl stats` adds about it. A daemon without the option (or older than the request) has
 * nothing to show: `poison` says so and fails; `stats` shows nothing more.
 *
 * Command names are the clients' choice: escaped (common/escape.h) before they are printed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/escape.h"
#include "common/units.h"
#include "smhctl/smhctl.h"

void ctl_poison_stats_table(const struct smh_poison_info *p)
{
	char q[32];

	if (!p->enabled)
		return;
	units_format_size(p->quarantine_bytes, q, sizeof(q));
	printf("poison: %llu block%s written after free (smhctl poison), %s in quarantine\n",
	       (unsigned long long)p->n_reports, p->n_reports == 1 ? "" : "s", q);
}

void ctl_poison_stats_json(struct json *j, const struct smh_poison_info *p)
{
	json_key(j, "poison_enabled");
	json_bool(j, p->enabled);
	json_key(j, "poison_reports");
	json_uint(j, p->n_reports);
}

int ctl_get_poison(struct smh_client *client, struct smh_poison_info *p)
{
	int err = smh_get_poison(client, p);

	return err == -EOPNOTSUPP ? 0 : err; /* an older daemon: no poison mode */
}

static void report_table(const struct smh_poison_report *r, const struct smh_region_info *regions,
			 size_t n_regions)
{
	char label[16], comm[ESCAPE_SIZE(32)], size[32];

	units_format_size(r->size, size, sizeof(size));
	printf("%s offset 0x%llx (%s, handle %llu): %llu byte%s changed, the first at +0x%llx; "
	       "last held by %s (pid %d)\n",
	       ctl_region_label(regions, n_regions, r->region, label, sizeof(label)),
	       (unsigned long long)r->offset, size, (unsigned long long)r->handle,
	       (unsigned long long)r->changed, r->changed == 1 ? "" : "s",
	       (unsigned long long)r->first, escape_string(comm, sizeof(comm), r->comm),
	       (int)r->pid);
}

static void poison_table(const struct smh_poison_info *p, const struct smh_region_info *regions,
			 size_t n_regions)
{
	char q[32];

	units_format_size(p->quarantine_bytes, q, sizeof(q));
	printf("%llu block%s written after free; %s in quarantine\n",
	       (unsigned long long)p->n_reports, p->n_reports == 1 ? "" : "s", q);
	if (p->n_last < p->n_reports)
		printf("the latest %zu:\n", p->n_last);
	for (size_t i = 0; i < p->n_last; i++)
		report_table(&p->last[i], regions, n_regions);
}

static void report_json(struct json *j, const struct smh_poison_report *r, const char *label)
{
	json_object_begin(j);
	json_key(j, "region");
	json_uint(j, r->region);
	json_key(j, "label");
	json_string(j, label);
	json_key(j, "offset");
	json_uint(j, r->offset);
	json_key(j, "size");
	json_uint(j, r->size);
	json_key(j, "first");
	json_uint(j, r->first);
	json_key(j, "changed");
	json_uint(j, r->changed);
	json_key(j, "handle");
	json_uint(j, r->handle);
	json_key(j, "pid");
	json_int(j, r->pid);
	json_key(j, "comm");
	json_string(j, r->comm);
	json_object_end(j);
}

static void poison_json(const struct smh_poison_info *p, const struct smh_region_info *regions,
			size_t n_regions)
{
	struct json j;
	char label[16];

	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "reports");
	json_uint(&j, p->n_reports);
	json_key(&j, "quarantine_bytes");
	json_uint(&j, p->quarantine_bytes);
	json_key(&j, "latest");
	json_array_begin(&j);
	for (size_t i = 0; i < p->n_last; i++)
		report_json(&j, &p->last[i],
			    ctl_region_label(regions, n_regions, p->last[i].region, label,
					     sizeof(label)));
	json_array_end(&j);
	json_object_end(&j);
	json_finish(&j);
}

static int parse(struct ctl *ctl, int argc, char **argv)
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

int cmd_poison(struct ctl *ctl, int argc, char **argv)
{
	struct smh_region_info *regions = NULL;
	struct smh_poison_info p;
	struct smh_client *client;
	size_t n = 0;
	int status, err;

	if ((status = parse(ctl, argc, argv)) >= 0 || (status = ctl_connect(ctl, &client)))
		return status;
	if ((err = ctl_get_regions(client, &regions, &n)) < 0) {
		status = ctl_failed(ctl, client, "could not get the regions", err);
	} else if ((err = ctl_get_poison(client, &p)) < 0) {
		status = ctl_failed(ctl, client, "could not get the poison reports", err);
	} else if (!p.enabled) {
		fprintf(stderr, "smhctl: error: poison: smhd does not check freed memory (start it "
				"with --debug-poison)\n");
		status = CTL_EXIT_FAILURE;
	} else if (ctl->json) {
		poison_json(&p, regions, n);
	} else {
		poison_table(&p, regions, n);
	}
	free(regions);
	smh_disconnect(client);
	return status;
}
