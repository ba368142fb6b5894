/* SPDX-License-Identifier: MIT */
/*
 * Memory backends (see backend.h).
 *
 * Notes on /dev/mem, measured on the kernels smh targets:
 * - With CONFIG_STRICT_DEVMEM the kernel maps only memory it does not use itself: a reserved
 *   region must be marked `no-map` in the device tree, else mmap() fails with EPERM.
 * - On arm64, /dev/mem maps `no-map` memory as Device memory whatever O_SYNC says: nothing is
 *   cached, and unaligned accesses (which libc's memset/memcpy make) fault on real hardware.
 *   Memory in the kernel's linear map it maps cached, or write-combine with O_SYNC.
 *   daemon/mapping.c works out which (the kernel's rule); the daemon touches a region with
 *   memset/memcpy only where that is Normal memory (cached or write-combine), else with
 *   aligned 64-bit loads and stores, and reports the type it really obtained.
 * - On x86, O_SYNC gives an uncached mapping; without it the kernel picks the cache type, and a
 *   second mapping of the same range with another type is refused or downgraded by PAT: each
 *   region is mapped once here, and clients get the fd of that same open mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/attr.h"
#include "daemon/backend.h"
#include "daemon/mapping.h"

struct backend {
	enum backend_kind kind;
	struct backend_region *regions;
	size_t n_regions;
	int devmem_fds[2];          /* [0]: opened without O_SYNC, [1]: with; -1 when not opened */
	bool mem_is_file;           /* --mem-path is a regular file (tests): page cache, cached */
	struct mapping_facts facts; /* devmem: what the kernel's rule reads */
};

static uint64_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (uint64_t)p : 4096;
}

/* Whether [@base, @base + @size) rounded out to pages fits in a size_t mapping. */
static int page_span(uint64_t base, uint64_t size, uint64_t *startp, size_t *lenp)
{
	uint64_t page = page_size();
	uint64_t start = base & ~(page - 1);
	uint64_t end = base + size;

	if (end > UINT64_MAX - page)
		return -EOVERFLOW;
	end = (end + page - 1) & ~(page - 1);
	if (end - start > SIZE_MAX)
		return -EOVERFLOW;
	*startp = start;
	*lenp = (size_t)(end - start);
	return 0;
}

/* The previous daemon's memfd @fd, dup'ed, if it is one of @len bytes with the seals; or -1. */
static int adopt_memfd(int fd, size_t len, const struct dt_region *dr, const struct diag *diag)
{
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW;
	struct stat st;
	int s;

	if (fd < 0)
		return -1;
	s = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || s < 0 || (s & seals) != seals || (uint64_t)st.st_size != len) {
		diag_report(diag, DIAG_WARNING,
			    "Region %s: the previous daemon's memfd is not a sealed one of %zu "
			    "bytes; starting with a new one",
			    dr->label, len);
		return -1;
	}
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int map_memfd(struct backend_region *r, const struct dt_region *dr, int old_fd,
		     const struct diag *diag)
{
	uint64_t start;
	size_t len;
	int ret = page_span(dr->base, dr->size, &start, &len);

	if (ret < 0)
		goto err;
	r->fd = adopt_memfd(old_fd, len, dr, diag);
	if (r->fd >= 0) {
		r->kept = true;
		goto map;
	}
	r->fd = memfd_create(dr->label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	/*
	 * Clients get this fd read-write: sealed, none of them can shrink it under the daemon
	 * (whose next access past the end would die of SIGBUS) or grow it.
	 */
	if (r->fd < 0 || ftruncate(r->fd, (off_t)len) < 0 ||
	    fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto err;
	}
map:
	r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		ret = -errno;
		r->map = NULL;
		goto err;
	}
	r->map_len = len;
	r->map_phys = start;
	r->fd_phys_base = start;
	r->device_memory = false;
	r->type = MEMTYPE_CACHED;
	snprintf(r->mapping, sizeof(r->mapping),
		 "cached write-back (memfd, not the board's memory)");
	return 0;
err:
	diag_report(diag, DIAG_ERROR, "Could not create the memfd of region %s: %s", dr->label,
		    strerror(-ret));
	return ret;
}

