/* SPDX-License-Identifier: MIT */
/*
 * The access policy: its configuration (daemon/policy-config.c, from smhd's library): the
 * values of the options, the configuration file's parser and its errors (file:line), the file
 * under the options; and its decisions (daemon/policy.c, compiled in to reach its statics), on
 * a broker whose clients' use is set by hand and with the peers' groups given as a list, no
 * socket involved: who is admitted (by uid, primary or supplementary group), max-clients, the
 * quotas at their boundary and past 64 bits, per-uid sections, logging once.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/policy-config.h"
#include "daemon/policy.c"

static char err[512];

static int set(struct policy *p, enum policy_key key, const char *value)
{
	err[0] = '\0';
	return policy_set(p, key, value, err, sizeof(err));
}

static int parse(struct policy *p, const char *text)
{
	err[0] = '\0';
	return policy_parse(p, "smhd.conf", text, err, sizeof(err));
}

static void test_defaults(void **state)
{
	struct policy p;

	policy_init(&p);
	/* Bytes and clients are unlimited; buffers are capped (each costs daemon memory). */
	for (int k = POLICY_MAX_CLIENTS; k < POLICY_N_KEYS; k++)
		if (k != POLICY_MAX_BUFFERS_PER_CLIENT && k != POLICY_MAX_BUFFERS_PER_UID)
			assert_true(policy_limit(&p, 1000, (enum policy_key)k) == POLICY_UNLIMITED);
	assert_int_equal(policy_limit(&p, 1000, POLICY_MAX_BUFFERS_PER_CLIENT), 4096);
	assert_int_equal(policy_limit(&p, 1000, POLICY_MAX_BUFFERS_PER_UID), 16384);
	assert_int_equal(p.set, 0);
	assert_string_equal(policy_key_name(POLICY_MAX_BUFFERS_PER_CLIENT),
			    "max-buffers-per-client");
	assert_int_equal(set(&p, POLICY_MAX_BUFFERS_PER_CLIENT, "unlimited"), 0);
	assert_true(policy_limit(&p, 1000, POLICY_MAX_BUFFERS_PER_CLIENT) == POLICY_UNLIMITED);
	policy_finish(&p);
	policy_finish(&p); /* twice: a no-op */
}

static void test_lists(void **state)
{
	struct policy p;

	policy_init(&p);
	assert_int_equal(set(&p, POLICY_ALLOW_UID, "1000, 1001 root"), 0);
	assert_int_equal(set(&p, POLICY_ALLOW_UID, "1000,1002"), 0); /* adds, no duplicates */
	assert_int_equal(p.allow_uids.n, 4);
	assert_int_equal(p.allow_uids.ids[0], 1000);
	assert_int_equal(p.allow_uids.ids[1], 1001);
	assert_int_equal(p.allow_uids.ids[2], 0);
	assert_int_equal(p.allow_uids.ids[3], 1002);
	assert_int_equal(set(&p, POLICY_ALLOW_GID, "root"), 0);
	assert_int_equal(p.allow_gids.n, 1);
	assert_int_equal(p.allow_gids.ids[0], 0);
	assert_true(p.set == ((1u << POLICY_ALLOW_UID) | (1u << POLICY_ALLOW_GID)));

	assert_int_equal(set(&p, POLICY_ALLOW_UID, "no-such-user-here"), -ENOENT);
	assert_string_equal(err, "unknown user 'no-such-user-here'");
	assert_int_equal(set(&p, POLICY_ALLOW_GID, "no-such-group-here"), -ENOENT);
	assert_string_equal(err, "unknown group 'no-such-group-here'");
	assert_int_equal(set(&p, POLICY_ALLOW_UID, "4294967295"), -EINVAL); /* (uid_t)-1 */
	assert_int_equal(set(&p, POLICY_ALLOW_UID, " , "), -EINVAL);
	assert_string_equal(err, "an empty list");
	assert_int_equal(p.allow_uids.n, 4);
	policy_finish(&p);
}

