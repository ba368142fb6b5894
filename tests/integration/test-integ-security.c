/* SPDX-License-Identifier: MIT */
/*
 * What a peer may not do to the other side (the security items of the client and smhctl):
 *
 * - A client names itself with PR_SET_NAME as a terminal escape: `smhctl clients` and smhd's
 *   log show it escaped (\x1b...), never the raw bytes; the JSON output escapes it as JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

/* ---------------------------------------------------------------- terminal escapes */

/* A command name that retitles the terminal and clears it when printed raw (14 bytes). */
static const char escape_name[] = "\033]0;owned\a\033[2J";

/*
 * A child named @name, connected to @d; it tells @ready when connected and leaves when @stop
 * closes. Returns its pid.
 */
static pid_t named_client(const struct smhd *d, const char *name, int *stopp)
{
	int ready[2], stop[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *client = NULL;

		close(ready[0]);
		close(stop[1]);
		if (prctl(PR_SET_NAME, name) < 0)
			_exit(1);
		if (smh_connect(d->socket, &client) < 0)
			_exit(2);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		while (read(stop[0], &c, 1) > 0)
			;
		smh_disconnect(client);
		_exit(0);
	}
	harness_track_child(pid);
	close(ready[1]);
	close(stop[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*stopp = stop[1];
	return pid;
}

/* Whether file @path holds byte @b. */
static bool file_has_byte(const char *path, int b)
{
	FILE *f = fopen(path, "re");
	int c;

	assert_non_null(f);
	while ((c = getc(f)) != EOF && c != b)
		;
	fclose(f);
	return c == b;
}

static void test_escaped_names(void **state)
{
	static const char *const log_needles[] = { "\\x1b]0;owned\\x07\\x1b[2J", NULL };
	struct smhd *d = smhd_start(NULL);
	struct run_result *res = malloc(sizeof(*res));
	char *argv[] = { (char *)harness_env("SMH_SMHCTL"), "--socket", d->socket, "clients",
			 NULL };
	char *argv_json[] = { argv[0], "--socket", d->socket, "--json", "clients", NULL };
	int stop;
	pid_t pid;

	(void)state;
	assert_non_null(res);
	pid = named_client(d, escape_name, &stop);

	harness_run(res, argv);
	assert_int_equal(res->status, 0);
	assert_null(strchr(res->out, '\033'));
	assert_null(strchr(res->out, '\a'));
	assert_contains(res->out, "\\x1b]0;owned\\x07\\x1b[2J");

	/* JSON escapes control characters by its own rules. */
	harness_run(res, argv_json);
	assert_int_equal(res->status, 0);
	assert_null(strchr(res->out, '\033'));
	assert_contains(res->out, "\"\\u001b]0;owned\\u0007\\u001b[2J\"");

	close(stop);
	harness_assert_child_ok(pid);
	/* smhd logged the client's connection (debug) and departure: escaped, never raw. */
	assert_true(smhd_count_log(d, log_needles) >= 1);
	assert_false(file_has_byte(d->log, '\033'));
	free(res);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_escaped_names, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