/* Opens the memory device once per open mode that some region needs. */
static int open_devmem(struct backend *b, const struct dt_config *cfg, const char *path,
		       const struct diag *diag)
{
	for (size_t i = 0; i < cfg->n_regions; i++) {
		enum attr_map_policy policy = attr_info(cfg->regions[i].attr)->map;
		int *fd = &b->devmem_fds[policy == ATTR_MAP_SYNC];

		if (*fd >= 0)
			continue;
		*fd = open(path, O_RDWR | O_CLOEXEC | (policy == ATTR_MAP_SYNC ? O_SYNC : 0));
		if (*fd < 0) {
			int ret = -errno;

			diag_report(diag, DIAG_ERROR, "Could not open %s%s: %s%s", path,
				    policy == ATTR_MAP_SYNC ? " with O_SYNC" : "", strerror(errno),
				    errno == ENOENT
					    ? " (no memory device here: to try smhd without a "
					      "board, use --backend memfd)"
				    : errno == EACCES || errno == EPERM
					    ? " (the devmem backend needs root, or CAP_SYS_RAWIO)"
					    : "");
			return ret;
		}
	}
	return 0;
}

static void report_map_error(const struct dt_region *dr, const char *path, int err,
			     const struct backend_options *opts, const struct diag *diag)
{
	enum diag_level level = opts->strict ? DIAG_ERROR : DIAG_WARNING;

	if (err == EPERM && !dr->no_map)
		diag_report(diag, level,
			    "Region %s (%s): the kernel refused to map 0x%llx-0x%llx from %s "
			    "(EPERM): the node lacks `no-map`, and a kernel with "
			    "CONFIG_STRICT_DEVMEM maps only memory it does not use itself; add "
			    "`no-map` to the node, or use a kernel without STRICT_DEVMEM",
			    dr->label, dr->path, (unsigned long long)dr->base,
			    (unsigned long long)(dr->base + dr->size - 1), path);
	else
		diag_report(diag, level, "Region %s (%s): could not map 0x%llx-0x%llx from %s: %s",
			    dr->label, dr->path, (unsigned long long)dr->base,
			    (unsigned long long)(dr->base + dr->size - 1), path, strerror(err));
}

/* The memory type the kernel gave region @r (daemon/mapping.c), and how the daemon touches it. */
static void describe(struct backend_region *r, struct mapping_facts *facts,
		     const struct dt_region *dr, bool sync, bool is_file, const struct diag *diag)
{
	struct memtype_result res;

	mapping_devmem(facts, dr, r->map_phys, r->map_len, sync, is_file, &res, diag);
	r->type = res.type;
	r->device_memory = res.type != MEMTYPE_CACHED && res.type != MEMTYPE_WRITE_COMBINE;
	snprintf(r->mapping, sizeof(r->mapping), "%s", res.text);
}

/* /dev/mem offsets are physical addresses, above 4 GiB on 32-bit ARM with LPAE (meson.build). */
_Static_assert(sizeof(off_t) == 8, "smhd needs a 64-bit off_t: -D_FILE_OFFSET_BITS=64");

