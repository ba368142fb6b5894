/* SPDX-License-Identifier: MIT */
/*
 * `smhctl doctor` as a user runs it on a board, made testable on any machine: the device tree
 * (tests/dt/good-board.dts, the board test's regions), /proc/iomem, the kernel configuration and
 * the memory device are files given on the command line (tests/doctor/), and no daemon runs.
 * Each case checks the verdict per check and region, the fix printed, and the exit status.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

struct result {
	int status;
	char out[32768];
};

/* Set by a test to run doctor without --dtb (the kernel's /sys/firmware/fdt). */
static bool no_dtb_option;

static char *env(const char *name)
{
	char *v = getenv(name);

	assert_non_null(v);
	return v;
}

/* Runs smhctl doctor with the fixture options and @extra (NULL-terminated), stdout captured. */
static void doctor(struct result *res, const char *iomem, const char *kconfig, ...)
{
	char dtb[512], iomem_path[512], kconfig_path[512], mem[] = "/tmp/smh-doctor-mem-XXXXXX";
	char *argv[32] = { env("SMH_SMHCTL"), "doctor", "--socket", "/nonexistent/smhd.sock",
			   "--mem-path",      mem,      "--dtb",    dtb };
	size_t argc = no_dtb_option ? 6 : 8;
	FILE *out = tmpfile();
	int wstatus, fd = mkstemp(mem);
	va_list ap;
	size_t n;
	pid_t pid;

	assert_non_null(out);
	assert_true(fd >= 0);
	close(fd);
	snprintf(dtb, sizeof(dtb), "%s/good-board.dtb", env("SMH_TEST_DTB_DIR"));
	snprintf(iomem_path, sizeof(iomem_path), "%s/tests/doctor/%s", env("SMH_SOURCE_ROOT"),
		 iomem);
	snprintf(kconfig_path, sizeof(kconfig_path), "%s/tests/doctor/%s", env("SMH_SOURCE_ROOT"),
		 kconfig);
	argv[argc++] = "--iomem";
	argv[argc++] = iomem_path;
	argv[argc++] = "--kconfig";
	argv[argc++] = kconfig_path;
	va_start(ap, kconfig);
	for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fileno(out), STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	unlink(mem);
	assert_true(WIFEXITED(wstatus));
	res->status = WEXITSTATUS(wstatus);
	rewind(out);
	n = fread(res->out, 1, sizeof(res->out) - 1, out);
	res->out[n] = '\0';
	fclose(out);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

static void assert_lacks(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle))
		fail_msg("did not expect \"%s\" in:\n%s", needle, haystack);
}

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The line of @out that contains @needle, with the fix line after it, into @buf. */
static const char *finding(char *buf, size_t size, const char *out, const char *needle)
{
	const char *p = strstr(out, needle), *start, *end;

	if (!p)
		fail_msg("expected \"%s\" in:\n%s", needle, out);
	for (start = p; start > out && start[-1] != '\n'; start--)
		;
	end = strchr(p, '\n');
	if (end && strncmp(end + 1, "   ", 3) == 0) /* its "fix:" line */
		end = strchr(end + 1, '\n');
	snprintf(buf, size, "%.*s", end ? (int)(end - start) : (int)strlen(start), start);
	return buf;
}

