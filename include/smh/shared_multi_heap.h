/* SPDX-License-Identifier: MIT */
/*
 * The RTOS shared multi-heap API on top of libsmh-client, so that code written against it
 * ports unchanged. One process-wide connection (to $SMH_SOCKET, else /run/smh/smhd.sock), made
 * by shared_multi_heap_pool_init(); the calls return pointers into mapped memory.
 *
 * Safe to call from several threads. After fork() the child inherits the pointers but not the
 * connection: it must not free or realloc them; it may call shared_multi_heap_pool_init() again
 * to get its own connection.
 *
 * Both generations of the RTOS API compile unchanged (docs/porting-from-rtos.md):
 * - the first: enum smh_reg_attr, and shared_multi_heap_pool_init(smh_init_reg_fn_t), whose
 *   callback is called once per region smhd serves, for information (smhd maps the regions:
 *   what the callback sets, and returns, changes nothing);
 * - the current one: enum shared_multi_heap_attr, MAX_SHARED_MULTI_HEAP_ATTR,
 *   struct shared_multi_heap_region, shared_multi_heap_pool_init(void) and
 *   shared_multi_heap_add(), which refuses (-EOPNOTSUPP): smhd's regions come from the board's
 *   device tree, not from the program.
 * In C, shared_multi_heap_pool_init is a macro that takes either form (a C++ program gets the
 * function, without the callback).
 */
#ifndef SMH_SHARED_MULTI_HEAP_H
#define SMH_SHARED_MULTI_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smh/attr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The current RTOS generation's names for the attributes. */
#define shared_multi_heap_attr     smh_reg_attr
#define MAX_SHARED_MULTI_HEAP_ATTR SMH_REG_ATTR_NUM

/* A region as the RTOS describes it: its attribute, physical address and size. */
struct shared_multi_heap_region {
	uint32_t attr; /* enum smh_reg_attr */
	uintptr_t addr;
	size_t size;
};

/* The first generation's region init callback (see above: for information only). */
typedef bool (*smh_init_reg_fn_t)(struct shared_multi_heap_region *reg, uint8_t **v_addr,
				  size_t *size);

/* Connects. Returns 0, -EALREADY the second time, or a negative errno as smh_connect(). */
int shared_multi_heap_pool_init(void);

/*
 * What shared_multi_heap_pool_init(...) calls: @fns holds a null entry and, from a program of
 * the first generation, its callback (@n is 1 or 2). Connects as above, then calls the
 * callback (if not NULL) once per region, with the region's attribute, physical address and
 * size. Returns as shared_multi_heap_pool_init(), or -EINVAL for another @n.
 */
int smh_rtos_pool_init(const smh_init_reg_fn_t *fns, size_t n);

#ifndef __cplusplus
#define shared_multi_heap_pool_init(...)                                           \
	smh_rtos_pool_init((const smh_init_reg_fn_t[]){ 0, __VA_ARGS__ },          \
			   sizeof((const smh_init_reg_fn_t[]){ 0, __VA_ARGS__ }) / \
				   sizeof(smh_init_reg_fn_t))
#endif

/*
 * The current generation's way to give the heap a region: refused with -EOPNOTSUPP (and a
 * message to the log handler), since smhd serves the regions of the board's device tree.
 */
int shared_multi_heap_add(struct shared_multi_heap_region *region, void *user_data);

/*
 * Zeroed memory of @attr, mapped; NULL on failure (errno is set as smh_alloc() returns it) or
 * before pool_init (errno ENOTCONN).
 */
void *shared_multi_heap_alloc(enum smh_reg_attr attr, size_t bytes);
void *shared_multi_heap_aligned_alloc(enum smh_reg_attr attr, size_t align, size_t bytes);

/*
 * Resizes @ptr (NULL: allocates). The contents up to min(old, new) size are kept; the
 * block may move, keeping the alignment it was allocated with. NULL on failure (errno set),
 * @ptr then still valid, with one exception: when the daemon moved the block but its new place
 * could not be mapped (mmap failed, e.g. no address space left), there is no pointer to give
 * and the block is freed. @attr must be @ptr's attribute (EINVAL otherwise).
 */
void *shared_multi_heap_realloc(enum smh_reg_attr attr, void *ptr, size_t bytes);

/* Frees @block; NULL does nothing. */
void shared_multi_heap_free(void *block);

/*
 * Physical address of @ptr, which points into a block returned above (any byte of it).
 * Returns 0 or a negative errno: -EINVAL when @ptr is not inside such a block.
 */
int smh_get_phys(const void *ptr, uint64_t *physp);

/*
 * Cache maintenance on [@addr, @addr + @size) of a block returned above: the counterparts of
 * the RTOS's sys_cache_data_flush_range() (write back, before a device reads) and
 * sys_cache_data_invd_range() (before the CPU reads what a device wrote: written back and
 * invalidated, user space cannot invalidate alone). They are smh_sync_for_device() and
 * smh_sync_for_cpu() on the block (see smh/client.h for what runs on which mapping).
 * Returns 0 or a negative errno: -EINVAL when @addr is not inside such a block, -ERANGE when
 * the range runs past its end, -EOPNOTSUPP on a cached mapping of 32-bit ARM.
 */
int smh_cache_data_flush_range(void *addr, size_t size);
int smh_cache_data_invd_range(void *addr, size_t size);

#ifdef __cplusplus
}
#endif

#endif