static int map_devmem(struct backend *b, struct backend_region *r, const struct dt_region *dr,
		      const struct backend_options *opts, const struct diag *diag)
{
	enum attr_map_policy policy = attr_info(dr->attr)->map;
	int fd = b->devmem_fds[policy == ATTR_MAP_SYNC];
	uint64_t start;
	size_t len;
	int ret = page_span(dr->base, dr->size, &start, &len);

	if (ret < 0 || start > (uint64_t)INT64_MAX) {
		report_map_error(dr, opts->mem_path, EOVERFLOW, opts, diag);
		return -EOVERFLOW;
	}
	r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	if (r->map == MAP_FAILED) {
		ret = -errno;
		r->map = NULL;
		report_map_error(dr, opts->mem_path, -ret, opts, diag);
		return ret;
	}
	r->fd = fd;
	r->map_len = len;
	r->map_phys = start;
	r->fd_phys_base = 0;
	describe(r, &b->facts, dr, policy == ATTR_MAP_SYNC, b->mem_is_file, diag);
	return 0;
}

int backend_create(const struct backend_options *opts, const struct dt_config *cfg,
		   const struct diag *diag, struct backend **backendp)
{
	struct backend *b = calloc(1, sizeof(*b));
	size_t n_usable = 0;
	int ret = 0;

	if (!b)
		return -ENOMEM;
	b->kind = opts->kind;
	b->devmem_fds[0] = b->devmem_fds[1] = -1;
	b->regions = calloc(cfg->n_regions ? cfg->n_regions : 1, sizeof(*b->regions));
	if (!b->regions) {
		ret = -ENOMEM;
		goto err_backend;
	}
	b->n_regions = cfg->n_regions;
	if (opts->kind == BACKEND_DEVMEM) {
		struct stat st;

		b->mem_is_file = stat(opts->mem_path, &st) == 0 && S_ISREG(st.st_mode);
		if (!b->mem_is_file)
			mapping_facts_init(&b->facts);
		ret = open_devmem(b, cfg, opts->mem_path, diag);
		if (ret < 0)
			goto err_backend;
	}
	for (size_t i = 0; i < cfg->n_regions; i++) {
		struct backend_region *r = &b->regions[i];
		const struct dt_region *dr = &cfg->regions[i];
		int rr;

		r->fd = -1;
		if (opts->kind == BACKEND_MEMFD)
			rr = map_memfd(r, dr, opts->memfds ? opts->memfds[i] : -1, diag);
		else
			rr = map_devmem(b, r, dr, opts, diag);
		if (rr == 0) {
			r->usable = true;
			n_usable++;
			if (opts->kind == BACKEND_DEVMEM && opts->keep_contents)
				r->kept = true;
			else if (opts->kind == BACKEND_DEVMEM)
				r->scrub_first = true;
		} else if (opts->kind == BACKEND_MEMFD || opts->strict || rr == -ENOMEM) {
			ret = ret ? ret : rr;
		} else {
			snprintf(r->mapping, sizeof(r->mapping), "not mapped: %s", strerror(-rr));
		}
	}
	if (ret == 0 && n_usable == 0 && cfg->n_regions > 0) {
		diag_report(diag, DIAG_ERROR, "No region could be mapped: nothing to serve");
		ret = -ENODEV;
	}
	if (ret < 0)
		goto err_backend;
	*backendp = b;
	return 0;

err_backend:
	backend_destroy(b);
	return ret;
}

void backend_destroy(struct backend *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_regions; i++) {
		struct backend_region *r = &b->regions[i];

		if (r->map)
			munmap(r->map, r->map_len);
		if (b->kind == BACKEND_MEMFD && r->fd >= 0)
			close(r->fd);
	}
	for (int i = 0; i < 2; i++)
		if (b->devmem_fds[i] >= 0)
			close(b->devmem_fds[i]);
	mapping_facts_finish(&b->facts);
	free(b->regions);
	free(b);
}

const char *backend_name(const struct backend *b)
{
	return b->kind == BACKEND_MEMFD ? "memfd" : "devmem";
}

const struct backend_region *backend_region(const struct backend *b, size_t index)
{
	return index < b->n_regions ? &b->regions[index] : NULL;
}

/*
 * Word loops for Device memory: every access is an aligned 64-bit one, and `volatile` keeps the
 * compiler from merging them into a memset/memcpy call or into wider, possibly unaligned
 * vector accesses.
 */