/* The board as the board test boots it: two right regions, one without no-map. */
static void test_board(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-board.txt", "kconfig-strict", NULL);
	assert_int_equal(r->status, 1);
	assert_contains(r->out, "OK    dt          ");
	assert_contains(r->out, "good-board.dtb: 3 shared-multi-heap regions");
	assert_contains(r->out, "OK    kconfig     ");
	assert_contains(r->out, "STRICT_DEVMEM=y");
	assert_contains(r->out, "WARN  smhd        smhd is not running at /nonexistent/smhd.sock");
	assert_contains(r->out, "OK    iomem       heap-cacheable: 0x70000000-0x700fffff is "
				"reserved in /proc/iomem");
	assert_contains(r->out, "OK    iomem       heap-noncacheable: 0x70100000-0x701fffff is "
				"reserved");
	assert_contains(r->out, "FAIL  iomem       heap-nomap-missing: 0x70200000-0x702fffff lies "
				"in System RAM (0x70200000-0x7fffffff)");
	assert_contains(r->out, "OK    no-map      heap-cacheable: /reserved-memory/shm@70000000 "
				"has no-map");
	assert_contains(r->out, "FAIL  no-map      heap-nomap-missing: /reserved-memory/"
				"shm@70200000 lacks no-map");
	assert_contains(r->out, "fix: add `no-map;` to /reserved-memory/shm@70200000\n");
	/* A regular file maps whatever the range: the test mmap succeeds for all three. */
	assert_contains(r->out, "OK    devmem      heap-nomap-missing: a test mmap of "
				"0x70200000-0x702fffff");
	assert_contains(r->out, "asked non-cacheable, smhd is not running");
	/* No daemon: the attribute obtained is not checked, so it is not OK either. */
	assert_lacks(r->out, "OK    attribute");
	assert_contains(r->out, "SKIP  attribute   heap-noncacheable: asked non-cacheable, smhd is "
				"not running: not checked (");
	assert_contains(r->out, "doctor: 12 OK, 3 not checked, 1 warning, 2 failures\n");
	assert_contains(r->out, "doctor: ");
	assert_contains(r->out, ", 1 warning, 2 failures\n");
	free(r);
}

static void test_kernel_use(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-kernel.txt", "kconfig-strict", NULL);
	assert_int_equal(r->status, 1);
	assert_contains(r->out, "FAIL  kernel-use  heap-cacheable: 0x70000000-0x700fffff overlaps "
				"\"Kernel data\" (0x41b10000-0x700fffff)");
	assert_contains(r->out, "FAIL  kernel-use  heap-nomap-missing: 0x70200000-0x702fffff "
				"overlaps \"Crash kernel\"");
	assert_contains(r->out, "FAIL  iomem       heap-noncacheable: 0x70100000-0x701fffff lies "
				"in System RAM (0x40000000-0x7fffffff)");
	free(r);
}

/*
 * A region in System RAM although its node has no-map: the kernel did not apply the node, so the
 * fix is the boot, not "mark the node no-map" beside "OK ... has no-map".
 */
static void test_no_contradiction(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char line[1024];

	doctor(r, "iomem-kernel.txt", "kconfig-strict", NULL);
	assert_contains(r->out,
			"OK    no-map      heap-noncacheable: /reserved-memory/shm@70100000 "
			"has no-map");
	finding(line, sizeof(line), r->out, "FAIL  iomem       heap-noncacheable:");
	assert_contains(line, "although the node has no-map: the running kernel did not apply it");
	assert_contains(line, "fix: boot the kernel with this device tree");
	assert_lacks(line, "no-map;");
	assert_lacks(line, "mark the node");
	/* Without no-map, the iomem fix is the no-map check's own. */
	finding(line, sizeof(line), r->out, "FAIL  iomem       heap-nomap-missing:");
	assert_contains(line, "fix: add `no-map;` to /reserved-memory/shm@70200000");
	free(r);
}

/* Without CAP_SYS_ADMIN /proc/iomem shows zeros; without DEVMEM there is no /dev/mem. */
static void test_hidden_and_no_devmem(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-hidden.txt", "kconfig-nodevmem", NULL);
	assert_int_equal(r->status, 1);
	assert_contains(r->out, "WARN  iomem       ");
	assert_contains(r->out, "shows no addresses (they are hidden");
	assert_contains(r->out, "fix: run smhctl doctor as root\n");
	assert_lacks(r->out, "lies in System RAM");
	assert_contains(r->out, "FAIL  kconfig     ");
	assert_contains(r->out, "CONFIG_DEVMEM is not set");
	assert_contains(r->out, "STRICT_DEVMEM is not set");
	/* No /dev/mem: no OK line saying what /dev/mem maps. */
	assert_lacks(r->out, "OK    kconfig");
	assert_contains(r->out, "FAIL  kconfig     ");
	free(r);
}

