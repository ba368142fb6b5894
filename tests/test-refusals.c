/* SPDX-License-Identifier: MIT */
/*
 * Refusal kinds (daemon/refusals.c): each errno smhd refuses with lands in its kind, the kinds'
 * names are the metric's label values (distinct, [a-z_]), and what is unknown is "other".
 * integ-refusals provokes them against the daemon; this covers the ones it cannot (state_full).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/refusals.h"

static void test_kinds_of_errnos(void **state)
{
	static const struct {
		int status;
		enum refusal_kind kind;
	} cases[] = {
		{ -ENOMEM, REFUSAL_NOMEM },      { -EDQUOT, REFUSAL_QUOTA },
		{ -EACCES, REFUSAL_PERMISSION }, { -EMFILE, REFUSAL_MAX_CLIENTS },
		{ -EINVAL, REFUSAL_INVALID },    { -EOPNOTSUPP, REFUSAL_INVALID },
		{ -ENOENT, REFUSAL_NOT_FOUND },  { -EBUSY, REFUSAL_BUSY },
		{ -EMLINK, REFUSAL_BUSY },       { -EPROTONOSUPPORT, REFUSAL_VERSION },
		{ -ENOSPC, REFUSAL_STATE_FULL }, { -EOVERFLOW, REFUSAL_OTHER },
		{ -EIO, REFUSAL_OTHER },         { 0, REFUSAL_OTHER },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(refusal_kind_of(cases[i].status), cases[i].kind);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(refusal_name(REFUSAL_NOMEM), "nomem");
	assert_string_equal(refusal_name(REFUSAL_STATE_FULL), "state_full");
	assert_string_equal(refusal_name(REFUSAL_N), "other");
	for (int i = 0; i < REFUSAL_N; i++) {
		const char *name = refusal_name((enum refusal_kind)i);

		assert_non_null(name);
		assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz_"), strlen(name));
		assert_true(strlen(name) > 0 && strlen(name) < 32); /* smh_refusal_count.kind */
		for (int j = 0; j < i; j++)
			assert_string_not_equal(name, refusal_name((enum refusal_kind)j));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_of_errnos),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
