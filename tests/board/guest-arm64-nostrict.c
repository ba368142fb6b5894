/* SPDX-License-Identifier: MIT */
/*
 * The board arm64-nostrict's own checks (SMH_BOARD=arm64-nostrict, tests/board/run-board-test):
 * an arm64 kernel built without STRICT_DEVMEM (tools/build-kernel), where a cacheable region
 * reserved without no-map stays in the kernel's linear map and /dev/mem maps it cached, and a
 * non-cacheable one with no-map is Device memory. The generic guest (guest-client.c) already
 * checks each region's mapping against SMH_EXPECT, the buffers of both attributes, a second
 * process, the killed client and the doctor; this file adds what only this kernel can show:
 * - the kernel: /proc/config.gz is there, STRICT_DEVMEM is off in the configuration installed
 *   beside it, and /proc/iomem puts the cached region inside System RAM, the Device one outside;
 * - smhd's mapping agrees with /proc/iomem (the kernel's rule), in the API and in its log;
 * - cache maintenance: smh_sync_for_device/smh_sync_for_cpu on a cached buffer (DC CVAC/CIVAC
 *   at EL0) and on a Device one (the barrier only) return 0, and their range checks hold. They
 *   run in a child: a fault (SIGILL, SIGSEGV) kills the child, not PID 1, and is reported;
 * - the copy helpers on cached memory agree with plain loads and stores through buf->addr;
 * - a second process reads what the first wrote and cleaned, and the other way round;
 * - the scrubber zeroes cached memory: the whole region, filled and freed, comes back zeroed;
 * - smhctl doctor says STRICT_DEVMEM is off and what each region gets (the generic guest
 *   checks that it fails nothing).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/board/guest.h"

#define N_BYTES (64 * 1024 + 3) /* odd: the lines at both ends are partial */

/* Whether [@base, @base + @size) lies inside one top-level "System RAM" range of @iomem. */
static bool in_system_ram(const char *iomem, uint64_t base, uint64_t size)
{
	for (const char *line = iomem; *line;) {
		const char *next = strchr(line, '\n');
		unsigned long long first, last;
		int name = 0;

		if (*line != ' ' && sscanf(line, "%llx-%llx : %n", &first, &last, &name) == 2 &&
		    name > 0 && strncmp(line + name, "System RAM", 10) == 0 && base >= first &&
		    base + size - 1 <= last)
			return true;
		if (!next)
			break;
		line = next + 1;
	}
	return false;
}

static const char *kind_name(const struct guest_expect *e)
{
	return guest_mapping_name(e->mapping);
}

/* ---------------------------------------------------------------- before smhd */

static void check_iomem(void)
{
	char *iomem = guest_read_text("/proc/iomem");

	for (size_t i = 0; i < guest_n_expected; i++) {
		const struct guest_expect *e = &guest_expected[i];
		bool ram = in_system_ram(iomem, e->base, e->size);

		if (e->refused)
			continue;
		if (e->mapping == SMH_MAPPING_CACHED)
			guest_check(ram,
				    "%s (expected %s): 0x%llx+0x%llx lies in System RAM "
				    "(/proc/iomem): reserved without no-map, it stays in the "
				    "linear map",
				    e->label, kind_name(e), (unsigned long long)e->base,
				    (unsigned long long)e->size);
		else
			guest_check(!ram,
				    "%s (expected %s): 0x%llx+0x%llx lies outside System RAM "
				    "(/proc/iomem): no-map took it out of the linear map",
				    e->label, kind_name(e), (unsigned long long)e->base,
				    (unsigned long long)e->size);
	}
	free(iomem);
}

static void check_kconfig(void)
{
	unsigned char magic[2] = { 0 };
	struct utsname u;
	char path[128 + sizeof(u.release)];
	int fd = open("/proc/config.gz", O_RDONLY | O_CLOEXEC);
	char *config;

	guest_check(fd >= 0 && read(fd, magic, 2) == 2 && magic[0] == 0x1f && magic[1] == 0x8b,
		    "/proc/config.gz is there, gzip (CONFIG_IKCONFIG_PROC)");
	if (fd >= 0)
		close(fd);
	uname(&u);
	snprintf(path, sizeof(path), "/boot/config-%s", u.release);
	config = guest_read_text(path);
	guest_check(strstr(config, "\n# CONFIG_STRICT_DEVMEM is not set\n") &&
			    strstr(config, "\nCONFIG_DEVMEM=y\n"),
		    "%s: CONFIG_DEVMEM=y, CONFIG_STRICT_DEVMEM is not set", path);
	free(config);
}

