/* SPDX-License-Identifier: MIT */
/*
 * smhd itself under valgrind (--error-exitcode=99, definite and indirect leaks are errors):
 * allocations, a realloc, an export imported by a second connection, a garbage datagram, a
 * SIGKILLed client, then SIGTERM while a client still holds a buffer. The daemon must exit
 * with status 0: no memory error, no leak, on the paths that release memory for others.
 *
 * Skipped in sanitized builds (AddressSanitizer and valgrind do not mix): the valgrind pass
 * of tools/run-tests, built without sanitizers, runs it.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

static bool valgrind_installed(void)
{
	const char *path = getenv("PATH");
	char dir[4096], exe[4200];

	snprintf(dir, sizeof(dir), "%s", path ? path : "/usr/bin:/bin");
	for (char *save, *p = strtok_r(dir, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		snprintf(exe, sizeof(exe), "%s/valgrind", p);
		if (access(exe, X_OK) == 0)
			return true;
	}
	return false;
}

/* A connection that sends bytes that are no request, and is dropped for it. */
static void garbage_client(const struct smhd *d)
{
	static const unsigned char junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x07, 0x00, 0x42 };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	char reply[64];
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	memcpy(addr.sun_path, d->socket, strlen(d->socket) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(send(s, junk, sizeof(junk), MSG_NOSIGNAL), sizeof(junk));
	pfd.fd = s;
	assert_int_equal(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
	assert_true(recv(s, reply, sizeof(reply), 0) <= 0);
	close(s);
}

/* A child that allocates, says so, and is killed holding its buffers. */
static void killed_client(const struct smhd *d)
{
	int ready[2];
	char b;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *c;
		struct smh_buffer x, y;

		close(ready[0]);
		if (smh_connect(d->socket, &c) < 0 ||
		    smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 300, 0, &x) < 0 ||
		    smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 4000, 0, &y) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	harness_track_child(pid);
	close(ready[1]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	harness_wait_child(pid);
}

/* The daemon's process is valgrind's tool, not smhd running bare. */
static void assert_under_valgrind(const struct smhd *d)
{
	char path[64], exe[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)d->pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_contains(exe, "memcheck");
}

static void test_daemon_under_valgrind(void **state)
{
	const char *sanitized = getenv("SMH_SANITIZED");
	struct smhd_options opts = { .valgrind = true };
	struct smh_buffer a, b, imported;
	struct smh_client *c, *other;
	struct smhd *d;
	uint64_t token;

	if (sanitized && strcmp(sanitized, "0") != 0) {
		print_message("sanitized build: the valgrind pass runs this test\n");
		skip();
	}
	if (!valgrind_installed()) {
		print_message("valgrind is not installed\n");
		skip();
	}
	d = smhd_start(&opts);
	assert_under_valgrind(d);
	c = harness_connect(d);
	other = harness_connect(d);

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 1000, 0, &a), 0);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 2000, 256, &b), 0);
	assert_int_equal(smh_map(&a), 0);
	pattern_fill(a.addr, 1000, 80);
	assert_int_equal(smh_realloc(c, &a, 3000), 0);
	assert_true(pattern_check(a.addr, 1000, 80));
	assert_int_equal(smh_export(c, &b, &token), 0);
	assert_int_equal(smh_import(other, token, &imported), 0);
	assert_int_equal(smh_free(c, &b), 0);
	assert_int_equal(smh_free(c, &b), -EINVAL);
	assert_int_equal(smh_import(other, token ^ 1, &b), -ENOENT);

	garbage_client(d);
	killed_client(d);
	/* The killed client's memory comes back; the shared buffer is the importer's now. */
	harness_wait_usage(c, a.size + imported.size, 2);

	/* One connection leaves holding a shared buffer, the other frees. */
	smh_disconnect(other);
	assert_int_equal(smh_free(c, &a), 0);
	harness_wait_usage(c, 0, 1);

	/* SIGTERM with a client still connected and holding a buffer. */
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 128, 0, &a), 0);
	smhd_stop(d);
	smh_disconnect(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_daemon_under_valgrind, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
