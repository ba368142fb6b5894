/* SPDX-License-Identifier: MIT */
/*
 * Throughput with concurrent clients: N processes, each with its own connection, allocate and
 * free 4 KiB as fast as the daemon answers, against the same N processes doing two 64-byte
 * ping-pongs each (one per round trip of an alloc+free) with smh-bench-echo, a minimal libuv
 * SOCK_SEQPACKET echo server built like smhd's loop. The ratio is smh's allocations per second
 * over the echo server's pairs of round trips per second: what smhd's work per request costs
 * when the daemon, not the socket, is the bottleneck.
 *
 * Each phase forks its clients, lets them connect, starts them at once (closing a pipe they
 * block on), runs for --duration milliseconds and counts what was done by then from a shared
 * page. The echo and smh phases alternate, --rounds times each, so noise hits both alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define CLIENTS_MAX 256

struct shared {
	atomic_bool stop;
	struct {
		_Alignas(64) atomic_uint_fast64_t count;
	} slot[CLIENTS_MAX];
};

struct phase {
	const char *socket;
	bool smh; /* else the echo server */
	unsigned n;
	struct shared *sh;
	int ready[2], go[2];
};

/*
 * Says this client is connected, then waits for the start. Closing our end of `ready` lets the
 * parent see the end of the pipe even when a client failed before saying it was ready.
 */
static int ready_and_go(const struct phase *p)
{
	char c = 0;
	bool ok = write(p->ready[1], &c, 1) == 1;

	close(p->ready[1]);
	return ok && read(p->go[0], &c, 1) == 0 ? 0 : -EPIPE;
}

static int loop_smh(const struct phase *p, unsigned i)
{
	struct smh_client *client;
	int err = smh_connect(p->socket, &client);

	if (err < 0)
		return err;
	err = ready_and_go(p);
	while (err == 0 && !atomic_load_explicit(&p->sh->stop, memory_order_relaxed)) {
		struct smh_buffer buf;

		err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 4096, 0, &buf);
		if (err == 0)
			err = smh_free(client, &buf);
		atomic_fetch_add_explicit(&p->sh->slot[i].count, 1, memory_order_relaxed);
	}
	smh_disconnect(client);
	return err;
}

static int loop_echo(const struct phase *p, unsigned i)
{
	int fd = bench_connect(p->socket), err;

	if (fd < 0)
		return fd;
	err = ready_and_go(p);
	while (err == 0 && !atomic_load_explicit(&p->sh->stop, memory_order_relaxed)) {
		err = bench_ping(fd);
		if (err == 0)
			err = bench_ping(fd);
		atomic_fetch_add_explicit(&p->sh->slot[i].count, 1, memory_order_relaxed);
	}
	close(fd);
	return err;
}

static void client_main(const struct phase *p, unsigned i)
{
	close(p->ready[0]);
	close(p->go[1]);
	_exit((p->smh ? loop_smh(p, i) : loop_echo(p, i)) < 0 ? 1 : 0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Forks the clients and waits until each has connected. Returns how many were started. */
static unsigned start_clients(struct phase *p, pid_t *pids)
{
	unsigned started = 0;

	for (; started < p->n; started++) {
		pids[started] = fork();
		if (pids[started] < 0)
			break;
		if (pids[started] == 0)
			client_main(p, started);
	}
	close(p->ready[1]);
	for (unsigned i = 0; i < started; i++) {
		char c;

		if (read(p->ready[0], &c, 1) != 1)
			break; /* a client failed (end of pipe): the go below releases the others */
	}
	return started;
}

/* Runs one phase; adds the operations done and the nanoseconds it took. */
static int run_phase(struct phase *p, unsigned ms, uint64_t *opsp, uint64_t *nsp)
{
	pid_t pids[CLIENTS_MAX];
	unsigned started;
	uint64_t t0, ops = 0;
	int err = 0;

	atomic_store(&p->sh->stop, false);
	for (unsigned i = 0; i < p->n; i++)
		atomic_store(&p->sh->slot[i].count, 0);
	if (pipe2(p->ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(p->go, O_CLOEXEC) < 0) {
		err = -errno;
		close(p->ready[0]);
		close(p->ready[1]);
		return err;
	}
	started = start_clients(p, pids);
	t0 = bench_now_ns();
	close(p->go[1]);
	sleep_ms(ms);
	for (unsigned i = 0; i < started; i++)
		ops += atomic_load(&p->sh->slot[i].count);
	*nsp += bench_now_ns() - t0;
	atomic_store(&p->sh->stop, true);
	for (unsigned i = 0; i < started; i++)
		if (bench_wait(pids[i]) < 0)
			err = -ECHILD;
	close(p->ready[0]);
	close(p->go[0]);
	*opsp += ops;
	return started < p->n ? -EAGAIN : err;
}

/* One concurrency level: echo and smh phases in turn, then a row each. */
static int level(const struct bench_options *o, struct phase *echo, struct phase *smh,
		 struct table *t)
{
	uint64_t ops[2] = { 0, 0 }, ns[2] = { 0, 0 };
	char names[2][48];
	int err = 0;

	for (unsigned r = 0; r < o->rounds && err == 0; r++) {
		err = run_phase(echo, o->duration_ms, &ops[0], &ns[0]);
		if (err == 0)
			err = run_phase(smh, o->duration_ms, &ops[1], &ns[1]);
	}
	if (err < 0)
		return err;
	snprintf(names[0], sizeof(names[0]), "echo, %u clients: 2 ping-pongs", echo->n);
	snprintf(names[1], sizeof(names[1]), "alloc+free, %u clients", smh->n);
	table_add_throughput(t, names[0], (double)ops[0] * 1e9 / (double)ns[0], NULL);
	table_add_throughput(t, names[1], (double)ops[1] * 1e9 / (double)ns[1], names[0]);
	if (smh->n == 8)
		row_target(&t->rows[t->n - 1], "8 clients/echo", ">= 0.85", 0.85, false);
	return 0;
}

int bench_clients(const struct bench_options *o, const char *smh_socket, const char *echo_socket,
		  struct table *t)
{
	struct shared *sh =
		mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int err = 0;

	if (sh == MAP_FAILED)
		return -errno;
	for (size_t i = 0; i < o->n_clients && err == 0; i++) {
		unsigned n = o->clients[i] < CLIENTS_MAX ? o->clients[i] : CLIENTS_MAX;
		struct phase echo = { .socket = echo_socket, .n = n, .sh = sh };
		struct phase smh = { .socket = smh_socket, .smh = true, .n = n, .sh = sh };

		err = level(o, &echo, &smh, t);
	}
	munmap(sh, sizeof(*sh));
	return err;
}
