/* SPDX-License-Identifier: MIT */
/*
 * How long requests waited in smhd, for `smhctl stats` and `smhctl metrics`: from the moment
 * the request's datagram entered smhd's socket (the kernel's timestamp, SO_TIMESTAMPNS) to the
 * moment its reply was written (or queued for a client that does not read). That is the time a
 * client lost to smhd: its loop busy with others' work, a request parked for memory being
 * scrubbed, the CPU taken from smhd while it held the request. It leaves out the time the
 * client itself waited for a CPU before sending and after the reply, which a client's own
 * round trip includes.
 *
 * The timestamp is CLOCK_REALTIME (the only clock the kernel stamps datagrams with): a wait
 * across a step of the system clock is counted as 0 when the clock went back, and as long as
 * the step when it went forward.
 */
#ifndef DAEMON_WAITS_H
#define DAEMON_WAITS_H

#include <stdint.h>
#include <time.h>

/* The bounds counted: waits longer than 1, 5, 20, 100 and 1000 ms. Append only. */
#define WAITS_N 5
extern const uint32_t waits_over_ms[WAITS_N];

struct waits {
	uint64_t requests;      /* answered with an arrival time */
	uint64_t longest_ns;    /* the longest wait */
	uint64_t over[WAITS_N]; /* waits longer than waits_over_ms[i] */
};

/* Counts a request that waited @ns. */
void waits_add(struct waits *w, uint64_t ns);

/* The wait of a request that arrived at @arrived (CLOCK_REALTIME) and is answered now. */
uint64_t waits_since(const struct timespec *arrived);

#endif
