/* SPDX-License-Identifier: MIT */
/*
 * Device-tree reader: from a flattened device tree blob to the list of shared-multi-heap regions.
 *
 * The blob is untrusted (a fuzzer feeds dt_parse() random bytes): dt-blob.c checks it whole
 * before this file walks it. After that only libfdt accessors and lengths they return are
 * used, and every property is checked for the shape it must have (one 4-byte cell, one
 * NUL-terminated string, whole reg pairs) before it is decoded.
 *
 * Problems in the configuration do not stop the reader: each is reported to the diag sink, with
 * the node's path and the reason, and counted; a node with a problem gives no region, and the
 * whole parse fails with -EINVAL at the end if any was found. Only a corrupt blob (-EBADMSG)
 * or a failed allocation (-ENOMEM) stops it early. The cross-region checks (duplicate labels,
 * overlaps) sort an array of pointers, so they stay O(n log n) on a hostile blob.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "common/attr.h"
#include "core/dt-blob.h"
#include "core/dt.h"

#define COMPATIBLE "shared-multi-heap"

/* libfdt refuses a blob that is not 8-byte aligned (-FDT_ERR_ALIGNMENT): such a one is copied. */
#define BLOB_ALIGN 8

struct parser {
	const void *fdt;
	const struct diag *diag;
	int addr_cells; /* of /reserved-memory, 1 or 2 */
	int size_cells;
	const struct node *parent;  /* /reserved-memory */
	bool parent_read;           /* its cells and ranges, read at the first candidate */
	const char *parent_problem; /* why /reserved-memory makes its children unusable */
	struct dt_config cfg;       /* regions found so far; moved to the caller on success */
	size_t cap;                 /* allocated length of cfg.regions */
	unsigned n_errors;          /* DIAG_ERRORs reported: the configuration is invalid if > 0 */
	unsigned n_messages;        /* reported or, past DT_MESSAGES_MAX, counted only */
	unsigned n_hidden_errors;   /* errors past DT_MESSAGES_MAX */
	bool too_many_regions;      /* DT_REGIONS_MAX was passed (reported once) */
};

/* The node being read; strings point into the blob. */
struct node {
	int offset;
	char *path;
	bool skip; /* disabled or without capability: warned, gives no region */
	enum smh_reg_attr attr;
	const char *label; /* NULL when missing or invalid (then reported) */
	const fdt32_t *reg;
	size_t n_pairs; /* 0 when reg is missing or invalid (then reported) */
	bool no_map;
};

/* ---------------------------------------------------------------- properties */

/* Copies @s into @buf for a message: printable ASCII only (others become '?'), shortened. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	if (s[i] && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

static void node_report(struct parser *p, const struct node *n, enum diag_level level,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Reports "PATH: WHY"; errors are counted, they make the configuration invalid. */
static void node_report(struct parser *p, const struct node *n, enum diag_level level,
			const char *fmt, ...)
{
	char why[448], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s: %s", n->path, why);
	/* Node names come from the blob too: keep control bytes out of logs and JSON. */
	for (char *c = msg; *c; c++)
		if (*c < 0x20 || *c >= 0x7f)
			*c = '?';
	if (level == DIAG_ERROR)
		p->n_errors++;
	/* A hostile blob could hold millions of problems: say the first ones, count the rest. */
	if (++p->n_messages > DT_MESSAGES_MAX) {
		p->n_hidden_errors += level == DIAG_ERROR;
		return;
	}
	diag_report(p->diag, level, "%s", msg);
}

static void report_hidden(const struct parser *p)
{
	if (p->n_messages <= DT_MESSAGES_MAX)
		return;
	diag_report(p->diag, p->n_hidden_errors ? DIAG_ERROR : DIAG_WARNING,
		    "%u more problems not shown (%u of them errors)",
		    p->n_messages - DT_MESSAGES_MAX, p->n_hidden_errors);
}

/* Looks up @name; *valp is NULL when it is absent. Returns 0 or -EBADMSG (corrupt blob). */
static int get_prop(struct parser *p, int offset, const char *name, const void **valp, int *lenp)
{
	*valp = fdt_getprop(p->fdt, offset, name, lenp);
	if (!*valp && *lenp != -FDT_ERR_NOTFOUND)
		return dt_blob_fdt_error(p->diag, *lenp);
	return 0;
}

