/* SPDX-License-Identifier: MIT */
/*
 * Buffers across processes: a forked child that connects anew imports what the parent
 * exported and sees (and writes) the same bytes; a shared buffer lives until its last holder
 * frees it or dies; the memory of a SIGKILLed client comes back, scrubbed.
 *
 * Children are driven through pipes with one-byte commands, so that every step the parent
 * checks happens at a known point of the child's life. A child never returns into cmocka: it
 * answers 'k' or a failure byte naming the check, and leaves with _exit().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

#define RES1 0x43000000u

#define SIZE    1024
#define SEED    40 /* the parent's pattern */
#define SEED_CH 41 /* what the child writes into the second half */

struct child {
	pid_t pid;
	int cmd; /* parent writes */
	int ans; /* parent reads */
};

/* Reads one byte, waiting at most HARNESS_WAIT_MS; -1 on end of file or time out. */
static int read_byte(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned char b;

	if (poll(&pfd, 1, HARNESS_WAIT_MS) <= 0 || read(fd, &b, 1) != 1)
		return -1;
	return b;
}

static void write_byte(int fd, char b)
{
	while (write(fd, &b, 1) < 0 && errno == EINTR)
		;
}

/*
 * The importing child: connects, imports @token, maps it and checks the parent's pattern,
 * answers 'r'; then serves commands: 'w' writes its pattern into the second half, 'c' checks
 * the first half still holds the parent's, 'f' frees its hold, 'q' disconnects and exits.
 * A failed check answers its number ('1'...) and exits.
 */
static void importer(const char *socket, uint64_t token, int cmd, int ans)
{
	struct smh_client *c;
	struct smh_buffer b;
	int op;

	if (smh_connect(socket, &c) < 0)
		goto fail1;
	if (smh_import(c, token, &b) < 0 || b.size != SIZE || smh_map(&b) < 0)
		goto fail2;
	if (!pattern_check(b.addr, SIZE, SEED))
		goto fail3;
	write_byte(ans, 'r');
	while ((op = read_byte(cmd)) > 0) {
		if (op == 'w')
			pattern_fill((char *)b.addr + SIZE / 2, SIZE / 2, SEED_CH);
		else if (op == 'c' && !pattern_check(b.addr, SIZE / 2, SEED))
			goto fail3;
		else if (op == 'f' && smh_free(c, &b) < 0)
			goto fail4;
		else if (op == 'q')
			break;
		write_byte(ans, 'k');
	}
	smh_disconnect(c);
	_exit(0);
fail1:
	write_byte(ans, '1');
	_exit(1);
fail2:
	write_byte(ans, '2');
	_exit(2);
fail3:
	write_byte(ans, '3');
	_exit(3);
fail4:
	write_byte(ans, '4');
	_exit(4);
}

static void spawn_importer(struct child *ch, const struct smhd *d, uint64_t token)
{
	int cmd[2], ans[2];
	int r;

	assert_int_equal(pipe2(cmd, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ans, O_CLOEXEC), 0);
	fflush(NULL);
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		close(cmd[1]);
		close(ans[0]);
		importer(d->socket, token, cmd[0], ans[1]);
	}
	harness_track_child(ch->pid);
	close(cmd[0]);
	close(ans[1]);
	ch->cmd = cmd[1];
	ch->ans = ans[0];
	r = read_byte(ch->ans);
	if (r != 'r')
		fail_msg("the importer did not get ready (answer %d)", r);
}

static void command(struct child *ch, char op)
{
	int r;

	write_byte(ch->cmd, op);
	r = read_byte(ch->ans);
	if (r != 'k')
		fail_msg("the importer failed command '%c' (answer %d)", op, r);
}

static void child_close(struct child *ch)
{
	close(ch->cmd);
	close(ch->ans);
}

static uint64_t holders(struct smh_client *c, uint64_t handle, struct alloc_view *v)
{
	assert_true(harness_find_alloc(c, handle, v));
	return v->n_holders;
}

/* ---------------------------------------------------------------- sharing */

static void test_share_between_processes(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *parent = harness_connect(d);
	struct smh_buffer buf;
	struct alloc_view v;
	struct child ch;
	uint64_t token, token2;

	assert_int_equal(smh_alloc(parent, SMH_REG_ATTR_CACHEABLE, SIZE, 0, &buf), 0);
	assert_int_equal(smh_map(&buf), 0);
	pattern_fill(buf.addr, SIZE, SEED);
	assert_int_equal(smh_export(parent, &buf, &token), 0);
	assert_true(token != 0);
	assert_int_equal(smh_export(parent, &buf, &token2), 0);
	assert_int_equal(token2, token);

	spawn_importer(&ch, d, token);
	command(&ch, 'w');
	/* The child's write is in the parent's mapping: the same memory, not a copy. */
	assert_true(pattern_check(buf.addr, SIZE / 2, SEED));
	assert_true(pattern_check((char *)buf.addr + SIZE / 2, SIZE / 2, SEED_CH));
	assert_int_equal(holders(parent, buf.handle, &v), 2);
	assert_true(v.shared);
	assert_int_equal(v.owner, smh_client_id(parent));
	assert_int_equal(harness_used(parent), SIZE);

	/* The parent lets go: the child's hold keeps the buffer and its contents. */
	assert_int_equal(smh_free(parent, &buf), 0);
	assert_int_equal(holders(parent, buf.handle, &v), 1);
	assert_true(v.holders[0] != smh_client_id(parent));
	assert_int_equal(harness_used(parent), SIZE);
	command(&ch, 'c');

	/* The last holder frees it: gone, and its token with it. */
	command(&ch, 'f');
	assert_false(harness_find_alloc(parent, buf.handle, &v));
	assert_int_equal(harness_used(parent), 0);
	assert_int_equal(smh_import(parent, token, &buf), -ENOENT);
	write_byte(ch.cmd, 'q');
	harness_assert_child_ok(ch.pid);
	child_close(&ch);
	harness_wait_usage(parent, 0, 1);
	smh_disconnect(parent);
	smhd_stop(d);
}

