/* SPDX-License-Identifier: MIT */
/*
 * The memory type a /dev/mem mapping really gets, by the kernel's rule (phys_mem_access_prot()
 * in arch/arm64/mm/mmu.c and arch/arm/mm/mmu.c; PAT on x86). Pure: the caller reads
 * /proc/iomem and /sys/kernel/debug/x86/pat_memtype_list and hands their text in, so that tests
 * feed fixtures and smhctl doctor predicts what smhd would get.
 */
#ifndef CORE_MEMTYPE_H
#define CORE_MEMTYPE_H

#include <stddef.h>
#include <stdint.h>

/* The wire's Region.mapping_kind and libsmh-client's enum smh_mapping: append, never renumber. */
enum memtype {
	MEMTYPE_UNKNOWN = 0,       /* not determined: nothing is claimed */
	MEMTYPE_CACHED = 1,        /* Normal memory, cached write-back */
	MEMTYPE_WRITE_COMBINE = 2, /* Normal memory, not cacheable (arm) / write-combining (x86) */
	MEMTYPE_UNCACHED = 3,      /* x86 UC or UC-: uncached, any access width works */
	MEMTYPE_DEVICE = 4,        /* arm Device / strongly ordered: aligned accesses only */
};
#define MEMTYPE_NUM 5

enum memtype_arch {
	MEMTYPE_ARCH_OTHER,
	MEMTYPE_ARCH_ARM64,
	MEMTYPE_ARCH_ARM,
	MEMTYPE_ARCH_X86,
};

/* The facts the rule needs about one /dev/mem mapping. */
struct memtype_input {
	enum memtype_arch arch;
	int sync;          /* opened with O_SYNC */
	uint64_t phys;     /* the mapping's first byte (the kernel decides by its first page) */
	uint64_t size;     /* bytes mapped (the PAT list is searched for the whole range) */
	const char *iomem; /* /proc/iomem's text, or NULL when unreadable */
	const char *pat;   /* x86: pat_memtype_list's text, or NULL when unreadable */
};

struct memtype_result {
	enum memtype type;
	char text[64]; /* for people: what and why, e.g. "Device memory, uncached (no-map: ...)" */
};

/* The architecture this program runs on. */
enum memtype_arch memtype_host_arch(void);

/* "arm64", "arm", "x86" or "other" to an architecture; returns 0 or -EINVAL. */
int memtype_arch_from_name(const char *name, enum memtype_arch *archp);

/* "cached", "write-combine", "uncached", "device" or "unknown" (also for values out of range). */
const char *memtype_name(enum memtype type);

/*
 * Whether @phys lies in a top-level "System RAM" entry of @iomem (the kernel's linear map;
 * `no-map` memory is listed as "reserved" or not at all): 1 yes, 0 no, -1 unknown (@iomem NULL,
 * or its addresses hidden as zeros from a reader without CAP_SYS_ADMIN).
 */
int memtype_in_system_ram(const char *iomem, uint64_t phys);

/*
 * The type the PAT list @pat gives [@phys, @phys + @size), copying its name ("write-back", ...)
 * to @name; MEMTYPE_UNKNOWN when no entry covers the whole range or @pat is NULL.
 */
enum memtype memtype_pat_lookup(const char *pat, uint64_t phys, uint64_t size, char *name,
				size_t name_size);

/* Applies the kernel's rule to @in. */
void memtype_decide(const struct memtype_input *in, struct memtype_result *out);

#endif
