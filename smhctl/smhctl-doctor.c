/* SPDX-License-Identifier: MIT */
/*
 * smhctl doctor: the checks that board bring-up gets wrong, each with its fix.
 *
 * It reads what the kernel booted with and what it made of it, and needs no daemon:
 * - the device tree's regions (default /sys/firmware/fdt, or --dtb FILE);
 * - /proc/iomem (or --iomem FILE): a region must not lie in System RAM (the kernel allocates
 *   from it) nor overlap the kernel's image or a device; `reserved` or unlisted is right;
 * - `no-map` on each node (without it the kernel keeps the memory in its linear map);
 * - /dev/mem (or --mem-path FILE): opened as smhd opens it, and a test mmap of each region
 *   (nothing is read or written through it);
 * - the kernel configuration: STRICT_DEVMEM and DEVMEM, from /proc/config.gz (through
 *   `gzip -dc`), else /boot/config-RELEASE, or --kconfig FILE;
 * - the cache attribute obtained against the one asked for: from smhd's region table when it
 *   runs, else what the platform gives (on arm64, /dev/mem maps no-map memory as Device memory).
 * Every check prints OK, SKIP, WARN or FAIL, and the fix for the last two. OK means checked:
 * what could not be checked (the attribute without smhd) is SKIP with the reason, never OK.
 * One cause gives one FAIL with its own fix, and no FAIL's fix contradicts an OK line (a
 * region in System RAM although its node has no-map is the kernel's doing, not the node's).
 * Exit 0 when nothing FAILs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/attr.h"
#include "core/dt.h"
#include "core/memtype.h"
#include "smhctl/smhctl.h"

#define IOMEM_MAX 4096

enum level { DOC_OK, DOC_WARN, DOC_FAIL, DOC_SKIP };

static const char *const level_names[] = { "OK", "WARN", "FAIL", "SKIP" };
static const char *const level_json[] = { "ok", "warning", "failure", "skipped" };

struct finding {
	enum level level;
	const char *check;
	char region[DT_LABEL_MAX];
	char msg[384];
	char fix[384];
};

struct iomem_entry {
	uint64_t start, end; /* inclusive */
	unsigned depth;      /* nesting: 0 for top level */
	char name[64];
};

struct doctor {
	const char *dtb, *iomem, *mem_path, *kconfig;
	bool dtb_given; /* --dtb, not the kernel's /sys/firmware/fdt */
	struct dt_config cfg;
	struct iomem_entry *iomem_entries;
	size_t n_iomem;
	struct smh_region_info *served; /* smhd's regions, NULL when it does not run */
	size_t n_served;
	bool iomem_usable;
	int mem_fds[2];         /* /dev/mem opened without and with O_SYNC; -1: not (yet) */
	int mem_errs[2];        /* errno of a failed open */
	int strict_devmem;      /* 1 y, 0 not set, -1 unknown */
	bool no_devmem;         /* the configuration says CONFIG_DEVMEM is not set */
	enum memtype_arch arch; /* the board's (--arch for files of another board) */
	struct finding *items;
	size_t n_items, cap_items;
	unsigned counts[4];
};

