/* SPDX-License-Identifier: MIT */
/*
 * The board test's guest: /init of an initramfs booted under QEMU (tests/board/run-board-test).
 *
 * It mounts what a system has (proc, sysfs, devtmpfs, a tmpfs on /run), then checks smh on the
 * real kernel, printing one "[ OK ]" or "[FAIL]" line per check and every program's output:
 * - `smhd --check` on the live device tree; `smhd --strict` refuses a region the kernel will
 *   not map (no no-map on a STRICT_DEVMEM kernel) or, when no region is to be refused, serves;
 * - smhd started with its defaults (/sys/firmware/fdt, devmem, /dev/mem, /run/smh/smhd.sock)
 *   reports a refused region with the reason and the fix, and serves the others;
 * - the regions reply and `smhctl regions`: the device tree's addresses and, per region, the
 *   mapping the board expects (Device memory, uncached, write-combine, cached);
 * - the board's own checks (guest-BOARD.c, chosen by SMH_BOARD; see guest.h);
 * - per attribute: allocate, write a pattern (smh_buffer_write: the memory may be Device
 *   memory), a second process imports the buffer and reads the same bytes, physical addresses
 *   inside the device tree's ranges;
 * - a client killed with SIGKILL gives its memory back; the next owner sees zeros;
 * - `smhctl doctor` names a refused region and how to fix it, or fails nothing.
 * The last line is "SMH BOARD TEST: PASS" only when every check passed; then it powers off.
 *
 * The kernel command line passes SMH_BOARD=NAME, SMH_EXPECT=LABEL:BASE:SIZE:MAPPING,... (the
 * regions the DTB declares; MAPPING is device, uncached, wc, cached or refused) and, on
 * machines without /sys/firmware/fdt (x86), SMH_DTB=FILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smh/client.h"
#include "tests/board/guest.h"

#define SMHD      GUEST_SMHD
#define SMHCTL    GUEST_SMHCTL
#define BUF_BYTES (64 * 1024 + 3) /* odd: the helpers' unaligned tail is exercised */

/* argv of a daemon or smhctl command, with --dtb FILE where the machine needs it. */
static void with_dtb(char **argv, size_t *argcp)
{
	if (guest_dtb) {
		argv[(*argcp)++] = "--dtb";
		argv[(*argcp)++] = (char *)guest_dtb;
	}
	argv[*argcp] = NULL;
}

