/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: the libFuzzer entry points (declared, since the targets define
 * them), a check that aborts with the failed condition (libFuzzer then saves the input), and a
 * reader that takes bytes from the front of an input and gives zeros once it is used up.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buddy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

static inline _Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	abort();
}

struct fuzz_input {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint64_t fuzz_u64(struct fuzz_input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | fuzz_u8(in);
	return v;
}

/* Field by field: the padding of a struct may differ. */
static inline bool fuzz_same_stats(const struct buddy_stats *a, const struct buddy_stats *b)
{
	return a->granule == b->granule && a->total == b->total && a->free == b->free &&
	       a->used == b->used && a->largest_free == b->largest_free &&
	       a->n_allocs == b->n_allocs && a->n_orders == b->n_orders &&
	       a->fragmentation == b->fragmentation &&
	       memcmp(a->n_free_blocks, b->n_free_blocks, sizeof(a->n_free_blocks)) == 0;
}

#endif