/*
 * Looks up @name, which must be one NUL-terminated string. Returns 0 when it is absent, 1 when
 * present (*strp is NULL if it is not a string: that is reported), or -EBADMSG.
 */
static int get_string(struct parser *p, const struct node *n, const char *name, const char **strp)
{
	const void *val;
	int len, r;

	*strp = NULL;
	r = get_prop(p, n->offset, name, &val, &len);
	if (r < 0 || !val)
		return r;
	if (len > 0 && memchr(val, '\0', (size_t)len) == (const char *)val + len - 1)
		*strp = val;
	else
		node_report(p, n, DIAG_ERROR,
			    "%s is not a string (%d bytes, expected one NUL-terminated string)",
			    name, len);
	return 1;
}

/* Reads a #address-cells or #size-cells of @parent. Returns the count, 0 if it is invalid
 * (reported), or -EBADMSG. */
static int get_cells(struct parser *p, const struct node *parent, const char *name, int dflt)
{
	const void *val;
	uint32_t cells;
	int len, r;

	r = get_prop(p, parent->offset, name, &val, &len);
	if (r < 0)
		return r;
	if (!val)
		return dflt;
	if (len != sizeof(fdt32_t)) {
		node_report(p, parent, DIAG_ERROR, "%s has %d bytes, expected one 4-byte cell",
			    name, len);
		return 0;
	}
	cells = fdt32_ld(val);
	if (cells != 1 && cells != 2) {
		node_report(p, parent, DIAG_ERROR, "%s is %" PRIu32 ", smh supports 1 or 2", name,
			    cells);
		return 0;
	}
	return (int)cells;
}

/* Decodes a big-endian number of @n (1 or 2) cells. fdt32_ld() does not need alignment. */
static uint64_t decode_cells(const fdt32_t *cells, int n)
{
	uint64_t val = 0;

	for (int i = 0; i < n; i++)
		val = val << 32 | fdt32_ld(&cells[i]);
	return val;
}

static void reg_pair(const struct parser *p, const struct node *n, size_t i, uint64_t *basep,
		     uint64_t *sizep)
{
	const fdt32_t *pair = n->reg + i * (size_t)(p->addr_cells + p->size_cells);

	*basep = decode_cells(pair, p->addr_cells);
	*sizep = decode_cells(pair + p->addr_cells, p->size_cells);
}

/* ---------------------------------------------------------------- one node */

/* Returns 1 when the node's compatible list contains "shared-multi-heap", 0, or -EBADMSG. */
static int is_candidate(struct parser *p, int offset)
{
	const void *compat;
	int len, r;

	r = get_prop(p, offset, "compatible", &compat, &len);
	if (r < 0 || !compat)
		return r;
	/* Unterminated, it is no string list (and libfdt would compare a byte past its end). */
	if (len <= 0 || ((const char *)compat)[len - 1] != '\0')
		return 0;
	return fdt_stringlist_contains(compat, len, COMPATIBLE);
}

/*
 * The path of the node at @offset, a child of the node at @parent_path ("" for the root): what
 * fdt_get_path() gives, without rescanning the blob from its start for every node.
 */
static int node_path(struct parser *p, const char *parent_path, int offset, char **pathp)
{
	const char *name;
	size_t size;
	int len;

	name = fdt_get_name(p->fdt, offset, &len);
	if (!name)
		return dt_blob_fdt_error(p->diag, len);
	size = strlen(parent_path) + 1 + (size_t)len + 1;
	*pathp = malloc(size);
	if (!*pathp)
		return -ENOMEM;
	snprintf(*pathp, size, "%s/%s", parent_path, name);
	return 0;
}

static int read_status(struct parser *p, struct node *n)
{
	const char *status;
	char buf[40];
	int r;

	r = get_string(p, n, "status", &status);
	if (r <= 0 || !status)
		return r;
	if (strcmp(status, "okay") != 0 && strcmp(status, "ok") != 0) {
		node_report(p, n, DIAG_WARNING, "skipped, its status is \"%s\" (not \"okay\")",
			    printable(status, buf, sizeof(buf)));
		n->skip = true;
	}
	return 0;
}

