/* SPDX-License-Identifier: MIT */
/*
 * Region report (see report.h). Diagnostics are printed as they come in human mode and
 * collected for the JSON document otherwise, so scripts get every message in one place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/attr.h"
#include "common/json.h"
#include "common/units.h"
#include "core/pool.h"
#include "core/report.h"

struct message {
	enum diag_level level;
	char *text;
};

struct sink {
	const struct report_check_options *opts;
	FILE *err;
	struct message *msgs;
	size_t n_msgs;
	size_t n_errors;
	bool out_of_memory;
};

static void sink_report(void *data, enum diag_level level, const char *msg)
{
	struct sink *s = data;
	struct message *grown;

	if (level == DIAG_ERROR)
		s->n_errors++;
	if (!s->opts->json) {
		fprintf(s->err, "%s: %s: %s\n", s->opts->prog, diag_level_name(level), msg);
		return;
	}
	grown = realloc(s->msgs, (s->n_msgs + 1) * sizeof(*s->msgs));
	if (!grown || !(grown[s->n_msgs].text = strdup(msg))) {
		s->msgs = grown ? grown : s->msgs;
		s->out_of_memory = true;
		return;
	}
	s->msgs = grown;
	s->msgs[s->n_msgs++].level = level;
}

static void sink_finish(struct sink *s)
{
	for (size_t i = 0; i < s->n_msgs; i++)
		free(s->msgs[i].text);
	free(s->msgs);
}

static void hex(char *buf, size_t size, uint64_t v)
{
	snprintf(buf, size, "0x%llx", (unsigned long long)v);
}

void report_regions_table(FILE *out, const struct dt_config *cfg)
{
	int w_label = (int)strlen("LABEL"), w_range = (int)strlen("PHYSICAL RANGE");
	char range[64], size[32], base[24], last[24];

	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct dt_region *r = &cfg->regions[i];
		int len = (int)strlen(r->label);

		hex(base, sizeof(base), r->base);
		hex(last, sizeof(last), r->base + (r->size - 1));
		w_label = len > w_label ? len : w_label;
		len = (int)(strlen(base) + 1 + strlen(last));
		w_range = len > w_range ? len : w_range;
	}
	fprintf(out, "%-*s  %-13s  %-*s  %10s  %-6s  %s\n", w_label, "LABEL", "ATTRIBUTE", w_range,
		"PHYSICAL RANGE", "SIZE", "NO-MAP", "NODE");
	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct dt_region *r = &cfg->regions[i];

		hex(base, sizeof(base), r->base);
		hex(last, sizeof(last), r->base + (r->size - 1));
		snprintf(range, sizeof(range), "%s-%s", base, last);
		units_format_size(r->size, size, sizeof(size));
		fprintf(out, "%-*s  %-13s  %-*s  %10s  %-6s  %s\n", w_label, r->label,
			attr_name(r->attr), w_range, range, size, r->no_map ? "yes" : "no",
			r->path);
	}
}

static void regions_json(struct json *j, const struct dt_config *cfg)
{
	char buf[24];

	json_array_begin(j);
	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct dt_region *r = &cfg->regions[i];

		json_object_begin(j);
		json_key(j, "label");
		json_string(j, r->label);
		json_key(j, "node");
		json_string(j, r->path);
		json_key(j, "phys_addr");
		json_uint(j, r->base);
		json_key(j, "phys_addr_hex");
		hex(buf, sizeof(buf), r->base);
		json_string(j, buf);
		json_key(j, "size");
		json_uint(j, r->size);
		json_key(j, "attr");
		json_string(j, attr_name(r->attr));
		json_key(j, "no_map");
		json_bool(j, r->no_map);
		json_object_end(j);
	}
	json_array_end(j);
}

static void messages_json(struct json *j, const struct sink *s, enum diag_level level)
{
	json_array_begin(j);
	for (size_t i = 0; i < s->n_msgs; i++) {
		if (s->msgs[i].level == level)
			json_string(j, s->msgs[i].text);
	}
	json_array_end(j);
}

static void print_json(FILE *out, const struct report_check_options *opts,
		       const struct dt_config *cfg, const struct sink *s, bool valid)
{
	struct json j;

	json_init(&j, out);
	json_object_begin(&j);
	json_key(&j, "source");
	json_string(&j, opts->dtb_path);
	json_key(&j, "valid");
	json_bool(&j, valid);
	json_key(&j, "granule");
	json_uint(&j, opts->granule);
	json_key(&j, "regions");
	regions_json(&j, cfg);
	json_key(&j, "warnings");
	messages_json(&j, s, DIAG_WARNING);
	json_key(&j, "errors");
	messages_json(&j, s, DIAG_ERROR);
	json_object_end(&j);
	json_finish(&j);
}

/* The pool is built only to prove the granule fits every region; it is thrown away. */
static void check_pool(const struct dt_config *cfg, uint64_t granule, const struct diag *diag)
{
	struct pool *pool = NULL;

	if (pool_create(cfg, granule, NULL, diag, &pool) == 0)
		pool_destroy(pool);
}

int report_check(const struct report_check_options *opts, FILE *out, FILE *err)
{
	struct dt_config cfg = { 0 };
	struct sink s = { .opts = opts, .err = err };
	struct diag diag = { .report = sink_report, .data = &s };
	uint64_t total = 0;
	bool valid;
	char size[32];

	if (dt_load(opts->dtb_path, &cfg, &diag) == 0) {
		if (cfg.n_regions == 0)
			diag_report(
				&diag, DIAG_ERROR,
				"%s: no enabled shared-multi-heap region under /reserved-memory",
				opts->dtb_path);
		else
			check_pool(&cfg, opts->granule, &diag);
	} else if (s.n_errors == 0) {
		diag_report(&diag, DIAG_ERROR, "Could not load %s", opts->dtb_path);
	}
	valid = s.n_errors == 0 && !s.out_of_memory;

	if (opts->json) {
		print_json(out, opts, &cfg, &s, valid);
	} else if (valid) {
		/* Regions do not overlap, but together they may cover all 2^64 bytes. */
		for (size_t i = 0; i < cfg.n_regions; i++)
			total = total + cfg.regions[i].size < total ? UINT64_MAX
								    : total + cfg.regions[i].size;
		units_format_size(total, size, sizeof(size));
		report_regions_table(out, &cfg);
		fprintf(out, "%zu region%s, %s in all, granule %llu bytes: configuration valid\n",
			cfg.n_regions, cfg.n_regions == 1 ? "" : "s", size,
			(unsigned long long)opts->granule);
	} else {
		fprintf(err, "%s: %s: configuration invalid\n", opts->prog, opts->dtb_path);
	}
	sink_finish(&s);
	dt_config_finish(&cfg);
	/* A script reading a truncated report must not take it for a success. */
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(err, "%s: error: Could not write the report: %s\n", opts->prog,
			strerror(errno));
		return 1;
	}
	return valid ? 0 : 1;
}