static void add(struct doctor *d, enum level level, const char *check, const char *region,
		const char *fix, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add(struct doctor *d, enum level level, const char *check, const char *region,
		const char *fix, const char *fmt, ...)
{
	struct finding *f;
	va_list ap;

	if (d->n_items == d->cap_items) {
		size_t cap = d->cap_items ? d->cap_items * 2 : 32;
		struct finding *items = realloc(d->items, cap * sizeof(*items));

		if (!items)
			return;
		d->items = items;
		d->cap_items = cap;
	}
	f = &d->items[d->n_items++];
	f->level = level;
	f->check = check;
	snprintf(f->region, sizeof(f->region), "%s", region ? region : "");
	snprintf(f->fix, sizeof(f->fix), "%s", fix ? fix : "");
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	d->counts[level]++;
}

/* ---------------------------------------------------------------- the device tree */

static void collect_diag(void *data, enum diag_level level, const char *msg)
{
	struct doctor *d = data;

	if (level == DIAG_ERROR)
		add(d, DOC_FAIL, "dt", NULL, "fix the node; `smhctl dt FILE` checks a blob offline",
		    "%s", msg);
	else
		add(d, DOC_WARN, "dt", NULL, "see dts/bindings/shared-multi-heap.yaml", "%s", msg);
}

/* Keeps the first error about the file itself (not a node) in @data, a char[384]. */
static void keep_file_error(void *data, enum diag_level level, const char *msg)
{
	char *why = data;

	if (level == DIAG_ERROR && !*why)
		snprintf(why, 384, "%s", msg);
}

/* The fix for a blob that could not be read (@err), as the user came to it. */
static const char *blob_fix(const struct doctor *d, int err)
{
	if (err == -ENOENT && !d->dtb_given)
		return "this kernel did not boot with a device tree (x86 and other ACPI machines "
		       "have none): give the board's blob with --dtb FILE";
	if (err == -EACCES && !d->dtb_given)
		return "run smhctl doctor as root (the kernel's blob is readable by root only), or "
		       "give a copy with --dtb FILE";
	if (err == -ENOENT || err == -EACCES)
		return "give --dtb a readable file";
	return "give the board's blob (dtc output) with --dtb; `smhctl dt FILE` checks one offline";
}

/* The file unreadable or not a blob is one failure; a bad node is the node's failures. */
static void check_dt(struct doctor *d)
{
	const struct diag diag = { .report = collect_diag, .data = d };
	char why[384] = "";
	const struct diag file_diag = { .report = keep_file_error, .data = why };
	unsigned failed = d->counts[DOC_FAIL];
	size_t size;
	void *blob;
	int err = dt_blob_read(d->dtb, &blob, &size, &file_diag);

	if (err < 0) {
		add(d, DOC_FAIL, "dt", NULL, blob_fix(d, err), "%s: no usable device tree: %s",
		    d->dtb, why);
		return;
	}
	err = dt_parse(blob, size, &d->cfg, &diag);
	free(blob);
	if (err < 0) {
		if (d->counts[DOC_FAIL] == failed)
			add(d, DOC_FAIL, "dt", NULL,
			    "fix the blob; `smhctl dt FILE` checks one offline",
			    "%s: no usable device tree", d->dtb);
		return;
	}
	if (d->cfg.n_regions == 0)
		add(d, DOC_FAIL, "dt", NULL,
		    "add shared-multi-heap children to /reserved-memory "
		    "(dts/bindings/shared-multi-heap.yaml)",
		    "%s has no shared-multi-heap region", d->dtb);
	else
		add(d, DOC_OK, "dt", NULL, NULL, "%s: %zu shared-multi-heap region%s", d->dtb,
		    d->cfg.n_regions, d->cfg.n_regions == 1 ? "" : "s");
}

/*
 * Whether @r is meant to be served cached through the kernel's linear map: a cacheable region
 * without no-map, on arm with a kernel without STRICT_DEVMEM (docs/board-bringup.md).
 */
static bool cached_by_linear_map(const struct doctor *d, const struct dt_region *r)
{
	return (d->arch == MEMTYPE_ARCH_ARM64 || d->arch == MEMTYPE_ARCH_ARM) &&
	       d->strict_devmem == 0 && !r->no_map && attr_info(r->attr)->map == ATTR_MAP_CACHED;
}

static void check_no_map(struct doctor *d, const struct dt_region *r)
{
	char fix[256];

	if (cached_by_linear_map(d, r)) {
		add(d, DOC_OK, "no-map", r->label, NULL,
		    "%s lacks no-map, as a cacheable region should on a kernel without "
		    "STRICT_DEVMEM: /dev/mem maps it cached",
		    r->path);
		return;
	}
	if (r->no_map) {
		add(d, DOC_OK, "no-map", r->label, NULL, "%s has no-map", r->path);
		return;
	}
	snprintf(fix, sizeof(fix), "add `no-map;` to %s", r->path);
	add(d, DOC_FAIL, "no-map", r->label, fix,
	    "%s lacks no-map: the kernel keeps the memory in its own (cached) linear map, a "
	    "kernel with STRICT_DEVMEM refuses to map it through /dev/mem, and any other kernel "
	    "would alias it with a second mapping",
	    r->path);
}

/* ---------------------------------------------------------------- /proc/iomem */

/* Reads "  START-END : NAME" lines; indentation (two spaces a level) gives the nesting. */
static int load_iomem(struct doctor *d)
{
	FILE *f = fopen(d->iomem, "r");
	char line[256];

	if (!f)
		return -errno;
	d->iomem_entries = calloc(IOMEM_MAX, sizeof(*d->iomem_entries));
	if (!d->iomem_entries) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f) && d->n_iomem < IOMEM_MAX) {
		struct iomem_entry *e = &d->iomem_entries[d->n_iomem];
		size_t indent = strspn(line, " ");
		int name_at = 0;

		if (sscanf(line + indent, "%" SCNx64 "-%" SCNx64 " : %n", &e->start, &e->end,
			   &name_at) < 2 ||
		    name_at == 0 || e->end < e->start)
			continue;
		e->depth = (unsigned)(indent / 2);
		snprintf(e->name, sizeof(e->name), "%s", line + indent + name_at);
		e->name[strcspn(e->name, "\n")] = '\0';
		d->n_iomem++;
	}
	fclose(f);
	return 0;
}

