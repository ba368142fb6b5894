/* SPDX-License-Identifier: MIT */
/*
 * Device-tree reader, the blob side: reading a blob file sized by its header, and checking an
 * untrusted blob before anything walks it.
 *
 * Nothing is read before it has been checked: the header's own fields first, then
 * fdt_check_header(), then one linear walk over the structure block's tags (which also guards
 * against two defects of libfdt 1.6.1, see check_tags()), then the whole structure block with
 * fdt_check_full() where libfdt has it. After that, core/dt.c uses libfdt accessors and the
 * lengths they return only.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfdt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "core/dt-blob.h"
#include "core/dt.h"

/* ---------------------------------------------------------------- reading the file */

/* Reads up to @len bytes, retrying short reads and EINTR. Returns the count (less than @len at
 * the end of the file) or a negative errno. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * The checks on the header's own fields that must pass before totalsize can be trusted for
 * anything. Writes the reason to @why. Returns 0 or -EBADMSG.
 */
static int check_header_fields(const struct fdt_header *hdr, char *why, size_t len)
{
	if (fdt_magic(hdr) != FDT_MAGIC) {
		const unsigned char *b = (const unsigned char *)hdr;
		bool text = true;

		for (int i = 0; i < 4; i++)
			text = text && (isprint(b[i]) || isspace(b[i]));
		if (text)
			snprintf(why, len,
				 "this is text, not a device-tree blob (device-tree source?): "
				 "compile "
				 "it first, dtc -I dts -O dtb -o board.dtb board.dts");
		else
			snprintf(why, len,
				 "bad magic 0x%08" PRIx32
				 " (a device-tree blob starts with 0x%08x)",
				 fdt_magic(hdr), FDT_MAGIC);
		return -EBADMSG;
	}
	if (fdt_totalsize(hdr) < sizeof(*hdr)) {
		snprintf(why, len,
			 "the header's totalsize (%" PRIu32
			 " bytes) is smaller than the header (%zu bytes)",
			 fdt_totalsize(hdr), sizeof(*hdr));
		return -EBADMSG;
	}
	return 0;
}

