/* SPDX-License-Identifier: MIT */
/*
 * The /proc readers (common/proc.c): a process's start time (what tells a live process from a
 * later one with its pid) and its command name, for this process, a child, and a dead pid.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"

/* A child that waits on a pipe until its parent closes it. */
static pid_t start_child(int *wfdp)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;

		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	*wfdp = p[1];
	return pid;
}

static void stop_child(pid_t pid, int wfd)
{
	close(wfd);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_start_time_self(void **state)
{
	uint64_t start = proc_start_time(getpid());

	(void)state;
	assert_true(start != 0);
	assert_true(proc_start_time(getpid()) == start); /* stable */
	/* The command name is in the same file, in parentheses: it must not shift the fields. */
	assert_int_equal(prctl(PR_SET_NAME, "a) b (c) d 7 8"), 0);
	assert_true(proc_start_time(getpid()) == start);
	assert_int_equal(prctl(PR_SET_NAME, "test-proc"), 0);
}

static void test_start_time_child(void **state)
{
	uint64_t mine = proc_start_time(getpid()), its, its2;
	int wfd;
	pid_t pid = start_child(&wfd);

	(void)state;
	its = proc_start_time(pid);
	assert_true(its != 0);
	assert_true(its >= mine); /* started after us */
	assert_true(proc_start_time(pid) == its);
	stop_child(pid, wfd);
	/* Gone and reaped: no start time (or, should the pid be taken again at once, another). */
	its2 = proc_start_time(pid);
	assert_true(its2 == 0 || its2 != its);
}

static void test_start_time_none(void **state)
{
	char comm[16] = "unchanged";

	(void)state;
	assert_true(proc_start_time(0) == 0);
	assert_true(proc_start_time(-1) == 0);
	assert_int_equal(proc_comm(0, comm, sizeof(comm)), -ENOENT);
	assert_string_equal(comm, "");
}

static void test_comm(void **state)
{
	char comm[32], small[4];
	int wfd;
	pid_t pid;

	(void)state;
	assert_int_equal(prctl(PR_SET_NAME, "smh-proc-test"), 0);
	assert_int_equal(proc_comm(getpid(), comm, sizeof(comm)), 0);
	assert_string_equal(comm, "smh-proc-test");
	/* Truncated to fit. */
	assert_int_equal(proc_comm(getpid(), small, sizeof(small)), 0);
	assert_string_equal(small, "smh");
	assert_int_equal(proc_comm(getpid(), small, 0), -EINVAL);
	/* A child carries the name on (fork), and loses it when gone. */
	pid = start_child(&wfd);
	assert_int_equal(proc_comm(pid, comm, sizeof(comm)), 0);
	assert_string_equal(comm, "smh-proc-test");
	stop_child(pid, wfd);
	strcpy(comm, "unchanged");
	assert_int_equal(proc_comm(pid, comm, sizeof(comm)), -ENOENT);
	assert_string_equal(comm, "");
	assert_int_equal(prctl(PR_SET_NAME, "test-proc"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_time_self),
		cmocka_unit_test(test_start_time_child),
		cmocka_unit_test(test_start_time_none),
		cmocka_unit_test(test_comm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
