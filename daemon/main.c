/* SPDX-License-Identifier: MIT */
/*
 * smhd: the shared multi-heap daemon. Reads the regions from the device tree, maps them through
 * a backend, builds the pool and serves clients on a unix socket until SIGINT or SIGTERM.
 * `--check` only validates the configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/log.h"
#include "common/units.h"
#include "config.h"
#include "core/buddy.h"
#include "core/pool.h"
#include "core/report.h"
#include "daemon/events.h"
#include "daemon/policy-config.h"
#include "daemon/restart/keeper.h"
#include "daemon/restart/recover.h"
#include "daemon/smhd.h"
#include "proto/wire.h"

struct options {
	struct smhd_options daemon; /* what smhd_create() takes */
	bool check;
	bool json;
	enum log_level log_level;
	const char *config;    /* --config, or NULL: the default file if it exists */
	struct policy *policy; /* the policy options (daemon/policy-config.h) */
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
		"  --allow-shared-socket-dir  serve from a socket directory others may write to\n"
		"                   (such as /tmp): after smhd stops, they may listen there\n"
		"  --granule SIZE   smallest block: a power of two >= %d (default %d), K/M suffix\n"
		"  --strict         a region the kernel refuses to map is fatal (default: warn\n"
		"                   and serve the other regions)\n"
		"  --state-dir DIR  where the buffers held are recorded, so that a restarted smhd\n"
		"                   gives them back (default: the socket's directory)\n"
		"  --no-state       record nothing: a restart forgets every buffer\n"
		"  --reclaim-grace S  after a restart, seconds clients have to reclaim their\n"
		"                   buffers before those of gone processes are freed (default %d)\n"
		"  --hello-timeout S  close a connection that says no hello within S seconds\n"
		"                   (default %d; 0: never)\n"
		"  --max-connections-per-uid N  connections one uid may have open at once,\n"
		"                   served or not yet (default %d; 0: no limit; root: no limit)\n"
		"  --debug-poison   fill freed blocks with a pattern, keep them in a quarantine\n"
		"                   and report those written after free (costs memory and time)\n"
		"  --poison-quarantine SIZE  with --debug-poison: bytes quarantined per region\n"
		"                   (default: a quarter of each region), K/M/G suffix\n"
		"  --max-subscribers N  connections following events (smhctl events) at once\n"
		"                   (default %d; 0: none)\n"
		"  --log-level L    error, warning, info (default) or debug\n"
		"  -v, --verbose    the same as --log-level debug\n"
		"  --check          validate the configuration, print the regions and exit\n"
		"  --json           with --check: print the result as JSON\n"
		"  -h, --help       show this help and exit\n"
		"  -V, --version    show the version and exit\n"
		"\n",
		BUDDY_MIN_GRANULE, POOL_DEFAULT_GRANULE, RECOVER_DEFAULT_GRACE_S,
		SERVER_DEFAULT_HELLO_TIMEOUT_S, SERVER_DEFAULT_MAX_CONNS_PER_UID,
		EVENTS_DEFAULT_MAX_SUBSCRIBERS);
	policy_usage(f);
	fprintf(f, "\nExit status: 0 success, 1 invalid configuration or failure, 2 usage error\n"
		   "(also for an error in the configuration file).\n");
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

/* A whole number from 0 to @max for the option --@name. */
static int parse_uint(const char *name, const char *arg, unsigned long max, const char *what,
		      unsigned *valuep)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v > max) {
		fprintf(stderr, "smhd: --%s %s: not a number of %s (0 to %lu)\n", name, arg, what,
			max);
		return -EINVAL;
	}
	*valuep = (unsigned)v;
	return 0;
}

static int parse_backend(const char *arg, enum backend_kind *backendp)
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

static int parse_policy_option(enum policy_key key, const char *arg, struct policy *policy)
{
	char err[256];
	int ret = policy_set(policy, key, arg, err, sizeof(err));

	if (ret < 0)
		fprintf(stderr, "smhd: --%s %s: %s\n", policy_key_name(key), arg, err);
	return ret;
}