static void zero_words(volatile uint64_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = 0;
}

static void copy_words(volatile uint64_t *d, const volatile uint64_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
}

/* Zeroes whole region ranges too: the edges that are not 8-aligned take byte stores. */
static void zero_range(struct backend_region *r, uint64_t addr, uint64_t len)
{
	volatile unsigned char *p = r->map + (addr - r->map_phys);

	if (!r->device_memory) {
		memset((void *)p, 0, len);
		return;
	}
	while (len > 0 && ((uintptr_t)p & 7)) {
		*p++ = 0;
		len--;
	}
	zero_words((volatile uint64_t *)(void *)p, len / 8);
	p += len & ~(uint64_t)7;
	for (len &= 7; len > 0; len--)
		*p++ = 0;
}

void backend_zero(struct backend *b, size_t index, uint64_t addr, uint64_t len)
{
	zero_range(&b->regions[index], addr, len);
}

/*
 * Freed memfd memory is punched out (fallocate(PUNCH_HOLE): the pages go back to the kernel and
 * read back as zeros) only when the block is large: punching zaps the pages from every client's
 * page tables, so the next owner faults fresh pages in, and the fallocate contends with the
 * clients' faults (measured: a 4 KiB alloc+map+write went from 33 to 75 us, a 1 MiB
 * alloc+write+free cost 30 times more). Smaller blocks are zeroed in place, but only on the
 * pages that hold data: a page never written (or punched) is a hole and reads as zero, and a
 * store would make it resident for nothing. lseek(SEEK_DATA/SEEK_HOLE) tells holes from data,
 * counting swapped-out pages as data (mincore() would call them absent: a leak).
 */
#define PUNCH_MIN          (UINT64_C(2) << 20)
#define PUNCH_REGION_SHARE 16

/*
 * Blocks of a page up to this, all in memory, are zeroed on the loop (backend_zero_now()): a
 * memset of a few KiB costs about what queueing them does, and they are back in the pool for
 * the next allocation, still mapped by the clients, instead of waiting for a scrubber that a
 * loaded machine may not run for milliseconds (its nice 10). Smaller blocks are queued: a
 * dying client's million 64-byte buffers would cost a mincore() each on the loop.
 */
#define ZERO_NOW_MAX (UINT64_C(16) << 10)

bool backend_punches(const struct backend *b, size_t index, uint64_t size)
{
	const struct backend_region *r = &b->regions[index];
	uint64_t min = r->map_len / PUNCH_REGION_SHARE;

	if (r->device_memory || (b->kind != BACKEND_MEMFD && !b->mem_is_file))
		return false;
	return size >= (min < PUNCH_MIN ? min : PUNCH_MIN);
}

static void seen_set(struct backend_seen *seen, size_t index, uint64_t start, uint64_t end,
		     bool hole)
{
	*seen = (struct backend_seen){
		.known = true, .region = index, .start = start, .end = end, .hole = hole
	};
}

/* Fills @seen with what the fd says of the page at @pos, and how far it goes past @end. */
static int look(const struct backend_region *r, size_t index, uint64_t pos, uint64_t end,
		struct backend_seen *seen)
{
	uint64_t page = page_size();
	uint64_t pg = pos & ~(page - 1);
	off_t off = (off_t)(pg - r->fd_phys_base);
	off_t data = lseek(r->fd, off, SEEK_DATA), hole;

	if (data < 0 && errno != ENXIO)
		return -errno;
	if (data < 0 || (uint64_t)data + r->fd_phys_base >= r->map_phys + r->map_len) {
		seen_set(seen, index, pg, r->map_phys + r->map_len, true);
		return 0;
	}
	if ((uint64_t)data > (uint64_t)off) {
		seen_set(seen, index, pg, (uint64_t)data + r->fd_phys_base, true);
		return 0;
	}
	if (end <= pg + page) { /* spares a system call for a block within one page */
		seen_set(seen, index, pg, pg + page, false);
		return 0;
	}
	hole = lseek(r->fd, off, SEEK_HOLE);
	if (hole < 0)
		return -errno;
	seen_set(seen, index, pg, (uint64_t)hole + r->fd_phys_base, false);
	return 0;
}

