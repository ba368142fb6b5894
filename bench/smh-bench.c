/* SPDX-License-Identifier: MIT */
/*
 * smh-bench: smhd against the IPC floor and against doing it by hand. It starts its own smhd
 * (memfd backend, bench.dtb: a 64 MiB region of each attribute) and smh-bench-echo on sockets
 * in a fresh temporary directory, measures everything in one run, and prints each figure as a
 * ratio against a baseline of the same run: these machines are shared and noisy.
 *
 * usage: smh-bench [--cpu N] [--json] [--smoke] [--iterations N] [--rounds N] [--duration MS]
 *                  [--clients N[,N...]] [--buddy-pairs N] [--smhd PATH] [--dtb PATH]
 *                  [--echo PATH] [--only GROUP[,GROUP...]]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smh-bench [OPTION]...\n"
		"Measure smhd against the IPC floor and against shared memory made by hand.\n"
		"\n"
		"  --cpu N            pin the benchmark, smhd and the echo server to CPU N\n"
		"  --json             print the results as one JSON object\n"
		"  --smoke            tiny counts: checks that everything runs (for the tests)\n"
		"  --iterations N     operations per latency figure (default 20000)\n"
		"  --rounds N         alternating blocks per figure (default 10)\n"
		"  --duration MS      milliseconds per throughput phase (default 300)\n"
		"  --clients LIST     concurrent clients, comma separated (default 8,64)\n"
		"  --buddy-pairs N    alloc+free pairs for the buddy figures (default 2000000)\n"
		"  --only LIST        measure only these groups, comma separated: latency, "
		"clients,\n"
		"                     free-loop, gigabyte, disconnect, buddy, copy (default all)\n"
		"  --smhd PATH, --dtb PATH, --echo PATH   the programs and blob to use (default:\n"
		"                     those of the build tree)\n");
}

static const char *const group_names[] = {
	"latency", "clients", "free-loop", "gigabyte", "disconnect", "buddy", "copy",
};

static int parse_groups(const char *arg, unsigned *groupsp)
{
	unsigned groups = 0;

	while (*arg) {
		size_t len = strcspn(arg, ","), i;

		for (i = 0; i < sizeof(group_names) / sizeof(group_names[0]); i++)
			if (strlen(group_names[i]) == len && strncmp(arg, group_names[i], len) == 0)
				break;
		if (i == sizeof(group_names) / sizeof(group_names[0]))
			return -EINVAL;
		groups |= 1u << i;
		arg += len + (arg[len] == ',');
	}
	if (!groups)
		return -EINVAL;
	*groupsp = groups;
	return 0;
}

static int parse_clients(const char *arg, struct bench_options *o)
{
	char *end;

	o->n_clients = 0;
	do {
		unsigned long n = strtoul(arg, &end, 10);

		if (end == arg || n == 0 || n > 256 || o->n_clients == 4)
			return -EINVAL;
		o->clients[o->n_clients++] = (unsigned)n;
		arg = end + 1;
	} while (*end == ',');
	return *end ? -EINVAL : 0;
}

static void smoke(struct bench_options *o)
{
	o->iterations = 100;
	o->rounds = 2;
	o->duration_ms = 20;
	o->clients[0] = 2;
	o->clients[1] = 8;
	o->n_clients = 2;
	o->buddy_pairs = 2000; /* glibc's side takes ~1.6 ms a pair under AddressSanitizer */
	o->disconnect_buffers = 2000;
	o->smoke = true;
}

