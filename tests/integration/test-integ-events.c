/* SPDX-License-Identifier: MIT */
/*
 * The event stream (`smhctl events`, smh_events_*) on the real daemon: a subscriber sees
 * another client's connect, alloc, realloc, export, the import of a third, frees (the last one
 * releasing), a clean disconnect, and a SIGKILLed client's death with the buffers it held;
 * smhctl events prints them as lines for people and, with --json, as JSON lines that parse
 * (python3's json module); a subscriber that never reads while another client does 100k
 * allocations costs smhd a bounded queue (its RSS stays put), the other client finishes, and
 * the subscriber, when it reads, gets every event either delivered or counted in one "lost";
 * a uid other than root's and smhd's is refused with -EPERM and a sentence, and
 * --max-subscribers is held.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
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

#define CA SMH_REG_ATTR_CACHEABLE

/* Allocations the slow subscriber does not read: each is an alloc and a free event. */
#define N_LOAD 100000

/* Allocations before that, so that smhd's heap has grown to its working size. */
#define N_WARM 20000

/* The next event, within the harness's bound. */
static void next(struct smh_client *s, struct smh_event *ev)
{
	int err = smh_events_next(s, ev, HARNESS_WAIT_MS);

	if (err < 0)
		fail_msg("no event: %s", smh_strerror(err));
}

/* The next event is @kind, about client @id. */
static void expect(struct smh_client *s, struct smh_event *ev, enum smh_event_kind kind,
		   uint64_t id)
{
	next(s, ev);
	if (ev->kind != kind || ev->client != id)
		fail_msg("expected %s of client %" PRIu64 ", got %s of client %" PRIu64,
			 smh_event_kind_name(kind), id, smh_event_kind_name(ev->kind), ev->client);
	assert_true(ev->time_us > 0);
}

static void expect_buffer(struct smh_client *s, enum smh_event_kind kind, struct smh_client *c,
			  const struct smh_buffer *b)
{
	struct smh_event ev;

	expect(s, &ev, kind, smh_client_id(c));
	assert_int_equal(ev.pid, getpid());
	assert_int_equal(ev.handle, b->handle);
	assert_int_equal(ev.size, b->size);
	assert_int_equal(ev.phys_addr, b->phys_addr);
	if (kind == SMH_EVENT_FREE)
		assert_false(ev.released); /* asserted separately where it is */
}

static struct smh_client *subscriber(const struct smhd *d)
{
	struct smh_client *s = harness_connect(d);
	struct smh_stats st;

	assert_int_equal(smh_events_subscribe(s), 0);
	assert_true(smh_events_fd(s) >= 0);
	/* The connection only receives events now. */
	assert_int_equal(smh_get_stats(s, &st), -EBUSY);
	return s;
}

