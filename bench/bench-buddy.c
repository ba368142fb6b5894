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

#include "bench/buddy-run.h"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pairs", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	size_t pairs = 2000000, half;
	uint64_t seed = 88172645463325252ull;
	struct buddy_run r;
	bool json = false;
	double t_buddy, t_malloc;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'n')
			pairs = strtoull(optarg, NULL, 0);
		else if (c == 's')
			seed = strtoull(optarg, NULL, 0);
		else if (c == 'j')
			json = true;
		else
			return 2;
	}
	if (pairs == 0)
		return 2;
	if (buddy_run_init(&r, pairs, seed) < 0)
		return 1;
	/* interleaved halves, so that a burst of noise hits both sides alike */
	half = pairs / 2;
	t_buddy = buddy_run_buddy(&r, 0, half);
	t_malloc = buddy_run_malloc(&r, 0, half);
	t_buddy += buddy_run_buddy(&r, half, pairs - half);
	t_malloc += buddy_run_malloc(&r, half, pairs - half);

	if (json) {
		printf("{\"pairs\": %zu, \"buddy_ns_per_pair\": %.1f, \"malloc_ns_per_pair\": "
		       "%.1f, \"ratio\": %.3f, \"refused\": %zu, \"kept_allocations\": %u}\n",
		       pairs, t_buddy / (double)pairs * 1e9, t_malloc / (double)pairs * 1e9,
		       t_buddy / t_malloc, r.refused, r.kept);
	} else {
		printf("%-28s %12s %12s\n", "alloc+free pair", "ns/pair", "ratio");
		printf("%-28s %12.1f %12.3f\n", "buddy (64 MiB, half full)",
		       t_buddy / (double)pairs * 1e9, t_buddy / t_malloc);
		printf("%-28s %12.1f %12.3f\n", "glibc malloc+free", t_malloc / (double)pairs * 1e9,
		       1.0);
		printf("%zu pairs, sizes 64 B-1 MiB, %u long-lived allocations, %zu refused\n",
		       pairs, r.kept, r.refused);
	}
	buddy_run_finish(&r);
	return 0;
}
