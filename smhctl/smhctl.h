/* SPDX-License-Identifier: MIT */
/*
 * smhctl's commands and the helpers they share (smhctl/smhctl.c). Every command returns the
 * program's exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef SMHCTL_SMHCTL_H
#define SMHCTL_SMHCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/json.h"
#include "smh/client.h"

#define CTL_EXIT_FAILURE 1
#define CTL_EXIT_USAGE   2

/* The bounds of `map`'s bar (the protocol's bounds for an occupancy request). */
#define CTL_MAP_MIN_CELLS 8
#define CTL_MAP_MAX_CELLS 4096

/* The options every daemon command takes after its name, too (ctl_option() handles them). */
/* clang-format off */
#define CTL_COMMON_OPTIONS \
	{ "json", no_argument, NULL, 'j' }, \
	{ "socket", required_argument, NULL, 'S' }, \
	{ "help", no_argument, NULL, 'h' }
/* clang-format on */

struct ctl {
	const char *socket; /* --socket, or NULL: $SMH_SOCKET, else the default */
	bool json;
	const char *cmd; /* the command's name, for messages */
};

/*
 * Handles an option of CTL_COMMON_OPTIONS (or getopt's '?'). Returns -1 when the command goes
 * on, else the exit status to return now (0 after --help, 2 after a bad option).
 */
int ctl_option(struct ctl *ctl, int c);

/* Refuses arguments past argv[optind] (for commands that take none). Returns -1 or 2. */
int ctl_no_args(const struct ctl *ctl, int argc, char **argv);

/* Prints "smhctl: error: CMD: FORMAT" and "Try ..." to stderr. Returns 2. */
int ctl_usage_error(const struct ctl *ctl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The socket the command talks to: --socket, else a non-empty $SMH_SOCKET, else the default. */
const char *ctl_socket_path(const struct ctl *ctl);

/*
 * Connects to smhd; on failure says why and what to try. Returns 0, or the exit status (1).
 */
int ctl_connect(const struct ctl *ctl, struct smh_client **clientp);

/* Reports a failed call (@what) with the daemon's message when it sent one. Returns 1. */
int ctl_failed(const struct ctl *ctl, struct smh_client *client, const char *what, int err);

/*
 * @v bytes as people write sizes, into @buf: exact in the largest unit it reaches ("64 B",
 * "4 KiB"), else that unit with one decimal ("60.0 MiB" for 61486 KiB).
 */
void ctl_size(char *buf, size_t size, uint64_t v);

/* "0x..." for @v into @buf. */
void ctl_hex(char *buf, size_t size, uint64_t v);

/* Writes "KEY": @v and "KEY_hex": "0x..." (JSON numbers above 2^53 lose precision in doubles). */
void ctl_json_addr(struct json *j, const char *key, uint64_t v);

/* The per mille @pm as a percentage with one decimal, "12.5%", into @buf. */
void ctl_permille(char *buf, size_t size, unsigned pm);

/*
 * smh_get_regions(), with the strings the daemon chose (label, backend, mapping) escaped in
 * place (common/escape.h), cut to their fields: safe to print in every output.
 */
int ctl_get_regions(struct smh_client *client, struct smh_region_info **regionsp, size_t *np);

/* The label of region @index among @regions, or "#INDEX" in @buf when it is not there. */
const char *ctl_region_label(const struct smh_region_info *regions, size_t n_regions,
			     uint32_t index, char *buf, size_t size);

int cmd_regions(struct ctl *ctl, int argc, char **argv);
int cmd_stats(struct ctl *ctl, int argc, char **argv);
int cmd_clients(struct ctl *ctl, int argc, char **argv);
int cmd_allocs(struct ctl *ctl, int argc, char **argv);
int cmd_top(struct ctl *ctl, int argc, char **argv);
int cmd_metrics(struct ctl *ctl, int argc, char **argv);
int cmd_fit(struct ctl *ctl, int argc, char **argv);
int cmd_alloc(struct ctl *ctl, int argc, char **argv);
int cmd_map(struct ctl *ctl, int argc, char **argv);
int cmd_doctor(struct ctl *ctl, int argc, char **argv);
int cmd_events(struct ctl *ctl, int argc, char **argv);

/* smhd --debug-poison (smhctl-poison.c): the command, and what `smhctl stats` adds. */
int cmd_poison(struct ctl *ctl, int argc, char **argv);
/* smh_get_poison(), with a daemon older than the request read as poison mode off. */
int ctl_get_poison(struct smh_client *client, struct smh_poison_info *p);
void ctl_poison_stats_table(const struct smh_poison_info *p);
void ctl_poison_stats_json(struct json *j, const struct smh_poison_info *p);

/*
 * The requests' waits (smhctl-metrics.c), for `smhctl stats` too: smh_get_waits(), with an smhd
 * older than the counts not an error; *@havep says whether @w holds them. 0 or -errno.
 */
int ctl_get_waits(struct smh_client *client, struct smh_waits *w, bool *havep);

#endif