static void setup_system(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir("/run", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("tmpfs", "/run", "tmpfs", 0, "mode=0755");
	if (fcntl(STDOUT_FILENO, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR);

		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	setenv("PATH", "/usr/sbin:/usr/bin", 1);
	/* Under TCG a round trip through Device memory may be slow: not the 5 s default. */
	setenv("SMH_TIMEOUT_MS", "60000", 0);
}

/* The label of the region expected to be refused, "" when none is. */
static const char *refused_label(void)
{
	const struct guest_expect *e = guest_refused_region();

	return e ? e->label : "";
}
/* ---------------------------------------------------------------- the daemon */

/* Waits up to 30 s for a daemon @pid to serve on @sock. Returns 0 or a negative errno. */
static int wait_serving(pid_t pid, const char *sock, struct smh_client **clientp)
{
	int err = -ENOENT, wstatus;

	for (int i = 0; i < 1500 && pid > 0; i++) {
		err = smh_connect(sock, clientp);
		if (err == 0 || waitpid(pid, &wstatus, WNOHANG) == pid)
			break;
		guest_pause_ms(20);
	}
	return pid > 0 ? err : -ECHILD;
}

/* With a refused region, --strict must refuse to start; without one, it must serve. */
static void test_strict(void)
{
	char *argv[8] = { SMHD, "--strict", "--socket", "/run/strict.sock" };
	size_t argc = 4;
	struct smh_client *client = NULL;
	int status, err;
	pid_t pid;
	char *out;

	with_dtb(argv, &argc);
	if (guest_refused_region()) {
		out = guest_run("smhd --strict", argv, &status);
		guest_check(status > 0, "smhd --strict refuses to start (exit %d)", status);
		guest_check(strstr(out, refused_label()) && strstr(out, "no-map") &&
				    strstr(out, "STRICT_DEVMEM"),
			    "smhd --strict names %s, no-map and STRICT_DEVMEM", refused_label());
		free(out);
		return;
	}
	pid = guest_start(argv, "/run/strict.log");
	err = wait_serving(pid, "/run/strict.sock", &client);
	smh_disconnect(client);
	if (pid > 0)
		kill(pid, SIGTERM);
	status = pid > 0 ? guest_finish(pid, 60) : -1;
	out = guest_read_text("/run/strict.log");
	guest_show("smhd --strict", out);
	free(out);
	guest_check(err == 0 && status == 0,
		    "no region is to be refused: smhd --strict serves (%s) and stops on SIGTERM "
		    "(exit %d)",
		    smh_strerror(err), status);
}

static void test_check_and_strict(void)
{
	char *argv[8] = { SMHD, "--check" };
	size_t argc = 2;
	int status;
	char *out;

	with_dtb(argv, &argc);
	out = guest_run("smhd --check", argv, &status);
	guest_check(status == 0, "smhd --check on the live device tree exits 0 (got %d)", status);
	for (size_t i = 0; i < guest_n_expected; i++)
		guest_check(strstr(out, guest_expected[i].label) != NULL, "smhd --check lists %s",
			    guest_expected[i].label);
	free(out);
	test_strict();
}

/* Starts smhd with its defaults and connects. Returns its pid, or -1. */
static pid_t start_daemon(struct smh_client **clientp)
{
	char *argv[8] = { SMHD };
	size_t argc = 1;
	pid_t pid;
	int err;
	char *log;

	with_dtb(argv, &argc);
	printf("starting: %s%s%s\n", SMHD, guest_dtb ? " --dtb " : " (no arguments)",
	       guest_dtb ? guest_dtb : "");
	pid = guest_start(argv, "/run/smhd.log");
	err = wait_serving(pid, NULL, clientp);
	log = guest_read_text("/run/smhd.log");
	guest_show("smhd's log at start", log);
	guest_check(err == 0, "smhd with its defaults serves on /run/smh/smhd.sock (%s)",
		    smh_strerror(err));
	if (guest_refused_region())
		guest_check(strstr(log, refused_label()) && strstr(log, "add `no-map`") &&
				    strstr(log, "STRICT_DEVMEM"),
			    "smhd reports %s with the reason and the fix (no-map / STRICT_DEVMEM)",
			    refused_label());
	free(log);
	return err == 0 ? pid : -1;
}

/* What the mapping text of each kind says, as core/memtype.c words it. */
static const char *mapping_words(enum smh_mapping kind)
{
	switch (kind) {
	case SMH_MAPPING_DEVICE:
		return "Device memory";
	case SMH_MAPPING_UNCACHED:
		return "uncached";
	case SMH_MAPPING_WRITE_COMBINE:
		return "write-combine";
	case SMH_MAPPING_CACHED:
		return "write-back";
	default:
		return "?";
	}
}

/* The line of `smhctl regions` for @r: its MEMORY column and its mapping text. */
static bool listed(const char *out, const struct smh_region_info *r, const char *memory)
{
	char col[32];

	snprintf(col, sizeof(col), "  %s ", memory);
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];

		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		if (strncmp(line, r->label, strlen(r->label)) == 0 && line[strlen(r->label)] == ' ')
			return strstr(line, col) && strstr(line, r->mapping);
	}
	return false;
}

static void check_mapping(const struct smh_region_info *r, const struct guest_expect *e,
			  const char *out)
{
	static const char *const memory[] = {
		[SMH_MAPPING_UNKNOWN] = "unknown",
		[SMH_MAPPING_CACHED] = "cached",
		[SMH_MAPPING_WRITE_COMBINE] = "write-combine",
		[SMH_MAPPING_UNCACHED] = "uncached",
		[SMH_MAPPING_DEVICE] = "device",
	};
	const char *words = mapping_words(e->mapping);
	bool text_ok = strstr(r->mapping, words) != NULL;

	/* "uncached" is inside neither "write-back" nor "Device memory"; keep it that way. */
	if (e->mapping == SMH_MAPPING_CACHED)
		text_ok = text_ok && strstr(r->mapping, "uncached") == NULL;
	guest_check(r->mapping_kind == e->mapping && text_ok,
		    "%s (%s): smhd reports the expected mapping, %s: \"%s\" (kind %d)", r->label,
		    r->attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable",
		    guest_mapping_name(e->mapping), r->mapping, (int)r->mapping_kind);
	guest_check(listed(out, r, memory[e->mapping]),
		    "%s: smhctl regions shows it as %s with the same text", r->label,
		    memory[e->mapping]);
}

