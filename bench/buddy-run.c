/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator alone (see buddy-run.h). The region is filled to half with random sizes
 * that stay allocated, so that the pairs measured split and merge blocks as a busy daemon's do
 * instead of finding a pristine region.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "bench/buddy-run.h"

#define REGION_BASE 0x40000000ull
#define REGION_SIZE (64ull << 20)
#define GRANULE     64
#define MIN_SIZE    64
#define MAX_SIZE    (1u << 20)

static uint64_t rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static uint64_t rnd_size(uint64_t *state)
{
	return MIN_SIZE + rnd(state) % (MAX_SIZE - MIN_SIZE + 1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fills the region to half with random sizes that stay allocated for the whole run. */
static void fill_half(struct buddy_run *r, uint64_t *state)
{
	struct buddy_stats st;
	uint64_t addr;

	do {
		if (buddy_alloc(r->buddy, rnd_size(state), 0, &addr, NULL) == 0)
			r->kept++;
		buddy_stats(r->buddy, &st);
	} while (st.used < REGION_SIZE / 2);
}

int buddy_run_init(struct buddy_run *r, size_t n_sizes, uint64_t seed)
{
	uint64_t state = seed | 1;
	int ret;

	r->kept = 0;
	r->refused = 0;
	r->n_sizes = n_sizes;
	r->sizes = malloc((n_sizes ? n_sizes : 1) * sizeof(*r->sizes));
	if (!r->sizes)
		return -ENOMEM;
	ret = buddy_create(REGION_BASE, REGION_SIZE, GRANULE, &r->buddy);
	if (ret < 0) {
		free(r->sizes);
		return ret;
	}
	fill_half(r, &state);
	for (size_t i = 0; i < n_sizes; i++)
		r->sizes[i] = rnd_size(&state);
	return 0;
}

void buddy_run_finish(struct buddy_run *r)
{
	buddy_destroy(r->buddy);
	free(r->sizes);
	r->buddy = NULL;
	r->sizes = NULL;
}

double buddy_run_buddy(struct buddy_run *r, size_t from, size_t n)
{
	const uint64_t *sizes = r->sizes + from;
	size_t fails = 0;
	double t0 = now();

	for (size_t i = 0; i < n; i++) {
		uint64_t addr, got;

		if (buddy_alloc(r->buddy, sizes[i], 0, &addr, &got) == 0)
			buddy_free(r->buddy, addr, got);
		else
			fails++;
	}
	r->refused += fails;
	return now() - t0;
}

double buddy_run_malloc(const struct buddy_run *r, size_t from, size_t n)
{
	const uint64_t *sizes = r->sizes + from;
	double t0 = now();

	for (size_t i = 0; i < n; i++) {
		/* volatile: the compiler may not pair the two away */
		void *volatile p = malloc(sizes[i]);

		free(p);
	}
	return now() - t0;
}
