/* SPDX-License-Identifier: MIT */
/*
 * What a peer may not do to the other side (the security items of the client and smhctl):
 *
 * - An impostor: after smhd stopped cleanly, a process of another uid (nobody) binds the same
 *   path in a directory others may write to. A client that reconnects refuses it with -EPERM
 *   before sending anything (no session secret, no re-sent import token) and takes none of its
 *   fds; with $SMH_SERVER_UID set, a first connection to it is refused the same way.
 * - smhd refuses to create its socket in a directory others may write to.
 * - A stopped daemon: a call returns -ETIMEDOUT once the client's time-out passes, and the
 *   client stays dead after the daemon resumes (its buffer held and mapped until disconnect);
 *   smhctl exits 1 naming the socket.
 * - A client names itself with PR_SET_NAME as a terminal escape: `smhctl clients` and smhd's
 *   log show it escaped (\x1b...), never the raw bytes; the JSON output escapes it as JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

/* ---------------------------------------------------------------- impostor */

#define NOBODY 65534

/* The impostor's memfd: the client must never hold it. */
#define IMPOSTOR_MEMFD "smh-impostor"

/* Sends @fd on @s with a few bytes, as a daemon's reply would carry it; errors ignored. */
static void send_fd(int s, int fd)
{
	char byte = 0, control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control,
			    .msg_controllen = sizeof(control) };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&m);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	(void)sendmsg(s, &m, MSG_NOSIGNAL);
}

/*
 * The impostor's life, as uid nobody: listen at @path, tell @ready, accept one connection,
 * offer it a memfd at once, and report on @result how many bytes the client sent before it
 * hung up (or -1). Never returns.
 */
static void impostor(const char *path, int ready, int result)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	unsigned char buf[4096];
	long long total = 0;
	int s, c, memfd;
	ssize_t n;

	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		_exit(10);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s, 4) < 0)
		_exit(11);
	if (write(ready, "r", 1) != 1)
		_exit(12);
	pfd.fd = s;
	if (poll(&pfd, 1, HARNESS_WAIT_MS) != 1 || (c = accept(s, NULL, NULL)) < 0)
		_exit(13);
	memfd = memfd_create(IMPOSTOR_MEMFD, MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 1 << 16) < 0)
		_exit(14);
	send_fd(c, memfd);
	pfd.fd = c;
	/* Until the client hangs up: what a fixed client sends is nothing. */
	while (poll(&pfd, 1, HARNESS_WAIT_MS) == 1 && (n = recv(c, buf, sizeof(buf), 0)) > 0)
		total += n;
	if (write(result, &total, sizeof(total)) != sizeof(total))
		_exit(15);
	_exit(0);
}

struct impostor {
	pid_t pid;
	int result; /* read end: bytes the client sent */
};

/* Starts an impostor at @path and waits until it listens. */
static void impostor_start(struct impostor *imp, const char *path)
{
	int ready[2], result[2];
	char c;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(result, O_CLOEXEC), 0);
	fflush(NULL);
	imp->pid = fork();
	assert_true(imp->pid >= 0);
	if (imp->pid == 0) {
		close(ready[0]);
		close(result[0]);
		impostor(path, ready[1], result[1]);
	}
	harness_track_child(imp->pid);
	close(ready[1]);
	close(result[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	imp->result = result[0];
}

/* Waits for the impostor; returns the bytes the client sent it. */
static long long impostor_finish(struct impostor *imp, const char *path)
{
	long long total = -1;

	assert_int_equal(read(imp->result, &total, sizeof(total)), (ssize_t)sizeof(total));
	close(imp->result);
	harness_assert_child_ok(imp->pid);
	unlink(path);
	return total;
}

/* Whether this process holds an fd or a mapping of the impostor's memfd. */
static bool holds_impostor_memfd(void)
{
	char path[64], target[256], line[512];
	bool found = false;
	FILE *maps;

	for (int fd = 0; fd < 1024 && !found; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strstr(target, IMPOSTOR_MEMFD) != NULL;
	}
	maps = fopen("/proc/self/maps", "re");
	assert_non_null(maps);
	while (!found && fgets(line, sizeof(line), maps))
		found = strstr(line, IMPOSTOR_MEMFD) != NULL;
	fclose(maps);
	return found;
}

static bool can_change_uid(void)
{
	if (geteuid() == 0)
		return true;
	print_message("skipped: the impostor runs as uid %d, which needs root\n", NOBODY);
	return false;
}

/* smhd stops cleanly, nobody binds its path: the client's next call refuses it. */
static void test_impostor_after_stop(void **state)
{
	static const char *const shared_dir[] = { "--allow-shared-socket-dir", NULL };
	const struct smhd_options opts = { .extra_args = shared_dir };
	struct smh_buffer buf, imported;
	struct impostor imp;
	struct smh_client *c;
	struct smhd *d;
	uint64_t token;
	int status;

	(void)state;
	if (!can_change_uid())
		skip();
	d = smhd_start(NULL);
	/* The socket's directory is shared, as /tmp is. */
	assert_int_equal(chmod(d->dir, 01777), 0);
	c = harness_connect(d);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &buf), 0);
	assert_int_equal(smh_map(&buf), 0);
	assert_int_equal(smh_export(c, &buf, &token), 0);

	assert_int_equal(kill(d->pid, SIGTERM), 0);
	status = harness_wait_child(d->pid);
	d->pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	impostor_start(&imp, d->socket);
	/* The call that reconnects meets the impostor: refused, nothing sent, no fd kept. */
	assert_int_equal(smh_import(c, token, &imported), -EPERM);
	assert_int_equal(impostor_finish(&imp, d->socket), 0);
	assert_false(holds_impostor_memfd());
	/* The buffer's mapping is the client's still (the old memfd), untouched by the impostor. */
	pattern_fill(buf.addr, 4096, 3);
	assert_true(pattern_check(buf.addr, 4096, 3));
	smh_disconnect(c);

	smhd_restart(d, &opts);
	smhd_stop(d);
}

