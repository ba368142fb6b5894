/* SPDX-License-Identifier: MIT */
/*
 * libsmh-client against a fake daemon (tests/fake-smhd.c): a thread that answers as smhd
 * would, from a memfd-like and a devmem-like region, so smh_map()'s placement is checked for
 * both. Modes make the fake misbehave (old protocol, fds missing, wrong body, a bad region,
 * hanging up) to check that the library refuses cleanly; a fake that dies in the middle of a
 * request and serves again (its hellos saying what a restarted daemon gave back) checks the
 * reconnection. Every test also checks that no fd is left open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "smh/client.h"
#include "smh/shared_multi_heap.h"
#include "tests/fake-smhd.h"
#include "tests/test-util.h"

/* ---------------------------------------------------------------- harness */

static int fds_at_start;
static char logged[1024];  /* the last warning or error */
static char log_all[4096]; /* every message since setup(), a line each */

static void log_capture(enum smh_log_level level, const char *msg, void *data)
{
	size_t n = strlen(log_all);

	(void)data;
	if (level <= SMH_LOG_WARNING)
		snprintf(logged, sizeof(logged), "%s", msg);
	snprintf(log_all + n, sizeof(log_all) - n, "%s\n", msg);
}

static int setup(void **state)
{
	(void)state;
	fds_at_start = test_count_fds();
	logged[0] = '\0';
	log_all[0] = '\0';
	smh_set_log_handler(log_capture, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	smh_set_log_handler(NULL, NULL);
	assert_int_equal(test_count_fds(), fds_at_start);
	return 0;
}

static struct smh_client *connect_fake(struct fake *f)
{
	struct smh_client *client = NULL;

	assert_int_equal(smh_connect(f->path, &client), 0);
	assert_non_null(client);
	return client;
}

/* ---------------------------------------------------------------- tests */

static void test_hello(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);

	(void)state;
	assert_int_equal(smh_client_id(client), 7);
	assert_int_equal(smh_granule(client), 64);
	assert_string_equal(smh_last_error(client), "");
	smh_disconnect(client);
	smh_disconnect(NULL);
	fake_stop(f);
}

static void test_socket_from_environment(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = NULL;

	(void)state;
	setenv("SMH_SOCKET", f->path, 1);
	assert_int_equal(smh_connect(NULL, &client), 0);
	unsetenv("SMH_SOCKET");
	smh_disconnect(client);
	fake_stop(f);
}

static void test_no_daemon(void **state)
{
	/* Not initialised, as in the man page's example: a failed connect sets it to NULL. */
	struct smh_client *client = (struct smh_client *)&client;

	(void)state;
	assert_int_equal(smh_connect("/nonexistent/smhd.sock", &client), -ENOENT);
	assert_null(client);
	smh_disconnect(client); /* what the example does on every path */
}

static void test_old_version(void **state)
{
	struct fake *f = fake_start(FAKE_OLD_VERSION);
	struct smh_client *client = (struct smh_client *)&client;

	(void)state;
	assert_int_equal(smh_connect(f->path, &client), -EPROTONOSUPPORT);
	assert_null(client);
	assert_non_null(strstr(logged, "smhd speaks protocol 2 only"));
	fake_stop(f);
}

/* The bytes the fake stamped at the start of buffer @handle. */
static void assert_stamp(const struct smh_buffer *buf)
{
	char text[32];

	snprintf(text, sizeof(text), "buffer %llu", (unsigned long long)buf->handle);
	assert_non_null(buf->addr);
	assert_string_equal((const char *)buf->addr, text);
}

