/* SPDX-License-Identifier: MIT */
/*
 * smhctl events: follows what smhd does (connects, allocations, frees, exports, imports,
 * disconnects and deaths) as it happens, one line per event: for people, or with --json one
 * JSON object per line (JSON lines), for programs. It runs until interrupted, until --count
 * events were printed, or until smhd goes away (exit status 1).
 *
 * The region table is read before subscribing (a subscribed connection takes no other
 * request), so that a buffer's region shows by its label. Every string smhd sends that a
 * client chose (its command name) is printed escaped. stdout is flushed after each event: the
 * output goes to a pipe or a file as often as to a terminal, and a watcher wants it now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/escape.h"
#include "common/units.h"
#include "smhctl/smhctl.h"

struct events_opts {
	uint64_t count; /* 0: for ever */
	struct smh_region_info *regions;
	size_t n_regions;
};

static int parse_events(struct ctl *ctl, int argc, char **argv, struct events_opts *o)
{
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "count", required_argument, NULL, 'n' },
		{ 0 },
	};
	char *end;
	int c, status;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+n:", longopts, NULL)) != -1) {
		if (c == 'n') {
			errno = 0;
			o->count = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' || o->count == 0)
				return ctl_usage_error(ctl, "--count %s: not a positive number",
						       optarg);
		} else if ((status = ctl_option(ctl, c)) >= 0) {
			return status;
		}
	}
	return ctl_no_args(ctl, argc, argv);
}

static bool is_buffer_event(enum smh_event_kind kind)
{
	return kind >= SMH_EVENT_ALLOC && kind <= SMH_EVENT_IMPORT;
}

/* "2026-12-02 09:12:01.123456" in local time. */
static void format_time(char *buf, size_t size, uint64_t time_us)
{
	time_t t = (time_t)(time_us / 1000000);
	struct tm tm;
	size_t n = 0;

	if (localtime_r(&t, &tm))
		n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%06u", (unsigned)(time_us % 1000000));
}

static void print_json(const struct events_opts *o, const struct smh_event *ev, const char *comm)
{
	char when[64], label_buf[16];
	struct json j;

	json_init(&j, stdout);
	j.compact = true;
	format_time(when, sizeof(when), ev->time_us);
	json_object_begin(&j);
	json_key(&j, "time");
	json_string(&j, when);
	json_key(&j, "time_us");
	json_uint(&j, ev->time_us);
	json_key(&j, "event");
	json_string(&j, smh_event_kind_name(ev->kind));
	if (ev->kind == SMH_EVENT_LOST) {
		json_key(&j, "lost");
		json_uint(&j, ev->lost);
	} else {
		json_key(&j, "client");
		json_uint(&j, ev->client);
		json_key(&j, "pid");
		json_int(&j, ev->pid);
		json_key(&j, "uid");
		json_uint(&j, ev->uid);
		json_key(&j, "comm");
		json_string(&j, comm);
	}
	if (is_buffer_event(ev->kind)) {
		json_key(&j, "handle");
		json_uint(&j, ev->handle);
		json_key(&j, "region");
		json_uint(&j, ev->region);
		json_key(&j, "region_label");
		json_string(&j, ctl_region_label(o->regions, o->n_regions, ev->region, label_buf,
						 sizeof(label_buf)));
		json_key(&j, "size");
		json_uint(&j, ev->size);
		ctl_json_addr(&j, "phys_addr", ev->phys_addr);
	}
	if (ev->kind == SMH_EVENT_FREE) {
		json_key(&j, "released");
		json_bool(&j, ev->released);
	}
	if (ev->kind == SMH_EVENT_DEATH || ev->kind == SMH_EVENT_DISCONNECT) {
		json_key(&j, "n_buffers");
		json_uint(&j, ev->n_buffers);
		json_key(&j, "bytes");
		json_uint(&j, ev->bytes);
	}
	if (ev->kind == SMH_EVENT_DEATH) {
		json_key(&j, "why");
		json_string(&j, ev->why);
	}
	json_object_end(&j);
	json_finish(&j);
}

