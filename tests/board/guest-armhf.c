/* SPDX-License-Identifier: MIT */
/*
 * The armhf board's own checks (SMH_BOARD=armhf): 32-bit processes on 32-bit ARM with LPAE
 * (Debian's armmp-lpae kernel, STRICT_DEVMEM=y), whose RAM and one smh region lie above 4 GiB.
 *
 * Physical addresses and fd offsets are uint64_t in the API, but a 32-bit process holds them in
 * 32-bit pointers and, unless built with a 64-bit off_t, in a 32-bit off_t: a region above
 * 4 GiB is where a truncation shows. So the guest checks that it is itself such a process and
 * that the machine's RAM reaches above 4 GiB; then, on a buffer of the region above 4 GiB, that
 * its physical address and /dev/mem offset (the same number) are 64-bit, that smh_map() and the
 * program's own mmap() of buf->fd at buf->offset reach the same bytes, and that the cache
 * calls behave as documented on Device memory (a barrier only: 0; -EOPNOTSUPP is only for
 * cached mappings on 32-bit ARM, which this kernel never grants). A request larger than a
 * 32-bit process can map is refused by the library with -EOVERFLOW and a sentence.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tests/board/guest.h"

#define FOUR_GIB  0x100000000ull
#define BUF_BYTES (16 * 1024)

/*
 * The end of the RAM the device tree's memory node declares (QEMU's RAM: the kernel gets less,
 * mem=3G, see run-board-test), 0 when unreadable. Its reg is two cells of address and two
 * of size, big-endian.
 */
static uint64_t dt_ram_end(void)
{
	FILE *f = fopen("/sys/firmware/devicetree/base/memory@40000000/reg", "rb");
	unsigned char c[16];
	uint64_t base = 0, size = 0;

	if (!f)
		return 0;
	if (fread(c, 1, sizeof(c), f) == sizeof(c)) {
		for (int i = 0; i < 8; i++) {
			base = base << 8 | c[i];
			size = size << 8 | c[8 + i];
		}
	}
	fclose(f);
	return base + size;
}

static void before_daemon(void)
{
	struct utsname u;
	uint64_t end = dt_ram_end();

	guest_check(uname(&u) == 0 && strncmp(u.machine, "armv7", 5) == 0,
		    "the kernel is 32-bit ARM: %s", u.machine);
	guest_check(sizeof(void *) == 4 && sizeof(off_t) == 8,
		    "this is a 32-bit process (%zu-byte pointers) with a %zu-byte off_t",
		    sizeof(void *), sizeof(off_t));
	guest_check(end > FOUR_GIB, "the device tree's RAM ends at 0x%" PRIx64 ", above 4 GiB",
		    end - 1);
}

/* The first region SMH_EXPECT places at or above 4 GiB. */
static const struct guest_expect *high_region(void)
{
	for (size_t i = 0; i < guest_n_expected; i++)
		if (guest_expected[i].base >= FOUR_GIB && !guest_expected[i].refused)
			return &guest_expected[i];
	return NULL;
}

static void pattern(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + (i >> 8) + 0x3d);
}

/*
 * The program's own mapping of @buf: buf->fd at buf->offset (a 64-bit off_t), read with aligned
 * 32-bit loads (Device memory). Returns whether it holds @want and a store through it is
 * seen by smh_buffer_read().
 */
static bool own_mapping_agrees(const struct smh_buffer *buf, const unsigned char *want)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = buf->offset & ~(page - 1);
	size_t len = (size_t)(buf->offset - start) + BUF_BYTES;
	volatile uint32_t *words;
	uint32_t w, back = 0;
	bool same = true;
	void *map;

	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf->fd, (off_t)start);
	if (!guest_check(map != MAP_FAILED, "own mmap() of fd %d at offset 0x%llx: %s", buf->fd,
			 (unsigned long long)start, map == MAP_FAILED ? strerror(errno) : "mapped"))
		return false;
	words = (volatile uint32_t *)(void *)((char *)map + (buf->offset - start));
	for (size_t i = 0; i < BUF_BYTES / 4; i++) {
		w = words[i];
		same = same && memcmp(&w, want + i * 4, 4) == 0;
	}
	words[1] = 0xa5c3e1f0u;
	same = same && smh_buffer_read(buf, 4, &back, 4) == 0 && back == 0xa5c3e1f0u;
	munmap(map, len);
	return same;
}

