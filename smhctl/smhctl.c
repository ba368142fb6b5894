/* SPDX-License-Identifier: MIT */
/*
 * smhctl: inspect smh configurations offline (`dt FILE`) and the running daemon (regions,
 * statistics, clients, allocations, an occupancy picture), and make test allocations.
 *
 * `doctor` (smhctl-doctor.c) works with or without a daemon.
 * This file has the options, the dispatch and what every daemon command shares: finding the
 * socket, connecting with an error that says what to try, reporting refusals with the daemon's
 * own message. The commands live in smhctl-cmds.c (tables), smhctl-alloc.c and smhctl-map.c.
 * Options before the command are global; a daemon command accepts --json and --socket after
 * its name too, so `smhctl regions --json` works as users type it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/units.h"
#include "config.h"
#include "core/pool.h"
#include "core/report.h"
#include "smhctl/smhctl.h"

#define DEFAULT_SOCKET "/run/smh/smhd.sock"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smhctl [--socket PATH] [--json] COMMAND [ARG]...\n"
		"Inspect shared multi-heap configurations and the smhd daemon.\n"
		"\n"
		"Commands (the daemon's):\n"
		"  regions        the regions smhd serves: range, size, backend, mapping obtained\n"
		"  stats          per region used/free/largest free/fragmentation, and totals\n"
		"  clients        the connected clients and what they hold\n"
		"  allocs [--pid PID] [--region LABEL] [--attr ATTR] [--name GLOB] [--sort KEY]\n"
		"         [--watch[=SECONDS] [--count N]]\n"
		"                 every live allocation, its owner (client id, pid, command;\n"
		"                 \"(gone)\" once disconnected) and holders; --pid: owned or held\n"
		"                 by PID; --name: names matching GLOB; KEY: handle (default),\n"
		"                 size, region, pid, owner, name;\n"
		"                 --watch: redraw every SECONDS (default 2), N times (default:\n"
		"                 until interrupted)\n"
		"  top [OPTION]...\n"
		"                 allocs --watch --sort size\n"
		"  metrics        the statistics in the Prometheus text format (for the node\n"
		"                 exporter's textfile collector)\n"
		"  alloc [--attr cacheable|non-cacheable] [--align N] [--name NAME] [--export]\n"
		"        [--hold] SIZE\n"
		"                 a test allocation: print it, write and check a pattern, free it "
		"at\n"
		"                 exit (--hold: on SIGINT/SIGTERM); --export prints an import "
		"token\n"
		"  fit [--attr ATTR] [--align N] SIZE\n"
		"                 how many buffers of SIZE fit in each region, now and empty\n"
		"                 (the allocator's own count; e.g. fit 3110400 --align 4K)\n"
		"  poison         with smhd --debug-poison: the blocks written after they were\n"
		"                 freed (region, offset, bytes changed, handle, last holder)\n"
		"  events [--count N]\n"
		"                 follow what smhd does as it happens: connects, allocations,\n"
		"                 frees, exports, imports, disconnects, deaths (--json: one\n"
		"                 object per line); root and smhd's user only\n"
		"  map [--width N]\n"
		"                 a picture of each region's occupancy, N cells wide (%d to %d;\n"
		"                 default: the terminal's width)\n"
		"\n"
		"Commands (offline):\n"
		"  dt [--granule SIZE] FILE\n"
		"                 check a device tree blob offline (no daemon needed) and print\n"
		"                 its shared-multi-heap regions; --granule as smhd's (default %d)\n"
		"  doctor [--dtb FILE] [--iomem FILE] [--mem-path FILE] [--kconfig FILE]\n"
		"         [--arch A]\n"
		"                 board checks, each OK, SKIP (not checked), WARN or FAIL with\n"
		"                 its fix: the regions in /proc/iomem, no-map, /dev/mem,\n"
		"                 STRICT_DEVMEM, the attribute obtained (from smhd if it runs),\n"
		"                 cached or not and how to get it; exit 1 when something FAILs\n"
		"\n"
		"Options:\n"
		"  --socket PATH  smhd's socket (default: $SMH_SOCKET, else %s)\n"
		"  --json         print JSON instead of a table (also after the command)\n"
		"  -h, --help     show this help and exit\n"
		"  -V, --version  show the version and exit\n"
		"\n"
		"Sizes take K, M, G suffixes (powers of 1024): 4K, 1MiB, 0x1000.\n"
		"Exit status: 0 success, 1 invalid configuration or failure, 2 usage error.\n",
		CTL_MAP_MIN_CELLS, CTL_MAP_MAX_CELLS, POOL_DEFAULT_GRANULE, DEFAULT_SOCKET);
}

int ctl_option(struct ctl *ctl, int c)
{
	switch (c) {
	case 'j':
		ctl->json = true;
		return -1;
	case 'S':
		ctl->socket = optarg;
		return -1;
	case 'h':
		usage(stdout);
		return 0;
	default:
		fprintf(stderr, "Try 'smhctl --help' for more information.\n");
		return CTL_EXIT_USAGE;
	}
}

int ctl_usage_error(const struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "smhctl: error: %s: ", ctl->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'smhctl --help' for more information.\n");
	return CTL_EXIT_USAGE;
}

int ctl_no_args(const struct ctl *ctl, int argc, char **argv)
{
	if (optind < argc)
		return ctl_usage_error(ctl, "unexpected argument '%s'", argv[optind]);
	return -1;
}

const char *ctl_socket_path(const struct ctl *ctl)
{
	const char *env = getenv("SMH_SOCKET");

	if (ctl->socket)
		return ctl->socket;
	return env && *env ? env : DEFAULT_SOCKET;
}

/* The socket of the connection made, for messages. */
static const char *connected_path = "";

