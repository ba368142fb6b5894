/* SPDX-License-Identifier: MIT */
/*
 * smh-bench's rows for the buddy allocator alone (the workload of buddy-run.c): blocks of
 * BLOCK alloc+free pairs, buddy and glibc malloc in turn on the same sizes, each block timed
 * once (a clock read per pair would cost as much as the pair). The percentiles are those of
 * the blocks' ns per pair.
 */
#include <errno.h>

#include "bench/bench.h"
#include "bench/buddy-run.h"

#define BLOCK 1000

struct side {
	struct buddy_run *run;
	bool buddy; /* else glibc */
	size_t next;
};

static int op_block(void *ctx, uint64_t *nsp)
{
	struct side *s = ctx;
	double t;

	if (s->next + BLOCK > s->run->n_sizes)
		s->next = 0;
	t = s->buddy ? buddy_run_buddy(s->run, s->next, BLOCK)
		     : buddy_run_malloc(s->run, s->next, BLOCK);
	s->next += BLOCK;
	*nsp = (uint64_t)(t * 1e9);
	return 0;
}

/* Per pair instead of per block. */
static void per_pair(struct stats *st)
{
	st->p50 /= BLOCK;
	st->p99 /= BLOCK;
	st->mean /= BLOCK;
	st->ops_s *= BLOCK;
}

int bench_buddy_rows(const struct bench_options *o, struct table *t)
{
	static const char *const names[] = { "glibc malloc+free pair", "buddy alloc+free pair" };
	size_t blocks = o->buddy_pairs / BLOCK ? o->buddy_pairs / BLOCK : 1;
	struct buddy_run run = { 0 };
	struct side sides[2] = { { .run = &run }, { .run = &run, .buddy = true } };
	struct bench_case cases[2] = { { .op = op_block, .ctx = &sides[0] },
				       { .op = op_block, .ctx = &sides[1] } };
	int err = buddy_run_init(&run, blocks * BLOCK, 88172645463325252ull);

	for (int i = 0; i < 2 && err == 0; i++)
		err = samples_init(&cases[i].s, blocks);
	if (err == 0)
		err = bench_interleave(cases, 2, blocks, o->rounds);
	for (int i = 0; i < 2 && err == 0; i++) {
		struct stats st;
		struct row *r;

		samples_stats(&cases[i].s, &st);
		per_pair(&st);
		r = table_add(t, names[i], &st, i ? names[0] : NULL);
		if (i) {
			r->key = "buddy ns/pair";
			r->key_value = st.p50;
			r->target = "<= 100 ns";
			r->met = st.p50 <= 100;
		}
	}
	for (int i = 0; i < 2; i++)
		samples_finish(&cases[i].s);
	if (run.buddy)
		buddy_run_finish(&run);
	return err;
}
