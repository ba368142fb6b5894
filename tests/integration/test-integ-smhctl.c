/* SPDX-License-Identifier: MIT */
/*
 * smhctl's views of a running daemon as a user reads them: `allocs` names each owner by pid
 * and command and marks the ones gone, prints sizes as people write them, filters and sorts;
 * `allocs --watch` redraws; `metrics` is Prometheus text that promtool accepts and whose values
 * are the daemon's. And the library's errors against the real smhd: the errno's smh text, the
 * daemon's sentence in smh_last_error() for a refusal, cleared by the next success.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The line of @text that starts (after spaces) with @handle's number, into @buf. */
static const char *row(char *buf, size_t size, const char *text, uint64_t handle)
{
	char key[32];

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		size_t len = strcspn(p, "\n");

		snprintf(key, sizeof(key), "%llu ", (unsigned long long)handle);
		if (strncmp(p + strspn(p, " "), key, strlen(key)) == 0) {
			snprintf(buf, size, "%.*s", (int)len, p);
			return buf;
		}
	}
	fail_msg("no row for handle %llu in:\n%s", (unsigned long long)handle, text);
	return NULL;
}

/* This process's command name, as the daemon reads it. */
static void own_comm(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/comm", "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, (int)size, f));
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/*
 * Two buffers: one this process allocated (3136 bytes, not a whole KiB) and a larger one, with
 * a larger handle, whose owner has disconnected while this process still holds it (imported).
 */
struct scene {
	struct smhd *d;
	struct smh_client *c;
	struct smh_buffer mine, orphan;
	uint64_t gone_id;
};

static void scene_start(struct scene *s)
{
	struct smh_client *other;
	struct smh_buffer b;
	uint64_t token;

	s->d = smhd_start(NULL);
	s->c = harness_connect(s->d);
	assert_int_equal(smh_alloc(s->c, SMH_REG_ATTR_CACHEABLE, 3136, 0, &s->mine), 0);
	assert_int_equal(s->mine.size, 3136);
	other = harness_connect(s->d);
	s->gone_id = smh_client_id(other);
	assert_int_equal(smh_alloc(other, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &b), 0);
	assert_int_equal(smh_export(other, &b, &token), 0);
	assert_int_equal(smh_import(s->c, token, &s->orphan), 0);
	smh_disconnect(other);
	assert_true(s->orphan.handle > s->mine.handle);
	harness_wait_usage(s->c, 3136 + 4096, 1);
}

static void scene_stop(struct scene *s)
{
	assert_int_equal(smh_free(s->c, &s->mine), 0);
	assert_int_equal(smh_free(s->c, &s->orphan), 0);
	smh_disconnect(s->c);
	smhd_stop(s->d);
}

static void test_allocs_owners(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	char line[512], comm[32], pid[32];
	struct scene s;

	assert_non_null(res);
	scene_start(&s);
	own_comm(comm, sizeof(comm));
	snprintf(pid, sizeof(pid), " %d  ", (int)getpid());
	smhctl(res, s.d->socket, "allocs", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "   PID  COMMAND ");
	row(line, sizeof(line), res->out, s.mine.handle);
	assert_contains(line, pid);
	assert_contains(line, comm);
	assert_contains(line, " 3.1 KiB ");
	assert_lacks(line, "(gone)");
	row(line, sizeof(line), res->out, s.orphan.handle);
	assert_contains(line, "  -  (gone) ");
	assert_contains(line, " 4 KiB ");
	assert_contains(res->out, "2 allocations, 7.1 KiB\n");

	/* The --json form keeps its keys and adds the owner's. */
	smhctl(res, s.d->socket, "allocs", "--json", NULL);
	assert_status(res, 0);
	snprintf(line, sizeof(line),
		 "\"owner\": %llu,\n    \"owner_connected\": false,\n    "
		 "\"owner_pid\": 0,\n    \"owner_comm\": \"\",",
		 (unsigned long long)s.gone_id);
	assert_contains(res->out, line);
	snprintf(line, sizeof(line),
		 "\"owner_connected\": true,\n    \"owner_pid\": %d,\n    "
		 "\"owner_comm\": \"%s\",",
		 (int)getpid(), comm);
	assert_contains(res->out, line);
	assert_contains(res->out, "\"size\": 3136,");
	free(res);
	scene_stop(&s);
}