static void test_alloc_and_map(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a, b, c;
	char seen[8];

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 100, 0, &a), 0);
	assert_int_equal(a.size, 128);
	assert_int_equal(a.phys_addr, 0x80000000);
	assert_string_equal(a.region, "ram");
	assert_null(a.addr);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 4096, &b), 0);
	assert_int_equal(b.fd, a.fd); /* one fd per region */
	assert_int_equal(b.phys_addr, 0x80001000);
	assert_int_equal(smh_map(&a), 0);
	assert_int_equal(smh_map(&b), 0);
	assert_stamp(&a);
	assert_stamp(&b);
	assert_ptr_equal((char *)b.addr - (char *)a.addr, 0x1000);

	/* devmem-like: the fd offset is the physical address, not page aligned. */
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_NON_CACHEABLE, 10, 0, &c), 0);
	assert_string_equal(c.region, "dma");
	assert_int_equal(c.offset, 0x100800);
	assert_int_not_equal(c.fd, a.fd);
	assert_int_equal(smh_map(&c), 0);
	assert_stamp(&c);

	/* Writes reach the fd at the buffer's offset. */
	memcpy(c.addr, "written", 8);
	assert_int_equal(pread(f->memfd[1], seen, 8, 0x100800), 8);
	assert_string_equal(seen, "written");

	assert_int_equal(smh_unmap(&a), 0);
	assert_null(a.addr);
	assert_int_equal(smh_free(client, &a), 0);
	assert_int_equal(a.fd, -1);
	assert_int_equal(smh_map(&a), -EINVAL);
	smh_disconnect(client);
	/* The client is gone: its fds are no region fds any more. */
	assert_int_equal(smh_map(&b), -EINVAL);
	fake_stop(f);
}

static void test_refusals(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a, copy;

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 0, 0, &a), -EINVAL);
	assert_string_equal(smh_last_error(client), "size 0 or bad attribute");
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_string_equal(smh_last_error(client), "");
	assert_int_equal(smh_free(client, &a), 0);
	a.fd = 3;
	copy = a;
	assert_int_equal(smh_free(client, &a), -EINVAL);
	assert_memory_equal(&a, &copy, sizeof(a));
	assert_non_null(strstr(smh_last_error(client), "held by this client"));
	assert_int_equal(smh_import(client, 12345, &a), -ENOENT);
	smh_disconnect(client);
	fake_stop(f);
}

/* The requests' waits: the bounds the library knows are read, another is left out. */
static void test_waits(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	struct smh_waits w;

	(void)state;
	assert_int_equal(smh_get_waits(client, NULL), -EINVAL);
	assert_int_equal(smh_get_waits(client, &w), 0);
	assert_int_equal(w.requests, 42);
	assert_int_equal(w.longest_us, 1234567);
	assert_int_equal(w.over[0], 0);  /* 1 ms: not sent */
	assert_int_equal(w.over[1], 10); /* 5 ms */
	assert_int_equal(w.over[2], 0);
	assert_int_equal(w.over[3], 0);
	assert_int_equal(w.over[4], 12); /* 1 s; 7 ms (11) is no bound of the library */
	/* A daemon from before the counts sends none: not zeros, -EOPNOTSUPP. */
	f->stats_without_waits = true;
	assert_int_equal(smh_get_waits(client, &w), -EOPNOTSUPP);
	assert_int_equal(w.requests, 0);
	assert_int_equal(w.longest_us, 0);
	smh_disconnect(client);
	fake_stop(f);
}

/*
 * A buffer larger than any object of this process (PTRDIFF_MAX: 2 GiB on 32-bit systems) is
 * refused by the library, with a sentence, before the daemon is asked; so is a realloc to one.
 */
static void test_unmappable_size(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	size_t huge = (size_t)PTRDIFF_MAX + 1;
	struct smh_buffer a, copy;

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, huge, 0, &a), -EOVERFLOW);
	assert_non_null(
		strstr(smh_last_error(client), "do not fit in this process's address space"));
	assert_int_equal(f->n_received[SMH__REQUEST__BODY_ALLOC], 0);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_string_equal(smh_last_error(client), "");
	copy = a;
	assert_int_equal(smh_realloc(client, &a, SIZE_MAX), -EOVERFLOW);
	assert_memory_equal(&a, &copy, sizeof(a));
	assert_int_equal(f->n_received[SMH__REQUEST__BODY_REALLOC], 0);
	assert_int_equal(smh_free(client, &a), 0);
	smh_disconnect(client);
	fake_stop(f);
}

static void test_realloc_follows(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a;

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(smh_map(&a), 0);
	strcpy(a.addr, "kept");
	assert_int_equal(smh_realloc(client, &a, 1000), 0);
	assert_int_equal(a.size, 1024);
	assert_int_equal(a.phys_addr, 0x80000040);
	assert_non_null(a.addr);
	assert_string_equal(a.addr, "kept");
	assert_int_equal(smh_free(client, &a), 0);
	assert_null(a.addr);
	smh_disconnect(client);
	fake_stop(f);
}