static int parse_quarantine(const char *arg, uint64_t *bytesp)
{
	if (units_parse_size(arg, bytesp) < 0 || *bytesp == 0) {
		fprintf(stderr, "smhd: --poison-quarantine %s: not a size of at least 1 byte\n",
			arg);
		return -1;
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
		OPT_SHARED_DIR,
		OPT_GRANULE,
		OPT_CHECK,
		OPT_JSON,
		OPT_STRICT,
		OPT_LOG_LEVEL,
		OPT_STATE_DIR,
		OPT_NO_STATE,
		OPT_RECLAIM_GRACE,
		OPT_CONFIG,
		OPT_HELLO_TIMEOUT,
		OPT_MAX_CONNS_PER_UID,
		OPT_DEBUG_POISON,
		OPT_POISON_QUARANTINE,
		OPT_MAX_SUBSCRIBERS,
		OPT_POLICY, /* + enum policy_key */
	};
	static const struct option longopts[] = {
		{ "dtb", required_argument, NULL, OPT_DTB },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "mem-path", required_argument, NULL, OPT_MEM_PATH },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "allow-shared-socket-dir", no_argument, NULL, OPT_SHARED_DIR },
		{ "granule", required_argument, NULL, OPT_GRANULE },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "no-state", no_argument, NULL, OPT_NO_STATE },
		{ "reclaim-grace", required_argument, NULL, OPT_RECLAIM_GRACE },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "hello-timeout", required_argument, NULL, OPT_HELLO_TIMEOUT },
		{ "max-connections-per-uid", required_argument, NULL, OPT_MAX_CONNS_PER_UID },
		{ "debug-poison", no_argument, NULL, OPT_DEBUG_POISON },
		{ "poison-quarantine", required_argument, NULL, OPT_POISON_QUARANTINE },
		{ "max-subscribers", required_argument, NULL, OPT_MAX_SUBSCRIBERS },
		{ "allow-uid", required_argument, NULL, OPT_POLICY + POLICY_ALLOW_UID },
		{ "allow-gid", required_argument, NULL, OPT_POLICY + POLICY_ALLOW_GID },
		{ "max-clients", required_argument, NULL, OPT_POLICY + POLICY_MAX_CLIENTS },
		{ "max-bytes-per-uid", required_argument, NULL,
		  OPT_POLICY + POLICY_MAX_BYTES_PER_UID },
		{ "max-buffers-per-uid", required_argument, NULL,
		  OPT_POLICY + POLICY_MAX_BUFFERS_PER_UID },
		{ "max-bytes-per-client", required_argument, NULL,
		  OPT_POLICY + POLICY_MAX_BYTES_PER_CLIENT },
		{ "max-buffers-per-client", required_argument, NULL,
		  OPT_POLICY + POLICY_MAX_BUFFERS_PER_CLIENT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "hVv", longopts, NULL)) != -1) {
		if (c >= OPT_POLICY && c < OPT_POLICY + POLICY_N_KEYS) {
			if (parse_policy_option((enum policy_key)(c - OPT_POLICY), optarg,
						opts->policy) < 0)
				return -1;
			continue;
		}
		switch (c) {
		case OPT_DTB:
			opts->daemon.dtb = optarg;
			break;
		case OPT_BACKEND:
			if (parse_backend(optarg, &opts->daemon.backend) < 0)
				return -1;
			break;
		case OPT_MEM_PATH:
			opts->daemon.mem_path = optarg;
			break;
		case OPT_SOCKET:
			opts->daemon.socket = optarg;
			break;
		case OPT_SHARED_DIR:
			opts->daemon.allow_shared_socket_dir = true;
			break;
		case OPT_GRANULE:
			if (parse_granule(optarg, &opts->daemon.granule) < 0)
				return -1;
			break;
		case OPT_CONFIG:
			opts->config = optarg;
			break;
		case OPT_CHECK:
			opts->check = true;
			break;
		case OPT_JSON:
			opts->json = true;
			break;
		case OPT_STRICT:
			opts->daemon.strict = true;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_from_name(optarg, &opts->log_level) < 0) {
				fprintf(stderr,
					"smhd: --log-level %s: unknown level (valid: error, "
					"warning, info, debug)\n",
					optarg);
				return -1;
			}
			break;
		case OPT_STATE_DIR:
			opts->daemon.state_dir = optarg;
			break;
		case OPT_NO_STATE:
			opts->daemon.no_state = true;
			break;
		case OPT_RECLAIM_GRACE:
			if (parse_uint("reclaim-grace", optarg, 86400, "seconds",
				       &opts->daemon.reclaim_grace) < 0)
				return -1;
			break;
		case OPT_HELLO_TIMEOUT:
			if (parse_uint("hello-timeout", optarg, 3600, "seconds",
				       &opts->daemon.limits.hello_timeout_s) < 0)
				return -1;
			break;
		case OPT_MAX_CONNS_PER_UID:
			if (parse_uint("max-connections-per-uid", optarg, 1000000, "connections",
				       &opts->daemon.limits.max_conns_per_uid) < 0)
				return -1;
			break;
		case OPT_DEBUG_POISON:
			opts->daemon.debug_poison = true;
			break;
		case OPT_POISON_QUARANTINE:
			if (parse_quarantine(optarg, &opts->daemon.poison_quarantine) < 0)
				return -1;
			break;
		case OPT_MAX_SUBSCRIBERS:
			if (parse_uint("max-subscribers", optarg, 1024, "subscribers",
				       &opts->daemon.limits.max_subscribers) < 0)
				return -1;
			break;
		case 'v':
			opts->log_level = LOG_DEBUG;
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
	if (opts->daemon.poison_quarantine && !opts->daemon.debug_poison) {
		fprintf(stderr, "smhd: --poison-quarantine goes with --debug-poison\n");
		return -1;
	}
	if (opts->json && !opts->check) {
		fprintf(stderr, "smhd: --json goes with --check\n");
		return -1;
	}
	return 0;
}

