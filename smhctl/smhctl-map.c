/* SPDX-License-Identifier: MIT */
/*
 * smhctl map: one bar per region, each cell a character by how much of it is in use, and
 * under it the numbers (used, free, largest free block, fragmentation), so that a person sees
 * at a glance whether free memory is in one piece or scattered. The daemon cuts each region
 * into the cells (an occupancy request); the bar is as wide as the terminal unless --width
 * says otherwise. --json gives the same as data: per region the per mille in use of each cell.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/attr.h"
#include "common/units.h"
#include "smhctl/smhctl.h"

/* One region's picture and numbers. */
struct map_row {
	const struct smh_region_info *info;
	struct smh_region_stats stats;
	uint16_t *cells;
	uint64_t cell_bytes;
};

struct map {
	struct smh_region_info *regions;
	size_t n_regions;
	struct map_row *rows; /* n_regions */
	uint32_t n_cells;
	int w_label;
};

static const char legend[] = "'.' free  ':' up to 1/3 used  '+' up to 2/3  '*' more  '#' full";

static char cell_char(uint16_t permille)
{
	if (permille == 0)
		return '.';
	if (permille >= 1000)
		return '#';
	return permille <= 333 ? ':' : permille <= 666 ? '+' : '*';
}

static int parse_width(struct ctl *ctl, const char *s, uint32_t *cellsp)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < CTL_MAP_MIN_CELLS || v > CTL_MAP_MAX_CELLS)
		return ctl_usage_error(ctl, "--width %s: not a number of cells from %d to %d", s,
				       CTL_MAP_MIN_CELLS, CTL_MAP_MAX_CELLS);
	*cellsp = (uint32_t)v;
	return -1;
}

static int parse_map(struct ctl *ctl, int argc, char **argv, uint32_t *cellsp)
{
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "width", required_argument, NULL, 'w' },
		{ 0 },
	};
	int c, status = -1;

	optind = 0;
	while (status < 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		status = c == 'w' ? parse_width(ctl, optarg, cellsp) : ctl_option(ctl, c);
	return status >= 0 ? status : ctl_no_args(ctl, argc, argv);
}

/* The terminal's width: stdout's window size, else $COLUMNS, else 80. */
static unsigned long terminal_columns(void)
{
	struct winsize ws;
	const char *env = getenv("COLUMNS");
	unsigned long v;
	char *end;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (env && *env) {
		errno = 0;
		v = strtoul(env, &end, 10);
		if (!errno && !*end && v > 0)
			return v;
	}
	return 80;
}

/* Label, two spaces, then the bar between two '|'. */
static uint32_t default_cells(int w_label)
{
	unsigned long cols = terminal_columns(), margin = (unsigned long)w_label + 4;

	if (cols < margin + CTL_MAP_MIN_CELLS)
		return CTL_MAP_MIN_CELLS;
	return cols - margin > CTL_MAP_MAX_CELLS ? CTL_MAP_MAX_CELLS : (uint32_t)(cols - margin);
}

static void map_finish(struct map *m)
{
	for (size_t i = 0; m->rows && i < m->n_regions; i++)
		free(m->rows[i].cells);
	free(m->rows);
	free(m->regions);
}

static int fetch_row(struct smh_client *client, struct map_row *row, uint32_t n_cells,
		     const struct smh_stats *st)
{
	for (size_t i = 0; i < st->n_regions; i++) {
		if (st->regions[i].region == row->info->index)
			row->stats = st->regions[i];
	}
	row->cells = calloc(n_cells, sizeof(*row->cells));
	if (!row->cells)
		return -ENOMEM;
	return smh_get_occupancy(client, row->info->index, n_cells, row->cells, &row->cell_bytes);
}