static void test_export_import(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a, b;
	uint64_t token;

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(smh_export(client, &a, &token), 0);
	assert_int_equal(smh_import(client, token, &b), 0);
	assert_int_equal(b.handle, a.handle);
	assert_int_equal(b.fd, a.fd);
	assert_int_equal(b.offset, a.offset);
	assert_string_equal(b.region, "dma");
	smh_disconnect(client);
	fake_stop(f);
}

/* A misbehaving daemon: -EPROTO, the connection is dead after, nothing leaks. */
static void check_protocol_error(enum fake_mode mode)
{
	struct fake *f = fake_start(mode);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a;

	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), -EPROTO);
	assert_non_null(strstr(logged, "protocol error"));
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), -EPROTO);
	smh_disconnect(client);
	fake_stop(f);
}

static void test_missing_fd(void **state)
{
	(void)state;
	check_protocol_error(FAKE_MISSING_FD);
}

static void test_wrong_body(void **state)
{
	(void)state;
	check_protocol_error(FAKE_WRONG_BODY);
}

static void test_bad_region(void **state)
{
	(void)state;
	check_protocol_error(FAKE_BAD_REGION);
}

static void test_daemon_gone(void **state)
{
	struct fake *f = fake_start(FAKE_HANG_UP);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a;
	int err;

	(void)state;
	err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a);
	assert_true(err == -ECONNRESET || err == -EPIPE);
	err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a);
	assert_true(err == -ECONNRESET || err == -EPIPE);
	smh_disconnect(client);
	fake_stop(f);
}

/* ---------------------------------------------------------------- daemon restarts */

#define HELLOS(f) ((f)->n_received[SMH__REQUEST__BODY_HELLO])
#define ALLOCS(f) ((f)->n_received[SMH__REQUEST__BODY_ALLOC])
#define FREES(f)  ((f)->n_received[SMH__REQUEST__BODY_FREE])

/* A fake that dies @n times on a request of @kind, after answering @skip of them. */
static struct fake *fake_dying(int kind, unsigned skip, unsigned n)
{
	struct fake *f = fake_start(FAKE_OK);

	f->hang_up_on = kind;
	f->hang_up_skip = skip;
	f->n_hang_ups = n;
	return f;
}

/* One hang-up in the middle of an alloc: the client reconnects and sends it again, once. */
static void test_reconnect_resends(void **state)
{
	struct fake *f = fake_dying(SMH__REQUEST__BODY_ALLOC, 0, 1);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a;
	char want[512];

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	snprintf(want, sizeof(want),
		 "smh: the daemon closed the connection\n"
		 "smh: reconnected to %s; 0 buffer(s) reclaimed\n",
		 f->path);
	assert_string_equal(log_all, want);
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(ALLOCS(f), 2);
	/* The old daemon's alloc was done but never answered: the buffer is the second one. */
	assert_int_equal(a.handle, 2);
	assert_int_equal(smh_map(&a), 0);
	assert_stamp(&a);
	/* Connected again: the next call goes out at once. */
	assert_int_equal(smh_free(client, &a), 0);
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(FREES(f), 1);
	smh_disconnect(client);
	fake_stop(f);
}

/*
 * The restarted daemon takes our resume but does not answer in time: the client is dead, not
 * lost. Closing that connection (as another attempt would) would make the daemon release the
 * buffers it had just given back, still mapped here.
 */
static void test_reconnect_hello_times_out(void **state)
{
	struct fake *f = fake_dying(SMH__REQUEST__BODY_ALLOC, 1, 1);
	struct smh_client *client;
	struct smh_buffer a, b;
	struct smh_stats stats;

	(void)state;
	f->answered_hellos = 1;
	client = connect_fake(f);
	assert_int_equal(smh_set_timeout(client, 200), 0);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &b), -ETIMEDOUT);
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(f->n_closed, 1); /* the first connection, which the daemon hung up */
	/* Dead: no new attempt, the resumed connection stays open. */
	assert_int_equal(smh_get_stats(client, &stats), -ETIMEDOUT);
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(f->n_closed, 1);
	smh_disconnect(client);
	fake_stop(f);
}

/* A second hang-up, on the re-sent request: the call fails, the next one reconnects. */
static void test_reconnect_once_per_call(void **state)
{
	struct fake *f = fake_dying(SMH__REQUEST__BODY_ALLOC, 0, 2);
	struct smh_client *client = connect_fake(f);
	struct smh_buffer a;

	(void)state;
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), -ECONNRESET);
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(ALLOCS(f), 2);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(HELLOS(f), 3);
	assert_int_equal(ALLOCS(f), 3);
	assert_int_equal(smh_map(&a), 0);
	assert_stamp(&a);
	smh_disconnect(client);
	fake_stop(f);
}

