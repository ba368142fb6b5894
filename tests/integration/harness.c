/* SPDX-License-Identifier: MIT */
/*
 * The integration harness (see harness.h).
 *
 * Daemons and children live in static slots, not on the tests' stacks: a failed assertion
 * leaves the test function by longjmp, and harness_teardown() must still find what it has to
 * kill. A daemon is stopped by the test itself (smhd_stop() asserts how it ended); the
 * teardown only cleans up after a failure, and prints the logs of the daemons it had to kill.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/integration/harness.h"

#define MAX_DAEMONS  4
#define MAX_CHILDREN 16

static struct smhd daemons[MAX_DAEMONS];
static pid_t children[MAX_CHILDREN];

const char *harness_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		fail_msg("%s is not set: run the tests with `meson test`", name);
	return v;
}

int64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

void assert_lacks(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle))
		fail_msg("did not expect \"%s\" in:\n%s", needle, haystack);
}

void smhctl(struct run_result *res, const char *socket, ...)
{
	char *argv[16];
	size_t n = 0;
	va_list ap;

	argv[n++] = (char *)harness_env("SMH_SMHCTL");
	argv[n++] = "--socket";
	argv[n++] = (char *)socket;
	va_start(ap, socket);
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	harness_run(res, argv);
}

void assert_status(const struct run_result *res, int status)
{
	if (res->status != status)
		fail_msg("smhctl exited with %d, expected %d; stdout:\n%s\nstderr:\n%s",
			 res->status, status, res->out, res->err);
}

/* ---------------------------------------------------------------- the daemon */

void smhd_dump_log(const struct smhd *d)
{
	char line[1024];
	FILE *f = fopen(d->log, "re");

	fprintf(stderr, "---- smhd log (%s) ----\n", d->log);
	if (!f) {
		fprintf(stderr, "(cannot open it: %s)\n", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
	fprintf(stderr, "---- end of smhd log ----\n");
}

int smhd_count_log(const struct smhd *d, const char *const *needles)
{
	char line[1024];
	FILE *f = fopen(d->log, "re");
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		bool all = true;

		for (size_t i = 0; needles[i] && all; i++)
			all = strstr(line, needles[i]) != NULL;
		n += all;
	}
	fclose(f);
	return n;
}

/* The child side of smhd_start(): never returns. */
static void exec_smhd(const struct smhd *d, const struct smhd_options *opts)
{
	const char *argv[32 + HARNESS_EXTRA_ARGS];
	size_t n = 0;
	int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (log < 0 || null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(log, STDOUT_FILENO) < 0 ||
	    dup2(log, STDERR_FILENO) < 0)
		_exit(126);
	if (opts && opts->valgrind) {
		argv[n++] = "valgrind";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite,indirect";
	}
	argv[n++] = getenv("SMH_SMHD");
	argv[n++] = "--dtb";
	argv[n++] = opts && opts->dtb ? opts->dtb : getenv("SMH_EXAMPLE_DTB");
	if (opts && opts->granule) {
		argv[n++] = "--granule";
		argv[n++] = opts->granule;
	}
	argv[n++] = "--backend";
	argv[n++] = opts && opts->backend ? opts->backend : "memfd";
	if (opts && opts->mem_path) {
		argv[n++] = "--mem-path";
		argv[n++] = opts->mem_path;
	}
	argv[n++] = "--socket";
	argv[n++] = d->socket;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (size_t i = 0; opts && opts->extra_args && opts->extra_args[i]; i++) {
		if (i == HARNESS_EXTRA_ARGS)
			_exit(125);
		argv[n++] = opts->extra_args[i];
	}
	argv[n] = NULL;
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static bool socket_accepts(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return false;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ret = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	close(fd);
	return ret == 0;
}

/* Reaps the daemon if it exited; true while it runs. */
bool smhd_alive(struct smhd *d)
{
	int status;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		fprintf(stderr, "harness: smhd exited early (wait status 0x%x)\n", status);
		d->pid = 0;
		return false;
	}
	return true;
}

static struct smhd *free_slot(void)
{
	for (size_t i = 0; i < MAX_DAEMONS; i++) {
		if (!daemons[i].in_use) {
			memset(&daemons[i], 0, sizeof(daemons[i]));
			daemons[i].in_use = true;
			return &daemons[i];
		}
	}
	fail_msg("more than %d daemons at once", MAX_DAEMONS);
	return NULL;
}

/* Runs smhd in @d's directory and waits until its socket accepts. */
static void launch(struct smhd *d, const struct smhd_options *opts)
{
	int64_t deadline;

	d->valgrind = opts && opts->valgrind;
	fflush(NULL);
	d->pid = fork();
	assert_true(d->pid >= 0);
	if (d->pid == 0)
		exec_smhd(d, opts);
	deadline = harness_now_ms() + HARNESS_WAIT_MS;
	while (!socket_accepts(d->socket)) {
		if (!smhd_alive(d) || harness_now_ms() > deadline) {
			smhd_dump_log(d);
			fail_msg("smhd did not come up on %s", d->socket);
		}
		harness_sleep_ms(20);
	}
}

struct smhd *smhd_start(const struct smhd_options *opts)
{
	struct smhd *d = free_slot();
	const char *tmp = getenv("TMPDIR");

	harness_env("SMH_SMHD");
	harness_env("SMH_EXAMPLE_DTB");
	if (snprintf(d->dir, sizeof(d->dir), "%s/smh-integ-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
	    (int)sizeof(d->dir))
		fail_msg("TMPDIR is too long for a socket path: %s", tmp);
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->socket, sizeof(d->socket), "%s/smhd.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/smhd.log", d->dir);
	launch(d, opts);
	return d;
}

void smhd_kill(struct smhd *d)
{
	assert_true(d->pid > 0);
	assert_int_equal(kill(d->pid, SIGKILL), 0);
	harness_wait_child(d->pid);
	d->pid = 0;
}

void smhd_restart(struct smhd *d, const struct smhd_options *opts)
{
	assert_true(d->in_use && d->pid == 0);
	launch(d, opts);
}

static void remove_dir(struct smhd *d)
{
	static const char *const state_files[] = { "smhd.state", "smhd.state.new", "smhd.state.old",
						   "smhd.lock", "smhd.keeper" };
	char path[200];

	for (size_t i = 0; i < sizeof(state_files) / sizeof(state_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->dir, state_files[i]);
		unlink(path);
	}
	unlink(d->log);
	unlink(d->socket);
	rmdir(d->dir);
	d->in_use = false;
}

void smhd_stop(struct smhd *d)
{
	struct stat st;
	int status;

	assert_true(d->pid > 0);
	assert_int_equal(kill(d->pid, SIGTERM), 0);
	status = harness_wait_child(d->pid);
	d->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		smhd_dump_log(d);
		if (WIFSIGNALED(status))
			fail_msg("smhd died of signal %d", WTERMSIG(status));
		fail_msg("smhd exited with status %d", WEXITSTATUS(status));
	}
	if (lstat(d->socket, &st) == 0) {
		smhd_dump_log(d);
		fail_msg("smhd left its socket %s behind", d->socket);
	}
	remove_dir(d);
}