/*
 * Every client costs the daemon one fd: take every fd the hard limit allows (the soft limit is
 * often 1024, fewer than the clients of a busy board). Not fatal: smhd serves with what it has.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warning("Could not read the open files limit: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		rlim_t soft = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_warning("Could not raise the open files limit from %llu to %llu: %s",
				    (unsigned long long)soft, (unsigned long long)rl.rlim_max,
				    strerror(errno));
			return;
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		log_info("Open files limit: unlimited");
	else
		log_info("Open files limit: %llu", (unsigned long long)rl.rlim_cur);
}

/* Builds the daemon from @opts and @policy (moved in), and serves. Returns the exit status. */
static int serve(const struct smhd_options *opts, struct policy *policy)
{
	struct smhd *d;
	int ret = smhd_create(opts, policy, &d);

	if (ret == 0) {
		ret = smhd_run(d);
		smhd_destroy(d);
	}
	return ret < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The configuration file, then the options over it, into @policy. Returns 0 or -1 (reported). */
static int configure_policy(const struct options *opts, struct policy *policy)
{
	char err[512];

	if (policy_configure(policy, opts->config, opts->policy, err, sizeof(err)) < 0) {
		fprintf(stderr, "smhd: error: %s\n", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct policy cli, policy;
	struct options opts = {
		.daemon = {
			.dtb = "/sys/firmware/fdt",
			.backend = BACKEND_DEVMEM,
			.mem_path = "/dev/mem",
			.socket = SMH_DEFAULT_SOCKET,
			.granule = POOL_DEFAULT_GRANULE,
			.reclaim_grace = RECOVER_DEFAULT_GRACE_S,
			.limits = {
				.hello_timeout_s = SERVER_DEFAULT_HELLO_TIMEOUT_S,
				.max_conns_per_uid = SERVER_DEFAULT_MAX_CONNS_PER_UID,
				.max_subscribers = EVENTS_DEFAULT_MAX_SUBSCRIBERS,
			},
		},
		.log_level = LOG_INFO,
		.policy = &cli,
	};
	int r;

	if (argc == 2 && strcmp(argv[1], "--keeper") == 0)
		return keeper_main(); /* started by smhd itself, see daemon/restart/keeper.h */

	policy_init(&cli);
	policy_init(&policy);
	r = parse_options(argc, argv, &opts);
	if (r == 0)
		r = configure_policy(&opts, &policy);
	policy_finish(&cli);
	if (r != 0) {
		policy_finish(&policy);
		return r > 0 ? EXIT_SUCCESS : 2;
	}
	if (opts.check) {
		struct report_check_options check = {
			.dtb_path = opts.daemon.dtb,
			.granule = opts.daemon.granule,
			.json = opts.json,
			.prog = "smhd",
		};
		policy_finish(&policy);
		return report_check(&check, stdout, stderr);
	}
	log_set_level(opts.log_level);
	raise_fd_limit();
	return serve(&opts.daemon, &policy);
}