static void test_allocs_filters(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	char pid[32], handle[32];
	struct scene s;

	assert_non_null(res);
	scene_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	/* --pid: what the process owns or holds (it holds the orphan). */
	smhctl(res, s.d->socket, "allocs", "--pid", pid, NULL);
	assert_status(res, 0);
	assert_contains(res->out, "2 allocations");
	smhctl(res, s.d->socket, "allocs", "--pid", "1", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "0 of 2 allocations, 0 B\n");
	smhctl(res, s.d->socket, "allocs", "--region", "res1", "--json", NULL);
	assert_status(res, 0);
	assert_int_equal(count(res->out, "\"handle\""), 1);
	snprintf(handle, sizeof(handle), "\"handle\": %llu,", (unsigned long long)s.orphan.handle);
	assert_contains(res->out, handle);
	smhctl(res, s.d->socket, "allocs", "--attr", "cacheable", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "1 of 2 allocations, 3.1 KiB\n");
	/* --sort size: the largest first, although its handle is the larger. */
	smhctl(res, s.d->socket, "allocs", "--sort", "size", "--json", NULL);
	assert_status(res, 0);
	assert_non_null(strstr(res->out, "\"size\": 4096,"));
	assert_true(strstr(res->out, "\"size\": 4096,") < strstr(res->out, "\"size\": 3136,"));
	smhctl(res, s.d->socket, "allocs", "--json", NULL);
	assert_status(res, 0);
	assert_true(strstr(res->out, "\"size\": 4096,") > strstr(res->out, "\"size\": 3136,"));
	smhctl(res, s.d->socket, "allocs", "--sort", "colour", NULL);
	assert_status(res, 2);
	assert_contains(res->err, "--sort colour");
	smhctl(res, s.d->socket, "allocs", "--pid", "x", NULL);
	assert_status(res, 2);
	smhctl(res, s.d->socket, "allocs", "--count", "2", NULL);
	assert_status(res, 2);
	free(res);
	scene_stop(&s);
}

/* --watch redraws: --count bounds it; off a terminal, one table after another. */
static void test_watch(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct scene s;

	assert_non_null(res);
	scene_start(&s);
	smhctl(res, s.d->socket, "allocs", "--watch=0", "--count", "3", NULL);
	assert_status(res, 0);
	assert_int_equal(count(res->out, "HANDLE  REGION"), 3);
	assert_int_equal(count(res->out, "smhctl allocs, every 0s, sorted by handle: "), 3);
	assert_lacks(res->out, "\033[");
	smhctl(res, s.d->socket, "top", "--watch=0", "--count", "2", NULL);
	assert_status(res, 0);
	assert_int_equal(count(res->out, "sorted by size"), 2);
	assert_int_equal(count(res->out, "(gone)"), 2);
	free(res);
	scene_stop(&s);
}