int smhd_count_fds(const struct smhd *d)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	assert_non_null(dir);
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* Prints what each of the daemon's fds links to. */
static void list_fds(const struct smhd *d)
{
	char path[64], entry[600], target[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name);
		n = readlink(entry, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
	}
	closedir(dir);
}

void smhd_wait_fds(const struct smhd *d, int n)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;
	int have;

	while ((have = smhd_count_fds(d)) != n) {
		if (harness_now_ms() > deadline) {
			fprintf(stderr, "smhd's fds:\n");
			list_fds(d);
			fail_msg("smhd has %d fds open, expected %d", have, n);
		}
		harness_sleep_ms(10);
	}
}

/* The daemon's fds, and how many of them are sockets. */
static int count_fds(const struct smhd *d, int *n_socketsp)
{
	char path[64], entry[600], target[PATH_MAX];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	*n_socketsp = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	assert_non_null(dir);
	while ((e = readdir(dir))) {
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		n++;
		snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name);
		len = readlink(entry, target, sizeof(target) - 1);
		if (len > 0 && strncmp(target, "socket:", 7) == 0)
			(*n_socketsp)++;
	}
	closedir(dir);
	return n;
}

int smhd_settled_fds(const struct smhd *d, struct smh_client *c)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;
	int n, n_sockets;
	uint32_t n_clients;

	for (;;) {
		n_clients = harness_n_clients(c);
		n = count_fds(d, &n_sockets);
		if ((uint32_t)n_sockets == n_clients + 1)
			return n;
		if (harness_now_ms() > deadline) {
			fprintf(stderr, "smhd's fds:\n");
			list_fds(d);
			fail_msg("smhd has %d sockets for %u clients", n_sockets, n_clients);
		}
		harness_sleep_ms(10);
	}
}

bool smhd_has_fd_to(const struct smhd *d, const char *needle)
{
	char path[64], entry[600], target[PATH_MAX];
	struct dirent *e;
	bool found = false;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	assert_non_null(dir);
	while (!found && (e = readdir(dir))) {
		ssize_t n;

		snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name);
		n = readlink(entry, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strstr(target, needle) != NULL;
	}
	closedir(dir);
	return found;
}

struct smh_client *harness_connect(const struct smhd *d)
{
	struct smh_client *c = NULL;
	int err = smh_connect(d->socket, &c);

	if (err < 0)
		fail_msg("smh_connect(%s): %s", d->socket, smh_strerror(err));
	return c;
}

/* ---------------------------------------------------------------- children and teardown */

void harness_track_child(pid_t pid)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] == 0) {
			children[i] = pid;
			return;
		}
	}
	fail_msg("more than %d children at once", MAX_CHILDREN);
}

static void untrack_child(pid_t pid)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

