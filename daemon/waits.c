/* SPDX-License-Identifier: MIT */
/* Requests' waits in smhd (see waits.h). */
#include "daemon/waits.h"

const uint32_t waits_over_ms[WAITS_N] = { 1, 5, 20, 100, 1000 };

void waits_add(struct waits *w, uint64_t ns)
{
	w->requests++;
	if (ns > w->longest_ns)
		w->longest_ns = ns;
	for (int i = 0; i < WAITS_N && ns > (uint64_t)waits_over_ms[i] * 1000000; i++)
		w->over[i]++;
}

uint64_t waits_since(const struct timespec *arrived)
{
	struct timespec now;
	int64_t ns;

	clock_gettime(CLOCK_REALTIME, &now);
	ns = ((int64_t)now.tv_sec - (int64_t)arrived->tv_sec) * 1000000000 +
	     (now.tv_nsec - arrived->tv_nsec);
	return ns > 0 ? (uint64_t)ns : 0;
}
