/* SPDX-License-Identifier: MIT */
/*
 * The poison pattern's fill and check (see poison.h). Both go word by word: blocks are
 * granule-aligned (a granule is at least 8 bytes), so there are no partial words, and a
 * uniform byte makes the pattern the same in either byte order. On Normal memory the loops are
 * plain (the compiler may widen them); on Device memory every access is a volatile aligned
 * 64-bit one, as backend_scrub() does it. A word that differs is looked at byte by byte, only
 * to count and place the change: an untouched block costs one compare per word.
 */
#include "daemon/poison.h"

#define POISON_WORD (UINT64_C(0x0101010101010101) * POISON_BYTE)

static void *at(struct backend *b, size_t region, uint64_t addr)
{
	const struct backend_region *r = backend_region(b, region);

	return r->map + (addr - r->map_phys);
}

void poison_fill(struct backend *b, size_t region, uint64_t addr, uint64_t len)
{
	size_t n = (size_t)(len / 8);

	if (backend_region(b, region)->device_memory) {
		volatile uint64_t *p = at(b, region, addr);

		for (size_t i = 0; i < n; i++)
			p[i] = POISON_WORD;
	} else {
		uint64_t *p = at(b, region, addr);

		for (size_t i = 0; i < n; i++)
			p[i] = POISON_WORD;
	}
}

/* The bytes of @w that are not POISON_BYTE; *firstp: the lowest-addressed one. */
static unsigned changed_bytes(uint64_t w, unsigned *firstp)
{
	union {
		uint64_t w;
		unsigned char c[8];
	} u = { .w = w };
	unsigned n = 0;

	for (unsigned i = 0; i < 8; i++)
		if (u.c[i] != POISON_BYTE && n++ == 0)
			*firstp = i;
	return n;
}

uint64_t poison_check(struct backend *b, size_t region, uint64_t addr, uint64_t len,
		      uint64_t *firstp)
{
	bool device = backend_region(b, region)->device_memory;
	const volatile uint64_t *vp = at(b, region, addr);
	const uint64_t *p = at(b, region, addr);
	size_t n = (size_t)(len / 8);
	uint64_t changed = 0;
	unsigned first = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t w = device ? vp[i] : p[i];

		if (w == POISON_WORD)
			continue;
		if (changed == 0) {
			changed = changed_bytes(w, &first);
			*firstp = (uint64_t)i * 8 + first;
		} else {
			changed += changed_bytes(w, &first);
		}
	}
	return changed;
}
