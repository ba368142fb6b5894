/* SPDX-License-Identifier: MIT */
/*
 * smhctl allocs (and top): every live allocation with its owner as a person knows it, the pid
 * and command of the process that allocated it, joined from the client list by client id. An
 * owner that is no longer connected (it exited and the buffer lives on in an importer, or it is
 * an orphaned session after a restart) shows as gone. Filters (--pid, --region, --attr) and a
 * sort select what is printed; --watch redraws the table every few seconds (`top` is allocs
 * --watch sorted by size). NAME, last so that a long one shifts nothing, is the name given at
 * allocation, escaped (common/escape.h) like the command; --name selects names by an fnmatch()
 * glob, matched against the name as smhd sent it.
 *
 * Every snapshot asks the daemon three lists (regions, allocations, clients) one after the
 * other: a client may come or go between them, which shows at worst as a gone owner for one
 * refresh.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/attr.h"
#include "common/escape.h"
#include "smhctl/smhctl.h"

enum sort_key { SORT_HANDLE, SORT_SIZE, SORT_REGION, SORT_PID, SORT_OWNER, SORT_NAME };

static const char *const sort_names[] = { "handle", "size", "region", "pid", "owner", "name" };

struct allocs_opts {
	long long pid; /* --pid, or -1 */
	const char *region;
	const char *name; /* --name: an fnmatch() pattern, or NULL */
	bool by_attr;
	enum smh_reg_attr attr;
	enum sort_key sort;
	double watch; /* seconds between refreshes; < 0: once */
	long count;   /* refreshes before exiting; 0: until interrupted */
};

/* One snapshot of the daemon's lists. */
struct snapshot {
	struct smh_region_info *regions;
	size_t n_regions;
	struct smh_alloc_info *allocs;
	size_t n_allocs;
	struct smh_client_info *clients;
	size_t n_clients;
};

/* An allocation as printed: its owner and region found, NULL when there is none. */
struct row {
	const struct smh_alloc_info *a;
	const struct smh_client_info *owner;
	const struct smh_region_info *region;
};

/* ---------------------------------------------------------------- options */

static int parse_sort(struct ctl *ctl, const char *name, enum sort_key *keyp)
{
	for (size_t i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++) {
		if (strcmp(name, sort_names[i]) == 0) {
			*keyp = (enum sort_key)i;
			return -1;
		}
	}
	return ctl_usage_error(ctl,
			       "--sort %s: unknown key (valid: handle, size, region, pid, "
			       "owner, name)",
			       name);
}

static int parse_number(struct ctl *ctl, const char *opt, const char *s, double max, double *vp)
{
	char *end;

	errno = 0;
	*vp = strtod(s, &end);
	if (errno || end == s || *end || !(*vp >= 0 && *vp <= max)) /* NaN fails too */
		return ctl_usage_error(ctl, "%s %s: not a number from 0 to %g", opt, s, max);
	return -1;
}

static int parse_option(struct ctl *ctl, int c, struct allocs_opts *o)
{
	double v;
	int status;

	switch (c) {
	case 'p':
		status = parse_number(ctl, "--pid", optarg, 4194304, &v);
		o->pid = (long long)v;
		if (status < 0 && (double)o->pid != v)
			return ctl_usage_error(ctl, "--pid %s: not a pid", optarg);
		return status;
	case 'r':
		o->region = optarg;
		return -1;
	case 'N':
		o->name = optarg;
		return -1;
	case 'a':
		if (attr_from_name(optarg, &o->attr) < 0)
			return ctl_usage_error(ctl, "--attr %s: unknown attribute", optarg);
		o->by_attr = true;
		return -1;
	case 's':
		return parse_sort(ctl, optarg, &o->sort);
	case 'w':
		o->watch = 2;
		return optarg ? parse_number(ctl, "--watch", optarg, 86400, &o->watch) : -1;
	case 'n':
		status = parse_number(ctl, "--count", optarg, 1e9, &v);
		o->count = (long)v;
		return status;
	default:
		return ctl_option(ctl, c);
	}
}

