/* SPDX-License-Identifier: MIT */
/*
 * The daemon as a service: its socket (mode, a stale file left by a killed daemon, a live
 * daemon already there, a path that is not a socket), its regions' fds (sealed: no client can
 * shrink them under the daemon), and a region whose allocator starts well after its first
 * byte (a large granule on an unaligned region), whose buffers the library must accept and map.
 * A SIGTERM sent the moment the socket accepts stops the daemon cleanly.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

/* Runs smhd on @socket in the foreground and returns its run result (it must exit by itself). */
static void run_smhd(struct run_result *res, const char *socket)
{
	char *argv[] = { (char *)harness_env("SMH_SMHD"),
			 "--dtb",
			 (char *)harness_env("SMH_EXAMPLE_DTB"),
			 "--backend",
			 "memfd",
			 "--socket",
			 (char *)socket,
			 NULL };

	harness_run(res, argv);
}

static void test_socket_mode_and_live_daemon(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct run_result *res = malloc(sizeof(*res));
	struct smh_client *c;
	struct stat st;

	assert_non_null(res);
	assert_int_equal(stat(d->socket, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	/* A second daemon on a live socket refuses to start and leaves the first alone. */
	run_smhd(res, d->socket);
	assert_int_equal(res->status, 1);
	assert_contains(res->err, "Another smhd is listening on");
	assert_true(smhd_alive(d));
	c = harness_connect(d);
	smh_disconnect(c);
	free(res);
	smhd_stop(d);
}

static void test_stale_socket_replaced(void **state)
{
	char dir[] = "/tmp/smh-stale-XXXXXX";
	char path[128];
	struct run_result *res = malloc(sizeof(*res));
	pid_t pid;

	assert_non_null(res);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);

	/* A path that is not a socket is never removed. */
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	run_smhd(res, path);
	assert_int_equal(res->status, 1);
	assert_contains(res->err, "exists and is not a socket");
	unlink(path);

	/* A socket file nobody listens on (a daemon killed with SIGKILL) is replaced. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(harness_env("SMH_SMHD"), "smhd", "--dtb", harness_env("SMH_EXAMPLE_DTB"),
		      "--backend", "memfd", "--socket", path, "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	harness_track_child(pid);
	{
		struct stat st;

		WAIT_UNTIL(stat(path, &st) == 0 && S_ISSOCK(st.st_mode),
			   "the first daemon's socket");
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	harness_wait_child(pid);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(harness_env("SMH_SMHD"), "smhd", "--dtb", harness_env("SMH_EXAMPLE_DTB"),
		      "--backend", "memfd", "--socket", path, "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	harness_track_child(pid);
	{
		struct smh_client *c = NULL;

		WAIT_UNTIL(smh_connect(path, &c) == 0, "the second daemon to accept");
		assert_int_equal(smh_granule(c), 64);
		smh_disconnect(c);
	}
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(harness_wait_child(pid), 0);
	assert_int_equal(access(path, F_OK), -1); /* removed at clean exit */
	rmdir(dir);
	free(res);
}

/*
 * The harness counts smhd as up as soon as its socket accepts; a SIGTERM sent then must meet
 * the daemon's handler (a clean exit, the socket removed), not the default action. The window
 * was a few microseconds wide, so this repeats the start and stop.
 */
static void test_stop_as_soon_as_it_accepts(void **state)
{
	(void)state;
	for (int i = 0; i < 25; i++)
		smhd_stop(smhd_start(NULL)); /* asserts exit status 0 and no socket left */
}

/*
 * The same for SIGUSR1, the unit's KillSignal= (stop for a restart, keeping the buffers): sent
 * as soon as the socket accepts, it must stop smhd cleanly, not kill it by its default action;
 * the next smhd starts from what it kept.
 */
static void test_restart_signal_as_soon_as_it_accepts(void **state)
{
	(void)state;
	for (int i = 0; i < 25; i++) {
		struct smhd *d = smhd_start(NULL);
		int status;

		assert_int_equal(kill(d->pid, SIGUSR1), 0);
		status = harness_wait_child(d->pid);
		d->pid = 0;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			smhd_dump_log(d);
			fail_msg("smhd ended with wait status %#x at SIGUSR1 (start %d)", status,
				 i);
		}
		smhd_restart(d, NULL);
		smhd_stop(d);
	}
}

/* Clients get the regions' memfds read-write; sealed, none can shrink or grow them. */
static void test_region_fds_are_sealed(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b;

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &b), 0);
	assert_int_equal(ftruncate(b.fd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(b.fd, 1 << 20), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(b.fd, F_ADD_SEALS, F_SEAL_WRITE), -1); /* F_SEAL_SEAL is set */
	/* The daemon scrubs the block at free: still alive, still serving. */
	assert_int_equal(smh_free(c, &b), 0);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &b), 0);
	assert_int_equal(smh_free(c, &b), 0);
	smh_disconnect(c);
	assert_true(smhd_alive(d));
	smhd_stop(d);
}

/*
 * tests/dt/good-unaligned.dts: region "odd" at 0x42001010, 256 KiB; with a 64 KiB granule the
 * allocator's first block is at 0x42010000 and the last at 0x42030000.
 */
static void test_region_with_unaligned_start(void **state)
{
	char dtb[512];
	struct smhd_options opts = { .dtb = dtb, .granule = "64K" };
	struct smhd *d;
	struct smh_client *c;
	struct smh_buffer b[3];
	uint64_t expect[3] = { 0x42010000, 0x42020000, 0x42030000 };

	snprintf(dtb, sizeof(dtb), "%s/good-unaligned.dtb", harness_env("SMH_TEST_DTB_DIR"));
	d = smhd_start(&opts);
	c = harness_connect(d);
	for (int i = 0; i < 3; i++) {
		int err = smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 65536, 0, &b[i]);

		if (err < 0)
			fail_msg("alloc %d: %s (%s)", i, smh_strerror(err), smh_last_error(c));
		assert_string_equal(b[i].region, "odd");
		assert_int_equal(smh_map(&b[i]), 0);
		assert_true(all_zero(b[i].addr, 65536));
		pattern_fill(b[i].addr, 65536, (unsigned)i);
	}
	/* Physical order is not promised inside a region: compare as sets. */
	for (int i = 0; i < 3; i++) {
		int found = 0;

		for (int j = 0; j < 3; j++)
			found += b[j].phys_addr == expect[i];
		assert_int_equal(found, 1);
	}
	for (int i = 0; i < 3; i++) {
		assert_true(pattern_check(b[i].addr, 65536, (unsigned)i));
		assert_int_equal(smh_free(c, &b[i]), 0);
	}
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 65536, 0, &b[0]), 0);
	assert_int_equal(smh_free(c, &b[0]), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_socket_mode_and_live_daemon, harness_teardown),
		cmocka_unit_test_teardown(test_stale_socket_replaced, harness_teardown),
		cmocka_unit_test_teardown(test_stop_as_soon_as_it_accepts, harness_teardown),
		cmocka_unit_test_teardown(test_restart_signal_as_soon_as_it_accepts,
					  harness_teardown),
		cmocka_unit_test_teardown(test_region_fds_are_sealed, harness_teardown),
		cmocka_unit_test_teardown(test_region_with_unaligned_start, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
