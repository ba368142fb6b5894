/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator alone, shared by bench-buddy and smh-bench: alloc+free pairs of random
 * sizes (64 B to 1 MiB, uniform) in a 64 MiB region with 64-byte granules that is half full of
 * long-lived random allocations, and glibc malloc+free of the same sizes as the reference.
 */
#ifndef BENCH_BUDDY_RUN_H
#define BENCH_BUDDY_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buddy.h"

struct buddy_run {
	struct buddy *buddy;
	uint64_t *sizes; /* n_sizes request sizes, used in turn by both sides */
	size_t n_sizes;
	size_t refused; /* buddy allocations that failed (the region was too full) */
	unsigned kept;  /* long-lived allocations that fill the region to half */
};

/* Creates the half-full region and @n_sizes random sizes from @seed. Returns 0 or -ENOMEM. */
int buddy_run_init(struct buddy_run *r, size_t n_sizes, uint64_t seed);
void buddy_run_finish(struct buddy_run *r);

/* Alloc+free pairs of sizes[from .. from + n) (from + n <= n_sizes). Return seconds taken. */
double buddy_run_buddy(struct buddy_run *r, size_t from, size_t n);
double buddy_run_malloc(const struct buddy_run *r, size_t from, size_t n);

#endif
