/* SPDX-License-Identifier: MIT */
/*
 * The buddy allocator alone: alloc+free pairs of random sizes (64 B to 1 MiB, uniform) in a
 * 64 MiB region with 64-byte granules that is half full of long-lived random allocations.
 * glibc malloc+free of the same sizes, in the same run, is the reference: these machines are
 * shared and noisy, so the figure that matters is the ratio.
 *
 * usage: bench-buddy [--pairs N] [--seed S] [--json]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/buddy.h"

#define REGION_BASE 0x40000000ull
#define REGION_SIZE (64ull << 20)
#define GRANULE     64
#define MIN_SIZE    64
#define MAX_SIZE    (1u << 20)

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fills the region to half with random sizes that stay allocated for the whole run. */
static void fill_half(struct buddy *b, unsigned *n_keptp)
{
	struct buddy_stats st;
	uint64_t addr;
	unsigned n = 0;

	do {
		uint64_t size = MIN_SIZE + rnd() % (MAX_SIZE - MIN_SIZE + 1);

		if (buddy_alloc(b, size, 0, &addr, NULL) == 0)
			n++;
		buddy_stats(b, &st);
	} while (st.used < REGION_SIZE / 2);
	*n_keptp = n;
}

static double run_buddy(struct buddy *b, const uint64_t *sizes, size_t n, size_t *failsp)
{
	size_t fails = 0;
	double t0 = now();

	for (size_t i = 0; i < n; i++) {
		uint64_t addr, got;

		if (buddy_alloc(b, sizes[i], 0, &addr, &got) == 0)
			buddy_free(b, addr, got);
		else
			fails++;
	}
	*failsp = fails;
	return now() - t0;
}

static double run_malloc(const uint64_t *sizes, size_t n)
{
	double t0 = now();

	for (size_t i = 0; i < n; i++) {
		/* volatile: the compiler may not pair the two away */
		void *volatile p = malloc(sizes[i]);

		free(p);
	}
	return now() - t0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pairs", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	size_t pairs = 2000000, fails;
	uint64_t seed = 88172645463325252ull, *sizes;
	struct buddy *b;
	unsigned kept;
	bool json = false;
	double t_buddy, t_malloc;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'n')
			pairs = strtoull(optarg, NULL, 0);
		else if (c == 's')
			seed = strtoull(optarg, NULL, 0) | 1;
		else if (c == 'j')
			json = true;
		else
			return 2;
	}
	if (pairs == 0 || buddy_create(REGION_BASE, REGION_SIZE, GRANULE, &b) < 0)
		return 2;
	rng_state = seed;
	fill_half(b, &kept);
	sizes = malloc(pairs * sizeof(*sizes));
	if (!sizes)
		return 1;
	for (size_t i = 0; i < pairs; i++)
		sizes[i] = MIN_SIZE + rnd() % (MAX_SIZE - MIN_SIZE + 1);

	/* interleaved halves, so that a burst of noise hits both sides alike */
	t_buddy = run_buddy(b, sizes, pairs / 2, &fails);
	t_malloc = run_malloc(sizes, pairs / 2);
	{
		size_t more;

		t_buddy += run_buddy(b, sizes + pairs / 2, pairs - pairs / 2, &more);
		fails += more;
	}
	t_malloc += run_malloc(sizes + pairs / 2, pairs - pairs / 2);

	if (json) {
		printf("{\"pairs\": %zu, \"buddy_ns_per_pair\": %.1f, \"malloc_ns_per_pair\": "
		       "%.1f, "
		       "\"ratio\": %.3f, \"refused\": %zu, \"kept_allocations\": %u}\n",
		       pairs, t_buddy / (double)pairs * 1e9, t_malloc / (double)pairs * 1e9,
		       t_buddy / t_malloc, fails, kept);
	} else {
		printf("%-28s %12s %12s\n", "alloc+free pair", "ns/pair", "ratio");
		printf("%-28s %12.1f %12.3f\n", "buddy (64 MiB, half full)",
		       t_buddy / (double)pairs * 1e9, t_buddy / t_malloc);
		printf("%-28s %12.1f %12.3f\n", "glibc malloc+free", t_malloc / (double)pairs * 1e9,
		       1.0);
		printf("%zu pairs, sizes 64 B-1 MiB, %u long-lived allocations, %zu refused\n",
		       pairs, kept, fails);
	}
	buddy_destroy(b);
	free(sizes);
	return 0;
}