static int parse_allocs(struct ctl *ctl, int argc, char **argv, struct allocs_opts *o)
{
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "pid", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'N' },
		{ "attr", required_argument, NULL, 'a' },
		{ "sort", required_argument, NULL, 's' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ 0 },
	};
	int c, status;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((status = parse_option(ctl, c, o)) >= 0)
			return status;
	}
	if (o->count && o->watch < 0)
		return ctl_usage_error(ctl, "--count goes with --watch");
	return ctl_no_args(ctl, argc, argv);
}

/* ---------------------------------------------------------------- the join */

static void snapshot_finish(struct snapshot *s)
{
	if (s->allocs)
		smh_allocs_free(s->allocs, s->n_allocs);
	free(s->clients);
	free(s->regions);
	*s = (struct snapshot){ 0 };
}

static int snapshot_take(const struct ctl *ctl, struct smh_client *client, struct snapshot *s)
{
	int err;

	if ((err = ctl_get_regions(client, &s->regions, &s->n_regions)) < 0)
		return ctl_failed(ctl, client, "could not get the regions", err);
	if ((err = smh_list_allocs(client, &s->allocs, &s->n_allocs)) < 0)
		return ctl_failed(ctl, client, "could not list the allocations", err);
	if ((err = smh_list_clients(client, &s->clients, &s->n_clients)) < 0)
		return ctl_failed(ctl, client, "could not list the clients", err);
	for (size_t i = 0; i < s->n_clients; i++) {
		char *comm = s->clients[i].comm;
		char safe[ESCAPE_SIZE(sizeof(s->clients[i].comm))];

		escape_string(safe, sizeof(s->clients[i].comm), comm);
		memcpy(comm, safe, strlen(safe) + 1);
	}
	return 0;
}

static const struct smh_client_info *find_client(const struct snapshot *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_clients; i++)
		if (s->clients[i].id == id)
			return &s->clients[i];
	return NULL;
}

static const struct smh_region_info *find_region(const struct snapshot *s, uint32_t index)
{
	for (size_t i = 0; i < s->n_regions; i++)
		if (s->regions[i].index == index)
			return &s->regions[i];
	return NULL;
}

/* Whether process @pid owns or holds @a. */
static bool held_by_pid(const struct snapshot *s, const struct row *r, long long pid)
{
	if (r->owner && r->owner->pid == pid)
		return true;
	for (size_t i = 0; i < r->a->n_holders; i++) {
		const struct smh_client_info *h = find_client(s, r->a->holders[i]);

		if (h && h->pid == pid)
			return true;
	}
	return false;
}

static bool selected(const struct snapshot *s, const struct row *r, const struct allocs_opts *o)
{
	char index[16];

	if (o->pid >= 0 && !held_by_pid(s, r, o->pid))
		return false;
	if (o->name && fnmatch(o->name, r->a->name, 0) != 0)
		return false;
	if (o->region) {
		snprintf(index, sizeof(index), "%u", r->a->region);
		if (strcmp(o->region, index) != 0 &&
		    (!r->region || strcmp(o->region, r->region->label)))
			return false;
	}
	return !o->by_attr || (r->region && r->region->attr == o->attr);
}

static enum sort_key sort_by; /* qsort() has no context argument */

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int compare_rows(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;
	int c = 0;

	if (sort_by == SORT_SIZE)
		c = cmp_u64(b->a->size, a->a->size); /* the largest first */
	else if (sort_by == SORT_REGION)
		c = a->a->region != b->a->region ? cmp_u64(a->a->region, b->a->region)
						 : cmp_u64(a->a->offset, b->a->offset);
	else if (sort_by == SORT_PID)
		c = cmp_u64(a->owner ? (uint64_t)a->owner->pid : UINT64_MAX,
			    b->owner ? (uint64_t)b->owner->pid : UINT64_MAX);
	else if (sort_by == SORT_OWNER)
		c = cmp_u64(a->a->owner, b->a->owner);
	else if (sort_by == SORT_NAME)
		c = strcmp(a->a->name, b->a->name);
	return c ? c : cmp_u64(a->a->handle, b->a->handle);
}

