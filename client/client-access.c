/* SPDX-License-Identifier: MIT */
/*
 * A buffer's memory type, and safe access to mapped buffers whose memory may be Device memory.
 *
 * The type is the region's, from the region table smh_map() needed (found, as smh_map() finds
 * the region, by the buffer's fd among the live clients' region fds).
 *
 * On Normal memory (cached, write-combine) the helpers are memcpy/memset: libc's are the
 * fastest there. On arm64, /dev/mem maps `no-map` memory as Device memory whatever O_SYNC says:
 * an unaligned access faults, and so do the instructions libc's memcpy/memset use for speed
 * (unaligned loads and stores, DC ZVA). There, and wherever the type is uncached or unknown,
 * the helpers touch the buffer only with naturally aligned 64-bit accesses, and single bytes at
 * the unaligned edges. `volatile` keeps the compiler from merging the loops back into
 * memcpy/memset calls or into wider vector accesses. The caller's side (src, dst) is ordinary
 * memory: it is read and written with memcpy.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "client/client-internal.h"

enum smh_mapping smh_buffer_mapping(const struct smh_buffer *buf)
{
	enum smh_mapping kind = SMH_MAPPING_UNKNOWN;
	struct smh_client *client;
	uint32_t index;

	if (!buf)
		return kind;
	client_registry_lock();
	client = client_find_fd(buf->fd, &index);
	if (client && client->regions)
		kind = client->regions[index].mapping_kind;
	client_registry_unlock();
	return kind;
}

/* Whether memcpy/memset may touch @buf's memory. */
static bool normal_memory(const struct smh_buffer *buf)
{
	enum smh_mapping kind = smh_buffer_mapping(buf);

	return kind == SMH_MAPPING_CACHED || kind == SMH_MAPPING_WRITE_COMBINE;
}

/* Checks @buf is mapped and [@offset, @offset + @len) lies inside it. */
static int check_range(const struct smh_buffer *buf, uint64_t offset, size_t len)
{
	if (!buf || !buf->addr)
		return -EINVAL;
	if (offset > buf->size || len > buf->size - offset)
		return -ERANGE;
	return 0;
}

/* Bytes before the first 8-aligned address at or after @p, at most @len. */
static size_t head_bytes(const volatile unsigned char *p, size_t len)
{
	size_t head = (8 - ((uintptr_t)p & 7)) & 7;

	return head < len ? head : len;
}

int smh_buffer_write(const struct smh_buffer *buf, uint64_t offset, const void *src, size_t len)
{
	const unsigned char *s = src;
	volatile unsigned char *d;
	size_t head;
	int err = check_range(buf, offset, len);

	if (err < 0)
		return err;
	if (len > 0 && !src)
		return -EINVAL;
	if (len > 0 && normal_memory(buf)) {
		memcpy((unsigned char *)buf->addr + offset, src, len);
		return 0;
	}
	d = (volatile unsigned char *)buf->addr + offset;
	for (head = head_bytes(d, len); head > 0; head--, len--)
		*d++ = *s++;
	for (; len >= 8; len -= 8, d += 8, s += 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		*(volatile uint64_t *)(volatile void *)d = w;
	}
	while (len-- > 0)
		*d++ = *s++;
	return 0;
}

int smh_buffer_read(const struct smh_buffer *buf, uint64_t offset, void *dst, size_t len)
{
	const volatile unsigned char *s;
	unsigned char *d = dst;
	size_t head;
	int err = check_range(buf, offset, len);

	if (err < 0)
		return err;
	if (len > 0 && !dst)
		return -EINVAL;
	if (len > 0 && normal_memory(buf)) {
		memcpy(dst, (const unsigned char *)buf->addr + offset, len);
		return 0;
	}
	s = (const volatile unsigned char *)buf->addr + offset;
	for (head = head_bytes(s, len); head > 0; head--, len--)
		*d++ = *s++;
	for (; len >= 8; len -= 8, d += 8, s += 8) {
		uint64_t w = *(const volatile uint64_t *)(const volatile void *)s;

		memcpy(d, &w, 8);
	}
	while (len-- > 0)
		*d++ = *s++;
	return 0;
}

int smh_buffer_fill(const struct smh_buffer *buf, uint64_t offset, uint8_t value, size_t len)
{
	volatile unsigned char *d;
	uint64_t w = UINT64_C(0x0101010101010101) * value;
	size_t head;
	int err = check_range(buf, offset, len);

	if (err < 0)
		return err;
	if (len > 0 && normal_memory(buf)) {
		memset((unsigned char *)buf->addr + offset, value, len);
		return 0;
	}
	d = (volatile unsigned char *)buf->addr + offset;
	for (head = head_bytes(d, len); head > 0; head--, len--)
		*d++ = value;
	for (; len >= 8; len -= 8, d += 8)
		*(volatile uint64_t *)(volatile void *)d = w;
	while (len-- > 0)
		*d++ = value;
	return 0;
}
