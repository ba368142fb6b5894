/* SPDX-License-Identifier: MIT */
/*
 * FNV-1a (common/hash.h): the published 64-bit test vectors, and that hashing in pieces is
 * hashing the whole (the fingerprint hashes field by field). Its values are stored in state
 * files, so they must never change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/hash.h"

static void test_vectors(void **state)
{
	(void)state;
	assert_true(hash_fnv1a(HASH_FNV1A_INIT, "", 0) == UINT64_C(0xcbf29ce484222325));
	assert_true(hash_fnv1a(HASH_FNV1A_INIT, "a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(hash_fnv1a(HASH_FNV1A_INIT, "foobar", 6) == UINT64_C(0x85944171f73967e8));
}

static void test_pieces(void **state)
{
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, "foo", 3);

	(void)state;
	assert_true(hash_fnv1a(h, "bar", 3) == hash_fnv1a(HASH_FNV1A_INIT, "foobar", 6));
	assert_true(hash_fnv1a(h, "baz", 3) != hash_fnv1a(h, "bar", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