static int read_capability(struct parser *p, struct node *n)
{
	const char *cap;
	char names[128], buf[40];
	int r;

	r = get_string(p, n, "capability", &cap);
	if (r == 0) {
		node_report(p, n, DIAG_WARNING, "skipped, no capability property");
		n->skip = true;
	}
	if (r <= 0 || !cap)
		return r;
	if (attr_from_name(cap, &n->attr) < 0) {
		attr_list_names(names, sizeof(names));
		node_report(p, n, DIAG_ERROR, "unknown capability \"%s\" (valid: %s)",
			    printable(cap, buf, sizeof(buf)), names);
	}
	return 0;
}

/* Checks the size of each (address, size) pair: non-zero, and the end fits in 64 bits. */
static void check_pairs(struct parser *p, const struct node *n)
{
	uint64_t base, size;

	for (size_t i = 0; i < n->n_pairs; i++) {
		reg_pair(p, n, i, &base, &size);
		if (size == 0)
			node_report(p, n, DIAG_ERROR,
				    "reg pair %zu (address 0x%" PRIx64 ") has size zero", i, base);
		else if (size - 1 > UINT64_MAX - base)
			node_report(p, n, DIAG_ERROR,
				    "reg pair %zu: address 0x%" PRIx64 " + size 0x%" PRIx64
				    " passes the end of the 64-bit address space (size overflow)",
				    i, base, size);
	}
}

static int read_reg(struct parser *p, struct node *n)
{
	int cells = p->addr_cells + p->size_cells;
	size_t stride = (size_t)cells * sizeof(fdt32_t);
	const void *reg;
	int len, r;

	r = get_prop(p, n->offset, "reg", &reg, &len);
	if (r < 0)
		return r;
	if (!reg || len == 0) {
		node_report(p, n, DIAG_ERROR, reg ? "reg is empty" : "no reg property");
		return 0;
	}
	if ((size_t)len % stride != 0) {
		node_report(p, n, DIAG_ERROR,
			    "reg has %d bytes, not a multiple of %zu (#address-cells=%d, "
			    "#size-cells=%d)",
			    len, stride, p->addr_cells, p->size_cells);
		return 0;
	}
	n->reg = reg;
	n->n_pairs = (size_t)len / stride;
	check_pairs(p, n);
	return 0;
}

static bool is_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("._+,@-", c));
}

static void report_label_char(struct parser *p, const struct node *n, size_t i)
{
	unsigned char c = (unsigned char)n->label[i];
	char buf[64];

	printable(n->label, buf, sizeof(buf));
	if (c >= 0x20 && c < 0x7f)
		node_report(p, n, DIAG_ERROR,
			    "label \"%s\" has the invalid character '%c' (allowed: letters, digits "
			    "and ._+,@-)",
			    buf, c);
	else
		node_report(p, n, DIAG_ERROR,
			    "label \"%s\" has the invalid byte 0x%02x (allowed: letters, digits "
			    "and ._+,@-)",
			    buf, c);
}

/* Checks the characters and the length of the longest final label, "LABEL-<n_pairs - 1>". */
static void check_label(struct parser *p, const struct node *n)
{
	char suffix[24] = "", buf[64];
	size_t i, len;

	for (i = 0; is_label_char(n->label[i]); i++)
		;
	if (i == 0 && !n->label[i]) {
		node_report(p, n, DIAG_ERROR, "label is empty");
		return;
	}
	if (n->label[i]) {
		report_label_char(p, n, i);
		return;
	}
	if (n->n_pairs > 1)
		snprintf(suffix, sizeof(suffix), "-%zu", n->n_pairs - 1);
	len = i + strlen(suffix);
	if (len > DT_LABEL_MAX - 1)
		node_report(p, n, DIAG_ERROR,
			    "label \"%s%s\" is %zu bytes long, more than the %d allowed",
			    printable(n->label, buf, sizeof(buf)), suffix, len, DT_LABEL_MAX - 1);
}

