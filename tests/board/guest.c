/* SPDX-License-Identifier: MIT */
/*
 * The board test guest's shared helpers (guest.h): checks that count, programs run with their
 * output on the console, the expectations from the kernel command line, the board registry.
 *
 * The guest is PID 1 with no shell and no libraries beside it (static), so running a program
 * and reading a file are done by hand here, and everything shown goes to the serial console,
 * the only record of a run. SMH_EXPECT is parsed with strtoull: bases above 4 GiB are common
 * on 32-bit LPAE boards, where the guest is a 32-bit process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/board/guest.h"

#define N_BOARDS_MAX 8

struct guest_expect guest_expected[GUEST_N_EXPECT_MAX];
size_t guest_n_expected;
const char *guest_board_name = "";
const char *guest_dtb;

static unsigned n_checks, n_failed;
static const struct guest_board *boards[N_BOARDS_MAX];
static size_t n_boards;

static const char *const mapping_names[] = {
	[SMH_MAPPING_UNKNOWN] = "unknown",  [SMH_MAPPING_CACHED] = "cached",
	[SMH_MAPPING_WRITE_COMBINE] = "wc", [SMH_MAPPING_UNCACHED] = "uncached",
	[SMH_MAPPING_DEVICE] = "device",
};

void guest_board_register(const struct guest_board *board)
{
	if (n_boards < N_BOARDS_MAX)
		boards[n_boards++] = board;
}

const struct guest_board *guest_board_find(const char *name)
{
	for (size_t i = 0; i < n_boards; i++)
		if (strcmp(boards[i]->name, name) == 0)
			return boards[i];
	return NULL;
}

bool guest_check(bool ok, const char *fmt, ...)
{
	va_list ap;

	n_checks++;
	n_failed += !ok;
	printf("%s ", ok ? "[ OK ]" : "[FAIL]");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return ok;
}

void guest_counts(unsigned *n_checksp, unsigned *n_failedp)
{
	*n_checksp = n_checks;
	*n_failedp = n_failed;
}

void guest_pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

char *guest_read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return strdup("");
	buf = calloc(1, 1 << 20);
	n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf ? buf : strdup("");
}

void guest_show(const char *title, const char *text)
{
	printf("---- %s\n%s%s---- end of %s\n", title, text,
	       *text && text[strlen(text) - 1] != '\n' ? "\n" : "", title);
	fflush(stdout);
}

pid_t guest_start(char *const argv[], const char *out)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int guest_finish(pid_t pid, int seconds)
{
	int wstatus;

	for (long waited = 0; waited < seconds * 1000L; waited += 20) {
		pid_t r = waitpid(pid, &wstatus, WNOHANG);

		if (r == pid)
			return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
		guest_pause_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &wstatus, 0);
	printf("(killed after %d s)\n", seconds);
	return -1;
}

char *guest_run(const char *title, char *const argv[], int *statusp)
{
	pid_t pid = guest_start(argv, "/run/out.txt");
	char *out;

	*statusp = pid < 0 ? -1 : guest_finish(pid, 120);
	out = guest_read_text("/run/out.txt");
	guest_show(title, out);
	return out;
}

const char *guest_mapping_name(enum smh_mapping mapping)
{
	if ((size_t)mapping < sizeof(mapping_names) / sizeof(mapping_names[0]) &&
	    mapping_names[mapping])
		return mapping_names[mapping];
	return "?";
}

/* MAPPING of SMH_EXPECT: a mapping name or `refused`. Returns false when unknown. */
static bool parse_mapping(const char *name, struct guest_expect *e)
{
	e->refused = strcmp(name, "refused") == 0;
	if (e->refused)
		return true;
	for (size_t i = 1; i < sizeof(mapping_names) / sizeof(mapping_names[0]); i++) {
		if (strcmp(name, mapping_names[i]) == 0) {
			e->mapping = (enum smh_mapping)i;
			return true;
		}
	}
	return false;
}

/* LABEL:BASE:SIZE:MAPPING into @e. Returns false when malformed. */
static bool parse_item(char *item, struct guest_expect *e)
{
	char *field[4], *save = NULL, *end;
	size_t n = 0;

	for (char *f = strtok_r(item, ":", &save); f && n < 4; f = strtok_r(NULL, ":", &save))
		field[n++] = f;
	if (n != 4 || strlen(field[0]) >= sizeof(e->label))
		return false;
	snprintf(e->label, sizeof(e->label), "%s", field[0]);
	errno = 0;
	e->base = strtoull(field[1], &end, 0);
	if (errno || *end)
		return false;
	e->size = strtoull(field[2], &end, 0);
	if (errno || *end || e->size == 0)
		return false;
	return parse_mapping(field[3], e);
}

void guest_parse_expect(void)
{
	char *spec = getenv("SMH_EXPECT"), *save = NULL;
	bool ok = spec != NULL;

	if (getenv("SMH_BOARD"))
		guest_board_name = getenv("SMH_BOARD");
	printf("board: %s\n", *guest_board_name ? guest_board_name : "(SMH_BOARD not given)");
	spec = spec ? strdup(spec) : NULL;
	for (char *item = spec ? strtok_r(spec, ",", &save) : NULL; item;
	     item = strtok_r(NULL, ",", &save)) {
		struct guest_expect *e = &guest_expected[guest_n_expected];

		if (guest_n_expected == GUEST_N_EXPECT_MAX || !parse_item(item, e)) {
			ok = false;
			break;
		}
		printf("expected: %s 0x%llx+0x%llx %s\n", e->label, (unsigned long long)e->base,
		       (unsigned long long)e->size,
		       e->refused ? "refused" : guest_mapping_name(e->mapping));
		guest_n_expected++;
	}
	free(spec);
	guest_check(ok && guest_n_expected >= 2,
		    "the kernel command line names %zu expected regions "
		    "(SMH_EXPECT=LABEL:BASE:SIZE:MAPPING,...), all well-formed",
		    guest_n_expected);
}

const struct guest_expect *guest_expected_region(const char *label)
{
	for (size_t i = 0; i < guest_n_expected; i++)
		if (strcmp(guest_expected[i].label, label) == 0)
			return &guest_expected[i];
	return NULL;
}

const struct guest_expect *guest_refused_region(void)
{
	for (size_t i = 0; i < guest_n_expected; i++)
		if (guest_expected[i].refused)
			return &guest_expected[i];
	return NULL;
}