static void test_limits(void **state)
{
	struct policy p;

	policy_init(&p);
	assert_int_equal(set(&p, POLICY_MAX_BYTES_PER_UID, "16M"), 0);
	assert_true(p.value[POLICY_MAX_BYTES_PER_UID] == 16u << 20);
	assert_int_equal(set(&p, POLICY_MAX_BYTES_PER_CLIENT, "0x1000"), 0);
	assert_true(p.value[POLICY_MAX_BYTES_PER_CLIENT] == 4096);
	assert_int_equal(set(&p, POLICY_MAX_BUFFERS_PER_CLIENT, "0"), 0); /* zero: none at all */
	assert_true(p.value[POLICY_MAX_BUFFERS_PER_CLIENT] == 0);
	assert_int_equal(set(&p, POLICY_MAX_CLIENTS, "64"), 0);
	assert_int_equal(set(&p, POLICY_MAX_CLIENTS, "unlimited"), 0); /* the last one counts */
	assert_true(p.value[POLICY_MAX_CLIENTS] == POLICY_UNLIMITED);
	assert_true(p.set & (1u << POLICY_MAX_CLIENTS));

	assert_int_equal(set(&p, POLICY_MAX_CLIENTS, "4K"), -EINVAL); /* a count, not a size */
	assert_string_equal(err, "'4K' is not a number, nor \"unlimited\"");
	assert_int_equal(set(&p, POLICY_MAX_BUFFERS_PER_UID, "-1"), -EINVAL);
	assert_int_equal(set(&p, POLICY_MAX_BUFFERS_PER_UID, " 1"), -EINVAL);
	assert_int_equal(set(&p, POLICY_MAX_BUFFERS_PER_UID, "18446744073709551615"), -EINVAL);
	assert_int_equal(set(&p, POLICY_MAX_BUFFERS_PER_UID, "18446744073709551616"), -EINVAL);
	assert_int_equal(set(&p, POLICY_MAX_BYTES_PER_UID, "lots"), -EINVAL);
	assert_string_equal(err, "'lots' is not a size (4096, 64K, 16M...), nor \"unlimited\"");
	assert_true(p.value[POLICY_MAX_BUFFERS_PER_UID] == POLICY_UNLIMITED);
	assert_int_equal(set(&p, POLICY_N_KEYS, "1"), -EINVAL);
	policy_finish(&p);
}

static void test_parse_good(void **state)
{
	struct policy p;

	policy_init(&p);
	assert_int_equal(parse(&p, "# smhd.conf\n"
				   "\n"
				   "  allow-uid = 1000,1001   # the camera and the codec\n"
				   "allow-gid=44\r\n"
				   "max-clients = 32\n"
				   "max-bytes-per-uid = 64M\n"
				   "max-buffers-per-client = 128\n"
				   "[uid 1001]\n"
				   "max-bytes-per-uid = 256M\n"
				   "max-buffers-per-client = unlimited\n"
				   "[ uid root ]\n"
				   "max-bytes-per-client = 1K"), /* no final newline */
			 0);
	assert_int_equal(p.allow_uids.n, 2);
	assert_int_equal(p.allow_gids.n, 1);
	assert_int_equal(p.allow_gids.ids[0], 44);
	assert_true(p.value[POLICY_MAX_CLIENTS] == 32);
	assert_int_equal(p.n_uids, 2);
	assert_true(policy_limit(&p, 1000, POLICY_MAX_BYTES_PER_UID) == 64u << 20);
	assert_true(policy_limit(&p, 1001, POLICY_MAX_BYTES_PER_UID) == 256u << 20);
	assert_true(policy_limit(&p, 1000, POLICY_MAX_BUFFERS_PER_CLIENT) == 128);
	assert_true(policy_limit(&p, 1001, POLICY_MAX_BUFFERS_PER_CLIENT) == POLICY_UNLIMITED);
	assert_true(policy_limit(&p, 0, POLICY_MAX_BYTES_PER_CLIENT) == 1024);
	assert_true(policy_limit(&p, 0, POLICY_MAX_BUFFERS_PER_CLIENT) == 128);
	assert_true(policy_limit(&p, 1001, POLICY_MAX_BYTES_PER_CLIENT) == POLICY_UNLIMITED);
	policy_finish(&p);

	policy_init(&p); /* nothing but comments and space */
	assert_int_equal(parse(&p, "\n   \n# nothing\n\t\n"), 0);
	assert_int_equal(p.set, 0);
	policy_finish(&p);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *text;
		int ret;
		const char *message;
	} cases[] = {
		{ "max-clients = 1\nmaxclients = 2\n", -EINVAL,
		  "smhd.conf:2: unknown key 'maxclients'" },
		{ "\n\n\nallow-uid\n", -EINVAL,
		  "smhd.conf:4: expected 'key = value', got 'allow-uid'" },
		{ "max-clients = 1 2\n", -EINVAL,
		  "smhd.conf:1: max-clients: '1 2' is not a number" },
		{ "max-clients = # none\n", -EINVAL, "smhd.conf:1: max-clients has no value" },
		{ "allow-gid = nogroup-x1\n", -ENOENT, "smhd.conf:1: allow-gid: unknown group" },
		{ "[uid 0]\nallow-uid = 5\n", -EINVAL,
		  "smhd.conf:2: allow-uid cannot be set in a [uid] section" },
		{ "[uid 7]\n[uid 7]\n", -EINVAL, "smhd.conf:2: a second section for uid 7" },
		{ "[uid]\n", -EINVAL, "smhd.conf:1: unknown section [uid]" },
		{ "[uid nobody-x1]\n", -ENOENT, "smhd.conf:1: unknown user 'nobody-x1'" },
		{ "[uid 1\n", -EINVAL, "smhd.conf:1: a section header without its ']'" },
		{ "= 5\n", -EINVAL, "smhd.conf:1: unknown key ''" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy p;
		int ret;

		policy_init(&p);
		ret = parse(&p, cases[i].text);
		if (ret != cases[i].ret || strncmp(err, cases[i].message, strlen(cases[i].message)))
			fail_msg("case %zu: %d \"%s\"", i, ret, err);
		policy_finish(&p);
	}
}

