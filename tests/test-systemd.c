/* SPDX-License-Identifier: MIT */
/*
 * smhd under a service manager, played by the test: socket activation through Debian's
 * systemd-socket-activate (which listens, and execs smhd in its own place at the first
 * connection, passing the socket as fd 3), and the notifications smhd sends to NOTIFY_SOCKET,
 * a unix datagram socket the test binds and reads, with the sender's pid (SO_PASSCRED).
 *
 * Waits are bounded (WAIT_MS) only so that a broken daemon fails the test instead of hanging
 * it; nothing asserts how long anything takes.
 *
 * env: SMH_SMHD, SMH_EXAMPLE_DTB, SMH_SOCKET_ACTIVATE (from tests/meson.build)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

#include "smh/client.h"

#define WAIT_MS 120000

struct fixture {
	char dir[64];
	char sock[96];   /* smhd's socket */
	char notify[96]; /* NOTIFY_SOCKET */
	char log[96];    /* smhd's stderr */
	int notify_fd;
	pid_t pid; /* systemd-socket-activate, which becomes smhd */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int one = 1;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/smh-test-systemd-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/smhd.sock", f->dir);
	snprintf(f->notify, sizeof(f->notify), "%s/notify", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/smhd.log", f->dir);
	f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->notify_fd >= 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", f->notify);
	assert_int_equal(bind(f->notify_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(setsockopt(f->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	f->pid = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	close(f->notify_fd);
	unlink(f->sock);
	unlink(f->notify);
	unlink(f->log);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Prints smhd's log, for a failing test. */
static void dump_log(const struct fixture *f)
{
	char line[512];
	FILE *log = fopen(f->log, "re");

	while (log && fgets(line, sizeof(line), log))
		fprintf(stderr, "smhd: %s", line);
	if (log)
		fclose(log);
}

static bool log_contains(const struct fixture *f, const char *text)
{
	char line[1024];
	FILE *log = fopen(f->log, "re");
	bool found = false;

	while (log && !found && fgets(line, sizeof(line), log))
		found = strstr(line, text) != NULL;
	if (log)
		fclose(log);
	return found;
}

/* Runs argv (NULL-terminated) with stderr to the fixture's log. */
static void spawn(struct fixture *f, char **argv)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	f->pid = pid;
}

/*
 * Starts smhd through systemd-socket-activate on the fixture's socket, with NOTIFY_SOCKET and
 * the @extra environment ("NAME=VALUE", NULL-terminated; may be NULL). @seqpacket false makes
 * it listen on a stream socket instead.
 */
static void start_activated(struct fixture *f, bool seqpacket, const char *const *extra)
{
	static const char *const pass[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
	char *argv[40], env[8][256];
	size_t n = 0, n_env = 0;

	argv[n++] = getenv("SMH_SOCKET_ACTIVATE");
	if (seqpacket)
		argv[n++] = "--seqpacket";
	argv[n++] = "-l";
	argv[n++] = f->sock;
	/* systemd-socket-activate passes its child only what -E names. */
	snprintf(env[n_env], sizeof(env[n_env]), "-ENOTIFY_SOCKET=%s", f->notify);
	argv[n++] = env[n_env++];
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		if (!getenv(pass[i]))
			continue;
		snprintf(env[n_env], sizeof(env[n_env]), "-E%s=%s", pass[i], getenv(pass[i]));
		argv[n++] = env[n_env++];
	}
	for (size_t i = 0; extra && extra[i]; i++) {
		snprintf(env[n_env], sizeof(env[n_env]), "-E%s", extra[i]);
		argv[n++] = env[n_env++];
	}
	argv[n++] = getenv("SMH_SMHD");
	argv[n++] = "--backend";
	argv[n++] = "memfd";
	argv[n++] = "--dtb";
	argv[n++] = getenv("SMH_EXAMPLE_DTB");
	argv[n++] = "--socket";
	argv[n++] = f->sock;
	argv[n] = NULL;
	spawn(f, argv);
}

/* Connects to the fixture's socket, waiting for the listener to be there. */
static struct smh_client *connect_client(struct fixture *f)
{
	struct smh_client *client = NULL;
	int64_t deadline = now_ms() + WAIT_MS;
	int err;

	while ((err = smh_connect(f->sock, &client)) == -ENOENT || err == -ECONNREFUSED) {
		if (now_ms() > deadline || waitpid(f->pid, NULL, WNOHANG) != 0)
			break;
		usleep(10000);
	}
	if (err < 0) {
		dump_log(f);
		fail_msg("smh_connect(%s): %s", f->sock, smh_strerror(err));
	}
	return client;
}

/*
 * Reads notifications until one has a line starting with @prefix; copies that datagram to
 * @msg and returns the sender's pid. Fails the test when none comes.
 */
static pid_t wait_for(struct fixture *f, const char *prefix, char *msg, size_t size)
{
	int64_t deadline = now_ms() + WAIT_MS;

	for (;;) {
		struct pollfd pfd = { .fd = f->notify_fd, .events = POLLIN };
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} control;
		struct iovec iov = { .iov_base = msg, .iov_len = size - 1 };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		struct cmsghdr *cm;
		pid_t pid = 0;
		ssize_t n;
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			dump_log(f);
			fail_msg("no notification starting with \"%s\"", prefix);
		}
		n = recvmsg(f->notify_fd, &mh, MSG_CMSG_CLOEXEC);
		assert_true(n >= 0);
		msg[n] = '\0';
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS)
				pid = ((struct ucred *)(void *)CMSG_DATA(cm))->pid;
		for (const char *line = msg; line;
		     line = strchr(line, '\n'), line = line ? line + 1 : NULL)
			if (strncmp(line, prefix, strlen(prefix)) == 0)
				return pid;
	}
}

/* SIGTERM: smhd says STOPPING=1 and exits 0. */
static void stop(struct fixture *f)
{
	char msg[512];
	int status;

	assert_int_equal(kill(f->pid, SIGTERM), 0);
	assert_int_equal(wait_for(f, "STOPPING=1", msg, sizeof(msg)), f->pid);
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	f->pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		dump_log(f);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * The socket comes from the service manager: smhd serves real allocations on it, tells its
 * state as clients come and go, and leaves the socket file, which is the manager's, at exit.
 */
static void test_activated_serves(void **state)
{
	struct fixture *f = *state;
	struct smh_client *client;
	struct smh_buffer buf;
	char msg[512];
	volatile uint64_t *words;

	start_activated(f, true, NULL);
	client = connect_client(f);
	/* systemd-socket-activate execs smhd in its own place: the same pid. */
	assert_int_equal(wait_for(f, "READY=1", msg, sizeof(msg)), f->pid);
	assert_non_null(strstr(msg, "\nSTATUS=Serving 3 regions, "));

	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &buf), 0);
	assert_string_equal(buf.region, "res1");
	assert_int_equal(buf.phys_addr, 0x43000000);
	assert_int_equal(smh_map(&buf), 0);
	words = buf.addr;
	for (size_t i = 0; i < 4096 / 8; i++)
		assert_int_equal(words[i], 0); /* zeroed */
	for (size_t i = 0; i < 4096 / 8; i++)
		words[i] = 0x5a5a000000000000u | i;
	for (size_t i = 0; i < 4096 / 8; i++)
		assert_int_equal(words[i], 0x5a5a000000000000u | i);
	wait_for(f, "STATUS=Serving 3 regions, 1 client, 4 KiB of 24 KiB in use", msg, sizeof(msg));

	assert_int_equal(smh_free(client, &buf), 0);
	smh_disconnect(client);
	wait_for(f, "STATUS=Serving 3 regions, 0 clients, 0 B of 24 KiB in use", msg, sizeof(msg));

	stop(f);
	assert_true(log_contains(f, "socket passed by the service manager"));
	assert_true(is_socket(f->sock));
}