static bool overlaps(const struct iomem_entry *e, uint64_t first, uint64_t last)
{
	return e->start <= last && first <= e->end;
}

static bool kernel_use(const char *name)
{
	return strncmp(name, "Kernel ", 7) == 0 || strcmp(name, "Crash kernel") == 0;
}

/*
 * @r lies in System RAM. With no-map in the node given, the running kernel did not apply it
 * (booted from another blob, or no device-tree reserved memory at all, as on x86): the fix is
 * the boot, not the node, which the no-map check says is right.
 */
static void system_ram(struct doctor *d, const struct dt_region *r, const struct iomem_entry *e)
{
	uint64_t last = r->base + r->size - 1;
	char fix[300];

	if (r->no_map)
		snprintf(fix, sizeof(fix),
			 "boot the kernel with this device tree (%s has no-map: is %s the blob it "
			 "booted?); on x86, reserve the range with memmap=SIZE$ADDR on the kernel "
			 "command line",
			 r->path, d->dtb);
	else
		snprintf(fix, sizeof(fix),
			 "add `no-map;` to %s (on x86: reserve the range with memmap=SIZE$ADDR on "
			 "the kernel command line)",
			 r->path);
	add(d, DOC_FAIL, "iomem", r->label, fix,
	    "0x%" PRIx64 "-0x%" PRIx64 " lies in System RAM (0x%" PRIx64 "-0x%" PRIx64
	    "): the kernel uses this memory%s",
	    r->base, last, e->start, e->end,
	    r->no_map ? ", although the node has no-map: the running kernel did not apply it" : "");
}

/* Whether a "reserved" entry nested in top-level entry @top covers [@first, @last]. */
static bool reserved_inside(const struct doctor *d, size_t top, uint64_t first, uint64_t last)
{
	for (size_t i = top + 1; i < d->n_iomem && d->iomem_entries[i].depth > 0; i++) {
		const struct iomem_entry *e = &d->iomem_entries[i];

		if (strcasecmp(e->name, "reserved") == 0 && e->start <= first && last <= e->end)
			return true;
	}
	return false;
}

/* What overlaps @r at the top level, and the kernel's own parts inside System RAM. */
static void check_iomem_region(struct doctor *d, const struct dt_region *r)
{
	uint64_t last = r->base + r->size - 1;
	bool problem = false, reserved = false;

	for (size_t i = 0; i < d->n_iomem; i++) {
		const struct iomem_entry *e = &d->iomem_entries[i];

		if (!overlaps(e, r->base, last))
			continue;
		if (e->depth > 0 && kernel_use(e->name)) {
			add(d, DOC_FAIL, "kernel-use", r->label,
			    "move the region off the kernel's memory (reg of the node)",
			    "0x%" PRIx64 "-0x%" PRIx64 " overlaps \"%s\" (0x%" PRIx64 "-0x%" PRIx64
			    ") in /proc/iomem: memory the kernel itself uses",
			    r->base, last, e->name, e->start, e->end);
			problem = true;
		} else if (e->depth > 0) {
			continue;
		} else if (strcmp(e->name, "System RAM") == 0 && cached_by_linear_map(d, r) &&
			   reserved_inside(d, i, r->base, last)) {
			reserved = true; /* in the linear map, kept from the kernel's allocator */
		} else if (strcmp(e->name, "System RAM") == 0) {
			system_ram(d, r, e);
			problem = true;
		} else if (strcasecmp(e->name, "reserved") == 0) { /* x86 e820 says "Reserved" */
			reserved = true;
		} else {
			add(d, DOC_FAIL, "iomem", r->label,
			    "fix the node's reg: the range belongs to something else",
			    "0x%" PRIx64 "-0x%" PRIx64 " overlaps \"%s\" (0x%" PRIx64 "-0x%" PRIx64
			    ") in /proc/iomem",
			    r->base, last, e->name, e->start, e->end);
			problem = true;
		}
	}
	if (!problem)
		add(d, DOC_OK, "iomem", r->label, NULL,
		    "0x%" PRIx64 "-0x%" PRIx64 " is %s in /proc/iomem: the kernel keeps out of it",
		    r->base, last, reserved ? "reserved" : "not System RAM");
}