static void test_configure(void **state)
{
	char path[] = "/tmp/test-policy-XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "allow-uid = 1, 2\nmax-clients = 5\nmax-buffers-per-uid = 9\n";
	struct policy cli, p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	policy_init(&cli);
	assert_int_equal(set(&cli, POLICY_ALLOW_UID, "3"), 0);
	assert_int_equal(set(&cli, POLICY_MAX_CLIENTS, "unlimited"), 0);

	/* The options override the file: lists are replaced, not merged. */
	policy_init(&p);
	assert_int_equal(policy_configure(&p, path, &cli, err, sizeof(err)), 0);
	assert_int_equal(p.allow_uids.n, 1);
	assert_int_equal(p.allow_uids.ids[0], 3);
	assert_true(p.value[POLICY_MAX_CLIENTS] == POLICY_UNLIMITED);
	assert_true(p.value[POLICY_MAX_BUFFERS_PER_UID] == 9);
	policy_finish(&p);

	/* A missing file given explicitly is an error. */
	policy_init(&p);
	assert_int_equal(policy_configure(&p, "/nonexistent/smhd.conf", &cli, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/smhd.conf: No such file or directory");
	policy_finish(&p);

	/* A NUL byte is no text. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "max-clients = 1\n\0\n", 18), 18);
	close(fd);
	policy_init(&p);
	assert_int_equal(policy_configure(&p, path, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a NUL byte"));
	policy_finish(&p);
	unlink(path);

	/* The default file may be missing (where it exists, this is not the test's to say). */
	if (access(POLICY_DEFAULT_CONFIG, F_OK) < 0) {
		policy_init(&p);
		assert_int_equal(policy_configure(&p, NULL, &cli, err, sizeof(err)), 0);
		assert_int_equal(p.allow_uids.n, 1);
		policy_finish(&p);
	}
	policy_finish(&cli);
}

/* ---------------------------------------------------------------- decisions */

struct fixture {
	struct broker b;
	struct policy p;
	struct broker_client *cam, *codec, *root;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	broker_init(&f->b, NULL, NULL); /* no pool: the use is set by hand */
	policy_init(&f->p);
	assert_int_equal(broker_client_add(&f->b, 10, 1000, 1000, "cam", &f->cam), 0);
	assert_int_equal(broker_client_add(&f->b, 11, 1000, 44, "codec", &f->codec), 0);
	assert_int_equal(broker_client_add(&f->b, 12, 0, 0, "smhctl", &f->root), 0);
	log_set_level(LOG_ERROR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	broker_finish(&f->b);
	policy_finish(&f->p);
	free(f);
	return 0;
}

static void test_admit(void **state)
{
	struct fixture *f = *state;
	char why[192];

	/* No policy, or no list: everyone. */
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, NULL, why, sizeof(why)), 0);
	assert_int_equal(set(&f->p, POLICY_ALLOW_UID, "1001"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(f->cam->refused, -EACCES);
	assert_string_equal(why, "uid 1000 (gid 1000) may not use smhd: neither it nor its groups "
				 "are in allow-uid or allow-gid");
	assert_int_equal(policy_admit(&f->p, &f->b, f->root, NULL, why, sizeof(why)), 0); /* root */
	assert_int_equal(set(&f->p, POLICY_ALLOW_GID, "44"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->codec, NULL, why, sizeof(why)),
			 0); /* gid 44 */
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, NULL, why, sizeof(why)), -EACCES);
	assert_int_equal(set(&f->p, POLICY_ALLOW_UID, "1000"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, NULL, why, sizeof(why)), 0);
	assert_int_equal(f->cam->refused, 0);
}

/* The supplementary groups the server read at accept, given here as a plain list. */
static void test_admit_groups(void **state)
{
	struct fixture *f = *state;
	uint32_t in_45[] = { 5, 45 }, in_none[] = { 5, 1001 };
	struct policy_ids groups = { in_45, 2 }, others = { in_none, 2 }, empty = { NULL, 0 };
	char why[192];

	/* No list: the groups do not matter. */
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, &others, why, sizeof(why)), 0);

	assert_int_equal(set(&f->p, POLICY_ALLOW_GID, "44,45"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, &groups, why, sizeof(why)), 0);
	assert_int_equal(f->cam->refused, 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, &others, why, sizeof(why)), -EACCES);
	assert_int_equal(f->cam->refused, -EACCES);
	assert_string_equal(why, "uid 1000 (gid 1000) may not use smhd: neither it nor its groups "
				 "are in allow-uid or allow-gid");
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, &empty, why, sizeof(why)), -EACCES);
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, NULL, why, sizeof(why)), -EACCES);
	/* The last group counts as much as the first. */
	in_45[0] = 45;
	in_45[1] = 5;
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, &groups, why, sizeof(why)), 0);

	/* A group is no uid: allow-uid 1001 does not let in a member of group 1001. */
	policy_finish(&f->p);
	policy_init(&f->p);
	assert_int_equal(set(&f->p, POLICY_ALLOW_UID, "1001"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->cam, &others, why, sizeof(why)), -EACCES);
	/* The primary gid is checked without the list. */
	assert_int_equal(set(&f->p, POLICY_ALLOW_GID, "44"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->codec, &empty, why, sizeof(why)), 0);
}

