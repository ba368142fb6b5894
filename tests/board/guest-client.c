/* SPDX-License-Identifier: MIT */
/*
 * The board test's guest: /init of an initramfs booted under QEMU (tests/board/run-board-test).
 *
 * It mounts what a system has (proc, sysfs, devtmpfs, a tmpfs on /run), then checks smh on the
 * real kernel, printing one "[ OK ]" or "[FAIL]" line per check and every program's output:
 * - `smhd --check` on the live device tree; `smhd --strict` refuses the region without no-map;
 * - smhd started with its defaults (/sys/firmware/fdt, devmem, /dev/mem, /run/smh/smhd.sock)
 *   reports that region with the reason and the fix, and serves the others;
 * - `smhctl regions`: the device tree's addresses and the attribute really obtained;
 * - per attribute: allocate, write a pattern (smh_buffer_write: the memory may be Device
 *   memory), a second process imports the buffer and reads the same bytes, physical addresses
 *   inside the device tree's ranges;
 * - a client killed with SIGKILL gives its memory back; the next owner sees zeros;
 * - `smhctl doctor` names the region without no-map and how to fix it.
 * The last line is "SMH BOARD TEST: PASS" only when every check passed; then it powers off.
 *
 * The kernel command line passes SMH_EXPECT=LABEL:BASE:SIZE,... (the regions the DTB declares,
 * the refused one last) and, on machines without /sys/firmware/fdt (x86), SMH_DTB=FILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smh/client.h"

#define SMHD         "/usr/sbin/smhd"
#define SMHCTL       "/usr/bin/smhctl"
#define N_EXPECT_MAX 8
#define BUF_BYTES    (64 * 1024 + 3) /* odd: the helpers' unaligned tail is exercised */

struct expect {
	char label[SMH_REGION_LABEL_MAX];
	uint64_t base, size;
};

static struct expect expected[N_EXPECT_MAX];
static size_t n_expected;
static unsigned n_checks, n_failed;
static const char *dtb; /* NULL: the daemon's default, /sys/firmware/fdt */

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool check(bool ok, const char *fmt, ...)
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

static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static char *read_text(const char *path)
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

static void show(const char *title, const char *text)
{
	printf("---- %s\n%s%s---- end of %s\n", title, text,
	       *text && text[strlen(text) - 1] != '\n' ? "\n" : "", title);
	fflush(stdout);
}

/* Starts @argv with stdout and stderr into @out. Returns the pid or -1. */
static pid_t start(char *const argv[], const char *out)
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

/* Waits for @pid up to @seconds, then kills it. Returns its exit status, or -1 when killed. */
static int finish(pid_t pid, int seconds)
{
	int wstatus;

	for (long waited = 0; waited < seconds * 1000L; waited += 20) {
		pid_t r = waitpid(pid, &wstatus, WNOHANG);

		if (r == pid)
			return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
		pause_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &wstatus, 0);
	printf("(killed after %d s)\n", seconds);
	return -1;
}

/* Runs a program to the end, shows its output (returned, free it) and sets *statusp. */
static char *run(const char *title, char *const argv[], int *statusp)
{
	pid_t pid = start(argv, "/run/out.txt");
	char *out;

	*statusp = pid < 0 ? -1 : finish(pid, 120);
	out = read_text("/run/out.txt");
	show(title, out);
	return out;
}