static int read_header(int fd, const char *path, struct fdt_header *hdr, const struct diag *diag)
{
	ssize_t n = read_full(fd, hdr, sizeof(*hdr));
	char why[160];
	int r;

	if (n < 0) {
		diag_report(diag, DIAG_ERROR, "Could not read %s: %s", path, strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n < sizeof(*hdr)) {
		diag_report(diag, DIAG_ERROR,
			    "Could not read %s: the file has %zd bytes, fewer than a device-tree "
			    "header (%zu bytes)",
			    path, n, sizeof(*hdr));
		return -EBADMSG;
	}
	r = check_header_fields(hdr, why, sizeof(why));
	if (r < 0)
		diag_report(diag, DIAG_ERROR, "Could not read %s: %s", path, why);
	return r;
}

/* Reads the part of the blob after the header, which is already in @blob. */
static int read_rest(int fd, const char *path, void *blob, size_t size, const struct diag *diag)
{
	size_t hdr_size = sizeof(struct fdt_header);
	ssize_t n = read_full(fd, (char *)blob + hdr_size, size - hdr_size);

	if (n < 0) {
		diag_report(diag, DIAG_ERROR, "Could not read %s: %s", path, strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n < size - hdr_size) {
		diag_report(diag, DIAG_ERROR,
			    "Could not read %s: truncated, the header says %zu bytes but the file "
			    "has %zu",
			    path, size, hdr_size + (size_t)n);
		return -EBADMSG;
	}
	return 0;
}

int dt_blob_read(const char *path, void **blobp, size_t *sizep, const struct diag *diag)
{
	struct fdt_header hdr;
	void *blob = NULL;
	size_t size;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		diag_report(diag, DIAG_ERROR, "Could not open %s: %s", path, strerror(-r));
		return r;
	}
	r = read_header(fd, path, &hdr, diag);
	if (r < 0)
		goto close_fd;
	size = fdt_totalsize(&hdr);
	if (size > DT_BLOB_MAX) {
		diag_report(diag, DIAG_ERROR,
			    "Could not read %s: the header's totalsize (%zu bytes) is above the "
			    "limit of %u bytes",
			    path, size, DT_BLOB_MAX);
		r = -EFBIG;
		goto close_fd;
	}
	blob = malloc(size);
	if (!blob) {
		diag_report(diag, DIAG_ERROR, "Could not read %s: %s", path, strerror(ENOMEM));
		r = -ENOMEM;
		goto close_fd;
	}
	memcpy(blob, &hdr, sizeof(hdr));
	r = read_rest(fd, path, blob, size, diag);
	if (r < 0)
		goto free_blob;
	*blobp = blob;
	*sizep = size;
	blob = NULL;
free_blob:
	free(blob);
close_fd:
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- checking the blob */

static int blob_error(const struct diag *diag, const char *why)
{
	diag_report(diag, DIAG_ERROR, "Could not parse the device-tree blob: %s", why);
	return -EBADMSG;
}

int dt_blob_fdt_error(const struct diag *diag, int err)
{
	return blob_error(diag, fdt_strerror(err));
}

/* The longest property name accepted; the devicetree specification allows 31 characters. */
#define PROP_NAME_MAX 255

/* Whether the property tag at @offset names its property with a short, terminated string. */
static bool prop_name_ok(const void *blob, int offset)
{
	const struct fdt_property *prop = fdt_offset_ptr(blob, offset, sizeof(*prop));
	uint32_t n_strings = fdt_size_dt_strings(blob), nameoff;
	size_t max;

	if (!prop)
		return false;
	nameoff = fdt32_ld(&prop->nameoff);
	if (nameoff >= n_strings)
		return false;
	max = n_strings - nameoff;
	if (max > PROP_NAME_MAX + 1)
		max = PROP_NAME_MAX + 1;
	return strnlen((const char *)blob + fdt_off_dt_strings(blob) + nameoff, max) < max;
}

/*
 * One linear walk over the structure block before libfdt's own full check, for three defects
 * of libfdt 1.6.1 (Debian bookworm's): a property length near 2^32 makes fdt_next_tag() step
 * backwards, so fdt_check_full() loops forever on an 86-byte blob; every property lookup costs
 * the length of each name it compares, so many properties sharing one huge name make the check
 * and the walk quadratic; and fdt_check_full() reads the root node's name through
 * fdt_get_name() without checking for NULL, which a blob older than version 16 gets for a
 * node name without a '/' (a 72-byte blob crashed it). Tags must move forward, property names
 * must be short, and fdt_get_name() must accept every node.
 */
static int check_tags(const void *blob, const struct diag *diag)
{
	int offset = 0, next;

	for (;;) {
		uint32_t tag = fdt_next_tag(blob, offset, &next);

		if (next < 0)
			return dt_blob_fdt_error(diag, next);
		if (next <= offset)
			return blob_error(diag, "a property length wraps around");
		if (tag == FDT_END)
			return 0;
		if (tag == FDT_PROP && !prop_name_ok(blob, offset))
			return blob_error(diag,
					  "a property name is missing, unterminated or longer "
					  "than 255 bytes");
		if (tag == FDT_BEGIN_NODE) {
			int err;

			if (!fdt_get_name(blob, offset, &err) && fdt_version(blob) < 16)
				return blob_error(diag, "a node name lacks the '/' that blobs "
							"older than version 16 need");
			if (err < 0)
				return dt_blob_fdt_error(diag, err);
		}
		offset = next;
	}
}

/* Checks the blob in the order that lets each step trust what the previous ones checked. */
int dt_blob_check(const void *blob, size_t size, const struct diag *diag)
{
	char why[160];
	int r;

	if (size < sizeof(struct fdt_header)) {
		snprintf(why, sizeof(why),
			 "it has %zu bytes, fewer than a device-tree header (%zu bytes)", size,
			 sizeof(struct fdt_header));
		return blob_error(diag, why);
	}
	if (check_header_fields(blob, why, sizeof(why)) < 0)
		return blob_error(diag, why);
	if (fdt_totalsize(blob) > size) {
		snprintf(why, sizeof(why),
			 "truncated, the header says %" PRIu32 " bytes but it has %zu",
			 fdt_totalsize(blob), size);
		return blob_error(diag, why);
	}
	r = fdt_check_header(blob);
	if (r < 0)
		return dt_blob_fdt_error(diag, r);
	/* libfdt 1.6.1 does not check this, then loads tags with plain 32-bit reads. */
	if (fdt_off_dt_struct(blob) % sizeof(fdt32_t))
		return blob_error(diag, "the structure block is not 4-byte aligned");
	/*
	 * Nor this: fdt_check_full() counts the reservation map's entries with plain 64-bit loads,
	 * which fault on 32-bit ARM (LDRD) when unaligned. The specification aligns the block to
	 * 8 bytes. An offset with no room for an entry libfdt refuses itself, reading nothing.
	 */
	if (fdt_off_mem_rsvmap(blob) % sizeof(fdt64_t) &&
	    fdt_off_mem_rsvmap(blob) <= fdt_totalsize(blob) - sizeof(struct fdt_reserve_entry))
		return blob_error(diag, "the memory reservation block is not 8-byte aligned");
	r = check_tags(blob, diag);
	if (r < 0)
		return r;
#if HAVE_FDT_CHECK_FULL
	r = fdt_check_full(blob, size);
	if (r < 0)
		return dt_blob_fdt_error(diag, r);
#endif
	/* The root node's name is empty; not every libfdt's fdt_check_full() checks it. */
	if (!fdt_get_name(blob, 0, &r))
		return dt_blob_fdt_error(diag, r);
	if (r != 0)
		return blob_error(diag, "the root node has a name");
	return 0;
}