static void check_iomem(struct doctor *d)
{
	int err = load_iomem(d);
	bool hidden = d->n_iomem > 0;

	if (err < 0) {
		add(d, DOC_WARN, "iomem", NULL, "mount /proc, or give the file with --iomem",
		    "cannot read %s: %s: the regions' placement is not checked", d->iomem,
		    strerror(-err));
		return;
	}
	for (size_t i = 0; i < d->n_iomem; i++)
		hidden = hidden && d->iomem_entries[i].start == 0 && d->iomem_entries[i].end == 0;
	if (hidden || d->n_iomem == 0) {
		add(d, DOC_WARN, "iomem", NULL, "run smhctl doctor as root",
		    "%s shows no addresses%s: the regions' placement is not checked", d->iomem,
		    hidden ? " (they are hidden from users without CAP_SYS_ADMIN)" : "");
		return;
	}
	d->iomem_usable = true;
}

/* ---------------------------------------------------------------- kernel configuration */

/* Opens the kernel's configuration: --kconfig, /proc/config.gz, /boot/config-RELEASE. */
static FILE *open_kconfig(struct doctor *d, char *what, size_t size, bool *pipep)
{
	struct utsname u;
	FILE *f;

	*pipep = false;
	if (d->kconfig) {
		snprintf(what, size, "%s", d->kconfig);
		return fopen(d->kconfig, "r");
	}
	if (access("/proc/config.gz", R_OK) == 0 &&
	    (f = popen("gzip -dc /proc/config.gz 2>/dev/null", "r"))) {
		int c = fgetc(f);

		if (c != EOF) {
			ungetc(c, f);
			snprintf(what, size, "/proc/config.gz");
			*pipep = true;
			return f;
		}
		pclose(f);
	}
	if (uname(&u) < 0)
		return NULL;
	snprintf(what, size, "/boot/config-%s", u.release);
	return fopen(what, "r");
}

/* 1 for =y or =m, 0 for "is not set" or absent from a readable file. */
static int kconfig_value(const char *text, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\n%s=", name);
	p = strstr(text, key);
	return p && (p[strlen(key)] == 'y' || p[strlen(key)] == 'm');
}

static char *slurp(FILE *f)
{
	size_t len = 1, cap = 1 << 16;
	char *buf = malloc(cap + 1), *grown;
	size_t n;

	if (!buf)
		return NULL;
	buf[0] = '\n'; /* every option then follows a newline */
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			grown = realloc(buf, cap * 2 + 1);
			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	return buf;
}

static void check_kconfig(struct doctor *d)
{
	char what[300];
	bool is_pipe;
	FILE *f = open_kconfig(d, what, sizeof(what), &is_pipe);
	char *text;

	d->strict_devmem = -1;
	if (!f) {
		add(d, DOC_WARN, "kconfig", NULL,
		    "build the kernel with CONFIG_IKCONFIG_PROC=y, or install its config as "
		    "/boot/config-RELEASE (or give it with --kconfig)",
		    "the kernel's configuration is not readable (%s, /proc/config.gz): "
		    "STRICT_DEVMEM is not checked",
		    what);
		return;
	}
	text = slurp(f);
	if (is_pipe)
		pclose(f);
	else
		fclose(f);
	if (!text)
		return;
	d->strict_devmem = kconfig_value(text, "CONFIG_STRICT_DEVMEM");
	d->no_devmem = !kconfig_value(text, "CONFIG_DEVMEM");
	if (d->no_devmem)
		add(d, DOC_FAIL, "kconfig", NULL,
		    "build the kernel with CONFIG_DEVMEM=y (or serve memfd memory: smhd --backend "
		    "memfd, not the board's)",
		    "%s: CONFIG_DEVMEM is not set: the kernel has no /dev/mem (STRICT_DEVMEM %s)",
		    what, d->strict_devmem ? "=y" : "is not set");
	else if (d->strict_devmem)
		add(d, DOC_OK, "kconfig", NULL, NULL,
		    "%s: STRICT_DEVMEM=y: /dev/mem maps only memory the kernel does not use, so "
		    "every region needs no-map",
		    what);
	else
		add(d, DOC_OK, "kconfig", NULL, NULL,
		    "%s: STRICT_DEVMEM is not set: /dev/mem maps any physical memory", what);
	free(text);
}