/* $SMH_RECONNECT_MS=0: a hang-up is final, and every call returns it without reconnecting. */
static void test_reconnect_off(void **state)
{
	struct fake *f = fake_dying(SMH__REQUEST__BODY_ALLOC, 0, 1);
	struct smh_client *client;
	struct smh_buffer a;
	struct smh_stats stats;

	(void)state;
	setenv("SMH_RECONNECT_MS", "0", 1);
	client = connect_fake(f);
	unsetenv("SMH_RECONNECT_MS");
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), -ECONNRESET);
	assert_int_equal(smh_get_stats(client, &stats), -ECONNRESET);
	assert_int_equal(HELLOS(f), 1);
	assert_int_equal(ALLOCS(f), 1);
	assert_int_equal(f->n_received[SMH__REQUEST__BODY_STATS], 0);
	smh_disconnect(client);
	fake_stop(f);
}

/* The restarted daemon gives back fewer buffers than the client holds: -ESTALE, for good. */
static void test_reconnect_stale(void **state)
{
	struct fake *f = fake_dying(SMH__REQUEST__BODY_ALLOC, 1, 1);
	struct smh_client *client;
	struct smh_buffer a, b;
	struct smh_stats stats;
	char want[256];

	(void)state;
	f->session = 42;
	f->n_reclaimed = 0;
	client = connect_fake(f);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &b), -ESTALE);
	snprintf(want, sizeof(want), "smh: could not reconnect to %s: %s", f->path,
		 "smhd restarted without this client's buffers: stop using their mappings and "
		 "connect anew");
	assert_string_equal(logged, want);
	assert_non_null(strstr(log_all, "smh: the restarted daemon gave back 0 of this "
					"connection's 1 buffers; the others are lost"));
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(ALLOCS(f), 2); /* not sent again */
	assert_int_equal(smh_get_stats(client, &stats), -ESTALE);
	assert_int_equal(smh_free(client, &a), -ESTALE);
	assert_int_equal(HELLOS(f), 2); /* -ESTALE sticks: no reconnect */
	assert_int_equal(FREES(f), 0);
	smh_disconnect(client);
	fake_stop(f);
}

/*
 * A free the old daemon did before dying: the resumed session may lack that hold, and the new
 * daemon's -EINVAL for the re-sent free is a success.
 */
static void test_reconnect_free_done(void **state)
{
	struct fake *f = fake_dying(SMH__REQUEST__BODY_FREE, 0, 1);
	struct smh_client *client;
	struct smh_buffer a, b;

	(void)state;
	f->session = 42;
	f->n_reclaimed = 0; /* the one hold was freed */
	client = connect_fake(f);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(smh_free(client, &a), 0);
	assert_int_equal(a.fd, -1);
	assert_int_equal(HELLOS(f), 2);
	assert_int_equal(FREES(f), 2);
	/* The connection goes on. */
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &b), 0);
	assert_int_equal(smh_map(&b), 0);
	assert_stamp(&b);
	smh_disconnect(client);
	fake_stop(f);
}

/* In a child: the parent's client refuses every call; a connection of its own works. */
static void fork_child(struct smh_client *parent, int results[4])
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *own = NULL;
	struct smh_buffer a;
	struct smh_stats stats;

	results[0] = smh_alloc(parent, SMH_REG_ATTR_CACHEABLE, 64, 0, &a);
	results[1] = smh_get_stats(parent, &stats);
	/* The parent's last refusal is not the child's: the ECHILD has no daemon message. */
	results[3] = (int)strlen(smh_last_error(parent));
	results[2] = smh_connect(f->path, &own);
	if (results[2] == 0)
		results[2] = smh_alloc(own, SMH_REG_ATTR_CACHEABLE, 64, 0, &a);
	smh_disconnect(own);
	fake_stop(f);
}

