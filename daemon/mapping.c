/* SPDX-License-Identifier: MIT */
/*
 * The memory type of each devmem region, as the kernel decides it (see mapping.h).
 *
 * The rule itself is core/memtype.c's, pure, so that smhctl doctor applies the same one; here
 * are the files it reads on this machine. /proc/iomem is read once per start. The PAT list is
 * read again after each region is mapped: it lists the types granted to mappings that exist.
 * Neither is required: without them the answer is "unknown", or on x86 the rule's answer
 * labelled as such, never a guess presented as a fact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/attr.h"
#include "daemon/mapping.h"

#define FACT_MAX (4u << 20) /* longer than any /proc/iomem or PAT list seen */

/* The whole text of @path, or NULL. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 1 << 14;
	char *buf = NULL, *grown;
	size_t n;

	if (!f)
		return NULL;
	do {
		grown = cap <= FACT_MAX ? realloc(buf, cap + 1) : NULL;
		if (!grown) {
			free(buf);
			fclose(f);
			return NULL;
		}
		buf = grown;
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len == cap)
			cap *= 2;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

void mapping_facts_init(struct mapping_facts *facts)
{
	*facts = (struct mapping_facts){ .iomem = read_text("/proc/iomem") };
}

void mapping_facts_finish(struct mapping_facts *facts)
{
	free(facts->iomem);
	free(facts->pat);
	*facts = (struct mapping_facts){ 0 };
}

static void warn_not_cached(const struct dt_region *dr, const struct memtype_result *res,
			    const struct diag *diag)
{
	const char *why;

	if (res->type == MEMTYPE_DEVICE)
		why = "it is `no-map`, outside the kernel's linear map, which /dev/mem maps as "
		      "Device memory: accesses are uncached and must be aligned "
		      "(smh_buffer_read/write/fill). For cached memory, drop `no-map` on a kernel "
		      "without CONFIG_STRICT_DEVMEM (docs/board-bringup.md)";
	else if (res->type == MEMTYPE_UNKNOWN)
		why = "its memory type could not be determined, so it is treated as Device memory";
	else
		why = "accesses are not cached";
	diag_report(diag, DIAG_WARNING, "Region %s (%s) asks cacheable memory, served %s: %s",
		    dr->label, dr->path, res->text, why);
}

void mapping_devmem(struct mapping_facts *facts, const struct dt_region *dr, uint64_t map_phys,
		    uint64_t map_len, bool sync, bool is_file, struct memtype_result *out,
		    const struct diag *diag)
{
	struct memtype_input in = {
		.arch = memtype_host_arch(),
		.sync = sync,
		.phys = map_phys,
		.size = map_len,
		.iomem = facts->iomem,
	};

	if (is_file) {
		out->type = MEMTYPE_CACHED;
		snprintf(out->text, sizeof(out->text), "cached write-back (file%s: test stand-in)",
			 sync ? " opened O_SYNC" : "");
		return;
	}
	if (in.arch == MEMTYPE_ARCH_X86) {
		free(facts->pat);
		facts->pat = read_text("/sys/kernel/debug/x86/pat_memtype_list");
	}
	in.pat = facts->pat;
	memtype_decide(&in, out);
	if (attr_info(dr->attr)->map == ATTR_MAP_CACHED && out->type != MEMTYPE_CACHED)
		warn_not_cached(dr, out, diag);
}
