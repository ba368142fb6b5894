/* SPDX-License-Identifier: MIT */
/*
 * The kernel's rule for the memory type of a /dev/mem mapping (see memtype.h).
 *
 * arm64 and arm (phys_mem_access_prot()): a page outside the kernel's linear map (`no-map`
 * memory) is mapped Device memory (arm: strongly ordered) whatever O_SYNC says; a page inside it
 * is mapped cached without O_SYNC and Normal non-cacheable (write-combine) with it. The kernel
 * decides by the first page of the mapping, so this does too. /proc/iomem tells the linear map
 * apart: its memory is "System RAM" at the top level; no-map ranges are "reserved" or absent.
 *
 * x86: O_SYNC asks uncached-minus; without it the kernel gives write-back unless PAT or the
 * MTRRs decide otherwise. The PAT list (debugfs, root only) shows what was granted; when it is
 * unreadable or does not list the range, the text says the type follows from the rule alone.
 *
 * Elsewhere nothing is claimed: MEMTYPE_UNKNOWN.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/memtype.h"

static const char *const type_names[MEMTYPE_NUM] = {
	[MEMTYPE_UNKNOWN] = "unknown",
	[MEMTYPE_CACHED] = "cached",
	[MEMTYPE_WRITE_COMBINE] = "write-combine",
	[MEMTYPE_UNCACHED] = "uncached",
	[MEMTYPE_DEVICE] = "device",
};

static const char *const arch_names[] = {
	[MEMTYPE_ARCH_OTHER] = "other",
	[MEMTYPE_ARCH_ARM64] = "arm64",
	[MEMTYPE_ARCH_ARM] = "arm",
	[MEMTYPE_ARCH_X86] = "x86",
};

enum memtype_arch memtype_host_arch(void)
{
#if defined(__aarch64__)
	return MEMTYPE_ARCH_ARM64;
#elif defined(__arm__)
	return MEMTYPE_ARCH_ARM;
#elif defined(__x86_64__) || defined(__i386__)
	return MEMTYPE_ARCH_X86;
#else
	return MEMTYPE_ARCH_OTHER;
#endif
}

int memtype_arch_from_name(const char *name, enum memtype_arch *archp)
{
	for (size_t i = 0; i < sizeof(arch_names) / sizeof(arch_names[0]); i++) {
		if (strcmp(name, arch_names[i]) == 0) {
			*archp = (enum memtype_arch)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *memtype_name(enum memtype type)
{
	return (unsigned)type < MEMTYPE_NUM ? type_names[type] : type_names[MEMTYPE_UNKNOWN];
}

/* The next line of @text after @p (NULL at the end). */
static const char *next_line(const char *p)
{
	p = strchr(p, '\n');
	return p ? p + 1 : NULL;
}

int memtype_in_system_ram(const char *iomem, uint64_t phys)
{
	bool any_address = false, in_ram = false;

	for (const char *p = iomem; p && *p; p = next_line(p)) {
		uint64_t start, end;
		int name_at = 0;

		if (sscanf(p, "%" SCNx64 "-%" SCNx64 " : %n", &start, &end, &name_at) < 2 ||
		    name_at == 0)
			continue;
		any_address = any_address || start != 0 || end != 0;
		/* Only the top level: indented entries are parts of the one above. */
		if (*p != ' ' && start <= phys && phys <= end &&
		    strncmp(p + name_at, "System RAM", 10) == 0 &&
		    (p[name_at + 10] == '\n' || p[name_at + 10] == '\0'))
			in_ram = true;
	}
	if (!any_address)
		return -1;
	return in_ram;
}

static enum memtype pat_type(const char *name)
{
	if (strcmp(name, "write-back") == 0)
		return MEMTYPE_CACHED;
	if (strcmp(name, "write-combining") == 0)
		return MEMTYPE_WRITE_COMBINE;
	if (strcmp(name, "uncached") == 0 || strcmp(name, "uncached-minus") == 0)
		return MEMTYPE_UNCACHED;
	return MEMTYPE_UNKNOWN; /* write-through, write-protected: not one of ours */
}

/* One line of the list: "PAT: [mem 0xS-0xE] TYPE" (end exclusive), or "TYPE @ 0xS-0xE". */
static bool pat_entry(const char *line, uint64_t *startp, uint64_t *endp, char *type)
{
	return sscanf(line, "PAT: [mem 0x%" SCNx64 "-0x%" SCNx64 "] %31s", startp, endp, type) ==
		       3 ||
	       sscanf(line, "%31s @ 0x%" SCNx64 "-0x%" SCNx64, type, startp, endp) == 3;
}

enum memtype memtype_pat_lookup(const char *pat, uint64_t phys, uint64_t size, char *name,
				size_t name_size)
{
	for (const char *p = pat; p && *p; p = next_line(p)) {
		uint64_t start, end;
		char type[32];

		if (!pat_entry(p, &start, &end, type))
			continue;
		if (start <= phys && phys + size <= end && phys + size >= phys) {
			snprintf(name, name_size, "%s", type);
			return pat_type(type);
		}
	}
	if (name_size > 0)
		*name = '\0';
	return MEMTYPE_UNKNOWN;
}

static void set(struct memtype_result *out, enum memtype type, const char *text)
{
	out->type = type;
	snprintf(out->text, sizeof(out->text), "%s", text);
}

static void decide_arm(const struct memtype_input *in, struct memtype_result *out)
{
	int in_ram = memtype_in_system_ram(in->iomem, in->phys);

	if (in_ram < 0)
		set(out, MEMTYPE_UNKNOWN, "unknown (/proc/iomem unreadable: in the linear map?)");
	else if (!in_ram && in->arch == MEMTYPE_ARCH_ARM)
		set(out, MEMTYPE_DEVICE,
		    "Device memory, strongly ordered (no-map: not in linear map)");
	else if (!in_ram)
		set(out, MEMTYPE_DEVICE, "Device memory, uncached (no-map: not in the linear map)");
	else if (in->sync)
		set(out, MEMTYPE_WRITE_COMBINE,
		    "write-combine, Normal uncached (linear map, O_SYNC)");
	else
		set(out, MEMTYPE_CACHED, "cached write-back (in the linear map, no O_SYNC)");
}

static void decide_x86(const struct memtype_input *in, struct memtype_result *out)
{
	const char *rule = in->sync ? "uncached (O_SYNC" : "write-back (no O_SYNC";
	char name[24]; /* the longest PAT type name is 15 */
	enum memtype listed = memtype_pat_lookup(in->pat, in->phys, in->size, name, sizeof(name));

	if (*name) {
		out->type = listed;
		snprintf(out->text, sizeof(out->text), "%s; PAT list: %s)", rule, name);
		return;
	}
	out->type = in->sync ? MEMTYPE_UNCACHED : MEMTYPE_CACHED;
	snprintf(out->text, sizeof(out->text), "%s; kernel's rule, PAT list %s)", rule,
		 in->pat ? "lacks it" : "unreadable");
}

void memtype_decide(const struct memtype_input *in, struct memtype_result *out)
{
	switch (in->arch) {
	case MEMTYPE_ARCH_ARM64:
	case MEMTYPE_ARCH_ARM:
		decide_arm(in, out);
		return;
	case MEMTYPE_ARCH_X86:
		decide_x86(in, out);
		return;
	default:
		set(out, MEMTYPE_UNKNOWN, "unknown (no rule known for this architecture)");
		return;
	}
}