static int read_label(struct parser *p, struct node *n)
{
	int r;

	r = get_string(p, n, "label", &n->label);
	if (r < 0)
		return r;
	if (r == 0) {
		n->label = fdt_get_name(p->fdt, n->offset, &r);
		if (!n->label)
			return dt_blob_fdt_error(p->diag, r);
	}
	if (n->label)
		check_label(p, n);
	return 0;
}

static int read_no_map(struct parser *p, struct node *n)
{
	const void *val;
	int len, r;

	r = get_prop(p, n->offset, "no-map", &val, &len);
	n->no_map = val != NULL;
	return r;
}

/* Reads the properties, reporting every problem. Returns 0 or a negative errno. */
static int read_node(struct parser *p, struct node *n)
{
	int r;

	r = read_status(p, n);
	if (r < 0 || n->skip)
		return r;
	r = read_capability(p, n);
	if (r < 0 || n->skip)
		return r;
	/* Said on the child too, so that the message names the regions that are lost. */
	if (p->parent_problem)
		node_report(p, n, DIAG_ERROR, "not usable, %s", p->parent_problem);
	if (p->addr_cells == 0)
		return 0;
	r = read_reg(p, n);
	if (r == 0)
		r = read_label(p, n);
	if (r == 0)
		r = read_no_map(p, n);
	return r;
}

static struct dt_region *new_region(struct parser *p)
{
	struct dt_config *cfg = &p->cfg;

	if (cfg->n_regions == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 8;
		struct dt_region *regions = reallocarray(cfg->regions, cap, sizeof(*regions));

		if (!regions)
			return NULL;
		cfg->regions = regions;
		p->cap = cap;
	}
	return &cfg->regions[cfg->n_regions];
}

/* Appends a region per reg pair; the node has been checked. */
static int add_regions(struct parser *p, const struct node *n)
{
	for (size_t i = 0; i < n->n_pairs; i++) {
		struct dt_region *reg;

		if (p->cfg.n_regions >= DT_REGIONS_MAX) {
			if (!p->too_many_regions)
				node_report(p, n, DIAG_ERROR,
					    "more than %d shared-multi-heap regions in all",
					    DT_REGIONS_MAX);
			p->too_many_regions = true;
			return 0;
		}
		reg = new_region(p);

		if (!reg)
			return -ENOMEM;
		*reg = (struct dt_region){ .attr = n->attr, .no_map = n->no_map };
		reg->path = strdup(n->path);
		if (!reg->path)
			return -ENOMEM;
		reg_pair(p, n, i, &reg->base, &reg->size);
		if (i == 0)
			snprintf(reg->label, sizeof(reg->label), "%s", n->label);
		else
			snprintf(reg->label, sizeof(reg->label), "%s-%zu", n->label, i);
		p->cfg.n_regions++;
	}
	return 0;
}

/*
 * The devicetree specification's node-name characters are the label's (and '@' before the unit
 * address). A name from a hostile blob could carry escape sequences or invalid UTF-8 into
 * terminals and JSON through the node path.
 */
static void check_node_name(struct parser *p, const struct node *n)
{
	const char *name = fdt_get_name(p->fdt, n->offset, NULL);

	for (const char *c = name ? name : ""; *c; c++) {
		if (!is_label_char(*c)) {
			node_report(p, n, DIAG_ERROR, "node name has the invalid byte 0x%02x",
				    (unsigned char)*c);
			return;
		}
	}
}

/* The regions' reg is only physical when the parent maps its children 1:1. */
static int check_ranges(struct parser *p, const struct node *parent)
{
	const void *ranges;
	int len, r;

	r = get_prop(p, parent->offset, "ranges", &ranges, &len);
	if (r == 0 && ranges && len > 0 && !p->parent_problem)
		p->parent_problem = "/reserved-memory has a non-empty ranges (reg must hold "
				    "physical addresses)";
	if (r == 0 && ranges && len > 0)
		node_report(p, parent, DIAG_ERROR,
			    "ranges is not empty (%d bytes): address translation is not supported, "
			    "reg must hold physical addresses",
			    len);
	return r;
}