static void test_max_clients(void **state)
{
	struct fixture *f = *state;
	char why[192];

	/* Three clients; the one asking is not counted, refused ones neither. */
	assert_int_equal(set(&f->p, POLICY_MAX_CLIENTS, "2"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->root, NULL, why, sizeof(why)), -EMFILE);
	assert_string_equal(why, "smhd serves at most 2 clients (max-clients) at once");
	f->cam->refused = -EACCES;
	assert_int_equal(policy_admit(&f->p, &f->b, f->root, NULL, why, sizeof(why)), 0);
	assert_int_equal(set(&f->p, POLICY_MAX_CLIENTS, "0"), 0);
	assert_int_equal(policy_admit(&f->p, &f->b, f->root, NULL, why, sizeof(why)), -EMFILE);
	/* No policy: everyone. */
	assert_int_equal(policy_admit(NULL, &f->b, f->root, NULL, why, sizeof(why)), 0);
	assert_int_equal(f->root->refused, 0);
}

static void test_rate(void **state)
{
	struct policy_rate r = { 0 };
	uint64_t quiet = 99;

	assert_true(rate_warn(&r, 5, &quiet));
	assert_true(quiet == 0);
	assert_false(rate_warn(&r, 5, &quiet));
	assert_false(rate_warn(&r, 5 + RATE_WINDOW_MS - 1, &quiet));
	assert_true(rate_warn(&r, 5 + RATE_WINDOW_MS, &quiet));
	assert_true(quiet == 2);
	assert_false(rate_warn(&r, 10 + RATE_WINDOW_MS, &quiet));
}

static void test_charge_client(void **state)
{
	struct fixture *f = *state;
	unsigned logged = 0;
	char why[256];

	assert_int_equal(set(&f->p, POLICY_MAX_BYTES_PER_CLIENT, "4K"), 0);
	assert_int_equal(set(&f->p, POLICY_MAX_BUFFERS_PER_CLIENT, "2"), 0);
	f->cam->bytes = 3072;
	f->cam->n_buffers = 1;
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 1024, 1, &logged, why, sizeof(why)),
			 0);
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 1025, 1, &logged, why, sizeof(why)),
			 -EDQUOT);
	assert_string_equal(why, "Over quota: max-bytes-per-client is 4 KiB; this connection holds "
				 "3 KiB and asks for 1025 B more");
	assert_true(logged == 1u << POLICY_MAX_BYTES_PER_CLIENT);
	f->cam->n_buffers = 2;
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 64, 1, &logged, why, sizeof(why)),
			 -EDQUOT);
	assert_string_equal(why, "Over quota: max-buffers-per-client is 2; this connection holds "
				 "2 buffers and asks for 1 more");
	/* Growing a buffer adds bytes, not buffers. */
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 64, 0, &logged, why, sizeof(why)), 0);
	/* Past 64 bits. */
	assert_int_equal(
		policy_charge(&f->p, &f->b, f->cam, UINT64_MAX, 0, &logged, why, sizeof(why)),
		-EDQUOT);
	f->cam->bytes = UINT64_MAX - 1;
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 2, 0, &logged, why, sizeof(why)),
			 -EDQUOT);
	/* Nothing asked, nothing refused, even over. */
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 0, 0, &logged, why, sizeof(why)), 0);
	f->cam->bytes = f->cam->n_buffers = 0;
}

