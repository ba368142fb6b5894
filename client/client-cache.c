/* SPDX-License-Identifier: MIT */
/*
 * Cache maintenance on mapped buffers: smh_sync_for_device() and smh_sync_for_cpu().
 *
 * A cached mapping (or one whose type is unknown: maintenance is harmless on memory that is
 * not cached, and needed on memory that is) gets each cache line covering the range written
 * back, or written back and invalidated, then a barrier that waits for it:
 * - arm64: DC CVAC / DC CIVAC per line, the line size from CTR_EL0.DminLine, then DSB SY.
 *   Linux lets user space run both (DC IVAC, invalidate alone, is undefined at EL0: so
 *   invalidating also cleans, which is what the kernel's own DMA code does for a buffer that
 *   is handed back to the CPU);
 * - x86-64: CLFLUSHOPT where CPUID offers it, else CLFLUSH, each line, then SFENCE / MFENCE;
 * - 32-bit ARM has no maintenance to the point of coherency that user space may run: a cached
 *   mapping there is -EOPNOTSUPP (serve such memory `no-map`, uncached). So is every other
 *   architecture.
 * Write-combine, uncached and Device mappings hold nothing in the data cache: a barrier alone
 * orders the CPU's accesses before the device's (and pushes out write-combine buffers).
 *
 * The line operations sit behind `cache_ops`, which tests/test-cache.c (it compiles this file)
 * replaces to count the lines a range touches, on any architecture.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "smh/client.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

struct cache_ops {
	bool maintains;                /* cached mappings can be maintained from user space */
	size_t (*line_size)(void);     /* the smallest data cache line, bytes */
	void (*clean)(uintptr_t line); /* write back one line */
	void (*flush)(uintptr_t line); /* write back and invalidate one line */
	void (*barrier)(void);         /* after the lines, or alone */
};

#if defined(__aarch64__)

static size_t arch_line_size(void)
{
	static _Atomic size_t cached;
	size_t line = cached;
	uint64_t ctr;

	if (line == 0) {
		__asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
		line = (size_t)4 << ((ctr >> 16) & 0xf); /* DminLine: log2 of the line in words */
		cached = line;
	}
	return line;
}

static void arch_clean(uintptr_t line)
{
	__asm__ volatile("dc cvac, %0" : : "r"(line) : "memory");
}

static void arch_flush(uintptr_t line)
{
	__asm__ volatile("dc civac, %0" : : "r"(line) : "memory");
}

static void arch_barrier(void)
{
	__asm__ volatile("dsb sy" : : : "memory");
}

#define ARCH_MAINTAINS true

#elif defined(__x86_64__)

/* CPUID.1:EBX[15:8] is the CLFLUSH line size in 8-byte units; .7.0:EBX[23] is CLFLUSHOPT. */
static _Atomic int x86_features; /* 0: not read; else 1 | line << 8 | clflushopt << 1 */

static int x86_read_features(void)
{
	unsigned a, b, c, d;
	int f = x86_features;

	if (f != 0)
		return f;
	f = 1 | (64 << 8);
	if (__get_cpuid(1, &a, &b, &c, &d) && ((b >> 8) & 0xff) != 0)
		f = 1 | (int)(((b >> 8) & 0xff) * 8) << 8;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23)))
		f |= 2;
	x86_features = f;
	return f;
}

static size_t arch_line_size(void)
{
	return (size_t)(x86_read_features() >> 8);
}

static void arch_flush(uintptr_t line)
{
	if (x86_read_features() & 2)
		__asm__ volatile("clflushopt %0" : "+m"(*(volatile char *)line));
	else
		__asm__ volatile("clflush %0" : "+m"(*(volatile char *)line));
}

/* CLFLUSH is the only write-back user space has everywhere (CLWB is newer): both flush. */
static void arch_clean(uintptr_t line)
{
	arch_flush(line);
}

static void arch_barrier(void)
{
	/* CLFLUSHOPT is ordered by SFENCE; MFENCE orders CLFLUSH and everything else too. */
	__asm__ volatile("mfence" : : : "memory");
}

#define ARCH_MAINTAINS true

#else

static size_t arch_line_size(void)
{
	return 64;
}

static void arch_clean(uintptr_t line)
{
	(void)line;
}

static void arch_flush(uintptr_t line)
{
	(void)line;
}

#if defined(__arm__) && __ARM_ARCH >= 7
static void arch_barrier(void)
{
	__asm__ volatile("dsb sy" : : : "memory");
}
#else
static void arch_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
#endif

#define ARCH_MAINTAINS false

#endif

static struct cache_ops cache_ops = {
	.maintains = ARCH_MAINTAINS,
	.line_size = arch_line_size,
	.clean = arch_clean,
	.flush = arch_flush,
	.barrier = arch_barrier,
};

/* Whether the CPU may hold lines of this mapping (unknown: assume so, maintenance is safe). */
static bool maybe_cached(enum smh_mapping kind)
{
	return kind != SMH_MAPPING_WRITE_COMBINE && kind != SMH_MAPPING_UNCACHED &&
	       kind != SMH_MAPPING_DEVICE;
}

static int sync_range(const struct smh_buffer *buf, uint64_t offset, size_t len, bool invalidate)
{
	void (*op)(uintptr_t) = invalidate ? cache_ops.flush : cache_ops.clean;
	uintptr_t first, end, line;

	if (!buf || !buf->addr)
		return -EINVAL;
	if (offset > buf->size || len > buf->size - offset)
		return -ERANGE;
	if (maybe_cached(smh_buffer_mapping(buf))) {
		if (!cache_ops.maintains)
			return -EOPNOTSUPP;
		line = cache_ops.line_size();
		first = ((uintptr_t)buf->addr + (uintptr_t)offset) & ~(line - 1);
		end = (uintptr_t)buf->addr + (uintptr_t)offset + len;
		for (uintptr_t p = first; len > 0 && p < end; p += line)
			op(p);
	}
	cache_ops.barrier();
	return 0;
}

int smh_sync_for_device(const struct smh_buffer *buf, uint64_t offset, size_t len)
{
	return sync_range(buf, offset, len, false);
}

int smh_sync_for_cpu(const struct smh_buffer *buf, uint64_t offset, size_t len)
{
	return sync_range(buf, offset, len, true);
}
