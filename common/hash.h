/* SPDX-License-Identifier: MIT */
/*
 * FNV-1a, 64 bits: the restart state's record checks and configuration fingerprints. Not for
 * hash tables (common/hmap.c mixes its keys itself) nor for anything an attacker must not
 * forge; its values are stored in files, so they never change.
 */
#ifndef COMMON_HASH_H
#define COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The value to start from (the hash of nothing). */
#define HASH_FNV1A_INIT UINT64_C(0xcbf29ce484222325)

/* @h (HASH_FNV1A_INIT or a previous result) continued over @len bytes of @data. */
static inline uint64_t hash_fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#endif