/* The selected rows of @s, sorted. Returns their number, or -ENOMEM. */
static long make_rows(const struct snapshot *s, const struct allocs_opts *o, struct row **rowsp)
{
	struct row *rows = calloc(s->n_allocs ? s->n_allocs : 1, sizeof(*rows));
	size_t n = 0;

	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_allocs; i++) {
		struct row r = { &s->allocs[i], find_client(s, s->allocs[i].owner),
				 find_region(s, s->allocs[i].region) };

		if (selected(s, &r, o))
			rows[n++] = r;
	}
	sort_by = o->sort;
	qsort(rows, n, sizeof(*rows), compare_rows);
	*rowsp = rows;
	return (long)n;
}

/* ---------------------------------------------------------------- output */

/* "3,7,12" into @buf; "..." at the end when it does not fit. */
static void holders_text(char *buf, size_t size, const struct smh_alloc_info *a)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->n_holders; i++) {
		int n = snprintf(buf + len, size - len, "%s%llu", i ? "," : "",
				 (unsigned long long)a->holders[i]);

		if (n < 0 || (size_t)n >= size - len) {
			snprintf(buf + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
			return;
		}
		len += (size_t)n;
	}
}

static const char *row_label(const struct row *r, char *buf, size_t size)
{
	if (r->region)
		return r->region->label;
	snprintf(buf, size, "#%u", r->a->region);
	return buf;
}

static int label_width(const struct snapshot *s)
{
	int w = (int)strlen("REGION");

	for (size_t i = 0; i < s->n_regions; i++)
		if ((int)strlen(s->regions[i].label) > w)
			w = (int)strlen(s->regions[i].label);
	return w;
}

static void print_row(const struct row *r, int w_label)
{
	char label[16], offset[24], size[32], phys[24], pid[16], holders[128];
	char name[ESCAPE_SIZE(SMH_NAME_MAX)];
	const struct smh_alloc_info *a = r->a;

	ctl_hex(offset, sizeof(offset), a->offset);
	ctl_hex(phys, sizeof(phys), a->phys_addr);
	ctl_size(size, sizeof(size), a->size);
	holders_text(holders, sizeof(holders), a);
	snprintf(pid, sizeof(pid), "%d", r->owner ? r->owner->pid : 0);
	escape_string(name, sizeof(name), a->name);
	printf("%8llu  %-*s  %12s  %10s  %18s  %8llu  %8s  %-16s  %-6s  %-8s  %s\n",
	       (unsigned long long)a->handle, w_label, row_label(r, label, sizeof(label)), offset,
	       size, phys, (unsigned long long)a->owner, r->owner ? pid : "-",
	       r->owner ? r->owner->comm : "(gone)", a->shared ? "yes" : "no", holders,
	       *name ? name : "-");
}

static void allocs_table(const struct snapshot *s, const struct row *rows, size_t n)
{
	int w_label = label_width(s);
	uint64_t bytes = 0;
	char total[32];

	printf("%8s  %-*s  %12s  %10s  %18s  %8s  %8s  %-16s  %-6s  %-8s  %s\n", "HANDLE", w_label,
	       "REGION", "OFFSET", "SIZE", "PHYS", "OWNER", "PID", "COMMAND", "SHARED", "HOLDERS",
	       "NAME");
	for (size_t i = 0; i < n; i++) {
		print_row(&rows[i], w_label);
		bytes += rows[i].a->size;
	}
	ctl_size(total, sizeof(total), bytes);
	if (n == s->n_allocs)
		printf("%zu allocation%s, %s\n", n, n == 1 ? "" : "s", total);
	else
		printf("%zu of %zu allocations, %s\n", n, s->n_allocs, total);
}