static void before_daemon(void)
{
	check_kconfig();
	check_iomem();
}

/* ---------------------------------------------------------------- what smhd serves */

/* The line "Region LABEL: ..." of smhd's start-up log names the mapping it reports. */
static bool log_states(const char *log, const struct smh_region_info *r)
{
	char head[SMH_REGION_LABEL_MAX + 16];
	const char *line, *end;

	snprintf(head, sizeof(head), "Region %s: ", r->label);
	line = strstr(log, head);
	if (!line)
		return false;
	end = strchr(line, '\n');
	line = strstr(line, r->mapping);
	return line && (!end || line < end);
}

static void check_served(struct smh_client *client)
{
	char *iomem = guest_read_text("/proc/iomem"), *log = guest_read_text("/run/smhd.log");
	struct smh_region_info *regions = NULL;
	size_t n = 0;
	int err = smh_get_regions(client, &regions, &n);

	guest_check(err == 0, "the regions reply (%s)", smh_strerror(err));
	for (size_t i = 0; err == 0 && i < n; i++) {
		const struct smh_region_info *r = &regions[i];
		bool ram = in_system_ram(iomem, r->phys_addr, r->size);
		enum smh_mapping rule = ram ? SMH_MAPPING_CACHED : SMH_MAPPING_DEVICE;

		guest_check(r->mapping_kind == rule,
			    "%s: smhd says \"%s\" (%d); by the kernel's rule, %s System RAM "
			    "gives %s",
			    r->label, r->mapping, (int)r->mapping_kind, ram ? "inside" : "outside",
			    ram ? "cached (no O_SYNC) or write-combine (O_SYNC)" : "Device memory");
		guest_check(log_states(log, r), "%s: smhd's start-up log states \"%s\"", r->label,
			    r->mapping);
	}
	free(regions);
	free(iomem);
	free(log);
}

/* ---------------------------------------------------------------- cache maintenance */

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 7 + seed * 13 + (i >> 9)) ^ 0xa5);
}

/*
 * The maintenance calls on @buf, in a child. Returns the number of the first step that
 * failed, 0 when all passed.
 */
static int sync_steps(const struct smh_buffer *buf)
{
	unsigned char *want = malloc(buf->size), *got = malloc(buf->size);
	bool ok[9];

	if (!want || !got)
		return 99;
	fill_pattern(want, buf->size, 3);
	ok[0] = smh_buffer_write(buf, 0, want, buf->size) == 0;
	ok[1] = smh_sync_for_device(buf, 0, buf->size) == 0;
	ok[2] = smh_sync_for_cpu(buf, 0, buf->size) == 0;
	/* Partial lines: an odd start inside a line, the last byte alone; then no byte. */
	ok[3] = smh_sync_for_device(buf, 1, 100) == 0;
	ok[4] = smh_sync_for_cpu(buf, buf->size - 1, 1) == 0;
	ok[5] = smh_sync_for_device(buf, 0, 0) == 0;
	ok[6] = smh_sync_for_cpu(buf, buf->size, 1) == -ERANGE;
	ok[7] = smh_sync_for_device(buf, UINT64_MAX, 2) == -ERANGE;
	ok[8] = smh_buffer_read(buf, 0, got, buf->size) == 0 && memcmp(got, want, buf->size) == 0;
	free(want);
	free(got);
	for (int i = 0; i < (int)(sizeof(ok) / sizeof(ok[0])); i++)
		if (!ok[i])
			return i + 1;
	return 0;
}