/* Zeroes the pages of [@addr, @addr + @len) that are not holes. */
static void zero_data(struct backend_region *r, size_t index, uint64_t addr, uint64_t len,
		      struct backend_seen *seen)
{
	uint64_t end = addr + len;

	for (uint64_t pos = addr, stop; pos < end; pos = stop) {
		if ((!seen->known || seen->region != index || pos < seen->start ||
		     pos >= seen->end) &&
		    look(r, index, pos, end, seen) < 0) {
			seen->known = false;
			zero_range(r, pos, end - pos);
			return;
		}
		stop = seen->end < end ? seen->end : end;
		if (!seen->hole)
			zero_range(r, pos, stop - pos);
	}
}

bool backend_zero_now(struct backend *b, size_t index, uint64_t addr, uint64_t len)
{
	struct backend_region *r = &b->regions[index];
	uint64_t page = page_size();
	uint64_t first = addr & ~(page - 1);
	size_t n = (size_t)((addr + len + page - 1 - first) / page);
	unsigned char vec[ZERO_NOW_MAX / 4096 + 2];

	if (r->device_memory || b->kind != BACKEND_MEMFD || len < page || len > ZERO_NOW_MAX ||
	    n > sizeof(vec) || backend_punches(b, index, len) ||
	    mincore(r->map + (first - r->map_phys), n * page, vec) < 0)
		return false;
	/* Not in memory is a hole, or swapped out: the scrubber tells which. */
	for (size_t i = 0; i < n; i++)
		if (!(vec[i] & 1))
			return false;
	zero_range(r, addr, len);
	return true;
}

void backend_scrub(struct backend *b, size_t index, uint64_t addr, uint64_t len, bool punch,
		   struct backend_seen *seen)
{
	struct backend_region *r = &b->regions[index];
	uint64_t page = page_size();
	uint64_t first = (addr + page - 1) & ~(page - 1);
	uint64_t last = (addr + len) & ~(page - 1);
	struct backend_seen mine = { 0 };

	if (r->device_memory || (b->kind != BACKEND_MEMFD && !b->mem_is_file)) {
		zero_range(r, addr, len);
		return;
	}
	seen = seen ? seen : &mine;
	if (!punch || first >= last ||
	    fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(first - r->fd_phys_base), (off_t)(last - first)) < 0) {
		zero_data(r, index, addr, len, seen);
		return;
	}
	zero_data(r, index, addr, first - addr, seen);
	zero_data(r, index, last, addr + len - last, seen);
}

void backend_copy(struct backend *b, size_t dst, uint64_t dst_addr, size_t src, uint64_t src_addr,
		  uint64_t len)
{
	struct backend_region *d = &b->regions[dst], *s = &b->regions[src];
	unsigned char *dp = d->map + (dst_addr - d->map_phys);
	const unsigned char *sp = s->map + (src_addr - s->map_phys);

	if (!d->device_memory && !s->device_memory)
		memcpy(dp, sp, len);
	else
		copy_words((volatile uint64_t *)(void *)dp,
			   (const volatile uint64_t *)(const void *)sp, len / 8);
}

static int hook_copy(void *data, const struct pool_region *dst, uint64_t dst_addr,
		     const struct pool_region *src, uint64_t src_addr, uint64_t len)
{
	struct backend *b = data;

	backend_copy(b, dst->index, dst_addr, src->index, src_addr, len);
	return 0;
}

struct pool_hooks backend_pool_hooks(struct backend *backend)
{
	return (struct pool_hooks){ .copy = hook_copy, .data = backend };
}