int harness_wait_child(pid_t pid)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS * 2;
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			untrack_child(pid);
			fail_msg("process %d did not exit: killed it", (int)pid);
		}
		harness_sleep_ms(10);
	}
	assert_int_equal(r, pid);
	untrack_child(pid);
	return status;
}

void harness_assert_child_ok(pid_t pid)
{
	int status = harness_wait_child(pid);

	if (WIFSIGNALED(status))
		fail_msg("child %d died of signal %d", (int)pid, WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("child %d failed its check number %d", (int)pid, WEXITSTATUS(status));
}

int harness_teardown(void **state)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
	for (size_t i = 0; i < MAX_DAEMONS; i++) {
		struct smhd *d = &daemons[i];

		if (!d->in_use)
			continue;
		if (d->pid > 0) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->pid = 0;
		}
		smhd_dump_log(d);
		remove_dir(d);
	}
	return 0;
}

/* ---------------------------------------------------------------- statistics */

uint64_t harness_used(struct smh_client *c)
{
	struct smh_stats st;
	uint64_t used = 0;

	assert_int_equal(smh_get_stats(c, &st), 0);
	for (size_t i = 0; i < st.n_regions; i++)
		used += st.regions[i].used;
	smh_stats_finish(&st);
	return used;
}

void harness_wait_scrubbed(struct smh_client *c)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;
	uint64_t bytes, blocks;

	for (;;) {
		assert_int_equal(smh_get_scrubbing(c, &bytes, &blocks), 0);
		if (bytes == 0 && blocks == 0)
			return;
		if (harness_now_ms() > deadline)
			fail_msg("smhd still scrubs %llu bytes in %llu blocks",
				 (unsigned long long)bytes, (unsigned long long)blocks);
		harness_sleep_ms(5);
	}
}

uint32_t harness_n_clients(struct smh_client *c)
{
	struct smh_stats st;
	uint32_t n;

	assert_int_equal(smh_get_stats(c, &st), 0);
	n = st.n_clients;
	smh_stats_finish(&st);
	return n;
}

uint64_t harness_region_used(struct smh_client *c, uint32_t region)
{
	struct smh_stats st;
	uint64_t used = UINT64_MAX;

	assert_int_equal(smh_get_stats(c, &st), 0);
	for (size_t i = 0; i < st.n_regions; i++)
		if (st.regions[i].region == region)
			used = st.regions[i].used;
	smh_stats_finish(&st);
	assert_true(used != UINT64_MAX);
	return used;
}

void harness_wait_usage(struct smh_client *c, uint64_t used, uint32_t n_clients)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;

	for (;;) {
		uint64_t u = harness_used(c);
		uint32_t n = harness_n_clients(c);

		if (u == used && n == n_clients)
			break;
		if (harness_now_ms() > deadline)
			fail_msg(
				"smhd reports %llu bytes used and %u clients, expected %llu and %u",
				(unsigned long long)u, n, (unsigned long long)used, n_clients);
		harness_sleep_ms(10);
	}
}

bool harness_find_alloc(struct smh_client *c, uint64_t handle, struct alloc_view *out)
{
	struct smh_alloc_info *allocs;
	bool found = false;
	size_t n;

	assert_int_equal(smh_list_allocs(c, &allocs, &n), 0);
	for (size_t i = 0; i < n && !found; i++) {
		if (allocs[i].handle != handle)
			continue;
		found = true;
		memset(out, 0, sizeof(*out));
		out->size = allocs[i].size;
		out->phys_addr = allocs[i].phys_addr;
		out->owner = allocs[i].owner;
		out->shared = allocs[i].shared;
		out->n_holders = allocs[i].n_holders;
		assert_true(out->n_holders <= 8);
		memcpy(out->holders, allocs[i].holders, out->n_holders * sizeof(uint64_t));
	}
	smh_allocs_free(allocs, n);
	return found;
}

/* ---------------------------------------------------------------- patterns */

static unsigned char pattern_byte(size_t i, unsigned seed)
{
	return (unsigned char)(((i + seed * 7919u) * 131u + 17u) % 251u + 1u);
}

void pattern_fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = pattern_byte(i, seed);
}

bool pattern_check(const void *p, size_t n, unsigned seed)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern_byte(i, seed))
			return false;
	return true;
}

bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---------------------------------------------------------------- programs */

static void slurp(FILE *f, char *buf, size_t size)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

void harness_run(struct run_result *res, char *const argv[])
{
	FILE *out = tmpfile(), *err = tmpfile();
	int status;
	pid_t pid;

	assert_non_null(out);
	assert_non_null(err);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
		    dup2(fileno(out), STDOUT_FILENO) < 0 || dup2(fileno(err), STDERR_FILENO) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	harness_track_child(pid);
	status = harness_wait_child(pid);
	slurp(out, res->out, sizeof(res->out));
	slurp(err, res->err, sizeof(res->err));
	if (!WIFEXITED(status))
		fail_msg("%s died of signal %d; stderr:\n%s", argv[0], WTERMSIG(status), res->err);
	res->status = WEXITSTATUS(status);
}