/* ---------------------------------------------------------------- /dev/mem */

static void check_devmem_region(struct doctor *d, const struct dt_region *r, int fd)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t start = r->base & ~((uint64_t)page - 1), end = r->base + r->size;
	char fix[256] = "";
	void *map;

	end = (end + (uint64_t)page - 1) & ~((uint64_t)page - 1);
	if (end - start > SIZE_MAX || start > (uint64_t)INT64_MAX) {
		add(d, DOC_FAIL, "devmem", r->label, NULL, "the region does not fit a mapping");
		return;
	}
	map = mmap(NULL, (size_t)(end - start), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)start);
	if (map != MAP_FAILED) {
		munmap(map, (size_t)(end - start));
		add(d, DOC_OK, "devmem", r->label, NULL,
		    "a test mmap of 0x%" PRIx64 "-0x%" PRIx64 " from %s succeeded", r->base,
		    r->base + r->size - 1, d->mem_path);
		return;
	}
	if (errno == EPERM)
		snprintf(fix, sizeof(fix), "add `no-map;` to %s%s", r->path,
			 d->strict_devmem ? ", or use a kernel without STRICT_DEVMEM" : "");
	add(d, DOC_FAIL, "devmem", r->label, fix,
	    "mmap of 0x%" PRIx64 "-0x%" PRIx64 " from %s failed: %s%s", r->base,
	    r->base + r->size - 1, d->mem_path, strerror(errno),
	    errno == EPERM ? " (the kernel refuses memory it uses itself)" : "");
}

/* Says once why the memory device cannot be opened (@err): both modes fail for one cause. */
static void devmem_unusable(struct doctor *d, bool sync, int err)
{
	if (d->mem_errs[!sync] == err)
		return;
	if (err == ENOENT && d->no_devmem)
		add(d, DOC_SKIP, "devmem", NULL, NULL,
		    "%s does not exist (CONFIG_DEVMEM is not set, see kconfig): the test mappings "
		    "are not made",
		    d->mem_path);
	else
		add(d, DOC_FAIL, "devmem", NULL,
		    err == ENOENT ? "build the kernel with CONFIG_DEVMEM=y (or give the memory "
				    "device with --mem-path)"
				  : "run as root (needs CAP_SYS_RAWIO)",
		    "cannot open %s%s: %s", d->mem_path, sync ? " with O_SYNC" : "", strerror(err));
}

/* Opens the memory device as smhd does for @r (O_SYNC for non-cacheable), once per mode. */
static int devmem_fd(struct doctor *d, const struct dt_region *r)
{
	int sync = attr_info(r->attr)->map == ATTR_MAP_SYNC;

	if (d->mem_fds[sync] < 0 && d->mem_errs[sync] == 0) {
		d->mem_fds[sync] = open(d->mem_path, O_RDWR | O_CLOEXEC | (sync ? O_SYNC : 0));
		d->mem_errs[sync] = d->mem_fds[sync] < 0 ? errno : 0;
		if (d->mem_fds[sync] < 0)
			devmem_unusable(d, sync, d->mem_errs[sync]);
	}
	return d->mem_fds[sync];
}

/* ---------------------------------------------------------------- the attribute obtained */

static const struct smh_region_info *served_region(const struct doctor *d, const char *label)
{
	for (size_t i = 0; i < d->n_served; i++)
		if (strcmp(d->served[i].label, label) == 0)
			return &d->served[i];
	return NULL;
}

/*
 * What /dev/mem gives @r by the kernel's rule (core/memtype.c), when smhd cannot say: no-map is
 * what takes a range out of the kernel's linear map, so it stands for /proc/iomem here.
 */
