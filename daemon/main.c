/* SPDX-License-Identifier: MIT */
/*
 * smhd: the shared multi-heap daemon. This version validates a configuration (--check); the
 * memory backends and the socket server come next (see the README's roadmap).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "config.h"
#include "daemon/buddy.h"
#include "daemon/pool.h"
#include "daemon/report.h"

enum backend {
	BACKEND_DEVMEM,
	BACKEND_MEMFD,
};

struct options {
	const char *dtb;
	enum backend backend;
	const char *mem_path;
	const char *socket;
	uint64_t granule;
	bool check;
	bool json;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smhd [OPTION]...\n"
		"Serve buffers from the shared-multi-heap regions of the device tree.\n"
		"\n"
		"  --dtb FILE       device tree blob to read (default /sys/firmware/fdt)\n"
		"  --backend NAME   devmem: map regions from --mem-path (default);\n"
		"                   memfd: anonymous shared memory, for machines without a board\n"
		"  --mem-path FILE  memory device of the devmem backend (default /dev/mem)\n"
		"  --socket PATH    listening socket (default /run/smh/smhd.sock)\n"
		"  --granule SIZE   smallest block: a power of two >= %d (default %d), K/M suffix\n"
		"  --check          validate the configuration, print the regions and exit\n"
		"  --json           with --check: print the result as JSON\n"
		"  -h, --help       show this help and exit\n"
		"  -V, --version    show the version and exit\n"
		"\n"
		"Exit status: 0 success, 1 invalid configuration or failure, 2 usage error.\n",
		BUDDY_MIN_GRANULE, POOL_DEFAULT_GRANULE);
}

static int parse_granule(const char *arg, uint64_t *granulep)
{
	uint64_t g;

	if (units_parse_size(arg, &g) < 0 || !buddy_granule_valid(g)) {
		fprintf(stderr, "smhd: --granule %s: not a power of two of at least %d bytes\n",
			arg, BUDDY_MIN_GRANULE);
		return -EINVAL;
	}
	*granulep = g;
	return 0;
}

static int parse_backend(const char *arg, enum backend *backendp)
{
	if (strcmp(arg, "devmem") == 0)
		*backendp = BACKEND_DEVMEM;
	else if (strcmp(arg, "memfd") == 0)
		*backendp = BACKEND_MEMFD;
	else {
		fprintf(stderr, "smhd: --backend %s: unknown backend (valid: devmem, memfd)\n",
			arg);
		return -EINVAL;
	}
	return 0;
}

/* Returns 0 to go on, 1 to exit successfully (help, version), -1 for a usage error. */
static int parse_options(int argc, char **argv, struct options *opts)
{
	enum {
		OPT_DTB = 256,
		OPT_BACKEND,
		OPT_MEM_PATH,
		OPT_SOCKET,
		OPT_GRANULE,
		OPT_CHECK,
		OPT_JSON
	};
	static const struct option longopts[] = {
		{ "dtb", required_argument, NULL, OPT_DTB },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "mem-path", required_argument, NULL, OPT_MEM_PATH },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "granule", required_argument, NULL, OPT_GRANULE },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DTB:
			opts->dtb = optarg;
			break;
		case OPT_BACKEND:
			if (parse_backend(optarg, &opts->backend) < 0)
				return -1;
			break;
		case OPT_MEM_PATH:
			opts->mem_path = optarg;
			break;
		case OPT_SOCKET:
			opts->socket = optarg;
			break;
		case OPT_GRANULE:
			if (parse_granule(optarg, &opts->granule) < 0)
				return -1;
			break;
		case OPT_CHECK:
			opts->check = true;
			break;
		case OPT_JSON:
			opts->json = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("smhd %s\n", SMH_VERSION);
			return 1;
		default:
			fprintf(stderr, "Try 'smhd --help' for more information.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smhd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (opts->json && !opts->check) {
		fprintf(stderr, "smhd: --json goes with --check\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options opts = {
		.dtb = "/sys/firmware/fdt",
		.backend = BACKEND_DEVMEM,
		.mem_path = "/dev/mem",
		.socket = "/run/smh/smhd.sock",
		.granule = POOL_DEFAULT_GRANULE,
	};
	int r = parse_options(argc, argv, &opts);

	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	if (opts.check) {
		struct report_check_options check = {
			.dtb_path = opts.dtb,
			.granule = opts.granule,
			.json = opts.json,
			.prog = "smhd",
		};
		return report_check(&check, stdout, stderr);
	}
	fprintf(stderr, "smhd: serving clients is not available in this version yet; "
			"use --check to validate a configuration\n");
	return EXIT_FAILURE;
}