static void check_sync(struct smh_client *client, enum smh_reg_attr attr, enum smh_mapping want)
{
	const char *name = attr == SMH_REG_ATTR_CACHEABLE ? "cacheable" : "non-cacheable";
	struct smh_buffer buf;
	int err = smh_alloc(client, attr, N_BYTES, 0, &buf), status;
	pid_t pid;

	err = err ? err : smh_map(&buf);
	if (!guest_check(err == 0, "%s: a %d-byte buffer for the sync calls (%s)", name, N_BYTES,
			 smh_strerror(err)))
		return;
	guest_check(smh_buffer_mapping(&buf) == want, "%s: smh_buffer_mapping() says %s (%d)", name,
		    guest_mapping_name(want), (int)smh_buffer_mapping(&buf));
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(sync_steps(&buf));
	status = pid > 0 ? guest_finish(pid, 60) : -2;
	guest_check(
		status == 0,
		"%s: smh_sync_for_device/smh_sync_for_cpu return 0 on the whole buffer, partial "
		"lines and length 0 (%s), -ERANGE outside it, and the bytes stay "
		"(in a child: exit %d, the failed step; -1 is a fault)",
		name,
		want == SMH_MAPPING_CACHED ? "DC CVAC / DC CIVAC per line, DSB"
					   : "Device memory: the barrier only",
		status);
	smh_unmap(&buf);
	guest_check(smh_sync_for_device(&buf, 0, 1) == -EINVAL &&
			    smh_sync_for_cpu(&buf, 0, 1) == -EINVAL,
		    "%s: the sync calls refuse an unmapped buffer with -EINVAL", name);
	smh_free(client, &buf);
}

/* ---------------------------------------------------------------- cached memory */

/* The second process: checks the first one's bytes, writes its own and cleans them. */
static int importer(uint64_t token, unsigned seed)
{
	unsigned char *want = malloc(N_BYTES);
	struct smh_client *client;
	struct smh_buffer buf;

	if (!want || smh_connect(NULL, &client) < 0)
		return 2;
	if (smh_import(client, token, &buf) < 0 || smh_map(&buf) < 0)
		return 3;
	if (smh_buffer_mapping(&buf) != SMH_MAPPING_CACHED)
		return 4;
	fill_pattern(want, N_BYTES, seed);
	if (smh_sync_for_cpu(&buf, 0, N_BYTES) != 0 || memcmp(buf.addr, want, N_BYTES) != 0)
		return 5;
	memset((unsigned char *)buf.addr + 100, 0xc3, 200);
	if (smh_sync_for_device(&buf, 100, 200) != 0)
		return 6;
	smh_free(client, &buf);
	smh_disconnect(client);
	free(want);
	return 0;
}

/* Each byte of @p[0, @n) is @value. */
static bool all(const unsigned char *p, size_t n, unsigned char value)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != value)
			return false;
	return true;
}

static void check_helpers(struct smh_buffer *buf, unsigned char *want)
{
	unsigned char *p = buf->addr, got[1000];

	fill_pattern(want, N_BYTES, 5);
	guest_check(smh_buffer_write(buf, 0, want, N_BYTES) == 0 && memcmp(p, want, N_BYTES) == 0,
		    "cached: smh_buffer_write's bytes are what plain loads through buf->addr see");
	memcpy(p + 3, want + 7, sizeof(got));
	guest_check(smh_buffer_read(buf, 3, got, sizeof(got)) == 0 &&
			    memcmp(got, want + 7, sizeof(got)) == 0,
		    "cached: smh_buffer_read at an odd offset sees a memcpy() through buf->addr");
	memcpy(p + 3, want + 3, sizeof(got));
	guest_check(smh_buffer_fill(buf, 4097, 0x5a, 333) == 0 && all(p + 4097, 333, 0x5a) &&
			    p[4096] == want[4096] && p[4097 + 333] == want[4097 + 333],
		    "cached: smh_buffer_fill sets 333 bytes at an odd offset, neighbours intact");
	memcpy(p + 4097, want + 4097, 333);
}

static void check_second_process(struct smh_client *client, struct smh_buffer *buf,
				 const unsigned char *want)
{
	uint64_t token = 0;
	int status;
	pid_t pid;

	guest_check(smh_sync_for_device(buf, 0, N_BYTES) == 0 &&
			    smh_export(client, buf, &token) == 0,
		    "cached: cleaned (smh_sync_for_device) and exported");
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(importer(token, 5));
	status = pid > 0 ? guest_finish(pid, 60) : -2;
	guest_check(status == 0,
		    "cached: a second process imported it (cached there too), read the bytes after "
		    "smh_sync_for_cpu, wrote 200 and cleaned them (exit %d)",
		    status);
	guest_check(smh_sync_for_cpu(buf, 0, N_BYTES) == 0 && memcmp(buf->addr, want, 100) == 0 &&
			    all((unsigned char *)buf->addr + 100, 200, 0xc3) &&
			    memcmp((unsigned char *)buf->addr + 300, want + 300, N_BYTES - 300) ==
				    0,
		    "cached: after smh_sync_for_cpu the first process reads the second's bytes");
}

