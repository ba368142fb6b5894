/* SPDX-License-Identifier: MIT */
/*
 * The RTOS shared multi-heap API on top of libsmh-client, so that code written against it
 * ports unchanged. One process-wide connection (to $SMH_SOCKET, else /run/smh/smhd.sock), made
 * by shared_multi_heap_pool_init(); the calls return pointers into mapped memory.
 *
 * Safe to call from several threads. After fork() the child inherits the pointers but not the
 * connection: it must not free or realloc them; it may call shared_multi_heap_pool_init() again
 * to get its own connection.
 */
#ifndef SMH_SHARED_MULTI_HEAP_H
#define SMH_SHARED_MULTI_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "smh/attr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Connects. Returns 0, -EALREADY the second time, or a negative errno as smh_connect(). */
int shared_multi_heap_pool_init(void);

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

#ifdef __cplusplus
}
#endif

#endif