/* Runs promtool on @text; false (with the reason printed) when promtool is not installed. */
static bool promtool_accepts(const struct smhd *d, const char *text)
{
	struct run_result *res = malloc(sizeof(*res));
	char path[160];
	FILE *f;
	bool found;

	assert_non_null(res);
	snprintf(path, sizeof(path), "%s/metrics.prom", d->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	harness_run(res, (char *const[]){ "/bin/sh", "-c",
					  "command -v promtool >/dev/null || exit 77; "
					  "promtool check metrics < \"$0\"",
					  path, NULL });
	unlink(path);
	found = res->status != 77;
	if (!found)
		printf("promtool not installed (Debian's prometheus package): the format is not "
		       "checked by it\n");
	else if (res->status != 0)
		fail_msg("promtool check metrics: %s%s\non:\n%s", res->out, res->err, text);
	free(res);
	return found;
}

static void test_metrics(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct scene s;
	struct smh_stats st;
	char nowhere[160], shared[64];

	assert_non_null(res);
	scene_start(&s);
	smhctl(res, s.d->socket, "metrics", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "# TYPE smh_up gauge\nsmh_up 1\n");
	assert_contains(res->out,
			"smh_region_used_bytes{region=\"res0\",attr=\"cacheable\"} 3136\n");
	assert_contains(res->out, "smh_region_used_bytes{region=\"res1\",attr=\"non-cacheable\"} "
				  "4096\n");
	assert_contains(res->out,
			"smh_region_size_bytes{region=\"res0\",attr=\"cacheable\"} 4096\n");
	assert_contains(res->out,
			"smh_region_free_bytes{region=\"res0\",attr=\"cacheable\"} 960\n");
	assert_contains(res->out, "smh_region_allocations{region=\"res1\",attr=\"non-cacheable\"} "
				  "1\n");
	assert_contains(res->out, "# TYPE smh_region_fragmentation_ratio gauge\n");
	assert_contains(res->out, "smh_clients 2\n"); /* this process and smhctl */
	assert_contains(res->out, "smh_allocations 2\n");
	/* The daemon's own count (an exported buffer whose owner left counts as it says). */
	assert_int_equal(smh_get_stats(s.c, &st), 0);
	snprintf(shared, sizeof(shared), "smh_shared_allocations %llu\n",
		 (unsigned long long)st.n_shared);
	smh_stats_finish(&st);
	assert_contains(res->out, shared);
	assert_contains(res->out, "smh_granule_bytes 64\n");
	assert_contains(res->out, "# TYPE smh_scrubbing_bytes gauge\nsmh_scrubbing_bytes ");
	if (!promtool_accepts(s.d, res->out)) {
		free(res);
		scene_stop(&s);
		skip();
	}

	/* No daemon: smh_up 0 (still valid exposition), exit 1. */
	snprintf(nowhere, sizeof(nowhere), "%s/no-daemon.sock", s.d->dir);
	smhctl(res, nowhere, "metrics", NULL);
	assert_status(res, 1);
	assert_contains(res->out, "smh_up 0\n");
	assert_lacks(res->out, "smh_region");
	assert_true(promtool_accepts(s.d, res->out));
	smhctl(res, s.d->socket, "metrics", "--json", NULL);
	assert_status(res, 2);
	free(res);
	scene_stop(&s);
}

/* The library's errors against the real daemon (item: the first hour of a new user). */
/* smhctl fit: the allocator's own count per region, now (around what is held) and empty. */
static void test_fit(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct run_result *res = malloc(sizeof(*res));
	struct smh_buffer held;

	assert_non_null(res);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 8192, 0, &held), 0); /* in res2 */
	smhctl(res, d->socket, "fit", "1K", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "Buffers of 1 KiB:\n");
	assert_contains(res->out, "res0             cacheable               4          4\n");
	assert_contains(res->out, "res1             non-cacheable           8          8\n");
	assert_contains(res->out, "res2             cacheable               4         12\n");
	assert_contains(res->out, "total                                   16         24\n");
	smhctl(res, d->socket, "--json", "fit", "--attr", "cacheable", "--align", "4K", "3000",
	       NULL);
	assert_status(res, 0);
	assert_contains(res->out, "\"align\": 4096");
	assert_lacks(res->out, "res1");
	assert_contains(res->out, "\"now\": 2,\n  \"empty\": 4\n");
	smhctl(res, d->socket, "fit", "0", NULL);
	assert_status(res, 2);
	assert_int_equal(smh_free(c, &held), 0);
	free(res);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_errors(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b;
	struct smh_stats st;

	assert_int_equal(smh_import(c, 0x1234567890abcdefull, &b), -ENOENT);
	assert_string_equal(smh_last_error(c), "No live buffer has this token");
	assert_non_null(strstr(smh_strerror(-ENOENT), "no live buffer has this token"));
	/* A success clears the refusal. */
	assert_int_equal(smh_get_stats(c, &st), 0);
	smh_stats_finish(&st);
	assert_string_equal(smh_last_error(c), "");
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 1 << 20, 0, &b), -ENOMEM);
	assert_contains(smh_last_error(c),
			"No cacheable region can hold 1 MiB: res0 has 4 KiB free, "
			"largest run 4 KiB; res2 has 12 KiB free, largest run 12 KiB");
	/* ENOMEM explains itself: per region, the request with its alignment, the largest holders. */
	{
		struct smh_buffer held;
		char want[160];

		assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 8192, 0, &held), 0);
		assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 8192, 4096, &b), -ENOMEM);
		assert_contains(smh_last_error(c),
				"No cacheable region can hold 8 KiB aligned 4 KiB: "
				"res0 has 4 KiB free, largest run 4 KiB; res2 has "
				"4 KiB free, largest run 4 KiB; largest holders: ");
		snprintf(want, sizeof(want), "(pid %d) 8 KiB", (int)getpid());
		assert_contains(smh_last_error(c), want);
		assert_int_equal(smh_free(c, &held), 0);
	}
	smh_disconnect(c);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_allocs_owners, harness_teardown),
		cmocka_unit_test_teardown(test_allocs_filters, harness_teardown),
		cmocka_unit_test_teardown(test_watch, harness_teardown),
		cmocka_unit_test_teardown(test_metrics, harness_teardown),
		cmocka_unit_test_teardown(test_fit, harness_teardown),
		cmocka_unit_test_teardown(test_errors, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