static void check_cached_buffer(struct smh_client *client)
{
	unsigned char *want = malloc(N_BYTES);
	struct smh_buffer buf;
	int err = want ? smh_alloc(client, SMH_REG_ATTR_CACHEABLE, N_BYTES, 0, &buf) : -ENOMEM;

	err = err ? err : smh_map(&buf);
	if (guest_check(err == 0 && smh_buffer_mapping(&buf) == SMH_MAPPING_CACHED,
			"cached: a %d-byte buffer, mapped cached (%s)", N_BYTES,
			smh_strerror(err))) {
		check_helpers(&buf, want);
		check_second_process(client, &buf, want);
	}
	if (err == 0 || err == -EINVAL)
		smh_free(client, &buf);
	free(want);
}

/*
 * The scrubber on cached memory: the whole region, written with plain stores and cleaned, then
 * freed; allocated again it can only be the same memory, and it reads as zeros.
 */
static void check_scrubbed(struct smh_client *client, const struct guest_expect *e)
{
	struct smh_buffer buf;
	bool zero = false;
	int err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, e->size, 0, &buf);

	err = err ? err : smh_map(&buf);
	if (!guest_check(err == 0 && buf.phys_addr == e->base,
			 "cached: the whole of %s (%llu bytes) in one buffer (%s)", e->label,
			 (unsigned long long)e->size, smh_strerror(err)))
		return;
	memset(buf.addr, 0xee, e->size);
	smh_sync_for_device(&buf, 0, e->size);
	guest_check(smh_free(client, &buf) == 0, "cached: filled with 0xee and freed");
	err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, e->size, 0, &buf);
	err = err ? err : smh_map(&buf);
	if (err == 0) {
		smh_sync_for_cpu(&buf, 0, e->size);
		zero = all(buf.addr, e->size, 0);
		smh_free(client, &buf);
	}
	guest_check(zero, "cached: allocated again, all of %s reads as zeros (scrubbed: %s)",
		    e->label, smh_strerror(err));
}

/* ---------------------------------------------------------------- smhctl doctor */

static void check_doctor(void)
{
	char *argv[] = { GUEST_SMHCTL, "doctor", NULL }, line[512];
	int status;
	char *out = guest_run("smhctl doctor (arm64-nostrict)", argv, &status);

	guest_check(strstr(out, "STRICT_DEVMEM is not set: /dev/mem maps any physical memory"),
		    "smhctl doctor says STRICT_DEVMEM is off");
	for (size_t i = 0; i < guest_n_expected; i++) {
		const struct guest_expect *e = &guest_expected[i];
		const char *says = e->mapping == SMH_MAPPING_CACHED
					   ? "kernel without STRICT_DEVMEM: served cached"
					   : "served as Device memory, uncached";

		snprintf(line, sizeof(line), "OK    cache       %s:", e->label);
		guest_check(strstr(out, line) && strstr(strstr(out, line), says),
			    "smhctl doctor on %s: \"%s\"", e->label, says);
	}
	free(out);
}

static const struct guest_expect *cached_region(void)
{
	for (size_t i = 0; i < guest_n_expected; i++)
		if (!guest_expected[i].refused && guest_expected[i].mapping == SMH_MAPPING_CACHED)
			return &guest_expected[i];
	return NULL;
}

static void with_daemon(struct smh_client *client)
{
	const struct guest_expect *cached = cached_region();

	check_served(client);
	check_sync(client, SMH_REG_ATTR_CACHEABLE, SMH_MAPPING_CACHED);
	check_sync(client, SMH_REG_ATTR_NON_CACHEABLE, SMH_MAPPING_DEVICE);
	check_cached_buffer(client);
	if (guest_check(cached != NULL, "SMH_EXPECT names a cached region"))
		check_scrubbed(client, cached);
	check_doctor();
}

static const struct guest_board board = {
	.name = "arm64-nostrict",
	.before_daemon = before_daemon,
	.with_daemon = with_daemon,
};
GUEST_BOARD(board)