/* Asks for the regions, the statistics and each region's cells. Returns 0 or 1. */
static int fetch(struct smh_client *client, struct map *m)
{
	struct smh_stats st = { 0 };
	int err;

	if ((err = ctl_get_regions(client, &m->regions, &m->n_regions)) < 0)
		return ctl_failed(NULL, client, "could not get the regions", err);
	if ((err = smh_get_stats(client, &st)) < 0)
		return ctl_failed(NULL, client, "could not get the statistics", err);
	m->rows = calloc(m->n_regions ? m->n_regions : 1, sizeof(*m->rows));
	for (size_t i = 0; m->rows && i < m->n_regions; i++) {
		int len = (int)strlen(m->regions[i].label);

		m->w_label = len > m->w_label ? len : m->w_label;
		m->rows[i].info = &m->regions[i];
	}
	if (m->n_cells == 0)
		m->n_cells = default_cells(m->w_label);
	err = m->rows ? 0 : -ENOMEM;
	for (size_t i = 0; err == 0 && i < m->n_regions; i++)
		err = fetch_row(client, &m->rows[i], m->n_cells, &st);
	smh_stats_finish(&st);
	return err < 0 ? ctl_failed(NULL, client, "could not get the occupancy", err) : 0;
}

static bool same_cell_bytes(const struct map *m)
{
	for (size_t i = 1; i < m->n_regions; i++) {
		if (m->rows[i].cell_bytes != m->rows[0].cell_bytes)
			return false;
	}
	return true;
}

static void print_row(const struct map *m, const struct map_row *row, bool cell_size)
{
	char used[32], free_[32], largest[32], frag[16], cell[32];

	printf("%-*s  |", m->w_label, row->info->label);
	for (uint32_t i = 0; i < m->n_cells; i++)
		putchar(cell_char(row->cells[i]));
	printf("|\n");
	units_format_size(row->stats.used, used, sizeof(used));
	units_format_size(row->stats.free, free_, sizeof(free_));
	units_format_size(row->stats.largest_free, largest, sizeof(largest));
	ctl_permille(frag, sizeof(frag), row->stats.fragmentation);
	units_format_size(row->cell_bytes, cell, sizeof(cell));
	printf("%-*s   %s, used %s, free %s, largest free %s, fragmentation %s%s%s\n", m->w_label,
	       "", attr_name(row->info->attr), used, free_, largest, frag,
	       cell_size ? ", cell " : "", cell_size ? cell : "");
}

static void map_print(const struct map *m)
{
	bool same = same_cell_bytes(m);
	char cell[32];

	for (size_t i = 0; i < m->n_regions; i++)
		print_row(m, &m->rows[i], !same);
	if (same && m->n_regions > 0) {
		units_format_size(m->rows[0].cell_bytes, cell, sizeof(cell));
		printf("%s; one cell = %s\n", legend, cell);
	} else {
		printf("%s; bytes per cell under each bar\n", legend);
	}
}

static void row_json(struct json *j, const struct map_row *row, uint32_t n_cells)
{
	json_object_begin(j);
	json_key(j, "index");
	json_uint(j, row->info->index);
	json_key(j, "label");
	json_string(j, row->info->label);
	json_key(j, "attr");
	json_string(j, attr_name(row->info->attr));
	json_key(j, "used");
	json_uint(j, row->stats.used);
	json_key(j, "free");
	json_uint(j, row->stats.free);
	json_key(j, "largest_free");
	json_uint(j, row->stats.largest_free);
	json_key(j, "fragmentation_permille");
	json_uint(j, row->stats.fragmentation);
	json_key(j, "cell_bytes");
	json_uint(j, row->cell_bytes);
	json_key(j, "cells_permille");
	json_array_begin(j);
	for (uint32_t i = 0; i < n_cells; i++)
		json_uint(j, row->cells[i]);
	json_array_end(j);
	json_object_end(j);
}

static void map_json(const struct map *m)
{
	struct json j;

	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "cells");
	json_uint(&j, m->n_cells);
	json_key(&j, "regions");
	json_array_begin(&j);
	for (size_t i = 0; i < m->n_regions; i++)
		row_json(&j, &m->rows[i], m->n_cells);
	json_array_end(&j);
	json_object_end(&j);
	json_finish(&j);
}

int cmd_map(struct ctl *ctl, int argc, char **argv)
{
	struct map m = { .w_label = (int)strlen("LABEL") };
	struct smh_client *client;
	int status;

	if ((status = parse_map(ctl, argc, argv, &m.n_cells)) >= 0 ||
	    (status = ctl_connect(ctl, &client)))
		return status;
	if ((status = fetch(client, &m)) == 0) {
		if (ctl->json)
			map_json(&m);
		else
			map_print(&m);
	}
	map_finish(&m);
	smh_disconnect(client);
	return status;
}
