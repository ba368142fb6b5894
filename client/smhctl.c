/* SPDX-License-Identifier: MIT */
/*
 * smhctl: inspect smh configurations and, once the daemon serves clients, the daemon itself.
 * This version has the offline command: `dt FILE` checks a device tree blob without a daemon.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "config.h"
#include "daemon/pool.h"
#include "daemon/report.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smhctl [--json] COMMAND [ARG]...\n"
		"Inspect shared multi-heap configurations.\n"
		"\n"
		"Commands:\n"
		"  dt [--granule SIZE] FILE\n"
		"                 check a device tree blob offline (no daemon needed) and print\n"
		"                 its shared-multi-heap regions; --granule as smhd's (default %d)\n"
		"\n"
		"Options:\n"
		"  --json         print JSON instead of a table (also after the command)\n"
		"  -h, --help     show this help and exit\n"
		"  -V, --version  show the version and exit\n"
		"\n"
		"Exit status: 0 success, 1 invalid configuration or failure, 2 usage error.\n",
		POOL_DEFAULT_GRANULE);
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

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	bool json = false;
	int c;

	/* "+": options stop at the command, which parses its own arguments. */
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("smhctl %s\n", SMH_VERSION);
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try 'smhctl --help' for more information.\n");
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "dt") == 0)
		return cmd_dt(argc, argv, json);
	fprintf(stderr, "smhctl: unknown command '%s' (this version has: dt)\n", argv[0]);
	return 2;
}