/* A memory device that is missing is one finding, not one per open mode. */
static void test_no_memory_device(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-board.txt", "kconfig-strict", "--mem-path", "/nonexistent/mem", NULL);
	assert_int_equal(count(r->out, "FAIL  devmem"), 1);
	assert_contains(r->out, "FAIL  devmem      cannot open /nonexistent/mem");
	assert_lacks(r->out, "OK    devmem");
	/* Neither smhd nor the device: nothing tells the attribute. */
	assert_lacks(r->out, "OK    attribute");
	assert_contains(r->out, "SKIP  attribute   heap-cacheable: asked cacheable, smhd is not "
				"running and /nonexistent/mem could not be opened: not checked");
	/* Without CONFIG_DEVMEM, the kconfig failure is the cause: the device is not checked. */
	doctor(r, "iomem-board.txt", "kconfig-nodevmem", "--mem-path", "/nonexistent/mem", NULL);
	assert_lacks(r->out, "FAIL  devmem");
	assert_int_equal(count(r->out, "SKIP  devmem      /nonexistent/mem does not exist"), 1);
	free(r);
}

/* A missing or unusable blob is one failure, with the fix for the file, not for a node. */
static void test_missing_dtb(void **state)
{
	struct result *r = malloc(sizeof(*r));
	char line[1024];

	doctor(r, "iomem-board.txt", "kconfig-strict", "--dtb", "/nonexistent.dtb", NULL);
	assert_int_equal(r->status, 1);
	assert_int_equal(count(r->out, "FAIL  dt "), 1);
	finding(line, sizeof(line), r->out, "FAIL  dt ");
	assert_contains(line, "/nonexistent.dtb: no usable device tree: Could not open "
			      "/nonexistent.dtb: No such file or directory");
	assert_contains(line, "fix: give --dtb a readable file");
	assert_lacks(r->out, "fix the node");
	doctor(r, "iomem-board.txt", "kconfig-strict", "--dtb", "/etc/hostname", NULL);
	assert_int_equal(count(r->out, "FAIL  dt "), 1);
	assert_lacks(r->out, "fix the node");
	/* The kernel's own blob, where there is none (x86, ACPI): boot with one or give --dtb. */
	if (access("/sys/firmware/fdt", F_OK) == 0) {
		free(r);
		skip();
	}
	no_dtb_option = true;
	doctor(r, "iomem-board.txt", "kconfig-strict", NULL);
	no_dtb_option = false;
	assert_int_equal(count(r->out, "FAIL  dt "), 1);
	finding(line, sizeof(line), r->out, "FAIL  dt ");
	assert_contains(line, "/sys/firmware/fdt: no usable device tree");
	assert_contains(line, "fix: this kernel did not boot with a device tree");
	assert_contains(line, "give the board's blob with --dtb FILE");
	assert_contains(r->out, ", 1 failure\n");
	free(r);
}

static void test_unreadable_inputs(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "no-such-iomem", "no-such-kconfig", NULL);
	assert_contains(r->out, "WARN  iomem       cannot read ");
	assert_contains(r->out, "no-such-iomem: No such file or directory");
	assert_contains(r->out, "WARN  kconfig     the kernel's configuration is not readable");
	/* Only no-map fails: nothing else could be checked against the kernel. */
	assert_int_equal(r->status, 1);
	assert_contains(r->out, ", 3 warnings, 1 failure\n");
	doctor(r, "iomem-board.txt", "kconfig-strict", "--dtb", "/nonexistent.dtb", NULL);
	assert_int_equal(r->status, 1);
	assert_contains(r->out, "FAIL  dt          /nonexistent.dtb: no usable device tree");
	free(r);
}