static void test_regions(struct smh_client *client)
{
	char *argv[] = { SMHCTL, "regions", NULL };
	struct smh_region_info *regions = NULL;
	size_t n = 0;
	int status, err;
	char *out = guest_run("smhctl regions", argv, &status);

	guest_check(status == 0, "smhctl regions exits 0");
	err = smh_get_regions(client, &regions, &n);
	guest_check(err == 0 && n == guest_n_expected, "smhd serves a table of %zu regions", n);
	for (size_t i = 0; err == 0 && i < n; i++) {
		const struct smh_region_info *r = &regions[i];
		const struct guest_expect *e = guest_expected_region(r->label);

		guest_check(e && e->base == r->phys_addr && e->size == r->size,
			    "%s: 0x%llx+0x%llx is the device tree's range", r->label,
			    (unsigned long long)r->phys_addr, (unsigned long long)r->size);
		if (!e)
			continue;
		if (e->refused)
			guest_check(strncmp(r->mapping, "not mapped", 10) == 0,
				    "%s is not served, as expected: \"%s\"", r->label, r->mapping);
		else
			check_mapping(r, e, out);
	}
	free(regions);
	free(out);
}

/* ---------------------------------------------------------------- buffers */

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 131 + seed * 17 + (i >> 8)) ^ 0x5c);
}

/* The second process: imports @token on its own connection and compares the bytes. */
static int importer(uint64_t token, const struct smh_buffer *orig, unsigned seed)
{
	struct smh_client *client;
	struct smh_buffer buf;
	unsigned char *want = malloc(BUF_BYTES), *got = malloc(BUF_BYTES);
	int ok;

	if (!want || !got || smh_connect(NULL, &client) < 0)
		return 2;
	if (smh_import(client, token, &buf) < 0 || smh_map(&buf) < 0)
		return 3;
	pattern(want, BUF_BYTES, seed);
	ok = smh_buffer_read(&buf, 0, got, BUF_BYTES) == 0 && memcmp(got, want, BUF_BYTES) == 0 &&
	     buf.phys_addr == orig->phys_addr;
	/* Written here, read by the first process: the same physical bytes. */
	ok = ok && smh_buffer_fill(&buf, BUF_BYTES - 100, 0xa7, 100) == 0;
	smh_free(client, &buf);
	smh_disconnect(client);
	return ok ? 0 : 1;
}

