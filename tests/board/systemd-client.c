/* SPDX-License-Identifier: MIT */
/*
 * The booted-image test's client (tests/board/run-systemd-test, guest side systemd-test.sh):
 * a process that holds buffers across restarts of smhd.service and checks that it carries on
 * with the same bytes.
 *
 * It allocates one buffer of each attribute the regions offer (the caller says which), maps
 * it, writes a pattern seeded by the buffer's handle, prints "READY n=N" and then obeys one
 * command per line on stdin, answering one line each:
 *   check  a call to the daemon (a new smhd is reached through the library's reconnection and
 *          session resume), a second buffer allocated and freed (the daemon serves), then every
 *          held buffer: the same fd (device and inode), the same handle and address, and the
 *          pattern read back through the mapping. "OK ..." or "FAIL ...".
 *   quit   frees everything and exits ("BYE").
 * It is dynamically linked against the installed libsmh-client0 (built on the host against
 * the libsmh-client-dev package's files), so it also checks those two packages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "smh/client.h"

#define N_MAX     4
#define BUF_BYTES (256 * 1024 + 5)

struct held {
	struct smh_buffer buf;
	dev_t dev;
	ino_t ino;
	uint64_t handle;
	void *addr;
};

static struct held held[N_MAX];
static size_t n_held;

static uint8_t pattern(const struct held *h, size_t i)
{
	return (uint8_t)((h->handle * 131 + i * 7 + (i >> 9)) & 0xff);
}

static int hold(struct smh_client *c, enum smh_reg_attr attr)
{
	struct held *h = &held[n_held];
	uint8_t *bytes = malloc(BUF_BYTES);
	struct stat st;
	int ret;

	if (!bytes)
		return -ENOMEM;
	ret = smh_alloc(c, attr, BUF_BYTES, 0, &h->buf);
	if (ret == 0)
		ret = smh_map(&h->buf);
	if (ret == 0 && fstat(h->buf.fd, &st) < 0)
		ret = -errno;
	if (ret < 0) {
		printf("FAIL alloc attr %d: %s\n", (int)attr, smh_strerror(ret));
		free(bytes);
		return ret;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	h->handle = h->buf.handle;
	h->addr = h->buf.addr;
	for (size_t i = 0; i < BUF_BYTES; i++)
		bytes[i] = pattern(h, i);
	ret = smh_buffer_write(&h->buf, 0, bytes, BUF_BYTES);
	free(bytes);
	if (ret < 0) {
		printf("FAIL write: %s\n", smh_strerror(ret));
		return ret;
	}
	n_held++;
	return 0;
}

/* Whether @h is as it was: same fd file, handle, mapping and bytes. Prints why not. */
static int held_intact(const struct held *h, uint8_t *bytes)
{
	struct stat st;
	int ret;

	if (fstat(h->buf.fd, &st) < 0 || st.st_dev != h->dev || st.st_ino != h->ino ||
	    h->buf.handle != h->handle || h->buf.addr != h->addr) {
		printf("FAIL buffer %llu (%s): another fd, handle or mapping\n",
		       (unsigned long long)h->handle, h->buf.region);
		return -1;
	}
	ret = smh_buffer_read(&h->buf, 0, bytes, BUF_BYTES);
	for (size_t i = 0; ret == 0 && i < BUF_BYTES; i++) {
		if (bytes[i] != pattern(h, i)) {
			printf("FAIL buffer %llu (%s): byte %zu is 0x%02x, not 0x%02x\n",
			       (unsigned long long)h->handle, h->buf.region, i, bytes[i],
			       pattern(h, i));
			return -1;
		}
	}
	if (ret < 0)
		printf("FAIL read: %s\n", smh_strerror(ret));
	return ret < 0 ? -1 : 0;
}

static void check(struct smh_client *c)
{
	struct smh_stats stats;
	struct smh_buffer extra;
	uint8_t *bytes = malloc(BUF_BYTES);
	int ret = bytes ? smh_get_stats(c, &stats) : -ENOMEM;

	if (ret < 0) {
		printf("FAIL stats: %s\n", smh_strerror(ret));
		free(bytes);
		return;
	}
	smh_stats_finish(&stats);
	ret = smh_alloc(c, held[0].buf.attr, 4096, 0, &extra);
	if (ret == 0)
		ret = smh_free(c, &extra);
	if (ret < 0) {
		printf("FAIL a new allocation: %s\n", smh_strerror(ret));
		free(bytes);
		return;
	}
	for (size_t i = 0; i < n_held; i++)
		if (held_intact(&held[i], bytes) < 0) {
			free(bytes);
			return;
		}
	free(bytes);
	printf("OK %zu buffer(s) of %d bytes: same handle, fd, address and bytes", n_held,
	       BUF_BYTES);
	for (size_t i = 0; i < n_held; i++)
		printf(" [%llu %s]", (unsigned long long)held[i].handle, held[i].buf.region);
	printf("\n");
}

int main(int argc, char **argv)
{
	struct smh_client *c;
	char line[64];
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: %s cacheable|non-cacheable...\n", argv[0]);
		return 2;
	}
	ret = smh_connect(NULL, &c);
	if (ret < 0) {
		printf("FAIL connect: %s\n", smh_strerror(ret));
		return 1;
	}
	for (int i = 1; i < argc && n_held < N_MAX; i++)
		if (hold(c, strcmp(argv[i], "non-cacheable") == 0 ? SMH_REG_ATTR_NON_CACHEABLE
								  : SMH_REG_ATTR_CACHEABLE) < 0)
			return 1;
	printf("READY n=%zu\n", n_held);
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "check", 5) == 0)
			check(c);
		else if (strncmp(line, "quit", 4) == 0)
			break;
	}
	for (size_t i = 0; i < n_held; i++)
		smh_free(c, &held[i].buf);
	smh_disconnect(c);
	printf("BYE\n");
	return 0;
}