static void predict(const struct doctor *d, const struct dt_region *r, struct memtype_result *out)
{
	char iomem[96];
	struct memtype_input in = {
		.arch = d->arch,
		.sync = attr_info(r->attr)->map == ATTR_MAP_SYNC,
		.phys = r->base,
		.size = r->size,
		.iomem = iomem,
	};

	snprintf(iomem, sizeof(iomem), "%" PRIx64 "-%" PRIx64 " : %s\n", r->base,
		 r->base + r->size - 1, r->no_map ? "reserved" : "System RAM");
	memtype_decide(&in, out);
	if (d->strict_devmem == 1 && !r->no_map && out->type != MEMTYPE_UNKNOWN &&
	    d->arch != MEMTYPE_ARCH_X86)
		snprintf(out->text, sizeof(out->text), "not mapped: STRICT_DEVMEM, no no-map");
}

static bool uncached(const char *mapping)
{
	return strstr(mapping, "Device") || strstr(mapping, "device") ||
	       strstr(mapping, "uncached");
}

/*
 * Without smhd nothing says which attribute the region gets: the platform's default is a
 * prediction. A prediction that is wrong for the request is worth a warning; one that fits is
 * not a check that passed.
 */
static void predict_attribute(struct doctor *d, const struct dt_region *r)
{
	struct memtype_result predicted;
	const char *mapping = predicted.text;
	int sync = attr_info(r->attr)->map == ATTR_MAP_SYNC;
	bool cached_asked = attr_info(r->attr)->map == ATTR_MAP_CACHED;

	predict(d, r, &predicted);
	if (cached_asked && uncached(mapping))
		add(d, DOC_WARN, "attribute", r->label,
		    "access it with smh_buffer_read/write/fill (aligned words, no memcpy); the "
		    "cache check says how to get it cached",
		    "asked cacheable, smhd is not running; /dev/mem on this platform gives %s: "
		    "accesses are uncached and must be aligned",
		    mapping);
	else if (d->mem_fds[sync] < 0)
		add(d, DOC_SKIP, "attribute", r->label, NULL,
		    "asked %s, smhd is not running and %s could not be opened: not checked",
		    attr_name(r->attr), d->mem_path);
	else
		add(d, DOC_SKIP, "attribute", r->label, NULL,
		    "asked %s, smhd is not running: not checked (%s on this platform would give "
		    "%s)",
		    attr_name(r->attr), d->mem_path, mapping);
}

static void check_attribute(struct doctor *d, const struct dt_region *r)
{
	const struct smh_region_info *s = d->served ? served_region(d, r->label) : NULL;
	bool cached_asked = attr_info(r->attr)->map == ATTR_MAP_CACHED;

	if (!d->served) {
		predict_attribute(d, r);
	} else if (!s) {
		add(d, DOC_FAIL, "attribute", r->label,
		    "restart smhd after changing the device tree",
		    "smhd does not serve this region: it runs with another device tree");
	} else if (strncmp(s->mapping, "not mapped", 10) == 0) {
		add(d, DOC_FAIL, "attribute", r->label, "see the devmem and no-map checks",
		    "asked %s, smhd could not map it (%s): it serves the other regions",
		    attr_name(r->attr), s->mapping);
	} else if (cached_asked && uncached(s->mapping)) {
		add(d, DOC_WARN, "attribute", r->label,
		    "access it with smh_buffer_read/write/fill (aligned words, no memcpy); the "
		    "cache check says how to get it cached",
		    "asked cacheable, smhd obtained: %s: accesses are uncached and must be aligned",
		    s->mapping);
	} else if (!cached_asked && !uncached(s->mapping)) {
		add(d, DOC_WARN, "attribute", r->label,
		    "use the devmem backend on the board for real uncached memory",
		    "asked %s, smhd obtained: %s", attr_name(r->attr), s->mapping);
	} else {
		add(d, DOC_OK, "attribute", r->label, NULL, "asked %s, smhd obtained: %s",
		    attr_name(r->attr), s->mapping);
	}
}

/* ---------------------------------------------------------------- cached or not (guidance) */