static void test_attr(struct smh_client *client, enum smh_reg_attr attr, unsigned seed)
{
	const char *name = attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable";
	unsigned char *want = malloc(BUF_BYTES), *got = malloc(BUF_BYTES), odd[29];
	const struct guest_expect *e;
	struct smh_buffer buf;
	uint64_t token = 0;
	int err, status;
	pid_t pid;

	err = smh_alloc(client, attr, BUF_BYTES, 0, &buf);
	if (!guest_check(err == 0 && want && got, "%s: allocated %d bytes: %s", name, BUF_BYTES,
			 smh_strerror(err)))
		goto out;
	e = guest_expected_region(buf.region);
	guest_check(e && !e->refused && buf.phys_addr >= e->base &&
			    buf.phys_addr + buf.size <= e->base + e->size,
		    "%s: from %s at physical 0x%llx-0x%llx, inside the device tree's range", name,
		    buf.region, (unsigned long long)buf.phys_addr,
		    (unsigned long long)(buf.phys_addr + buf.size - 1));
	err = smh_map(&buf);
	if (!guest_check(err == 0, "%s: mapped (%s)", name, smh_strerror(err)))
		goto out_free;
	pattern(want, BUF_BYTES, seed);
	err = smh_buffer_write(&buf, 0, want, BUF_BYTES);
	err = err ? err : smh_buffer_read(&buf, 0, got, BUF_BYTES);
	guest_check(err == 0 && memcmp(got, want, BUF_BYTES) == 0,
		    "%s: a %d-byte pattern reads back the same", name, BUF_BYTES);
	/* Unaligned edges on the real memory type: bytes, then words, then bytes. */
	pattern(odd, sizeof(odd), seed + 1);
	err = smh_buffer_write(&buf, 4099, odd, sizeof(odd));
	memcpy(want + 4099, odd, sizeof(odd));
	err = err ? err : smh_buffer_read(&buf, 4090, got, 64);
	guest_check(err == 0 && memcmp(got, want + 4090, 64) == 0,
		    "%s: a 29-byte write at offset 4099 reads back, neighbours intact", name);
	pattern(want, BUF_BYTES, seed);
	smh_buffer_write(&buf, 4099, want + 4099, sizeof(odd));

	err = smh_export(client, &buf, &token);
	guest_check(err == 0, "%s: exported (%s)", name, smh_strerror(err));
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(importer(token, &buf, seed));
	status = pid > 0 ? guest_finish(pid, 60) : -1;
	guest_check(status == 0,
		    "%s: a second process imported the buffer and read the same bytes "
		    "at the same physical address (exit %d)",
		    name, status);
	memset(want + BUF_BYTES - 100, 0xa7, 100);
	err = smh_buffer_read(&buf, 0, got, BUF_BYTES);
	guest_check(err == 0 && memcmp(got, want, BUF_BYTES) == 0,
		    "%s: what the second process wrote is here", name);
out_free:
	guest_check(smh_free(client, &buf) == 0, "%s: freed", name);
out:
	free(want);
	free(got);
}

static uint64_t used_bytes(struct smh_client *client, uint64_t *n_allocsp)
{
	struct smh_stats st = { 0 };
	uint64_t used = UINT64_MAX;

	if (smh_get_stats(client, &st) == 0) {
		used = 0;
		for (size_t i = 0; i < st.n_regions; i++)
			used += st.regions[i].used;
		*n_allocsp = st.n_allocs;
	}
	smh_stats_finish(&st);
	return used;
}

/* A client that holds memory of each attribute and never frees it. */
static void holder(int ready_fd)
{
	struct smh_client *client;
	struct smh_buffer b[2];

	if (smh_connect(NULL, &client) < 0 ||
	    smh_alloc(client, SMH_REG_ATTR_CACHEABLE, 128 * 1024, 0, &b[0]) < 0 ||
	    smh_alloc(client, SMH_REG_ATTR_NON_CACHEABLE, 128 * 1024, 0, &b[1]) < 0)
		_exit(1);
	for (int i = 0; i < 2; i++)
		if (smh_map(&b[i]) < 0 || smh_buffer_fill(&b[i], 0, 0xee, 128 * 1024) < 0)
			_exit(1);
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void test_killed_client(struct smh_client *client)
{
	char *argv[] = { SMHCTL, "stats", NULL };
	uint64_t used = 0, n_allocs = 0;
	int fds[2], status;
	char c = 0;
	pid_t pid;

	if (pipe(fds) < 0)
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		holder(fds[1]);
	}
	close(fds[1]);
	guest_check(read(fds[0], &c, 1) == 1, "a client holds 128 KiB of each attribute");
	close(fds[0]);
	used = used_bytes(client, &n_allocs);
	guest_check(used >= 256 * 1024 && n_allocs == 2,
		    "the daemon counts %llu bytes in %llu buffers", (unsigned long long)used,
		    (unsigned long long)n_allocs);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* The daemon sees the hang-up asynchronously: ask until it has (bounded). */
	for (int i = 0; i < 500 && (used != 0 || n_allocs != 0); i++) {
		guest_pause_ms(20);
		used = used_bytes(client, &n_allocs);
	}
	guest_check(used == 0 && n_allocs == 0,
		    "after SIGKILL its memory came back: %llu bytes used",
		    (unsigned long long)used);
	free(guest_run("smhctl stats", argv, &status));
	guest_check(status == 0, "smhctl stats exits 0");
}