/* Returns 0 to go on, -1 for a usage error, 1 after --help. */
static int parse_options(int argc, char **argv, struct bench_options *o)
{
	static const struct option longopts[] = {
		{ "cpu", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "smoke", no_argument, NULL, 'S' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "clients", required_argument, NULL, 'C' },
		{ "buddy-pairs", required_argument, NULL, 'b' },
		{ "smhd", required_argument, NULL, 's' },
		{ "dtb", required_argument, NULL, 't' },
		{ "echo", required_argument, NULL, 'e' },
		{ "only", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->cpu = atoi(optarg);
			break;
		case 'j':
			o->json = true;
			break;
		case 'S':
			smoke(o);
			break;
		case 'n':
			o->iterations = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			o->rounds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			o->duration_ms = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'C':
			if (parse_clients(optarg, o) < 0) {
				fprintf(stderr, "smh-bench: --clients %s: 1 to 4 counts of 1-256\n",
					optarg);
				return -1;
			}
			break;
		case 'b':
			o->buddy_pairs = strtoul(optarg, NULL, 0);
			break;
		case 's':
			o->smhd = optarg;
			break;
		case 't':
			o->dtb = optarg;
			break;
		case 'e':
			o->echo = optarg;
			break;
		case 'o':
			if (parse_groups(optarg, &o->groups) < 0) {
				fprintf(stderr,
					"smh-bench: --only %s: a comma-separated list of latency, "
					"clients, free-loop, gigabyte, disconnect, buddy, copy\n",
					optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || o->iterations == 0 || o->rounds == 0 || o->duration_ms == 0) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Starts both servers in @dir, measures, stops them. */
static int run(const struct bench_options *o, const char *dir, struct table *t)
{
	char smh_socket[256], echo_socket[256];
	pid_t smhd, echo;
	int err = 0, e;

	snprintf(smh_socket, sizeof(smh_socket), "%s/smhd.sock", dir);
	snprintf(echo_socket, sizeof(echo_socket), "%s/echo.sock", dir);
	err = bench_start_smhd(o, smh_socket, &smhd);
	if (err < 0) {
		fprintf(stderr, "smh-bench: error: cannot start %s: %s\n", o->smhd, strerror(-err));
		return err;
	}
	err = bench_start_echo(o, echo_socket, &echo);
	if (err < 0) {
		fprintf(stderr, "smh-bench: error: cannot start %s: %s\n", o->echo, strerror(-err));
		bench_stop(smhd);
		return err;
	}
	if (o->groups & BENCH_GROUP_LATENCY)
		err = bench_latency(o, smh_socket, t);
	if (err == 0 && (o->groups & BENCH_GROUP_CLIENTS))
		err = bench_clients(o, smh_socket, echo_socket, t);
	if (err == 0 &&
	    (o->groups & (BENCH_GROUP_FREE_LOOP | BENCH_GROUP_GIGABYTE | BENCH_GROUP_DISCONNECT)))
		err = bench_scrub(o, smh_socket, smhd, t);
	if (err == 0 && (o->groups & BENCH_GROUP_BUDDY))
		err = bench_buddy_rows(o, t);
	if (err == 0 && (o->groups & BENCH_GROUP_COPY))
		err = bench_copy(o, smh_socket, t);
	if (err < 0)
		fprintf(stderr, "smh-bench: error: a measurement failed: %s\n", strerror(-err));
	e = bench_stop(echo);
	if (bench_stop(smhd) < 0 || e < 0) {
		fprintf(stderr, "smh-bench: error: smhd or the echo server did not exit cleanly\n");
		err = err ? err : -ECHILD;
	}
	return err;
}

int main(int argc, char **argv)
{
	struct bench_options o = {
		.smhd = SMH_BENCH_SMHD,
		.dtb = SMH_BENCH_DTB,
		.echo = SMH_BENCH_ECHO,
		.cpu = -1,
		.iterations = 20000,
		.rounds = 10,
		.duration_ms = 300,
		.clients = { 8, 64 },
		.n_clients = 2,
		.buddy_pairs = 2000000,
		.disconnect_buffers = 1u << 20,
		.groups = BENCH_GROUP_ALL,
	};
	/* On tmpfs when there is one, as /run/smh is: smhd keeps its state file beside its socket. */
	char shm_dir[] = "/dev/shm/smh-bench-XXXXXX", tmp_dir[] = "/tmp/smh-bench-XXXXXX";
	char *dir;
	static struct table t;
	int err = parse_options(argc, argv, &o);

	if (err != 0)
		return err > 0 ? 0 : 2;
	if (o.cpu >= 0 && (err = bench_pin(o.cpu)) < 0) {
		fprintf(stderr, "smh-bench: error: --cpu %d: %s\n", o.cpu, strerror(-err));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	dir = mkdtemp(shm_dir);
	if (!dir)
		dir = mkdtemp(tmp_dir);
	if (!dir) {
		fprintf(stderr, "smh-bench: error: %s: %s\n", tmp_dir, strerror(errno));
		return 1;
	}
	err = run(&o, dir, &t);
	rmdir(dir);
	if (err < 0)
		return 1;
	if (o.json)
		report_json(&o, &t);
	else
		report_table(&o, &t);
	return 0;
}