/* arm: what the kernel configuration lets @r be, and what to write in the device tree. */
static void cache_arm(struct doctor *d, const struct dt_region *r, bool cached_asked)
{
	char fix[384];

	if (cached_asked && d->strict_devmem == 1) {
		snprintf(fix, sizeof(fix),
			 "keep `no-map` on %s (STRICT_DEVMEM needs it) and use smh_buffer_read/"
			 "write/fill; for cached memory, boot a kernel without STRICT_DEVMEM and "
			 "drop "
			 "`no-map`",
			 r->path);
		add(d, DOC_WARN, "cache", r->label, fix,
		    "cacheable, but this kernel has STRICT_DEVMEM: /dev/mem maps only no-map "
		    "memory, which it maps as Device memory: served uncached");
	} else if (cached_asked && d->strict_devmem < 0) {
		add(d, DOC_WARN, "cache", r->label, "make the kernel configuration readable",
		    "cacheable: served cached only without `no-map` on a kernel without "
		    "STRICT_DEVMEM, and the configuration is not readable");
	} else if (cached_asked && r->no_map) {
		snprintf(
			fix, sizeof(fix),
			"drop `no-map` from %s: this kernel (no STRICT_DEVMEM) then maps it cached",
			r->path);
		add(d, DOC_WARN, "cache", r->label, fix,
		    "cacheable, but `no-map`: outside the linear map, /dev/mem maps it as Device "
		    "memory: served uncached");
	} else if (cached_asked) {
		add(d, DOC_OK, "cache", r->label, NULL,
		    "cacheable, in the linear map, kernel without STRICT_DEVMEM: served cached%s",
		    d->arch == MEMTYPE_ARCH_ARM ? " (32-bit ARM: smh_sync_* cannot maintain it)"
						: "; use smh_sync_for_device/cpu around DMA");
	} else if (!r->no_map) {
		snprintf(fix, sizeof(fix), "add `no-map` to %s", r->path);
		add(d, DOC_WARN, "cache", r->label, fix,
		    "non-cacheable without `no-map`: the kernel's own cached mapping of it "
		    "aliases the uncached one");
	} else {
		add(d, DOC_OK, "cache", r->label, NULL,
		    "non-cacheable and `no-map`: served as Device memory, uncached");
	}
}

/* Per region: what the board gives it, and how to get what the device tree asks. */
static void check_cache(struct doctor *d, const struct dt_region *r)
{
	bool cached_asked = attr_info(r->attr)->map == ATTR_MAP_CACHED;
	struct memtype_result p;

	if (d->arch == MEMTYPE_ARCH_ARM64 || d->arch == MEMTYPE_ARCH_ARM) {
		cache_arm(d, r, cached_asked);
		return;
	}
	predict(d, r, &p);
	if (p.type == MEMTYPE_UNKNOWN)
		add(d, DOC_WARN, "cache", r->label, NULL,
		    "no rule is known for this architecture: whether it is served cached is not "
		    "determined");
	else
		add(d, DOC_OK, "cache", r->label, NULL, "%s, by the kernel's rule: %s",
		    attr_name(r->attr), p.text);
}

static void check_daemon(struct doctor *d, const struct ctl *ctl)
{
	const char *path = ctl_socket_path(ctl);
	struct smh_client *client;
	int err = smh_connect(path, &client);

	if (err < 0) {
		add(d, DOC_WARN, "smhd", NULL,
		    "start smhd to check the attribute it really obtains (and its socket with "
		    "--socket)",
		    "smhd is not running at %s (%s): the attribute obtained is not checked", path,
		    strerror(-err));
		return;
	}
	err = ctl_get_regions(client, &d->served, &d->n_served);
	if (err < 0)
		add(d, DOC_WARN, "smhd", NULL, NULL, "smhd at %s did not give its regions: %s",
		    path, smh_strerror(err));
	else
		add(d, DOC_OK, "smhd", NULL, NULL, "smhd runs at %s with %zu region%s", path,
		    d->n_served, d->n_served == 1 ? "" : "s");
	smh_disconnect(client);
}

/* ---------------------------------------------------------------- output and command */