static void test_fork(void **state)
{
	struct fake *f;
	struct smh_client *client;
	struct smh_buffer a;
	int status, results[4], pipefd[2];
	pid_t pid;

	(void)state;
	/* qemu 7.2's child aborts (a vCPU assertion) when it forks while the fake's thread runs. */
	if (test_under_qemu_user("fork() in a process with a second thread"))
		skip();
	f = fake_start(FAKE_OK);
	client = connect_fake(f);
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 0, 0, &a), -EINVAL);
	assert_string_equal(smh_last_error(client), "size 0 or bad attribute");
	/* The child's answer comes through a pipe: under valgrind its exit status is valgrind's. */
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fork_child(client, results);
		_exit(write(pipefd[1], results, sizeof(results)) == sizeof(results) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(read(pipefd[0], results, sizeof(results)), sizeof(results));
	assert_int_equal(results[0], -ECHILD);
	assert_int_equal(results[1], -ECHILD);
	assert_int_equal(results[2], 0);
	assert_int_equal(results[3], 0);
	close(pipefd[0]);
	close(pipefd[1]);
	/* The parent's connection is untouched. */
	assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	smh_disconnect(client);
	fake_stop(f);
}

static void test_inspection(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	struct smh_client *client = connect_fake(f);
	struct smh_region_info *regions;
	struct smh_client_info *clients;
	struct smh_alloc_info *allocs;
	struct smh_buffer bufs[5];
	struct smh_stats stats;
	uint16_t permille[10];
	uint64_t cell_bytes;
	size_t n;

	(void)state;
	assert_int_equal(smh_get_regions(client, &regions, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(regions[1].label, "dma");
	assert_string_equal(regions[1].backend, "devmem");
	assert_int_equal(regions[1].attr, SMH_REG_ATTR_NON_CACHEABLE);
	free(regions);
	assert_int_equal(smh_get_stats(client, &stats), 0);
	assert_int_equal(stats.n_regions, 2);
	assert_int_equal(stats.regions[1].total, 0x10000);
	smh_stats_finish(&stats);
	assert_int_equal(smh_list_clients(client, &clients, &n), 0);
	assert_int_equal(n, N_CLIENTS);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(clients[i].id, i + 1);
	assert_string_equal(clients[4].comm, "fake");
	free(clients);
	for (int i = 0; i < 5; i++)
		assert_int_equal(smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 64, 0, &bufs[i]), 0);
	assert_int_equal(smh_list_allocs(client, &allocs, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(allocs[4].handle, bufs[4].handle);
	assert_int_equal(allocs[4].n_holders, 1);
	assert_int_equal(allocs[4].holders[0], 7);
	smh_allocs_free(allocs, n);
	assert_int_equal(smh_get_occupancy(client, 1, 10, permille, &cell_bytes), 0);
	assert_int_equal(permille[9], 9);
	assert_int_equal(cell_bytes, 256);
	assert_int_equal(smh_get_occupancy(client, 2, 10, permille, &cell_bytes), -EINVAL);
	assert_int_equal(smh_get_occupancy(client, 0, 0, permille, &cell_bytes), -EINVAL);
	smh_disconnect(client);
	fake_stop(f);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(smh_strerror(-ENOMEM), "Cannot allocate memory");
	assert_string_equal(smh_strerror(ENOMEM), "Cannot allocate memory");
	assert_string_equal(smh_strerror(-EPROTONOSUPPORT), "Protocol not supported");
	assert_string_equal(smh_strerror(-100000), "Unknown error");
	assert_string_equal(smh_strerror(INT_MIN), "Unknown error");
	assert_string_equal(smh_strerror(0), "Success");
}

/* The errnos whose plain text misleads get the library's meaning, whatever their sign. */
static void test_strerror_smh(void **state)
{
	static const int codes[] = { ENOENT, ECHILD,       ESTALE, EPROTO,     ETIMEDOUT,
				     EDQUOT, EMLINK,       ENOSPC, EPERM,      EACCES,
				     EMFILE, ECONNREFUSED, EPIPE,  ECONNRESET, EBUSY };

	(void)state;
	assert_string_equal(smh_strerror(-ECHILD),
			    "this client belongs to the parent process (after fork): connect anew");
	assert_string_equal(smh_strerror(ECHILD), smh_strerror(-ECHILD));
	/* ENOENT comes from smh_import() and from smh_connect(): the text fits both. */
	assert_non_null(strstr(smh_strerror(-ENOENT), "no live buffer has this token (it was "
						      "freed, or never exported)"));
	assert_non_null(strstr(smh_strerror(-ENOENT), "no socket is at the path"));
	assert_non_null(strstr(smh_strerror(-ESTALE), "smhd restarted without this client's"));
	assert_non_null(strstr(smh_strerror(-ETIMEDOUT), "$SMH_TIMEOUT_MS"));
	assert_non_null(strstr(smh_strerror(-EDQUOT), "quota"));
	assert_non_null(strstr(smh_strerror(-EPERM), "$SMH_SERVER_UID"));
	assert_non_null(strstr(smh_strerror(-EACCES), "allow-uid"));
	assert_non_null(strstr(smh_strerror(-EMFILE), "max-clients"));
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *plain = strerrordesc_np(codes[i]);

		if (strcmp(smh_strerror(-codes[i]), plain) == 0)
			fail_msg("errno %d: still \"%s\"", codes[i], plain);
	}
	/* Codes whose plain text is right keep it. */
	assert_string_equal(smh_strerror(-EINVAL), "Invalid argument");
}

/*
 * The RTOS layer, from a process that has never used it (its connection is process-wide and
 * lasts until exit): run by test_rtos_layer() in a child of its own.
 */
static void rtos_layer(void **state)
{
	struct fake *f = fake_start(FAKE_OK);
	uint64_t phys;
	char *p, *q, *r;

	(void)state;
	errno = 0;
	assert_null(shared_multi_heap_alloc(SMH_REG_ATTR_CACHEABLE, 64));
	assert_int_equal(errno, ENOTCONN);
	setenv("SMH_SOCKET", f->path, 1);
	assert_int_equal(shared_multi_heap_pool_init(), 0);
	assert_int_equal(shared_multi_heap_pool_init(), -EALREADY);
	p = shared_multi_heap_alloc(SMH_REG_ATTR_CACHEABLE, 100);
	q = shared_multi_heap_aligned_alloc(SMH_REG_ATTR_NON_CACHEABLE, 256, 64);
	assert_non_null(p);
	assert_non_null(q);
	assert_int_equal(smh_get_phys(p + 99, &phys), 0);
	assert_int_equal(phys, 0x80000000 + 99);
	assert_int_equal(smh_get_phys(q, &phys), 0);
	assert_int_equal(phys, 0x100800);
	assert_int_equal(smh_get_phys(p + 128, &phys), -EINVAL);
	assert_int_equal(smh_get_phys(&phys, &phys), -EINVAL);
	strcpy(p, "moved along");
	errno = 0;
	assert_null(shared_multi_heap_realloc(SMH_REG_ATTR_NON_CACHEABLE, p, 500));
	assert_int_equal(errno, EINVAL);
	r = shared_multi_heap_realloc(SMH_REG_ATTR_CACHEABLE, p, 500);
	assert_non_null(r);
	assert_string_equal(r, "moved along");
	assert_int_equal(smh_get_phys(p, &phys), -EINVAL);
	assert_int_equal(smh_get_phys(r + 10, &phys), 0);
	shared_multi_heap_free(r);
	shared_multi_heap_free(q);
	shared_multi_heap_free(NULL);
	assert_int_equal(smh_get_phys(q, &phys), -EINVAL);
	p = shared_multi_heap_realloc(SMH_REG_ATTR_CACHEABLE, NULL, 10);
	assert_non_null(p);
	shared_multi_heap_free(p);
	unsetenv("SMH_SOCKET");
	fake_stop(f);
}

/*
 * The RTOS layer in a forked child, through a cmocka run of its own there: the child starts
 * with no connection, and the one it makes ends with it, whatever runs before or after.
 */
static void test_rtos_layer(void **state)
{
	const struct CMUnitTest child_tests[] = {
		cmocka_unit_test(rtos_layer),
	};
	int status, failed = -1, pipefd[2];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	fflush(NULL); /* nothing buffered goes out twice */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		failed = cmocka_run_group_tests_name("rtos layer (child)", child_tests, NULL, NULL);
		fflush(NULL);
		_exit(write(pipefd[1], &failed, sizeof(failed)) == sizeof(failed) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &failed, sizeof(failed)), sizeof(failed));
	close(pipefd[0]);
	assert_int_equal(failed, 0);
	/* Under valgrind, an error in the child makes its status valgrind's --error-exitcode. */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_from_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_and_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmappable_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_realloc_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtos_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_resends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_hello_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_hello_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_once_per_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_free_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inspection, setup, teardown),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_strerror_smh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