/* Reads the cells and checks ranges. Returns 0 (p->addr_cells is 0 if unusable) or -EBADMSG. */
static int read_parent(struct parser *p, const struct node *parent)
{
	int addr_cells, size_cells;

	/* The devicetree specification's defaults, for a node without the properties. */
	addr_cells = get_cells(p, parent, "#address-cells", 2);
	if (addr_cells < 0)
		return addr_cells;
	size_cells = get_cells(p, parent, "#size-cells", 1);
	if (size_cells < 0)
		return size_cells;
	if (addr_cells > 0 && size_cells > 0) {
		p->addr_cells = addr_cells;
		p->size_cells = size_cells;
	} else {
		p->parent_problem = "/reserved-memory has an invalid #address-cells or #size-cells";
	}
	return check_ranges(p, parent);
}

/* A child of /reserved-memory: ignored unless compatible; its regions are added if valid. */
static int parse_node(struct parser *p, int offset)
{
	struct node n = { .offset = offset };
	unsigned n_errors = p->n_errors;
	int r;

	r = is_candidate(p, offset);
	if (r <= 0)
		return r;
	/* The parent's cells and ranges matter only to boards that have smh regions. */
	if (!p->parent_read) {
		p->parent_read = true;
		r = read_parent(p, p->parent);
		if (r < 0)
			return r;
	}
	r = node_path(p, p->parent->path, offset, &n.path);
	if (r < 0)
		return r;
	check_node_name(p, &n);
	r = read_node(p, &n);
	if (r == 0 && !n.skip && p->n_errors == n_errors)
		r = add_regions(p, &n);
	free(n.path);
	return r;
}

/* ---------------------------------------------------------------- /reserved-memory */

static int parse_children(struct parser *p, int parent)
{
	int node, r;

	fdt_for_each_subnode (node, p->fdt, parent) {
		r = parse_node(p, node);
		if (r < 0)
			return r;
	}
	if (node != -FDT_ERR_NOTFOUND)
		return dt_blob_fdt_error(p->diag, node);
	return 0;
}

static int parse_reserved_memory(struct parser *p)
{
	struct node parent = { 0 };
	int r;

	parent.offset = fdt_path_offset(p->fdt, "/reserved-memory");
	if (parent.offset == -FDT_ERR_NOTFOUND)
		return 0;
	if (parent.offset < 0)
		return dt_blob_fdt_error(p->diag, parent.offset);
	/* A path starting with '/' names a child of the root, never an alias. */
	r = node_path(p, "", parent.offset, &parent.path);
	if (r < 0)
		return r;
	p->parent = &parent;
	r = parse_children(p, parent.offset);
	p->parent = NULL;
	free(parent.path);
	return r;
}

/* ---------------------------------------------------------------- checks across regions */

static uint64_t region_end(const struct dt_region *reg)
{
	return reg->base + (reg->size - 1);
}

/* Ties go by position in the regions array, i.e. device-tree order. */
static int by_position(const struct dt_region *a, const struct dt_region *b)
{
	return (a > b) - (a < b);
}

static int by_label(const void *pa, const void *pb)
{
	const struct dt_region *a = *(const struct dt_region *const *)pa;
	const struct dt_region *b = *(const struct dt_region *const *)pb;
	int cmp = strcmp(a->label, b->label);

	return cmp ? cmp : by_position(a, b);
}

static int by_base(const void *pa, const void *pb)
{
	const struct dt_region *a = *(const struct dt_region *const *)pa;
	const struct dt_region *b = *(const struct dt_region *const *)pb;

	if (a->base != b->base)
		return a->base < b->base ? -1 : 1;
	return by_position(a, b);
}

/* An array of pointers to the regions, sorted by @cmp; free() it. */
static struct dt_region **sort_regions(const struct dt_config *cfg,
				       int (*cmp)(const void *, const void *))
{
	struct dt_region **order = reallocarray(NULL, cfg->n_regions, sizeof(*order));

	if (!order)
		return NULL;
	for (size_t i = 0; i < cfg->n_regions; i++)
		order[i] = &cfg->regions[i];
	qsort(order, cfg->n_regions, sizeof(*order), cmp);
	return order;
}