static void print_human(const struct doctor *d)
{
	for (size_t i = 0; i < d->n_items; i++) {
		const struct finding *f = &d->items[i];

		printf("%-4s  %-10s  %s%s%s\n", level_names[f->level], f->check, f->region,
		       *f->region ? ": " : "", f->msg);
		if (*f->fix && f->level != DOC_OK && f->level != DOC_SKIP)
			printf("%18s%s\n", "fix: ", f->fix);
	}
	printf("doctor: %u OK, %u not checked, %u warning%s, %u failure%s\n", d->counts[DOC_OK],
	       d->counts[DOC_SKIP], d->counts[DOC_WARN], d->counts[DOC_WARN] == 1 ? "" : "s",
	       d->counts[DOC_FAIL], d->counts[DOC_FAIL] == 1 ? "" : "s");
}

static void print_json(const struct doctor *d)
{
	struct json j;

	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "checks");
	json_array_begin(&j);
	for (size_t i = 0; i < d->n_items; i++) {
		const struct finding *f = &d->items[i];

		json_object_begin(&j);
		json_key(&j, "status");
		json_string(&j, level_json[f->level]);
		json_key(&j, "check");
		json_string(&j, f->check);
		json_key(&j, "region");
		json_string(&j, f->region);
		json_key(&j, "message");
		json_string(&j, f->msg);
		json_key(&j, "fix");
		json_string(&j, f->level == DOC_OK || f->level == DOC_SKIP ? "" : f->fix);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_key(&j, "ok");
	json_uint(&j, d->counts[DOC_OK]);
	json_key(&j, "skipped");
	json_uint(&j, d->counts[DOC_SKIP]);
	json_key(&j, "warnings");
	json_uint(&j, d->counts[DOC_WARN]);
	json_key(&j, "failures");
	json_uint(&j, d->counts[DOC_FAIL]);
	json_object_end(&j);
	json_finish(&j);
}

static int parse_doctor(struct ctl *ctl, struct doctor *d, int argc, char **argv)
{
	enum { OPT_DTB = 256, OPT_IOMEM, OPT_MEM_PATH, OPT_KCONFIG, OPT_ARCH };
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "dtb", required_argument, NULL, OPT_DTB },
		{ "iomem", required_argument, NULL, OPT_IOMEM },
		{ "mem-path", required_argument, NULL, OPT_MEM_PATH },
		{ "kconfig", required_argument, NULL, OPT_KCONFIG },
		{ "arch", required_argument, NULL, OPT_ARCH },
		{ 0 },
	};
	int c, status;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == OPT_DTB) {
			d->dtb = optarg;
			d->dtb_given = true;
		} else if (c == OPT_IOMEM)
			d->iomem = optarg;
		else if (c == OPT_MEM_PATH)
			d->mem_path = optarg;
		else if (c == OPT_KCONFIG)
			d->kconfig = optarg;
		else if (c == OPT_ARCH) {
			if (memtype_arch_from_name(optarg, &d->arch) < 0)
				return ctl_usage_error(ctl,
						       "--arch takes arm64, arm, x86 or other");
		} else if ((status = ctl_option(ctl, c)) >= 0)
			return status;
	}
	return ctl_no_args(ctl, argc, argv);
}

int cmd_doctor(struct ctl *ctl, int argc, char **argv)
{
	struct doctor d = {
		.dtb = "/sys/firmware/fdt",
		.iomem = "/proc/iomem",
		.mem_path = "/dev/mem",
		.mem_fds = { -1, -1 },
		.arch = memtype_host_arch(),
	};
	int status = parse_doctor(ctl, &d, argc, argv);

	if (status >= 0)
		return status;
	check_dt(&d);
	check_kconfig(&d);
	check_daemon(&d, ctl);
	check_iomem(&d);
	for (size_t i = 0; i < d.cfg.n_regions; i++) {
		const struct dt_region *r = &d.cfg.regions[i];
		int fd;

		if (d.iomem_usable)
			check_iomem_region(&d, r);
		check_no_map(&d, r);
		if ((fd = devmem_fd(&d, r)) >= 0)
			check_devmem_region(&d, r, fd);
		check_attribute(&d, r);
		check_cache(&d, r);
	}
	if (ctl->json)
		print_json(&d);
	else
		print_human(&d);
	status = d.counts[DOC_FAIL] ? CTL_EXIT_FAILURE : 0;
	for (int i = 0; i < 2; i++)
		if (d.mem_fds[i] >= 0)
			close(d.mem_fds[i]);
	free(d.items);
	free(d.iomem_entries);
	free(d.served);
	dt_config_finish(&d.cfg);
	return status;
}
