/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator's capacity and memory, measured in one run:
 *  - frames per region: equal requests (video frames and plain sizes) into a 64 MiB region
 *    with 64-byte granules until one is refused, against a plain first-fit allocator over the
 *    same region in this program (a sorted array of free extents, the lowest that holds the
 *    aligned request), and against what one power-of-two block per request would hold;
 *  - memory per live allocation: N allocations of 64 B at granule 64 (N = 100k and 1M), the
 *    allocator's own accounting (buddy_metadata_bytes()) and the process's RSS delta, with
 *    every allocation live, with every other one freed (a free run between each two), and
 *    after everything is freed (what was given back).
 * Run it from a release build: RSS under a sanitizer measures the sanitizer.
 *
 * usage: bench-buddy-capacity [--max N]   (N: the largest count of the memory rows)
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buddy.h"

#define REGION_BASE 0x40000000ull
#define REGION_SIZE (64ull << 20)
#define GRANULE     64
#define FF_MAX      64

/* ---------------------------------------------------------------- the first-fit baseline */

struct ff_extent {
	uint64_t addr, size;
};

struct first_fit {
	struct ff_extent free[FF_MAX]; /* sorted by address */
	unsigned n;
};

/* The lowest free extent that holds @size from an @align-aligned address. */
static int ff_alloc(struct first_fit *f, uint64_t size, uint64_t align, uint64_t *addrp)
{
	for (unsigned i = 0; i < f->n; i++) {
		struct ff_extent *e = &f->free[i];
		uint64_t a = align > 1 ? (e->addr + align - 1) / align * align : e->addr;
		uint64_t end = e->addr + e->size;

		if (a + size > end)
			continue;
		if (a > e->addr && f->n == FF_MAX)
			return -1;
		if (a > e->addr) { /* the aligned-off head stays free */
			memmove(&f->free[i + 1], &f->free[i], (f->n - i) * sizeof(*e));
			f->n++;
			f->free[i].size = a - e->addr;
			e = &f->free[++i];
		}
		e->addr = a + size;
		e->size = end - e->addr;
		if (e->size == 0) {
			memmove(e, e + 1, (f->n - i - 1) * sizeof(*e));
			f->n--;
		}
		*addrp = a;
		return 0;
	}
	return -1;
}

struct workload {
	const char *name;
	uint64_t size, align;
};

static unsigned ceil_log2(uint64_t v)
{
	unsigned k = 0;

	while ((UINT64_C(1) << k) < v)
		k++;
	return k;
}

/* Requests of @w until refused: buddy, first fit, and one power-of-two block each. */
static int frames_row(const struct workload *w)
{
	struct first_fit ff = { .free = { { REGION_BASE, REGION_SIZE } }, .n = 1 };
	uint64_t usable = (w->size + GRANULE - 1) / GRANULE * GRANULE, addr, n_buddy = 0, n_ff = 0;
	uint64_t block = UINT64_C(1) << ceil_log2(usable > w->align ? usable : w->align);
	struct buddy *b;

	if (buddy_create(REGION_BASE, REGION_SIZE, GRANULE, &b) < 0)
		return -1;
	while (buddy_alloc(b, w->size, w->align, &addr, NULL) == 0)
		n_buddy++;
	buddy_destroy(b);
	while (ff_alloc(&ff, usable, w->align, &addr) == 0)
		n_ff++;
	printf("%-34s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7.3f %6.1f%%\n", w->name, n_buddy,
	       n_ff, (uint64_t)(REGION_SIZE / block), (double)n_buddy / (double)n_ff,
	       100.0 * (double)(n_buddy * usable) / (double)REGION_SIZE);
	return 0;
}

/* ---------------------------------------------------------------- memory */

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

/* N allocations of 64 B: bytes per live allocation by the accounting and by RSS. */
static int memory_row(size_t n)
{
	uint64_t *addr = malloc(n * sizeof(*addr));
	size_t meta0, meta_full, meta_half, meta_end;
	long rss0, rss_full, rss_half, rss_end;
	struct buddy *b;

	if (!addr)
		return -1;
	memset(addr, 0xff, n * sizeof(*addr)); /* touched (not calloc'd) before the first reading */
	if (buddy_create(REGION_BASE, 2 * n * GRANULE, GRANULE, &b) < 0) {
		free(addr);
		return -1;
	}
	meta0 = buddy_metadata_bytes(b);
	rss0 = rss_bytes();
	for (size_t i = 0; i < n; i++) {
		if (buddy_alloc(b, 64, 0, &addr[i], NULL) < 0)
			return -1;
	}
	meta_full = buddy_metadata_bytes(b);
	rss_full = rss_bytes();
	for (size_t i = 0; i < n; i += 2)
		buddy_free(b, addr[i], 64);
	meta_half = buddy_metadata_bytes(b);
	rss_half = rss_bytes();
	for (size_t i = 1; i < n; i += 2)
		buddy_free(b, addr[i], 64);
	meta_end = buddy_metadata_bytes(b);
	rss_end = rss_bytes();
	printf("%-10zu %14.1f %12.1f %14.1f %12.1f %12zd %12ld\n", n,
	       (double)(meta_full - meta0) / (double)n, (double)(rss_full - rss0) / (double)n,
	       (double)(meta_half - meta0) / (double)(n / 2),
	       (double)(rss_half - rss0) / (double)(n / 2), (ssize_t)(meta_end - meta0),
	       rss_end - rss0);
	buddy_destroy(b);
	free(addr);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "max", required_argument, NULL, 'n' },
		{ 0 },
	};
	static const struct workload loads[] = {
		{ "NV12 1080p (3,110,400 B, 4 KiB)", 3110400, 4096 },
		{ "NV12 720p (1,382,400 B, 4 KiB)", 1382400, 4096 },
		{ "NV12 2160p (12,441,600 B, 4 KiB)", 12441600, 4096 },
		{ "YUYV 640x480 (614,400 B, 4 KiB)", 614400, 4096 },
		{ "64 KiB + 64 B", 65536 + 64, 0 },
		{ "100,000 B", 100000, 0 },
		{ "1 MiB", 1 << 20, 0 },
		{ "1 MiB + 4 KiB", (1 << 20) + 4096, 0 },
	};
	size_t max = 1000000;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'n')
			return 2;
		max = strtoull(optarg, NULL, 0);
	}
	if (max < 2)
		return 2;
	printf("Equal requests into 64 MiB, granule 64 B, until refused\n");
	printf("%-34s %8s %8s %8s %7s %7s\n", "request", "buddy", "1st fit", "pow2 blk", "ratio",
	       "filled");
	for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
		if (frames_row(&loads[i]) < 0)
			return 1;
	}
	printf("\nMetadata per live allocation of 64 B at granule 64 (bytes; region 2N "
	       "granules)\n");
	printf("%-10s %14s %12s %14s %12s %12s %12s\n", "N", "all: meta", "all: RSS", "half: meta",
	       "half: RSS", "freed: meta", "freed: RSS");
	for (size_t n = max / 10 ? max / 10 : 2; n <= max; n *= 10) {
		if (memory_row(n) < 0)
			return 1;
	}
	return 0;
}