static void test_charge_uid(void **state)
{
	struct fixture *f = *state;
	unsigned logged = 0;
	char why[256];

	assert_int_equal(parse(&f->p, "max-buffers-per-uid = 3\n"
				      "[uid 0]\n"
				      "max-buffers-per-uid = unlimited\n"),
			 0);
	f->cam->n_buffers = 2;
	f->codec->n_buffers = 1; /* the same uid */
	f->root->n_buffers = 50;
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 64, 1, &logged, why, sizeof(why)),
			 -EDQUOT);
	assert_string_equal(why, "Over quota: max-buffers-per-uid is 3 for uid 1000; its "
				 "connections hold 3 buffers and this one asks for 1 more");
	assert_int_equal(policy_charge(&f->p, &f->b, f->codec, 64, 1, &logged, why, sizeof(why)),
			 -EDQUOT);
	assert_int_equal(policy_charge(&f->p, &f->b, f->root, 64, 1, &logged, why, sizeof(why)), 0);
	f->codec->n_buffers = 0;
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 64, 1, &logged, why, sizeof(why)), 0);
	f->cam->n_buffers = f->root->n_buffers = 0;
}

/*
 * A restart's orphans count in their uid's use (they hold memory), and taking one over is
 * charged as that: the per-connection limits for what it holds, the uid's not twice.
 */
static void test_charge_orphans(void **state)
{
	struct fixture *f = *state;
	struct broker_client *o, *other;
	unsigned logged = 0;
	char why[256];

	assert_int_equal(set(&f->p, POLICY_MAX_BYTES_PER_UID, "1M"), 0);
	assert_int_equal(broker_orphan_add(&f->b, 0x5e55, 4242, 1000, 0, &o), 0);
	assert_int_equal(broker_orphan_add(&f->b, 0x0715, 4243, 1001, 0, &other), 0);
	o->bytes = 1024 * 1024;
	o->n_buffers = 1;
	other->bytes = 1024 * 1024;
	assert_int_equal(policy_charge(&f->p, &f->b, f->cam, 4096, 1, &logged, why, sizeof(why)),
			 -EDQUOT);
	assert_string_equal(why, "Over quota: max-bytes-per-uid is 1 MiB for uid 1000; its "
				 "connections hold 1 MiB and this one asks for 4 KiB more");
	/* Another uid's orphan is not this one's use. */
	assert_int_equal(policy_charge(&f->p, &f->b, f->root, 4096, 1, &logged, why, sizeof(why)),
			 0);
	/* Resuming the orphan moves its use, it does not add to it... */
	assert_int_equal(policy_resume(&f->p, &f->b, f->cam, o, &logged, why, sizeof(why)), 0);
	/* ...but what the uid holds beside it still counts. */
	f->codec->bytes = 4096;
	assert_int_equal(policy_resume(&f->p, &f->b, f->cam, o, &logged, why, sizeof(why)),
			 -EDQUOT);
	f->codec->bytes = 0;
	/* The per-connection limits apply to what it takes over. */
	assert_int_equal(set(&f->p, POLICY_MAX_BYTES_PER_CLIENT, "512K"), 0);
	assert_int_equal(policy_resume(&f->p, &f->b, f->cam, o, &logged, why, sizeof(why)),
			 -EDQUOT);
	assert_string_equal(why, "Over quota: max-bytes-per-client is 512 KiB; this connection "
				 "holds 0 B and asks for 1 MiB more");
	o->bytes = other->bytes = 0;
	o->n_buffers = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_configure),
		cmocka_unit_test(test_rate),
		cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admit_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_charge_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_charge_uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_charge_orphans, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
