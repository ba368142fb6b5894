/* SPDX-License-Identifier: MIT */
/*
 * What the board test's guest (guest-client.c, the initramfs's /init) shares with the checks
 * of one board (guest-BOARD.c): the check counter, running programs, the expected regions
 * from the kernel command line, and the hooks a board registers.
 *
 * A board's extra checks: a file tests/board/guest-BOARD.c (in smh_board_guest's sources in
 * tests/board/meson.build) with
 *
 *	static const struct guest_board board = {
 *		.name = "x86_64", .before_daemon = ..., .with_daemon = ...,
 *	};
 *	GUEST_BOARD(board)
 *
 * The guest calls the hooks of the board SMH_BOARD names (none: no extra checks).
 */
#ifndef TESTS_BOARD_GUEST_H
#define TESTS_BOARD_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smh/client.h"

#define GUEST_SMHD         "/usr/sbin/smhd"
#define GUEST_SMHCTL       "/usr/bin/smhctl"
#define GUEST_N_EXPECT_MAX 8

/* One region of SMH_EXPECT=LABEL:BASE:SIZE:MAPPING,... */
struct guest_expect {
	char label[SMH_REGION_LABEL_MAX];
	uint64_t base, size;
	bool refused;             /* MAPPING `refused`: smhd does not serve it */
	enum smh_mapping mapping; /* otherwise: device, uncached, wc or cached */
};

extern struct guest_expect guest_expected[GUEST_N_EXPECT_MAX];
extern size_t guest_n_expected;
extern const char *guest_board_name; /* SMH_BOARD, "" when not given */
extern const char *guest_dtb;        /* NULL: the daemon's default, /sys/firmware/fdt */

/* The hooks of one board; NULL ones are skipped. */
struct guest_board {
	const char *name; /* SMH_BOARD's value */
	/* The system is mounted, no smhd has run yet. */
	void (*before_daemon)(void);
	/* smhd serves with its defaults, after the common region checks; @client is connected. */
	void (*with_daemon)(struct smh_client *client);
};

/* Called by GUEST_BOARD before main(); at most 8 boards. */
void guest_board_register(const struct guest_board *board);
#define GUEST_BOARD(b)                                                          \
	__attribute__((constructor)) static void guest_board_register_##b(void) \
	{                                                                       \
		guest_board_register(&(b));                                     \
	}

/* The board SMH_BOARD names, or NULL when none registered that name. */
const struct guest_board *guest_board_find(const char *name);

/* Prints "[ OK ] ..." or "[FAIL] ..." and counts it. Returns @ok. */
bool guest_check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The number of checks and of failed ones so far. */
void guest_counts(unsigned *n_checksp, unsigned *n_failedp);

void guest_pause_ms(long ms);
/* The file's text (at most 1 MiB), "" when unreadable; free it. */
char *guest_read_text(const char *path);
/* Prints @text between "---- TITLE" and "---- end of TITLE" lines. */
void guest_show(const char *title, const char *text);
/* Starts @argv with stdout and stderr into the file @out. Returns the pid or -1. */
pid_t guest_start(char *const argv[], const char *out);
/* Waits for @pid up to @seconds, then kills it. Returns its exit status, or -1 when killed. */
int guest_finish(pid_t pid, int seconds);
/* Runs a program to the end, shows its output (returned, free it) and sets *statusp. */
char *guest_run(const char *title, char *const argv[], int *statusp);

/* Parses SMH_EXPECT and SMH_BOARD from the environment (the kernel command line). */
void guest_parse_expect(void);
const struct guest_expect *guest_expected_region(const char *label);
/* The first region expected to be refused, or NULL when the board serves every region. */
const struct guest_expect *guest_refused_region(void);
/* The name SMH_EXPECT uses for @mapping ("device", "cached", ...). */
const char *guest_mapping_name(enum smh_mapping mapping);

#endif