/* argv of a daemon or smhctl command, with --dtb FILE where the machine needs it. */
static void with_dtb(char **argv, size_t *argcp)
{
	if (dtb) {
		argv[(*argcp)++] = "--dtb";
		argv[(*argcp)++] = (char *)dtb;
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

/* SMH_EXPECT=LABEL:BASE:SIZE,... */
static void parse_expect(void)
{
	char *spec = getenv("SMH_EXPECT"), *save = NULL;

	spec = spec ? strdup(spec) : NULL;
	for (char *item = spec ? strtok_r(spec, ",", &save) : NULL;
	     item && n_expected < N_EXPECT_MAX; item = strtok_r(NULL, ",", &save)) {
		struct expect *e = &expected[n_expected];
		char *base = strchr(item, ':'), *size = base ? strchr(base + 1, ':') : NULL;

		if (!size)
			continue;
		*base++ = '\0';
		*size++ = '\0';
		snprintf(e->label, sizeof(e->label), "%s", item);
		e->base = strtoull(base, NULL, 0);
		e->size = strtoull(size, NULL, 0);
		n_expected++;
	}
	free(spec);
	check(n_expected >= 3, "the kernel command line names %zu expected regions", n_expected);
}

static const struct expect *expected_region(const char *label)
{
	for (size_t i = 0; i < n_expected; i++)
		if (strcmp(expected[i].label, label) == 0)
			return &expected[i];
	return NULL;
}

/* The region deliberately without no-map: the last one SMH_EXPECT names. */
static const char *refused_label(void)
{
	return n_expected ? expected[n_expected - 1].label : "";
}

/* ---------------------------------------------------------------- the daemon */

static void test_check_and_strict(void)
{
	char *check_argv[8] = { SMHD, "--check" },
	     *strict_argv[8] = { SMHD, "--strict", "--socket", "/run/strict.sock" };
	size_t n_check = 2, n_strict = 4;
	int status;
	char *out;

	with_dtb(check_argv, &n_check);
	out = run("smhd --check", check_argv, &status);
	check(status == 0, "smhd --check on the live device tree exits 0 (got %d)", status);
	for (size_t i = 0; i < n_expected; i++)
		check(strstr(out, expected[i].label) != NULL, "smhd --check lists %s",
		      expected[i].label);
	free(out);

	with_dtb(strict_argv, &n_strict);
	out = run("smhd --strict", strict_argv, &status);
	check(status > 0, "smhd --strict refuses to start (exit %d)", status);
	check(strstr(out, refused_label()) && strstr(out, "no-map") && strstr(out, "STRICT_DEVMEM"),
	      "smhd --strict names %s, no-map and STRICT_DEVMEM", refused_label());
	free(out);
}

/* Starts smhd with its defaults and connects. Returns its pid, or -1. */
static pid_t start_daemon(struct smh_client **clientp)
{
	char *argv[8] = { SMHD };
	size_t argc = 1;
	pid_t pid;
	int err = -ENOENT, wstatus;
	char *log;

	with_dtb(argv, &argc);
	printf("starting: %s%s%s\n", SMHD, dtb ? " --dtb " : " (no arguments)", dtb ? dtb : "");
	pid = start(argv, "/run/smhd.log");
	for (int i = 0; i < 1500 && pid > 0; i++) {
		err = smh_connect(NULL, clientp);
		if (err == 0 || waitpid(pid, &wstatus, WNOHANG) == pid)
			break;
		pause_ms(20);
	}
	log = read_text("/run/smhd.log");
	show("smhd's log at start", log);
	check(err == 0, "smhd with its defaults serves on /run/smh/smhd.sock (%s)",
	      smh_strerror(err));
	check(strstr(log, refused_label()) && strstr(log, "add `no-map`") &&
		      strstr(log, "STRICT_DEVMEM"),
	      "smhd reports %s with the reason and the fix (no-map / STRICT_DEVMEM)",
	      refused_label());
	free(log);
	return err == 0 ? pid : -1;
}

static void test_regions(struct smh_client *client)
{
	char *argv[] = { SMHCTL, "regions", NULL };
	struct smh_region_info *regions = NULL;
	size_t n = 0;
	int status, err;
	char *out = run("smhctl regions", argv, &status);

	check(status == 0, "smhctl regions exits 0");
	free(out);
	err = smh_get_regions(client, &regions, &n);
	check(err == 0 && n == n_expected, "smhd serves a table of %zu regions", n);
	for (size_t i = 0; err == 0 && i < n; i++) {
		const struct smh_region_info *r = &regions[i];
		const struct expect *e = expected_region(r->label);
		bool refused = strcmp(r->label, refused_label()) == 0;

		check(e && e->base == r->phys_addr && e->size == r->size,
		      "%s: 0x%llx+0x%llx is the device tree's range", r->label,
		      (unsigned long long)r->phys_addr, (unsigned long long)r->size);
		if (refused) {
			check(strncmp(r->mapping, "not mapped", 10) == 0,
			      "%s (no no-map) is not served: \"%s\"", r->label, r->mapping);
			continue;
		}
#if defined(__aarch64__)
		check(strstr(r->mapping, "Device") != NULL && r->mapping_kind == SMH_MAPPING_DEVICE,
		      "%s (%s): arm64 /dev/mem gives no-map memory Device memory, and smhd says "
		      "so: "
		      "\"%s\" (%d)",
		      r->label, r->attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable",
		      r->mapping, (int)r->mapping_kind);
#else
		if (r->attr == SMH_REG_ATTR_NON_CACHEABLE)
			check(strstr(r->mapping, "uncached (O_SYNC") != NULL &&
				      r->mapping_kind == SMH_MAPPING_UNCACHED,
			      "%s: O_SYNC gives an uncached mapping: \"%s\" (%d)", r->label,
			      r->mapping, (int)r->mapping_kind);
		else
			check(strstr(r->mapping, "uncached") == NULL &&
				      r->mapping_kind == SMH_MAPPING_CACHED,
			      "%s: cacheable, mapped write-back: \"%s\" (%d)", r->label, r->mapping,
			      (int)r->mapping_kind);
#endif
	}
	free(regions);
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
	const struct expect *e;
	struct smh_buffer buf;
	uint64_t token = 0;
	int err, status;
	pid_t pid;

	err = smh_alloc(client, attr, BUF_BYTES, 0, &buf);
	if (!check(err == 0 && want && got, "%s: allocated %d bytes: %s", name, BUF_BYTES,
		   smh_strerror(err)))
		goto out;
	e = expected_region(buf.region);
	check(e && strcmp(buf.region, refused_label()) != 0 && buf.phys_addr >= e->base &&
		      buf.phys_addr + buf.size <= e->base + e->size,
	      "%s: from %s at physical 0x%llx-0x%llx, inside the device tree's range", name,
	      buf.region, (unsigned long long)buf.phys_addr,
	      (unsigned long long)(buf.phys_addr + buf.size - 1));
	err = smh_map(&buf);
	if (!check(err == 0, "%s: mapped (%s)", name, smh_strerror(err)))
		goto out_free;
	pattern(want, BUF_BYTES, seed);
	err = smh_buffer_write(&buf, 0, want, BUF_BYTES);
	err = err ? err : smh_buffer_read(&buf, 0, got, BUF_BYTES);
	check(err == 0 && memcmp(got, want, BUF_BYTES) == 0,
	      "%s: a %d-byte pattern reads back the same", name, BUF_BYTES);
	/* Unaligned edges on the real memory type: bytes, then words, then bytes. */
	pattern(odd, sizeof(odd), seed + 1);
	err = smh_buffer_write(&buf, 4099, odd, sizeof(odd));
	memcpy(want + 4099, odd, sizeof(odd));
	err = err ? err : smh_buffer_read(&buf, 4090, got, 64);
	check(err == 0 && memcmp(got, want + 4090, 64) == 0,
	      "%s: a 29-byte write at offset 4099 reads back, neighbours intact", name);
	pattern(want, BUF_BYTES, seed);
	smh_buffer_write(&buf, 4099, want + 4099, sizeof(odd));

	err = smh_export(client, &buf, &token);
	check(err == 0, "%s: exported (%s)", name, smh_strerror(err));
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(importer(token, &buf, seed));
	status = pid > 0 ? finish(pid, 60) : -1;
	check(status == 0,
	      "%s: a second process imported the buffer and read the same bytes "
	      "at the same physical address (exit %d)",
	      name, status);
	memset(want + BUF_BYTES - 100, 0xa7, 100);
	err = smh_buffer_read(&buf, 0, got, BUF_BYTES);
	check(err == 0 && memcmp(got, want, BUF_BYTES) == 0,
	      "%s: what the second process wrote is here", name);
out_free:
	check(smh_free(client, &buf) == 0, "%s: freed", name);
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
	check(read(fds[0], &c, 1) == 1, "a client holds 128 KiB of each attribute");
	close(fds[0]);
	used = used_bytes(client, &n_allocs);
	check(used >= 256 * 1024 && n_allocs == 2, "the daemon counts %llu bytes in %llu buffers",
	      (unsigned long long)used, (unsigned long long)n_allocs);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* The daemon sees the hang-up asynchronously: ask until it has (bounded). */
	for (int i = 0; i < 500 && (used != 0 || n_allocs != 0); i++) {
		pause_ms(20);
		used = used_bytes(client, &n_allocs);
	}
	check(used == 0 && n_allocs == 0, "after SIGKILL its memory came back: %llu bytes used",
	      (unsigned long long)used);
	free(run("smhctl stats", argv, &status));
	check(status == 0, "smhctl stats exits 0");
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
		check(zero, "%s: a new buffer over the killed client's memory reads as zeros",
		      attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable");
		free(got);
	}
}

static void test_doctor(void)
{
	char *argv[8] = { SMHCTL, "doctor" };
	size_t argc = 2;
	char fail[96], ok[96];
	int status;
	char *out;

	with_dtb(argv, &argc);
	out = run("smhctl doctor", argv, &status);
	snprintf(fail, sizeof(fail), "FAIL  no-map      %s:", refused_label());
	snprintf(ok, sizeof(ok), "OK    no-map      %s:", n_expected ? expected[0].label : "");
	check(status == 1, "smhctl doctor exits 1: one region lacks no-map (got %d)", status);
	check(strstr(out, fail) && strstr(out, "fix: add `no-map;`"),
	      "smhctl doctor names %s and the fix", refused_label());
	check(strstr(out, ok) && strstr(out, "OK    smhd"),
	      "smhctl doctor passes the no-map regions and sees the daemon");
	free(out);
}

int main(void)
{
	struct smh_client *client = NULL;
	pid_t daemon;
	int status;
	char *text;

	setup_system();
	printf("SMH BOARD TEST: start\n");
	if (access("/sys/firmware/fdt", R_OK) != 0)
		dtb = getenv("SMH_DTB");
	parse_expect();
	free(run("smhctl --version", (char *[]){ SMHCTL, "--version", NULL }, &status));
	text = read_text("/proc/iomem");
	show("/proc/iomem", text);
	free(text);
	test_check_and_strict();
	daemon = start_daemon(&client);
	if (daemon > 0) {
		test_regions(client);
		test_attr(client, SMH_REG_ATTR_CACHEABLE, 1);
		test_attr(client, SMH_REG_ATTR_NON_CACHEABLE, 2);
		test_killed_client(client);
		test_scrubbed(client);
		test_doctor();
		smh_disconnect(client);
		kill(daemon, SIGTERM);
		status = finish(daemon, 60);
		check(status == 0, "smhd stops on SIGTERM with exit 0 (got %d)", status);
	}
	text = read_text("/run/smhd.log");
	show("smhd's log", text);
	free(text);
	if (n_failed == 0)
		printf("SMH BOARD TEST: PASS (%u checks)\n", n_checks);
	else
		printf("SMH BOARD TEST: FAIL (%u of %u checks failed)\n", n_failed, n_checks);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