/* smh_sync_for_* on Device memory: a barrier, 0; the range and mapping checks still apply. */
static void check_sync(const struct smh_buffer *buf)
{
	struct smh_buffer unmapped = *buf;
	int dev = smh_sync_for_device(buf, 0, BUF_BYTES);
	int cpu = smh_sync_for_cpu(buf, 3, 100);
	int range = smh_sync_for_cpu(buf, BUF_BYTES, 1);

	unmapped.addr = NULL;
	guest_check(dev == 0 && cpu == 0,
		    "Device memory: smh_sync_for_device and smh_sync_for_cpu are a barrier "
		    "(%d, %d; -EOPNOTSUPP only for a cached mapping)",
		    dev, cpu);
	guest_check(range == -ERANGE && smh_sync_for_device(&unmapped, 0, 1) == -EINVAL,
		    "smh_sync_for_cpu outside the buffer: -ERANGE; on an unmapped buffer: -EINVAL");
}

/* A buffer of the region above 4 GiB, in this 32-bit process. */
static void check_high_buffer(struct smh_client *client, const struct guest_expect *e)
{
	unsigned char *want = malloc(BUF_BYTES), *got = malloc(BUF_BYTES);
	struct smh_buffer buf;
	int err;

	/* The region above 4 GiB is the first cacheable one: allocations go there first. */
	err = smh_alloc(client, SMH_REG_ATTR_CACHEABLE, BUF_BYTES, 0, &buf);
	if (!guest_check(err == 0 && want && got, "cacheable: %d bytes allocated: %s", BUF_BYTES,
			 smh_strerror(err)))
		goto out;
	guest_check(strcmp(buf.region, e->label) == 0 && buf.phys_addr >= FOUR_GIB &&
			    buf.phys_addr + buf.size <= e->base + e->size,
		    "%s: physical 0x%" PRIx64 ", above 4 GiB and inside the device tree's range",
		    buf.region, buf.phys_addr);
	guest_check(buf.offset == buf.phys_addr && buf.offset > (uint64_t)INT32_MAX,
		    "%s: the /dev/mem offset 0x%" PRIx64 " is the physical address, beyond 2 GiB",
		    buf.region, buf.offset);
	guest_check(smh_buffer_mapping(&buf) == SMH_MAPPING_DEVICE,
		    "%s: cacheable but no-map under STRICT_DEVMEM: Device memory (%s)", buf.region,
		    guest_mapping_name(smh_buffer_mapping(&buf)));
	err = smh_map(&buf);
	if (!guest_check(err == 0 && buf.addr, "%s: smh_map in a 32-bit process: %p (%s)",
			 buf.region, buf.addr, smh_strerror(err)))
		goto out_free;
	pattern(want, BUF_BYTES);
	err = smh_buffer_write(&buf, 0, want, BUF_BYTES);
	err = err ? err : smh_buffer_read(&buf, 0, got, BUF_BYTES);
	guest_check(err == 0 && memcmp(got, want, BUF_BYTES) == 0,
		    "%s: a %d-byte pattern reads back through smh_map's mapping", buf.region,
		    BUF_BYTES);
	guest_check(own_mapping_agrees(&buf, want),
		    "%s: the program's own mmap() at the 64-bit offset sees the same bytes, and "
		    "smh_buffer_read() its store",
		    buf.region);
	check_sync(&buf);
out_free:
	guest_check(smh_free(client, &buf) == 0, "%s: freed", buf.region);
out:
	free(want);
	free(got);
}

/* 3 GiB: more than a 32-bit process can map; the library refuses it before asking. */
static void check_too_large(struct smh_client *client)
{
	size_t size = (size_t)3 << 30;
	struct smh_buffer buf;
	int err = smh_alloc(client, SMH_REG_ATTR_NON_CACHEABLE, size, 0, &buf);

	guest_check(err == -EOVERFLOW && strstr(smh_last_error(client), "address space"),
		    "a %zu-byte request is refused: %s: \"%s\"", size, smh_strerror(err),
		    smh_last_error(client));
}

static void with_daemon(struct smh_client *client)
{
	const struct guest_expect *e = high_region();

	if (guest_check(e != NULL, "SMH_EXPECT names a served region above 4 GiB: %s",
			e ? e->label : "none"))
		check_high_buffer(client, e);
	check_too_large(client);
}

static const struct guest_board board = {
	.name = "armhf",
	.before_daemon = before_daemon,
	.with_daemon = with_daemon,
};
GUEST_BOARD(board)