static void test_json(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-board.txt", "kconfig-strict", "--json", NULL);
	assert_int_equal(r->status, 1);
	assert_contains(r->out, "\"checks\": [");
	assert_contains(r->out, "\"status\": \"failure\",\n      \"check\": \"no-map\",\n      "
				"\"region\": \"heap-nomap-missing\"");
	assert_contains(r->out, "\"fix\": \"add `no-map;` to /reserved-memory/shm@70200000\"");
	assert_contains(r->out, "\"failures\": 2\n");
	assert_contains(r->out, "\"skipped\": 3,");
	assert_contains(r->out, "\"status\": \"skipped\",\n      \"check\": \"attribute\",");
	assert_lacks(r->out, "FAIL ");
	free(r);
}

/* arm64 by the kernel's rule: what each region gets, and what to write, per kernel. */
static void test_arm64_cache_guidance(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-board.txt", "kconfig-nonstrict", "--arch", "arm64", NULL);
	assert_contains(r->out,
			"WARN  cache       heap-cacheable: cacheable, but `no-map`: outside "
			"the linear map, /dev/mem maps it as Device memory: served uncached");
	assert_contains(r->out, "fix: drop `no-map` from /reserved-memory/shm@70000000: this "
				"kernel (no STRICT_DEVMEM) then maps it cached\n");
	assert_contains(r->out, "OK    cache       heap-noncacheable: non-cacheable and `no-map`");
	/* Without no-map and STRICT_DEVMEM: reserved inside System RAM is right, served cached. */
	assert_contains(r->out, "OK    iomem       heap-nomap-missing: 0x70200000-0x702fffff is "
				"reserved in /proc/iomem");
	assert_contains(r->out,
			"OK    no-map      heap-nomap-missing: /reserved-memory/shm@70200000 "
			"lacks no-map, as a cacheable region should");
	/* What the kernel's rule predicts, not a check that passed: smhd is not running. */
	assert_contains(r->out,
			"SKIP  attribute   heap-nomap-missing: asked cacheable, smhd is not "
			"running: not checked (");
	assert_contains(r->out, "would give cached write-back (in the linear map, no O_SYNC)");
	assert_lacks(r->out, "OK    attribute");
	assert_contains(r->out,
			"OK    cache       heap-nomap-missing: cacheable, in the linear map");
	assert_lacks(r->out, "FAIL  no-map");
	assert_contains(r->out, ", 3 warnings, 0 failures\n");
	assert_int_equal(r->status, 0);

	doctor(r, "iomem-board.txt", "kconfig-strict", "--arch", "arm64", NULL);
	assert_contains(r->out, "WARN  cache       heap-cacheable: cacheable, but this kernel has "
				"STRICT_DEVMEM");
	assert_contains(r->out,
			"fix: keep `no-map` on /reserved-memory/shm@70000000 (STRICT_DEVMEM "
			"needs it)");
	assert_contains(r->out, "FAIL  no-map      heap-nomap-missing");
	assert_contains(r->out,
			"SKIP  attribute   heap-nomap-missing: asked cacheable, smhd is not "
			"running: not checked (");
	assert_contains(r->out, "would give not mapped: STRICT_DEVMEM, no no-map)");
	assert_int_equal(r->status, 1);

	doctor(r, "iomem-board.txt", "kconfig-strict", "--arch", "sparc", NULL);
	assert_int_equal(r->status, 2);
	free(r);
}

static void test_usage(void **state)
{
	struct result *r = malloc(sizeof(*r));

	doctor(r, "iomem-board.txt", "kconfig-strict", "extra", NULL);
	assert_int_equal(r->status, 2);
	doctor(r, "iomem-board.txt", "kconfig-strict", "--frobnicate", NULL);
	assert_int_equal(r->status, 2);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_board),
		cmocka_unit_test(test_kernel_use),
		cmocka_unit_test(test_no_contradiction),
		cmocka_unit_test(test_no_memory_device),
		cmocka_unit_test(test_missing_dtb),
		cmocka_unit_test(test_hidden_and_no_devmem),
		cmocka_unit_test(test_unreadable_inputs),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_arm64_cache_guidance),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
