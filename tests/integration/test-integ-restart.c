/* SPDX-License-Identifier: MIT */
/*
 * Restart without loss (docs/restart.md), for both backends: clients hold mapped buffers with
 * patterns (one of them exported and imported by a second connection), another process holds
 * buffers too; smhd is killed with SIGKILL, that process dies while the daemon is down, and
 * smhd starts again on the same socket and state directory. Then:
 * - the clients' next calls reconnect and resume: they hold their buffers again (the shared
 *   one with both holders), at the same addresses, with their bytes intact;
 * - the dead process's buffers are released after the grace period: bytes in use fall to
 *   exactly the survivors' bytes;
 * - new allocations by another client never overlap a held buffer, read zero, and get
 *   handles above every handle of the first daemon;
 * - a clean SIGTERM leaves no state and no keeper: the next daemon starts empty.
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

/* Above the example's highest address (res2 ends at 0x44003000). */
#define MEM_SIZE 0x44004000

enum { N_HELD = 3, N_CHILD = 2 };

static const size_t held_sizes[N_HELD] = { 1000, 3000, 200 };
static const enum smh_reg_attr held_attrs[N_HELD] = { SMH_REG_ATTR_CACHEABLE,
						      SMH_REG_ATTR_NON_CACHEABLE,
						      SMH_REG_ATTR_CACHEABLE };

static char mem_path[128];

static int restart_teardown(void **state)
{
	harness_teardown(state);
	if (mem_path[0])
		unlink(mem_path);
	mem_path[0] = '\0';
	return 0;
}

/* The devmem backend's "physical memory": a sparse file. */
static void make_mem_file(void)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(mem_path, sizeof(mem_path), "%s/smh-restart-mem-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(mem_path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MEM_SIZE), 0);
	close(fd);
}

/* A process holding N_CHILD buffers with patterns, which says "ready" and waits to be killed. */
static pid_t holder_child(const struct smhd *d, uint64_t *bytesp, uint64_t *max_handlep)
{
	int pfd[2];
	uint64_t msg[2];
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *c = NULL;
		struct smh_buffer b;
		uint64_t out[2] = { 0, 0 };

		close(pfd[0]);
		if (smh_connect(d->socket, &c) < 0)
			_exit(1);
		for (int i = 0; i < N_CHILD; i++) {
			if (smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 500 + 100 * (size_t)i, 0, &b) <
				    0 ||
			    smh_map(&b) < 0)
				_exit(2);
			pattern_fill(b.addr, b.size, 100 + (unsigned)i);
			out[0] += b.size;
			out[1] = b.handle;
		}
		if (write(pfd[1], out, sizeof(out)) != sizeof(out))
			_exit(3);
		for (;;)
			pause();
	}
	harness_track_child(pid);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], msg, sizeof(msg)), sizeof(msg));
	close(pfd[0]);
	*bytesp = msg[0];
	*max_handlep = msg[1];
	return pid;
}

static bool overlaps(const struct smh_buffer *a, const struct smh_buffer *b)
{
	return a->phys_addr < b->phys_addr + b->size && b->phys_addr < a->phys_addr + a->size;
}

/* Allocates everything that is left, in 64..4096-byte pieces, checking each; frees it all. */
static void fill_the_rest(struct smh_client *c, const struct smh_buffer *held, size_t n_held,
			  uint64_t max_old_handle)
{
	enum { MAX = 1024 };
	struct smh_buffer *got = calloc(MAX, sizeof(*got));
	size_t n = 0;

	assert_non_null(got);
	for (int attr = 0; attr < SMH_REG_ATTR_NUM; attr++) {
		for (size_t size = 4096; size >= 64; size /= 2) {
			while (n < MAX &&
			       smh_alloc(c, (enum smh_reg_attr)attr, size, 0, &got[n]) == 0) {
				assert_int_equal(smh_map(&got[n]), 0);
				assert_true(all_zero(got[n].addr, got[n].size));
				assert_true(got[n].handle > max_old_handle);
				for (size_t i = 0; i < n_held; i++)
					if (overlaps(&got[n], &held[i]))
						fail_msg("new buffer 0x%llx+%llu overlaps held "
							 "0x%llx",
							 (unsigned long long)got[n].phys_addr,
							 (unsigned long long)got[n].size,
							 (unsigned long long)held[i].phys_addr);
				n++;
			}
		}
	}
	assert_true(n > 0 && n < MAX);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(smh_free(c, &got[i]), 0);
	free(got);
}

static bool holds(struct smh_client *c, uint64_t handle, uint64_t client_id)
{
	struct alloc_view v;

	if (!harness_find_alloc(c, handle, &v))
		return false;
	for (size_t i = 0; i < v.n_holders; i++)
		if (v.holders[i] == client_id)
			return true;
	return false;
}