/* Why smhd refused the hello (its access policy), as the library logs it; "" if it did not. */
static char hello_refusal[256];

static void on_connect_log(enum smh_log_level level, const char *msg, void *data)
{
	static const char prefix[] = "smh: hello refused: ";

	if (strncmp(msg, prefix, sizeof(prefix) - 1) == 0)
		escape_string(hello_refusal, sizeof(hello_refusal), msg + sizeof(prefix) - 1);
}

int ctl_connect(const struct ctl *ctl, struct smh_client **clientp)
{
	const char *path = ctl_socket_path(ctl);
	int err;

	hello_refusal[0] = '\0';
	connected_path = path;
	smh_set_log_handler(on_connect_log, NULL);
	err = smh_connect(path, clientp);
	smh_set_log_handler(NULL, NULL);
	if (err == 0)
		return 0;
	/* strerror(), not smh_strerror(): the context is said, and the hints below are smhctl's. */
	fprintf(stderr, "smhctl: error: cannot connect to smhd at %s: %s", path, strerror(-err));
	if (hello_refusal[0])
		fprintf(stderr, ": %s\n", hello_refusal);
	else if (err == -ENOENT || err == -ECONNREFUSED)
		fprintf(stderr, " (is smhd running? set --socket or SMH_SOCKET)\n");
	else if (err == -EACCES)
		fprintf(stderr, " (this user may not use the socket: ask to be added to its "
				"group, or run as root)\n");
	else if (err == -EPERM)
		fprintf(stderr, " (the process listening there runs as another user than smhd "
				"should: see SMH_SERVER_UID)\n");
	else if (err == -ETIMEDOUT)
		fprintf(stderr, " (smhd did not answer: is it stopped or hung? SMH_TIMEOUT_MS "
				"sets how long to wait)\n");
	else if (err == -EPROTONOSUPPORT)
		fprintf(stderr, " (smhd speaks another protocol version than smhctl %s)\n",
			SMH_VERSION);
	else
		fputc('\n', stderr);
	return CTL_EXIT_FAILURE;
}

int ctl_failed(const struct ctl *ctl, struct smh_client *client, const char *what, int err)
{
	char msg[ESCAPE_SIZE(640)];

	/* The daemon's message: its bytes are the daemon's choice. */
	escape_string(msg, sizeof(msg), client ? smh_last_error(client) : "");
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "smhctl: error: %s: smhd at %s did not answer in time\n", what,
			connected_path);
		return CTL_EXIT_FAILURE;
	}
	fprintf(stderr, "smhctl: error: %s: %s%s%s\n", what, smh_strerror(err), *msg ? ": " : "",
		msg);
	return CTL_EXIT_FAILURE;
}

/* Escapes @s (a field of @size bytes) in place, cut to fit. */
static void escape_field(char *s, size_t size)
{
	char safe[ESCAPE_SIZE(sizeof(((struct smh_region_info *)0)->mapping))];

	escape_string(safe, size < sizeof(safe) ? size : sizeof(safe), s);
	memcpy(s, safe, strlen(safe) + 1);
}

