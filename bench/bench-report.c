/* SPDX-License-Identifier: MIT */
/*
 * smh-bench's output: a table for people, closed by one line of the key figures against their
 * targets, or one JSON object for scripts. Latency rows show p50 and p99 in microseconds and
 * their ratio of p50s to their baseline; throughput rows (concurrent clients) have no
 * percentiles and their ratio is of operations per second; figure rows (smhd's memory) have
 * one figure, in the key line.
 */
#include <math.h>
#include <stdio.h>

#include "bench/bench.h"

static void print_setup(const struct bench_options *o)
{
	printf("smh-bench: smhd with the memfd backend, a 64 MiB region of each attribute and a "
	       "1 GiB cacheable one; ");
	if (o->cpu >= 0)
		printf("client and daemon pinned to CPU %d\n", o->cpu);
	else
		printf("not pinned (--cpu N pins client and daemon to one CPU)\n");
	printf("%zu operations per latency figure in %u alternating rounds, %u ms per throughput "
	       "phase\n\n",
	       o->iterations, o->rounds, o->duration_ms);
}

static void print_row(const struct row *r)
{
	char p50[16] = "-", p99[16] = "-", ops_s[16] = "-", ratio[16] = "", target[32] = "";
	const char *against = r->baseline ? r->baseline : "";

	if (!r->figure)
		snprintf(ops_s, sizeof(ops_s), "%.0f", r->st.ops_s);
	if (!r->throughput && !r->figure) {
		snprintf(p50, sizeof(p50), "%.3f", r->st.p50 / 1e3);
		snprintf(p99, sizeof(p99), "%.3f", r->st.p99 / 1e3);
	}
	if (r->baseline)
		snprintf(ratio, sizeof(ratio), "%.3f", r->ratio);
	if (r->target)
		snprintf(target, sizeof(target), "%s %s", r->target, r->met ? "met" : "MISSED");
	if (!r->baseline && !r->figure)
		against = "(baseline)";
	printf("%-36s %9s %9s %11s %7s  %-30s %s\n", r->name, p50, p99, ops_s, ratio, against,
	       target);
}

void report_table(const struct bench_options *o, const struct table *t)
{
	unsigned n = 0, met = 0, shown = 0;

	print_setup(o);
	printf("%-36s %9s %9s %11s %7s  %-30s %s\n", "operation", "p50 us", "p99 us", "ops/s",
	       "ratio", "against", "target");
	for (size_t i = 0; i < t->n; i++)
		print_row(&t->rows[i]);
	printf("\nkey:");
	for (size_t i = 0; i < t->n; i++) {
		const struct row *r = &t->rows[i];

		if (!r->key)
			continue;
		printf("%s %s %.*f", shown ? "," : "", r->key, r->key_value >= 10 ? 0 : 3,
		       r->key_value);
		shown++;
		if (!r->target)
			continue;
		printf(" (%s %s)", r->target, r->met ? "met" : "MISSED");
		n++;
		met += r->met;
	}
	printf("; %u of %u targets met\n", met, n);
}

void report_json(const struct bench_options *o, const struct table *t)
{
	printf("{\"cpu\": %d, \"iterations\": %zu, \"rounds\": %u, \"duration_ms\": %u, \"rows\": "
	       "[",
	       o->cpu, o->iterations, o->rounds, o->duration_ms);
	for (size_t i = 0; i < t->n; i++) {
		const struct row *r = &t->rows[i];

		printf("%s\n  {\"name\": \"%s\", \"throughput\": %s, \"figure\": %s", i ? "," : "",
		       r->name, r->throughput ? "true" : "false", r->figure ? "true" : "false");
		if (!r->throughput && !r->figure)
			printf(", \"p50_ns\": %.0f, \"p99_ns\": %.0f, \"p999_ns\": %.0f, "
			       "\"max_ns\": %.0f, \"mean_ns\": %.1f",
			       r->st.p50, r->st.p99, r->st.p999, r->st.max, r->st.mean);
		if (!r->figure)
			printf(", \"ops_s\": %.1f", r->st.ops_s);
		if (r->baseline)
			printf(", \"baseline\": \"%s\", \"ratio\": %.4f", r->baseline, r->ratio);
		if (r->key && isfinite(r->key_value))
			printf(", \"key\": \"%s\", \"value\": %.4f", r->key, r->key_value);
		else if (r->key) /* a figure that could not be had: JSON has no NaN */
			printf(", \"key\": \"%s\", \"value\": null", r->key);
		if (r->target)
			printf(", \"target\": \"%s\", \"met\": %s", r->target,
			       r->met ? "true" : "false");
		printf("}");
	}
	printf("\n]}\n");
}