static void alloc_json(struct json *j, const struct row *r)
{
	const struct smh_alloc_info *a = r->a;
	char label[16];

	json_object_begin(j);
	json_key(j, "handle");
	json_uint(j, a->handle);
	json_key(j, "name");
	json_string(j, a->name);
	json_key(j, "region");
	json_uint(j, a->region);
	json_key(j, "label");
	json_string(j, row_label(r, label, sizeof(label)));
	json_key(j, "offset");
	json_uint(j, a->offset);
	json_key(j, "size");
	json_uint(j, a->size);
	ctl_json_addr(j, "phys_addr", a->phys_addr);
	json_key(j, "owner");
	json_uint(j, a->owner);
	json_key(j, "owner_connected");
	json_bool(j, r->owner != NULL);
	json_key(j, "owner_pid"); /* 0 when the owner is gone */
	json_int(j, r->owner ? r->owner->pid : 0);
	json_key(j, "owner_comm");
	json_string(j, r->owner ? r->owner->comm : "");
	json_key(j, "shared");
	json_bool(j, a->shared);
	json_key(j, "holders");
	json_array_begin(j);
	for (size_t i = 0; i < a->n_holders; i++)
		json_uint(j, a->holders[i]);
	json_array_end(j);
	json_object_end(j);
}

static void allocs_json(const struct row *rows, size_t n)
{
	struct json j;

	json_init(&j, stdout);
	json_array_begin(&j);
	for (size_t i = 0; i < n; i++)
		alloc_json(&j, &rows[i]);
	json_array_end(&j);
	json_finish(&j);
}

/* One snapshot printed. Returns 0 or the exit status. */
static int show(const struct ctl *ctl, struct smh_client *client, const struct allocs_opts *o)
{
	struct snapshot s = { 0 };
	struct row *rows = NULL;
	long n = 0;
	int status = snapshot_take(ctl, client, &s);

	if (status == 0 && (n = make_rows(&s, o, &rows)) < 0) {
		fprintf(stderr, "smhctl: error: allocs: out of memory\n");
		status = CTL_EXIT_FAILURE;
	} else if (status == 0 && ctl->json) {
		allocs_json(rows, (size_t)n);
	} else if (status == 0) {
		allocs_table(&s, rows, (size_t)n);
	}
	free(rows);
	snapshot_finish(&s);
	return status;
}

/* ---------------------------------------------------------------- the commands */

static void pause_seconds(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Redraws every o->watch seconds: on a terminal in place, else one table after another. */
static int watch(const struct ctl *ctl, struct smh_client *client, const struct allocs_opts *o)
{
	bool tty = isatty(STDOUT_FILENO) && !ctl->json;
	int status = 0;

	for (long i = 0; status == 0 && (o->count == 0 || i < o->count); i++) {
		time_t now = time(NULL);
		char stamp[32];

		if (i > 0)
			pause_seconds(o->watch);
		strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
		if (tty)
			fputs("\033[H\033[2J", stdout);
		if (!ctl->json)
			printf("smhctl allocs, every %gs, sorted by %s: %s\n", o->watch,
			       sort_names[o->sort], stamp);
		status = show(ctl, client, o);
		if (!tty && !ctl->json)
			putchar('\n');
		fflush(stdout);
	}
	return status;
}

static int run(struct ctl *ctl, int argc, char **argv, struct allocs_opts *o)
{
	struct smh_client *client;
	int status = parse_allocs(ctl, argc, argv, o);

	if (status >= 0 || (status = ctl_connect(ctl, &client)))
		return status;
	status = o->watch < 0 ? show(ctl, client, o) : watch(ctl, client, o);
	smh_disconnect(client);
	return status;
}

int cmd_allocs(struct ctl *ctl, int argc, char **argv)
{
	struct allocs_opts o = { .pid = -1, .watch = -1 };

	return run(ctl, argc, argv, &o);
}

int cmd_top(struct ctl *ctl, int argc, char **argv)
{
	struct allocs_opts o = { .pid = -1, .watch = 2, .sort = SORT_SIZE };

	return run(ctl, argc, argv, &o);
}