/* What follows the client on a human line: the buffer, or what a death released. */
static void print_detail(const struct events_opts *o, const struct smh_event *ev)
{
	char size[32], phys[32], label_buf[16], why[ESCAPE_SIZE(sizeof(ev->why))];

	ctl_size(size, sizeof(size), is_buffer_event(ev->kind) ? ev->size : ev->bytes);
	if (is_buffer_event(ev->kind)) {
		ctl_hex(phys, sizeof(phys), ev->phys_addr);
		printf(": handle %llu, %s in %s at %s", (unsigned long long)ev->handle, size,
		       ctl_region_label(o->regions, o->n_regions, ev->region, label_buf,
					sizeof(label_buf)),
		       phys);
		if (ev->kind == SMH_EVENT_FREE)
			printf(ev->released ? ", released" : ", still held");
	} else if (ev->kind == SMH_EVENT_DEATH) {
		printf(": gone holding %llu buffer%s (%s), released",
		       (unsigned long long)ev->n_buffers, ev->n_buffers == 1 ? "" : "s", size);
		if (ev->why[0])
			printf("; dropped by smhd: %s", escape_string(why, sizeof(why), ev->why));
	} else if (ev->kind == SMH_EVENT_CONNECT) {
		printf(", uid %u", (unsigned)ev->uid);
	}
}

static void print_event(const struct ctl *ctl, const struct events_opts *o,
			const struct smh_event *ev)
{
	char when[64], comm[ESCAPE_SIZE(sizeof(ev->comm))];

	escape_string(comm, sizeof(comm), ev->comm);
	if (ctl->json) {
		print_json(o, ev, comm);
		return;
	}
	format_time(when, sizeof(when), ev->time_us);
	printf("%s %-10s ", when, smh_event_kind_name(ev->kind));
	if (ev->kind == SMH_EVENT_LOST) {
		printf("%llu events were not read in time and are lost\n",
		       (unsigned long long)ev->lost);
		return;
	}
	printf("pid %d (%s) client %llu", (int)ev->pid, comm, (unsigned long long)ev->client);
	print_detail(o, ev);
	putchar('\n');
}

/*
 * A refused subscription: the daemon's sentence says who may subscribe, which the errno's
 * generic text (about the socket's owner, or file descriptors) would only obscure.
 */
static int subscribe_failed(const struct ctl *ctl, struct smh_client *client, int err)
{
	char msg[ESCAPE_SIZE(640)];

	escape_string(msg, sizeof(msg), smh_last_error(client));
	if ((err != -EPERM && err != -EMFILE) || !*msg)
		return ctl_failed(ctl, client, "could not subscribe to events", err);
	fprintf(stderr, "smhctl: error: could not subscribe to events: %s\n", msg);
	return CTL_EXIT_FAILURE;
}

int cmd_events(struct ctl *ctl, int argc, char **argv)
{
	struct events_opts o = { 0 };
	struct smh_client *client;
	struct smh_event ev;
	uint64_t n = 0;
	int status, err;

	if ((status = parse_events(ctl, argc, argv, &o)) >= 0 ||
	    (status = ctl_connect(ctl, &client)))
		return status;
	err = ctl_get_regions(client, &o.regions, &o.n_regions);
	if (err < 0) {
		status = ctl_failed(ctl, client, "could not read the regions", err);
		goto out;
	}
	err = smh_events_subscribe(client);
	if (err < 0) {
		status = subscribe_failed(ctl, client, err);
		goto out;
	}
	while (o.count == 0 || n < o.count) {
		err = smh_events_next(client, &ev, -1);
		if (err == -EAGAIN)
			continue;
		if (err < 0) {
			status = ctl_failed(ctl, client, "the event stream ended", err);
			goto out;
		}
		print_event(ctl, &o, &ev);
		if (fflush(stdout) != 0)
			break; /* the reader went away: finish_output() says so */
		n++;
	}
out:
	free(o.regions);
	smh_disconnect(client);
	return status;
}