/* A stream socket where smhd expects SOCK_SEQPACKET: smhd refuses to start, and says why. */
static void test_activated_wrong_socket(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int64_t deadline = now_ms() + WAIT_MS;
	int fd, status;

	start_activated(f, false, NULL);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", f->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		assert_true(errno == ENOENT || errno == ECONNREFUSED);
		assert_true(now_ms() < deadline);
		usleep(10000);
	}
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	f->pid = -1;
	close(fd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(log_contains(f, "is not a listening SOCK_SEQPACKET unix socket bound to"));
}

/* WATCHDOG_USEC set: smhd pings, again and again, until it stops. */
static void test_watchdog(void **state)
{
	static const char *const extra[] = { "WATCHDOG_USEC=20000", NULL };
	struct fixture *f = *state;
	struct smh_client *client;
	char msg[512];

	start_activated(f, true, extra);
	client = connect_client(f);
	wait_for(f, "READY=1", msg, sizeof(msg));
	assert_int_equal(wait_for(f, "WATCHDOG=1", msg, sizeof(msg)), f->pid);
	assert_int_equal(wait_for(f, "WATCHDOG=1", msg, sizeof(msg)), f->pid);
	assert_true(log_contains(f, "Watchdog: pinging the service manager every 10 ms"));
	smh_disconnect(client);
	stop(f);
}

/* Started without activation (smhd --socket, NOTIFY_SOCKET set): notifies, removes its socket. */
static void test_not_activated(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { getenv("SMH_SMHD"),        "--backend", "memfd", "--dtb",
			 getenv("SMH_EXAMPLE_DTB"), "--socket",  f->sock, NULL };
	struct smh_client *client;
	char msg[512];

	assert_int_equal(setenv("NOTIFY_SOCKET", f->notify, 1), 0);
	spawn(f, argv);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(wait_for(f, "READY=1", msg, sizeof(msg)), f->pid);
	assert_true(is_socket(f->sock)); /* listening before READY=1 */
	client = connect_client(f);
	wait_for(f, "STATUS=Serving 3 regions, 1 client, 0 B of 24 KiB in use", msg, sizeof(msg));
	smh_disconnect(client);
	stop(f);
	assert_false(log_contains(f, "socket passed by the service manager"));
	assert_false(is_socket(f->sock));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_activated_serves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_activated_wrong_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_activated, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