static void restart_keeps_buffers(const struct smhd_options *opts)
{
	struct smhd *d = smhd_start(opts);
	struct smh_client *a = harness_connect(d), *b = harness_connect(d), *obs;
	struct smh_buffer held[N_HELD], imported;
	uint64_t token, held_bytes = 0, child_bytes, max_handle, child_max;
	void *addrs[N_HELD];
	pid_t child;

	for (int i = 0; i < N_HELD; i++) {
		assert_int_equal(smh_alloc(a, held_attrs[i], held_sizes[i], 0, &held[i]), 0);
		assert_int_equal(smh_map(&held[i]), 0);
		pattern_fill(held[i].addr, held[i].size, (unsigned)i + 1);
		addrs[i] = held[i].addr;
		held_bytes += held[i].size;
	}
	assert_int_equal(smh_export(a, &held[0], &token), 0);
	assert_int_equal(smh_import(b, token, &imported), 0);
	assert_int_equal(smh_map(&imported), 0);
	child = holder_child(d, &child_bytes, &child_max);
	max_handle = child_max > held[N_HELD - 1].handle ? child_max : held[N_HELD - 1].handle;

	/* The daemon dies; so does the child, while no daemon runs. */
	smhd_kill(d);
	assert_int_equal(kill(child, SIGKILL), 0);
	harness_wait_child(child);
	smhd_restart(d, opts);

	/* The first call after the restart reconnects and resumes. */
	assert_true(harness_used(a) >= held_bytes);
	assert_true(harness_used(b) >= held_bytes);
	for (int i = 0; i < N_HELD; i++) {
		assert_ptr_equal(held[i].addr, addrs[i]);
		assert_true(pattern_check(held[i].addr, held[i].size, (unsigned)i + 1));
		assert_true(holds(a, held[i].handle, smh_client_id(a)));
	}
	assert_true(holds(a, held[0].handle, smh_client_id(b)));
	assert_true(pattern_check(imported.addr, imported.size, 1));

	/* The dead child's buffers go after the grace period: exactly the survivors' remain. */
	obs = harness_connect(d);
	harness_wait_usage(obs, held_bytes, 3);
	fill_the_rest(obs, held, N_HELD, max_handle);
	for (int i = 0; i < N_HELD; i++)
		assert_true(pattern_check(held[i].addr, held[i].size, (unsigned)i + 1));

	/* The buffers work as before: shared one freed by both, the others by their holder. */
	assert_int_equal(smh_free(b, &imported), 0);
	assert_int_equal(smh_free(b, &imported), -EINVAL);
	for (int i = 0; i < N_HELD; i++)
		assert_int_equal(smh_free(a, &held[i]), 0);
	harness_wait_usage(obs, 0, 3);
	smh_disconnect(a);
	smh_disconnect(b);
	smh_disconnect(obs);
	smhd_stop(d);
}

static const char *const grace_args[] = { "--reclaim-grace", "1", NULL };

static const struct smhd_options memfd_opts = {
	.backend = "memfd",
	.extra_args = grace_args,
};

static void test_restart_memfd(void **state)
{
	restart_keeps_buffers(&memfd_opts);
}

static void test_restart_devmem(void **state)
{
	struct smhd_options opts = {
		.backend = "devmem",
		.extra_args = grace_args,
	};

	make_mem_file();
	opts.mem_path = mem_path;
	restart_keeps_buffers(&opts);
}

static bool log_contains(const struct smhd *d, const char *needle)
{
	static char log[65536];
	FILE *f = fopen(d->log, "re");
	size_t n = f ? fread(log, 1, sizeof(log) - 1, f) : 0;

	if (f)
		fclose(f);
	log[n] = '\0';
	return strstr(log, needle) != NULL;
}

/* A process still alive keeps its buffers past the grace period, even without reconnecting. */
static void test_idle_live_client_kept(void **state)
{
	struct smhd *d = smhd_start(&memfd_opts);
	struct smh_client *a = harness_connect(d), *obs;
	struct smh_buffer buf;

	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 256, 0, &buf), 0);
	smhd_kill(d);
	smhd_restart(d, &memfd_opts);
	obs = harness_connect(d);
	/* Past one grace period (the daemon logs it), the buffer is still held. */
	WAIT_UNTIL(log_contains(d, "Keeping the buffers of 1 session"), "the grace period to pass");
	assert_int_equal(harness_used(obs), buf.size);
	/* Its next call resumes it. */
	assert_int_equal(smh_free(a, &buf), 0);
	harness_wait_usage(obs, 0, 2);
	smh_disconnect(a);
	smh_disconnect(obs);
	smhd_stop(d);
}