int ctl_get_regions(struct smh_client *client, struct smh_region_info **regionsp, size_t *np)
{
	int err = smh_get_regions(client, regionsp, np);

	for (size_t i = 0; err == 0 && i < *np; i++) {
		struct smh_region_info *r = &(*regionsp)[i];

		escape_field(r->label, sizeof(r->label));
		escape_field(r->backend, sizeof(r->backend));
		escape_field(r->mapping, sizeof(r->mapping));
	}
	return err;
}

void ctl_size(char *buf, size_t size, uint64_t v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && v >> (10 * (u + 1)))
		u++;
	if (v % (1ull << (10 * u)) == 0)
		snprintf(buf, size, "%llu %s", (unsigned long long)(v >> (10 * u)), units[u]);
	else
		snprintf(buf, size, "%.1f %s", (double)v / (double)(1ull << (10 * u)), units[u]);
}

void ctl_hex(char *buf, size_t size, uint64_t v)
{
	snprintf(buf, size, "0x%llx", (unsigned long long)v);
}

void ctl_json_addr(struct json *j, const char *key, uint64_t v)
{
	char name[64], hex[24];

	snprintf(name, sizeof(name), "%s_hex", key);
	ctl_hex(hex, sizeof(hex), v);
	json_key(j, key);
	json_uint(j, v);
	json_key(j, name);
	json_string(j, hex);
}

void ctl_permille(char *buf, size_t size, unsigned pm)
{
	snprintf(buf, size, "%u.%u%%", pm / 10, pm % 10);
}

const char *ctl_region_label(const struct smh_region_info *regions, size_t n_regions,
			     uint32_t index, char *buf, size_t size)
{
	for (size_t i = 0; i < n_regions; i++) {
		if (regions[i].index == index)
			return regions[i].label;
	}
	snprintf(buf, size, "#%u", index);
	return buf;
}

static int cmd_dt(int argc, char **argv, bool json)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "granule", required_argument, NULL, 'g' },
		{ 0 },
	};
	struct report_check_options check = {
		.granule = POOL_DEFAULT_GRANULE,
		.prog = "smhctl",
	};
	int c;

	/* 0, not 1: glibc then starts afresh, permuting options after FILE to the front. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'g') {
			if (units_parse_size(optarg, &check.granule) < 0 ||
			    !buddy_granule_valid(check.granule)) {
				fprintf(stderr,
					"smhctl: --granule %s: not a power of two of at least %d "
					"bytes\n",
					optarg, BUDDY_MIN_GRANULE);
				return 2;
			}
		} else {
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "smhctl: usage: smhctl [--json] dt [--granule SIZE] FILE\n");
		return 2;
	}
	check.json = json;
	check.dtb_path = argv[optind];
	return report_check(&check, stdout, stderr);
}

static const struct command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
} commands[] = {
	{ "regions", cmd_regions }, { "stats", cmd_stats },   { "clients", cmd_clients },
	{ "allocs", cmd_allocs },   { "alloc", cmd_alloc },   { "map", cmd_map },
	{ "doctor", cmd_doctor },   { "top", cmd_top },       { "metrics", cmd_metrics },
	{ "fit", cmd_fit },         { "poison", cmd_poison }, { "events", cmd_events },
};

/* Output goes to a pipe or a file as often as to a terminal: a failed write is a failure. */
static int finish_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smhctl: error: could not write the output: %s\n", strerror(errno));
		return status == 0 ? CTL_EXIT_FAILURE : status;
	}
	return status;
}

static int dispatch(struct ctl *ctl, int argc, char **argv)
{
	if (strcmp(argv[0], "dt") == 0)
		return cmd_dt(argc, argv, ctl->json);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) == 0) {
			/* getopt names argv[0] in its messages: "smhctl map: invalid option". */
			char prog[32];

			snprintf(prog, sizeof(prog), "smhctl %s", commands[i].name);
			argv[0] = prog;
			ctl->cmd = commands[i].name;
			return finish_output(commands[i].run(ctl, argc, argv));
		}
	}
	fprintf(stderr,
		"smhctl: error: unknown command '%s'\n"
		"Try 'smhctl --help' for the list of commands.\n",
		argv[0]);
	return CTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_COMMON_OPTIONS,
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct ctl ctl = { .cmd = "smhctl" };
	int c, status;

	/* "+": options stop at the command, which parses its own arguments. */
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		if (c == 'V') {
			printf("smhctl %s\n", SMH_VERSION);
			return EXIT_SUCCESS;
		}
		if ((status = ctl_option(&ctl, c)) >= 0)
			return status;
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	return dispatch(&ctl, argc - optind, argv + optind);
}