static int check_labels(struct parser *p)
{
	const struct dt_region *first = NULL;
	struct dt_region **order;

	if (p->cfg.n_regions < 2)
		return 0;
	order = sort_regions(&p->cfg, by_label);
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < p->cfg.n_regions; i++) {
		const struct dt_region *reg = order[i];

		if (first && strcmp(first->label, reg->label) == 0)
			node_report(p, &(struct node){ .path = reg->path }, DIAG_ERROR,
				    "label \"%s\" is already used by %s", reg->label, first->path);
		else
			first = reg;
	}
	free(order);
	return 0;
}

static void report_overlap(struct parser *p, const struct dt_region *a, const struct dt_region *b)
{
	const struct dt_region *later = a > b ? a : b, *earlier = a > b ? b : a;

	node_report(p, &(struct node){ .path = later->path }, DIAG_ERROR,
		    "region \"%s\" [0x%" PRIx64 "-0x%" PRIx64 "] overlaps region \"%s\" [0x%" PRIx64
		    "-0x%" PRIx64 "] of %s",
		    later->label, later->base, region_end(later), earlier->label, earlier->base,
		    region_end(earlier), earlier->path);
}

/*
 * In base order a region overlaps an earlier one iff it starts at or before the furthest end
 * seen so far: comparing neighbours only would miss a large region that covers several others.
 */
static int check_overlaps(struct parser *p)
{
	const struct dt_region *reach = NULL; /* the region ending furthest so far */
	struct dt_region **order;

	if (p->cfg.n_regions < 2)
		return 0;
	order = sort_regions(&p->cfg, by_base);
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < p->cfg.n_regions; i++) {
		const struct dt_region *reg = order[i];

		if (reach && reg->base <= region_end(reach))
			report_overlap(p, reach, reg);
		if (!reach || region_end(reg) > region_end(reach))
			reach = reg;
	}
	free(order);
	return 0;
}

/* ---------------------------------------------------------------- entry points */

static int parse_aligned(const void *blob, size_t size, struct dt_config *cfg,
			 const struct diag *diag)
{
	struct parser p = { .fdt = blob, .diag = diag };
	int r;

	r = dt_blob_check(blob, size, diag);
	if (r < 0)
		return r;
	r = parse_reserved_memory(&p);
	if (r == 0)
		r = check_labels(&p);
	if (r == 0)
		r = check_overlaps(&p);
	report_hidden(&p);
	if (r == 0 && p.n_errors > 0)
		r = -EINVAL;
	if (r == -ENOMEM)
		diag_report(diag, DIAG_ERROR, "Could not parse the device-tree blob: %s",
			    strerror(ENOMEM));
	if (r < 0) {
		dt_config_finish(&p.cfg);
		return r;
	}
	*cfg = p.cfg;
	return 0;
}

int dt_parse(const void *blob, size_t size, struct dt_config *cfg, const struct diag *diag)
{
	void *copy;
	int r;

	if ((uintptr_t)blob % BLOB_ALIGN == 0)
		return parse_aligned(blob, size, cfg, diag);
	copy = malloc(size ? size : 1);
	if (!copy) {
		diag_report(diag, DIAG_ERROR, "Could not parse the device-tree blob: %s",
			    strerror(ENOMEM));
		return -ENOMEM;
	}
	memcpy(copy, blob, size);
	r = parse_aligned(copy, size, cfg, diag);
	free(copy);
	return r;
}

int dt_load(const char *path, struct dt_config *cfg, const struct diag *diag)
{
	size_t size;
	void *blob;
	int r;

	r = dt_blob_read(path, &blob, &size, diag);
	if (r < 0)
		return r;
	r = dt_parse(blob, size, cfg, diag);
	free(blob);
	return r;
}

void dt_config_finish(struct dt_config *cfg)
{
	for (size_t i = 0; i < cfg->n_regions; i++)
		free(cfg->regions[i].path);
	free(cfg->regions);
	*cfg = (struct dt_config){ 0 };
}