/* SIGTERM releases everything: no state file, no keeper, and the next daemon starts empty. */
static void test_clean_stop_leaves_nothing(void **state)
{
	struct smhd *d = smhd_start(&memfd_opts);
	struct smh_client *a = harness_connect(d);
	struct smh_buffer buf;
	char path[200];
	int status;

	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 256, 0, &buf), 0);
	snprintf(path, sizeof(path), "%s/smhd.state", d->dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(kill(d->pid, SIGTERM), 0);
	status = harness_wait_child(d->pid);
	d->pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/smhd.keeper", d->dir);
	assert_int_equal(access(path, F_OK), -1);
	smh_disconnect(a);

	smhd_restart(d, &memfd_opts);
	a = harness_connect(d);
	assert_int_equal(harness_used(a), 0);
	smh_disconnect(a);
	smhd_stop(d);
}

/*
 * A daemon that comes back without a connection's buffers (here: its state file is gone):
 * the client must not go on mapping memory that may now be someone else's. Every call on it
 * returns -ESTALE; a new connection works, and gets the memory zeroed.
 */
static void test_lost_state_is_stale(void **state)
{
	struct smhd *d = smhd_start(&memfd_opts);
	struct smh_client *a = harness_connect(d), *b;
	struct smh_buffer buf, other;
	char path[200];

	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 256, 0, &buf), 0);
	smhd_kill(d);
	snprintf(path, sizeof(path), "%s/smhd.state", d->dir);
	assert_int_equal(unlink(path), 0);
	smhd_restart(d, &memfd_opts);
	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 64, 0, &other), -ESTALE);
	assert_int_equal(smh_free(a, &buf), -ESTALE);
	smh_disconnect(a);
	b = harness_connect(d);
	assert_int_equal(harness_used(b), 0);
	assert_int_equal(smh_alloc(b, SMH_REG_ATTR_CACHEABLE, 256, 0, &other), 0);
	assert_int_equal(smh_map(&other), 0);
	assert_true(all_zero(other.addr, 256));
	smh_disconnect(b);
	smhd_stop(d);
}

/*
 * A state directory others may write to could hold a planted keeper socket or state file:
 * named explicitly it is refused; as the socket's directory (the default) smhd serves without
 * state, and says so.
 */
static void test_unsafe_state_dir(void **state)
{
	char dir[] = "/tmp/smh-unsafe-XXXXXX", sock[128];
	struct run_result *res = malloc(sizeof(*res));
	char *argv[] = { (char *)harness_env("SMH_SMHD"),
			 "--dtb",
			 (char *)harness_env("SMH_EXAMPLE_DTB"),
			 "--backend",
			 "memfd",
			 "--socket",
			 sock,
			 "--state-dir",
			 dir,
			 NULL };

	assert_non_null(res);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 01777), 0);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	harness_run(res, argv);
	assert_int_equal(res->status, 1);
	assert_contains(res->err, "that nobody else may write to");
	assert_int_equal(access(sock, F_OK), -1);
	{
		pid_t pid = fork();
		struct smh_client *c = NULL;
		char log[160];
		FILE *f;

		assert_true(pid >= 0);
		if (pid == 0) {
			snprintf(log, sizeof(log), "%s/log", dir);
			if (!freopen(log, "w", stderr))
				_exit(126);
			execl(argv[0], "smhd", "--dtb", argv[2], "--backend", "memfd", "--socket",
			      sock, "--allow-shared-socket-dir", (char *)NULL);
			_exit(127);
		}
		harness_track_child(pid);
		WAIT_UNTIL(smh_connect(sock, &c) == 0, "smhd serving without state");
		smh_disconnect(c);
		assert_int_equal(kill(pid, SIGTERM), 0);
		assert_int_equal(harness_wait_child(pid), 0);
		snprintf(log, sizeof(log), "%s/log", dir);
		f = fopen(log, "r");
		assert_non_null(f);
		res->err[fread(res->err, 1, sizeof(res->err) - 1, f)] = '\0';
		fclose(f);
		assert_contains(res->err, "Restart without loss is off");
		unlink(log);
	}
	rmdir(dir);
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_restart_memfd, restart_teardown),
		cmocka_unit_test_teardown(test_restart_devmem, restart_teardown),
		cmocka_unit_test_teardown(test_idle_live_client_kept, restart_teardown),
		cmocka_unit_test_teardown(test_clean_stop_leaves_nothing, restart_teardown),
		cmocka_unit_test_teardown(test_lost_state_is_stale, restart_teardown),
		cmocka_unit_test_teardown(test_unsafe_state_dir, restart_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