/* The next owner of memory a killed client filled with 0xee sees zeros. */
static void test_scrubbed(struct smh_client *client)
{
	for (int attr = 0; attr < SMH_REG_ATTR_NUM; attr++) {
		struct smh_buffer buf;
		unsigned char *got = malloc(128 * 1024);
		bool zero = false;

		if (got && smh_alloc(client, (enum smh_reg_attr)attr, 128 * 1024, 0, &buf) == 0) {
			zero = smh_map(&buf) == 0 &&
			       smh_buffer_read(&buf, 0, got, 128 * 1024) == 0 && got[0] == 0 &&
			       memcmp(got, got + 1, 128 * 1024 - 1) == 0;
			smh_free(client, &buf);
		}
		guest_check(zero, "%s: a new buffer over the killed client's memory reads as zeros",
			    attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable");
		free(got);
	}
}

/* With a refused region the doctor fails on it; without one it fails on nothing. */
static void test_doctor(void)
{
	char *argv[8] = { SMHCTL, "doctor" };
	const struct guest_expect *refused = guest_refused_region();
	size_t argc = 2;
	char line[512];
	int status;
	char *out;

	with_dtb(argv, &argc);
	out = guest_run("smhctl doctor", argv, &status);
	if (refused) {
		snprintf(line, sizeof(line), "FAIL  no-map      %s:", refused->label);
		guest_check(status == 1, "smhctl doctor exits 1: one region lacks no-map (got %d)",
			    status);
		guest_check(strstr(out, line) && strstr(out, "fix: add `no-map;`"),
			    "smhctl doctor names %s and the fix", refused->label);
	} else {
		guest_check(status == 0 && !strstr(out, "\nFAIL "),
			    "no region is to be refused: smhctl doctor fails nothing (exit %d)",
			    status);
	}
	for (size_t i = 0; i < guest_n_expected; i++) {
		if (guest_expected[i].refused)
			continue;
		snprintf(line, sizeof(line), "OK    no-map      %s:", guest_expected[i].label);
		guest_check(strstr(out, line) != NULL, "smhctl doctor passes %s's no-map check",
			    guest_expected[i].label);
	}
	guest_check(strstr(out, "OK    smhd") != NULL, "smhctl doctor sees the daemon");
	free(out);
}

int main(void)
{
	const struct guest_board *board;
	struct smh_client *client = NULL;
	unsigned n_checks, n_failed;
	pid_t daemon;
	int status;
	char *text;

	setup_system();
	printf("SMH BOARD TEST: start\n");
	if (access("/sys/firmware/fdt", R_OK) != 0)
		guest_dtb = getenv("SMH_DTB");
	guest_parse_expect();
	board = guest_board_find(guest_board_name);
	printf("board-specific checks: %s\n", board ? board->name : "none");
	free(guest_run("smhctl --version", (char *[]){ SMHCTL, "--version", NULL }, &status));
	text = guest_read_text("/proc/iomem");
	guest_show("/proc/iomem", text);
	free(text);
	if (board && board->before_daemon)
		board->before_daemon();
	test_check_and_strict();
	daemon = start_daemon(&client);
	if (daemon > 0) {
		test_regions(client);
		if (board && board->with_daemon)
			board->with_daemon(client);
		test_attr(client, SMH_REG_ATTR_CACHEABLE, 1);
		test_attr(client, SMH_REG_ATTR_NON_CACHEABLE, 2);
		test_killed_client(client);
		test_scrubbed(client);
		test_doctor();
		smh_disconnect(client);
		kill(daemon, SIGTERM);
		status = guest_finish(daemon, 60);
		guest_check(status == 0, "smhd stops on SIGTERM with exit 0 (got %d)", status);
	}
	text = guest_read_text("/run/smhd.log");
	guest_show("smhd's log", text);
	free(text);
	guest_counts(&n_checks, &n_failed);
	if (n_failed == 0)
		printf("SMH BOARD TEST: PASS (%u checks)\n", n_checks);
	else
		printf("SMH BOARD TEST: FAIL (%u of %u checks failed)\n", n_failed, n_checks);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