/* A child that connects, allocates two buffers, says so on @fd, and waits to be killed. */
static pid_t start_victim(const struct smhd *d)
{
	int ready[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *v;
		struct smh_buffer b1, b2;

		close(ready[0]);
		if (smh_connect(d->socket, &v) < 0 || smh_alloc(v, CA, 64, 0, &b1) < 0 ||
		    smh_alloc(v, CA, 128, 0, &b2) < 0 || write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	harness_track_child(pid);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void test_sequence(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *s = subscriber(d), *a, *b;
	struct smh_buffer buf, imported;
	struct smh_event ev;
	uint64_t token, id_a, id_b, id_v;
	pid_t victim;
	int status;

	(void)state;
	a = harness_connect(d);
	id_a = smh_client_id(a);
	expect(s, &ev, SMH_EVENT_CONNECT, id_a);
	assert_int_equal(ev.pid, getpid());
	assert_int_equal(ev.uid, getuid());
	assert_true(strlen(ev.comm) > 0);
	assert_int_equal(smh_alloc(a, CA, 100, 0, &buf), 0);
	expect_buffer(s, SMH_EVENT_ALLOC, a, &buf);
	assert_int_equal(smh_realloc(a, &buf, 1000), 0);
	expect_buffer(s, SMH_EVENT_REALLOC, a, &buf); /* its new size */
	assert_int_equal(buf.size, 1024);
	assert_int_equal(smh_export(a, &buf, &token), 0);
	expect_buffer(s, SMH_EVENT_EXPORT, a, &buf);
	b = harness_connect(d);
	id_b = smh_client_id(b);
	expect(s, &ev, SMH_EVENT_CONNECT, id_b);
	assert_int_equal(smh_import(b, token, &imported), 0);
	expect_buffer(s, SMH_EVENT_IMPORT, b, &imported);
	/* a's free leaves it to b; b's gives the memory back. */
	assert_int_equal(smh_free(a, &buf), 0);
	expect_buffer(s, SMH_EVENT_FREE, a, &buf);
	assert_int_equal(smh_free(b, &imported), 0);
	expect(s, &ev, SMH_EVENT_FREE, id_b);
	assert_true(ev.released);
	smh_disconnect(b);
	expect(s, &ev, SMH_EVENT_DISCONNECT, id_b);
	assert_int_equal(ev.n_buffers, 0);

	victim = start_victim(d);
	next(s, &ev);
	assert_int_equal(ev.kind, SMH_EVENT_CONNECT);
	assert_int_equal(ev.pid, victim);
	id_v = ev.client;
	next(s, &ev);
	assert_int_equal(ev.kind, SMH_EVENT_ALLOC);
	next(s, &ev);
	assert_int_equal(ev.kind, SMH_EVENT_ALLOC);
	assert_int_equal(kill(victim, SIGKILL), 0);
	status = harness_wait_child(victim);
	assert_true(WIFSIGNALED(status));
	expect(s, &ev, SMH_EVENT_DEATH, id_v);
	assert_int_equal(ev.pid, victim);
	assert_int_equal(ev.n_buffers, 2);
	assert_int_equal(ev.bytes, 64 + 128);
	assert_string_equal(ev.why, "");
	/* Nothing else happened. */
	assert_int_equal(smh_events_next(s, &ev, 0), -EAGAIN);

	smh_disconnect(a);
	smh_disconnect(s);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- smhctl events */

struct watcher {
	pid_t pid;
	char path[128];
};

/* smhctl events [--json] with its output in a file. */
static void watch_start(const struct smhd *d, struct watcher *w, bool json, const char *name)
{
	snprintf(w->path, sizeof(w->path), "%s/%s", d->dir, name);
	fflush(NULL);
	w->pid = fork();
	assert_true(w->pid >= 0);
	if (w->pid == 0) {
		const char *ctl = harness_env("SMH_SMHCTL");

		if (!freopen(w->path, "w", stdout))
			_exit(126);
		execl(ctl, ctl, "--socket", d->socket, "events", json ? "--json" : NULL, NULL);
		_exit(127);
	}
	harness_track_child(w->pid);
}

static bool file_has(const char *path, const char *needle)
{
	char buf[16384];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void test_smhctl(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct watcher human, json;
	struct smh_client *c;
	struct smh_buffer buf;
	struct run_result res;
	char needle[128], script[512];
	pid_t victim;

	(void)state;
	watch_start(d, &human, false, "human.txt");
	watch_start(d, &json, true, "json.jsonl");
	/* Until both follow: a probe's connect shows in both. */
	WAIT_UNTIL((smh_disconnect(harness_connect(d)),
		    file_has(human.path, "disconnect") && file_has(json.path, "disconnect")),
		   "smhctl events to subscribe");
	c = harness_connect(d);
	assert_int_equal(smh_alloc(c, CA, 4096, 0, &buf), 0);
	assert_int_equal(smh_free(c, &buf), 0);
	victim = start_victim(d);
	kill(victim, SIGKILL);
	harness_wait_child(victim);
	snprintf(needle, sizeof(needle), "death      pid %d (", (int)victim);
	WAIT_UNTIL(file_has(human.path, needle), "the death in smhctl events");
	snprintf(needle, sizeof(needle), "\"event\": \"death\",\"client\"");
	WAIT_UNTIL(file_has(json.path, needle), "the death in smhctl events --json");
	kill(human.pid, SIGTERM);
	kill(json.pid, SIGTERM);
	harness_wait_child(human.pid);
	harness_wait_child(json.pid);

	snprintf(needle, sizeof(needle), "alloc      pid %d (", (int)getpid());
	assert_true(file_has(human.path, needle));
	assert_true(file_has(human.path, ": handle 1, 4 KiB in res0 at 0x42000000"));
	assert_true(file_has(human.path, "4 KiB in res0 at 0x42000000, released"));
	assert_true(file_has(human.path, ": gone holding 2 buffers (192 B), released"));
	/* Every line parses, and the events come in order. */
	snprintf(script, sizeof(script),
		 "import json, sys\n"
		 "evs = [json.loads(l) for l in open(sys.argv[1])]\n"
		 "print(','.join(e['event'] for e in evs if e.get('pid') == %d))\n"
		 "a = [e for e in evs if e['event'] == 'alloc'][0]\n"
		 "print(a['size'], a['region_label'], a['phys_addr_hex'], a['handle'])\n"
		 "print([e['n_buffers'] for e in evs if e['event'] == 'death'])\n",
		 (int)getpid());
	{
		/* python3 from the PATH, as tests/check-layering's (a test dependency). */
		char *argv[] = { "/bin/sh", "-c",      "exec python3 -c \"$0\" \"$1\"",
				 script,    json.path, NULL };

		harness_run(&res, argv);
	}
	assert_status(&res, 0);
	/* The probes' connects and disconnects, then c's (which is still connected). */
	assert_contains(res.out, "connect,disconnect,connect,alloc,free\n");
	assert_contains(res.out, "4096 res0 0x42000000 1\n");
	assert_contains(res.out, "[2]\n");
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- a subscriber that never reads */

static uint64_t rss_kib(pid_t pid)
{
	char path[64], line[256];
	uint64_t kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void churn(struct smh_client *c, unsigned n)
{
	struct smh_buffer buf;

	for (unsigned i = 0; i < n; i++) {
		int err = smh_alloc(c, CA, 64, 0, &buf);

		if (err < 0)
			fail_msg("allocation %u: %s", i, smh_strerror(err));
		assert_int_equal(smh_free(c, &buf), 0);
	}
}

static void test_slow_subscriber(void **state)
{
	struct smhd *d;
	struct smh_client *s, *c;
	struct smh_event ev;
	uint64_t before, after, received = 0, id;

	(void)state;
	/* ASan's quarantine would grow smhd's RSS with every free, events or not. */
	setenv("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1:quarantine_size_mb=1", 1);
	d = smhd_start(NULL);
	c = harness_connect(d);
	id = smh_client_id(c);
	churn(c, N_WARM);
	s = subscriber(d);
	before = rss_kib(d->pid);
	churn(c, N_LOAD); /* it finishes: nothing waits for the subscriber */
	after = rss_kib(d->pid);
	/* 200k events would take ~40 MiB queued; the queue holds 1024 (~200 KiB). */
	if (after > before + 8 * 1024)
		fail_msg("smhd grew from %" PRIu64 " to %" PRIu64 " KiB", before, after);

	do {
		next(s, &ev);
		if (ev.kind != SMH_EVENT_LOST) {
			assert_int_equal(ev.client, id);
			assert_true(ev.kind == SMH_EVENT_ALLOC || ev.kind == SMH_EVENT_FREE);
			received++;
		}
	} while (ev.kind != SMH_EVENT_LOST);
	fprintf(stderr,
		"received %" PRIu64 ", lost %" PRIu64 ", RSS %" PRIu64 " -> %" PRIu64 " KiB\n",
		received, ev.lost, before, after);
	assert_true(ev.lost > 0);
	assert_int_equal(received + ev.lost, 2 * (uint64_t)N_LOAD);
	/* The stream goes on after the loss. */
	smh_disconnect(c);
	expect(s, &ev, SMH_EVENT_DISCONNECT, id);
	smh_disconnect(s);
	smhd_stop(d);
	setenv("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1", 1);
}

/* ---------------------------------------------------------------- who may subscribe */

/* In a child as nobody: subscribing is refused with -EPERM and the reason. */
static void subscribe_as_nobody(const struct smhd *d)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct smh_client *c, *c2;
		struct smh_stats st;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(100);
		if (smh_connect(d->socket, &c) < 0)
			_exit(101);
		if (smh_events_subscribe(c) != -EPERM)
			_exit(102);
		if (!strstr(smh_last_error(c), "uid 65534 may not see them"))
			_exit(103);
		/*
		 * Something happens (another connect): had the refused connection been subscribed,
		 * that event would come as the reply to the next call, a protocol error. It still
		 * is an ordinary client.
		 */
		if (smh_connect(d->socket, &c2) < 0)
			_exit(105);
		if (smh_get_stats(c, &st) < 0)
			_exit(104);
		smh_stats_finish(&st);
		smh_disconnect(c2);
		smh_disconnect(c);
		_exit(0);
	}
	harness_track_child(pid);
	harness_assert_child_ok(pid);
}

static void test_who_may_subscribe(void **state)
{
	const char *args[] = { "--max-subscribers", "1", NULL };
	struct smhd_options opts = { .extra_args = args };
	struct smhd *d = smhd_start(&opts);
	struct smh_client *s = subscriber(d), *t = harness_connect(d);
	struct run_result res;
	struct smh_event ev;

	(void)state;
	assert_int_equal(smh_events_subscribe(t), -EMFILE);
	assert_contains(smh_last_error(t), "max-subscribers");
	smhctl(&res, d->socket, "events", NULL);
	assert_status(&res, 1);
	assert_contains(res.err, "could not subscribe to events: 1 connections follow events");
	if (geteuid() == 0) {
		assert_int_equal(chmod(d->dir, 0711), 0);
		assert_int_equal(chmod(d->socket, 0666), 0);
		subscribe_as_nobody(d);
	} else {
		fprintf(stderr, "skipped the other uid: needs root\n");
	}
	/* The permitted subscriber saw them all come and go, t first. */
	expect(s, &ev, SMH_EVENT_CONNECT, smh_client_id(t));
	smh_disconnect(t);
	smh_disconnect(s);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- smhd under valgrind */

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

/*
 * The daemon's side under valgrind (errors and leaks fail smhd_stop()): queues filled past
 * their end, a subscriber refused, a death, and subscribers still connected when smhd stops.
 */
static void test_daemon_under_valgrind(void **state)
{
	const char *sanitized = getenv("SMH_SANITIZED");
	const char *args[] = { "--max-subscribers", "2", NULL };
	struct smhd_options opts = { .valgrind = true, .extra_args = args };
	struct smh_client *s, *slow, *c, *t;
	struct smh_event ev;
	struct smhd *d;
	pid_t victim;

	(void)state;
	if (sanitized && strcmp(sanitized, "0") != 0) {
		print_message("sanitized build: the valgrind pass runs this test\n");
		skip();
	}
	if (!valgrind_installed()) {
		print_message("valgrind is not installed\n");
		skip();
	}
	d = smhd_start(&opts);
	s = subscriber(d);
	slow = subscriber(d);
	t = harness_connect(d);
	assert_int_equal(smh_events_subscribe(t), -EMFILE);
	c = harness_connect(d);
	churn(c, 1500); /* 3000 events: past both queues */
	victim = start_victim(d);
	kill(victim, SIGKILL);
	harness_wait_child(victim);
	do
		next(s, &ev);
	while (ev.kind != SMH_EVENT_LOST);
	assert_true(ev.lost > 0);
	smh_disconnect(t);
	smh_disconnect(c);
	smhd_stop(d); /* s and slow still subscribed, slow's queue full */
	smh_disconnect(slow);
	smh_disconnect(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sequence, harness_teardown),
		cmocka_unit_test_teardown(test_smhctl, harness_teardown),
		cmocka_unit_test_teardown(test_slow_subscriber, harness_teardown),
		cmocka_unit_test_teardown(test_who_may_subscribe, harness_teardown),
		cmocka_unit_test_teardown(test_daemon_under_valgrind, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