/* With $SMH_SERVER_UID, the first connection is checked too. */
static void test_impostor_first_connect(void **state)
{
	char dir[] = "/tmp/smh-impostor-XXXXXX", path[64];
	struct impostor imp;
	struct smh_client *c = NULL;

	(void)state;
	if (!can_change_uid())
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 01777), 0);
	snprintf(path, sizeof(path), "%s/smhd.sock", dir);
	/* A malformed uid is refused before connecting. */
	assert_int_equal(setenv("SMH_SERVER_UID", "root", 1), 0);
	assert_int_equal(smh_connect(path, &c), -EINVAL);

	impostor_start(&imp, path);
	assert_int_equal(setenv("SMH_SERVER_UID", "0", 1), 0);
	assert_int_equal(smh_connect(path, &c), -EPERM);
	assert_int_equal(unsetenv("SMH_SERVER_UID"), 0);
	assert_null(c);
	assert_int_equal(impostor_finish(&imp, path), 0);
	assert_false(holds_impostor_memfd());
	assert_int_equal(rmdir(dir), 0);
}

/* smhd refuses a socket directory others may write to, sticky or only group-writable. */
static void test_shared_socket_dir(void **state)
{
	static const mode_t modes[] = { 01777, 0777, 0770 };
	char dir[] = "/tmp/smh-shared-XXXXXX", sock[64];
	struct run_result *res = malloc(sizeof(*res));
	char *argv[] = { (char *)harness_env("SMH_SMHD"),
			 "--dtb",
			 (char *)harness_env("SMH_EXAMPLE_DTB"),
			 "--backend",
			 "memfd",
			 "--no-state",
			 "--socket",
			 sock,
			 NULL };

	(void)state;
	assert_non_null(res);
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/smhd.sock", dir);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(dir, modes[i]), 0);
		harness_run(res, argv);
		assert_int_equal(res->status, 1);
		assert_contains(res->err, "Others may write to the socket directory");
		assert_contains(res->err, "--allow-shared-socket-dir");
		assert_int_equal(access(sock, F_OK), -1);
	}
	free(res);
	assert_int_equal(rmdir(dir), 0);
}

/* ---------------------------------------------------------------- time-outs */

static void test_timeout_stopped_daemon(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d), *other = harness_connect(d);
	struct run_result *res = malloc(sizeof(*res));
	char *argv[] = { (char *)harness_env("SMH_SMHCTL"), "--socket", d->socket, "stats", NULL };
	struct alloc_view view;
	struct smh_buffer buf, spare;
	struct smh_stats st;

	(void)state;
	assert_non_null(res);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &buf), 0);
	assert_int_equal(smh_map(&buf), 0);
	pattern_fill(buf.addr, 4096, 5);
	assert_int_equal(smh_set_timeout(c, -1), -EINVAL);
	assert_int_equal(smh_set_timeout(NULL, 100), -EINVAL);
	assert_int_equal(smh_set_timeout(c, 200), 0);

	assert_int_equal(kill(d->pid, SIGSTOP), 0);
	assert_int_equal(smh_get_stats(c, &st), -ETIMEDOUT);
	assert_int_equal(setenv("SMH_TIMEOUT_MS", "200", 1), 0);
	harness_run(res, argv);
	assert_int_equal(unsetenv("SMH_TIMEOUT_MS"), 0);
	assert_int_equal(res->status, 1);
	assert_contains(res->err, d->socket);
	assert_contains(res->err, "did not answer");
	assert_int_equal(kill(d->pid, SIGCONT), 0);

	/* Dead, not lost: no reconnection, the late reply is never read as another's. */
	assert_int_equal(smh_get_stats(c, &st), -ETIMEDOUT);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &spare), -ETIMEDOUT);
	/* Its buffer stays held, its mapping intact, until it disconnects. */
	assert_true(harness_find_alloc(other, buf.handle, &view));
	assert_true(pattern_check(buf.addr, 4096, 5));
	smh_disconnect(c);
	harness_wait_usage(other, 0, 1);
	smh_disconnect(other);
	free(res);
	smhd_stop(d);
}

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
	struct run_result *res;
	char *argv[] = { (char *)harness_env("SMH_SMHCTL"), "--socket", d->socket, "clients",
			 NULL };
	char *argv_json[] = { argv[0], "--socket", d->socket, "--json", "clients", NULL };
	int stop;
	pid_t pid;

	(void)state;
	/* Allocated after the fork: the child leaves by _exit(), and valgrind would count it. */
	pid = named_client(d, escape_name, &stop);
	res = malloc(sizeof(*res));
	assert_non_null(res);

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
		cmocka_unit_test_teardown(test_impostor_after_stop, harness_teardown),
		cmocka_unit_test_teardown(test_impostor_first_connect, harness_teardown),
		cmocka_unit_test_teardown(test_shared_socket_dir, harness_teardown),
		cmocka_unit_test_teardown(test_timeout_stopped_daemon, harness_teardown),
		cmocka_unit_test_teardown(test_escaped_names, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