static void kill_child(struct child *ch)
{
	int status;

	assert_int_equal(kill(ch->pid, SIGKILL), 0);
	status = harness_wait_child(ch->pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	child_close(ch);
}

static void test_shared_buffer_outlives_dead_holders(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *parent = harness_connect(d);
	struct smh_buffer buf, again;
	struct child ch1, ch2;
	struct alloc_view v;
	uint64_t token, phys;

	assert_int_equal(smh_alloc(parent, SMH_REG_ATTR_NON_CACHEABLE, SIZE, 0, &buf), 0);
	assert_int_equal(smh_map(&buf), 0);
	phys = buf.phys_addr;
	pattern_fill(buf.addr, SIZE, SEED);
	assert_int_equal(smh_export(parent, &buf, &token), 0);
	spawn_importer(&ch1, d, token);
	spawn_importer(&ch2, d, token);
	assert_int_equal(holders(parent, buf.handle, &v), 3);

	/* A holder dies: the others keep the buffer, contents untouched. */
	kill_child(&ch1);
	WAIT_UNTIL(holders(parent, buf.handle, &v) == 2, "the dead importer's hold to go");
	assert_true(pattern_check(buf.addr, SIZE, SEED));
	assert_int_equal(harness_used(parent), SIZE);

	/* The parent frees; the last holder dies: only now is the buffer released. */
	assert_int_equal(smh_free(parent, &buf), 0);
	assert_int_equal(holders(parent, buf.handle, &v), 1);
	command(&ch2, 'c');
	kill_child(&ch2);
	harness_wait_usage(parent, 0, 1);
	assert_false(harness_find_alloc(parent, buf.handle, &v));
	assert_int_equal(smh_import(parent, token, &again), -ENOENT);

	/* Its place is handed out again scrubbed. */
	harness_wait_scrubbed(parent);
	assert_int_equal(smh_alloc(parent, SMH_REG_ATTR_NON_CACHEABLE, SIZE, 0, &again), 0);
	assert_int_equal(again.phys_addr, phys);
	assert_int_equal(smh_map(&again), 0);
	assert_true(all_zero(again.addr, SIZE));
	smh_disconnect(parent);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- a killed client */

/* Fills res1 (all the non-cacheable memory), writes a pattern, says so, and waits to die. */
static void filler(const char *socket, int ans)
{
	struct smh_client *c;
	struct smh_buffer b;

	if (smh_connect(socket, &c) < 0 ||
	    smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &b) < 0)
		_exit(1);
	if (smh_map(&b) < 0)
		_exit(2);
	pattern_fill(b.addr, 8192, 50);
	write_byte(ans, 'r');
	for (;;)
		pause();
}

static void test_killed_client_memory_returns(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b;
	struct child ch = { 0 };
	int ans[2];

	assert_int_equal(pipe2(ans, O_CLOEXEC), 0);
	fflush(NULL);
	ch.pid = fork();
	assert_true(ch.pid >= 0);
	if (ch.pid == 0) {
		close(ans[0]);
		filler(d->socket, ans[1]);
	}
	harness_track_child(ch.pid);
	close(ans[1]);
	ch.ans = ans[0];
	ch.cmd = -1;
	assert_int_equal(read_byte(ch.ans), 'r');
	assert_int_equal(harness_region_used(c, 1), 8192);
	assert_int_equal(harness_n_clients(c), 2);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &b), -ENOMEM);

	kill_child(&ch);
	harness_wait_usage(c, 0, 1);

	/* All of res1 again, zeroed. */
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &b), 0);
	assert_int_equal(b.phys_addr, RES1);
	assert_int_equal(smh_map(&b), 0);
	assert_true(all_zero(b.addr, 8192));
	assert_int_equal(smh_free(c, &b), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_share_between_processes, harness_teardown),
		cmocka_unit_test_teardown(test_shared_buffer_outlives_dead_holders,
					  harness_teardown),
		cmocka_unit_test_teardown(test_killed_client_memory_returns, harness_teardown),
	};

	/* A child that died must not kill the parent writing to its pipe. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
