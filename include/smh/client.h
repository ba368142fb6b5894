/* SPDX-License-Identifier: MIT */
/*
 * libsmh-client: buffers from the shared multi-heap daemon (smhd).
 *
 * A client is one connection to smhd. Every buffer it allocates or imports belongs to that
 * connection and is released when it is freed, when the client disconnects, or when the
 * process dies. A buffer reaches the client as an fd plus an offset: `buf->fd` is the fd of the
 * buffer's region (one per region and connection, owned by the client) and `buf->offset` is
 * where the buffer starts in it. smh_map() maps each region once per connection and points
 * into that mapping, so mapping a buffer costs no system call after the first buffer of a
 * region.
 *
 * Threads: every call on one client may be made from several threads at once; requests are
 * serialised on the connection (one round trip at a time). A struct smh_buffer is plain data
 * owned by the caller: do not free one buffer from two threads at once.
 *
 * fork(): a child must not use its parent's client (the connection and its buffers are the
 * parent's). Calls on it from the child fail with -ECHILD; the child calls smh_connect() anew,
 * and may still read and write, through the parent's mappings it inherited, the buffers the
 * parent holds.
 *
 * Trust: the fd of a region lets its holder map the whole region (with the devmem backend, the
 * memory device itself), not only its own buffers. Clients of one daemon are trusted not to
 * touch memory they do not hold; the socket's permissions are the boundary.
 *
 * The library prints nothing. smh_set_log_handler() receives its diagnostics.
 *
 * Daemon restarts: a call that finds smhd gone reconnects to the same socket (for up to
 * $SMH_RECONNECT_MS milliseconds, default 5000) and takes its buffers back; they keep their
 * fd, offset and address. If the restarted daemon does not give all of them back, every call
 * on the client returns -ESTALE from then on: stop using its mappings and connect anew. A
 * reconnection reaches only a daemon of the uid the first connection found, or root (see
 * smh_connect()): another user's process at the path makes the call return -EPERM without
 * being sent anything, and the next call tries again.
 *
 * Time-outs: a call waits for smhd at most $SMH_TIMEOUT_MS milliseconds (default 5000; see
 * smh_set_timeout()), then returns -ETIMEDOUT and the client is dead: disconnect it.
 *
 * Every function returning int returns 0 or a negative errno (Linux numbering); the daemon's
 * refusals come back as the errno it sent (smh_last_error() gives its message).
 */
#ifndef SMH_CLIENT_H
#define SMH_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smh/attr.h"

/*
 * A buffer's offset in its fd is 64-bit (a devmem region's offset is its physical address, above
 * 4 GiB on 32-bit ARM with LPAE), and a program that mmap()s buf->fd itself passes it as an
 * off_t: on 32-bit systems build with -D_FILE_OFFSET_BITS=64, which `pkg-config --cflags
 * libsmh-client` gives. Without it the build stops here rather than the mapping truncating.
 */
#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(off_t) == 8, "libsmh-client needs a 64-bit off_t: -D_FILE_OFFSET_BITS=64");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(off_t) == 8, "libsmh-client needs a 64-bit off_t: -D_FILE_OFFSET_BITS=64");
#else
/* Older C and C++: an array of negative size when off_t is 32-bit. */
typedef char smh_needs_64_bit_off_t[sizeof(off_t) == 8 ? 1 : -1];
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define SMH_REGION_LABEL_MAX 32

/* The longest buffer name, in bytes, without the terminating NUL (see smh_alloc_named()). */
#define SMH_NAME_MAX 63

struct smh_client;

struct smh_buffer {
	uint64_t handle;    /* the daemon's id for the allocation */
	int fd;             /* mmap this fd ... */
	uint64_t offset;    /* ... at this offset: where the buffer starts in fd */
	uint64_t size;      /* usable bytes, >= requested */
	uint64_t phys_addr; /* physical address of the first byte */
	enum smh_reg_attr attr;
	char region[SMH_REGION_LABEL_MAX]; /* label of the region it came from */
	void *addr;                        /* set by smh_map(), NULL before */
};

/*
 * Connects to smhd at @socket_path (NULL: $SMH_SOCKET, else /run/smh/smhd.sock) and exchanges
 * the hello. Sets *clientp: to the new client, or to NULL on failure (so that
 * smh_disconnect(*clientp) is always safe).
 * Before sending anything, the library checks the uid of the process listening (SO_PEERCRED):
 * root, or $SMH_SERVER_UID (a decimal uid) when set; unset, the first connection accepts the
 * uid it finds. Reconnections accept only that uid or root, so another user's process bound
 * at the path after smhd stopped receives nothing.
 * Returns 0 or a negative errno: -ENOENT/-ECONNREFUSED when no daemon listens there, -EACCES
 * when the socket's permissions refuse us, -EPERM when the process listening runs as another
 * uid, -EINVAL when $SMH_SERVER_UID is not a uid, -ETIMEDOUT when the daemon does not answer
 * in time, -EPROTONOSUPPORT when the daemon speaks another protocol version, -ENOMEM.
 */
int smh_connect(const char *socket_path, struct smh_client **clientp);

/*
 * Closes the connection: the daemon releases every buffer it still holds. Region fds and
 * mappings the library made are closed and unmapped. smh_disconnect(NULL) does nothing.
 */
void smh_disconnect(struct smh_client *client);

/*
 * Allocates @size bytes with attribute @attr aligned to @align (a power of two, 0 for none),
 * from the first region of that attribute (device-tree order) that can hold it. The memory is
 * zeroed. Fills @buf (buf->addr is NULL).
 * Returns 0 or a negative errno: -EINVAL (size 0, attribute out of range, bad alignment),
 * -ENOMEM (nothing fits), -EPIPE/-ECONNRESET (the daemon went away), -EOVERFLOW (@size is more
 * than PTRDIFF_MAX, more than this process could map: 2 GiB on 32-bit systems; refused without
 * asking the daemon, smh_last_error() says why).
 */
int smh_alloc(struct smh_client *client, enum smh_reg_attr attr, size_t size, size_t align,
	      struct smh_buffer *buf);

/*
 * smh_alloc() of a buffer named @name, for people: `smhctl allocs` shows it, an importer gets
 * it (smh_import_named()), smhd's log mentions it, and it survives a restart of smhd. A name
 * is 1 to SMH_NAME_MAX bytes of printable ASCII (0x20 to 0x7e), e.g. "camera0/frame3"; it
 * need not be unique. NULL or "" is no name (smh_alloc()).
 * Returns 0 or a negative errno: as smh_alloc(), and -EINVAL for a name too long or with a
 * byte outside printable ASCII (smh_last_error() says which; nothing is sent to smhd).
 */
int smh_alloc_named(struct smh_client *client, enum smh_reg_attr attr, size_t size, size_t align,
		    const char *name, struct smh_buffer *buf);

/*
 * Resizes @buf to @size bytes, in place when possible, else the daemon moves the contents to a
 * new block of the same attribute (then buf->offset, buf->phys_addr and maybe buf->fd and
 * buf->region change; buf->addr follows if the buffer was mapped). Bytes past the old size are
 * zero. On failure @buf is unchanged, with one exception: when @buf was mapped and the daemon
 * resized it but its new region cannot be mapped, @buf describes the resized buffer with
 * buf->addr NULL and mmap's errno is returned.
 * The alignment asked at allocation is kept when the buffer moves.
 * Returns 0 or a negative errno: -EINVAL (size 0, @buf not held), -EBUSY (another client holds
 * the buffer too: it maps it where it is), -ENOMEM, -EOVERFLOW (as smh_alloc()).
 */
int smh_realloc(struct smh_client *client, struct smh_buffer *buf, size_t size);

/*
 * Releases @buf (for a shared buffer, this client's hold on it). Clears buf->addr and sets
 * buf->fd to -1. Returns 0 or a negative errno: -EINVAL when this client does not hold it.
 */
int smh_free(struct smh_client *client, struct smh_buffer *buf);

/*
 * Sets buf->addr to the buffer's bytes, inside the mapping of its region (made at the first
 * smh_map() of a buffer of that region, kept until disconnect). Read and write it directly;
 * where the memory is Device memory (smh_buffer_mapping(): SMH_MAPPING_DEVICE, e.g. no-map
 * devmem regions on arm64), use only aligned accesses, no memcpy()/memset():
 * smh_buffer_write(), smh_buffer_read() and smh_buffer_fill() do that.
 * Returns 0 or a negative errno: -EINVAL (buf->fd is not a region fd of a live client),
 * -EOVERFLOW (the region's mapping is more than PTRDIFF_MAX bytes, more than this process can
 * map: a 32-bit process and a region of 2 GiB or more), mmap's errno.
 */
int smh_map(struct smh_buffer *buf);

/* Clears buf->addr (the region mapping stays for other buffers). Returns 0 or -EINVAL. */
int smh_unmap(struct smh_buffer *buf);

/*
 * The memory type of a region's mapping, as smhd determined it from the kernel's rule (the
 * architecture, whether the range is in the kernel's linear map, the open mode, and on x86 the
 * PAT list): `smhctl regions` shows it, with the reason, in MAPPING. Append only, never
 * renumber (these are the protocol's values).
 */
enum smh_mapping {
	SMH_MAPPING_UNKNOWN = 0,       /* not determined (or a daemon too old to say) */
	SMH_MAPPING_CACHED = 1,        /* Normal memory, cached write-back (memfd regions too) */
	SMH_MAPPING_WRITE_COMBINE = 2, /* Normal memory, not cacheable: write-combine */
	SMH_MAPPING_UNCACHED = 3,      /* x86 uncached (UC, UC-): any access width works */
	SMH_MAPPING_DEVICE = 4,        /* arm Device memory: aligned accesses only, no memcpy */
};

/*
 * The memory type of the region @buf lies in (it need not be mapped yet); SMH_MAPPING_UNKNOWN
 * when @buf is NULL or its fd is not a region fd of a live client.
 */
enum smh_mapping smh_buffer_mapping(const struct smh_buffer *buf);

/*
 * Safe access to a mapped buffer whatever memory type backs it. Where the mapping is Normal
 * memory (SMH_MAPPING_CACHED or SMH_MAPPING_WRITE_COMBINE) they are libc's memcpy()/memset().
 * Elsewhere (Device memory, uncached, unknown) they use naturally aligned 64-bit accesses, and
 * single bytes at the unaligned ends of the range: on arm64 Device memory an unaligned access
 * faults, and so do memcpy()/memset() there.
 *
 * smh_buffer_write() copies @len bytes from @src (ordinary memory) to the buffer at @offset;
 * smh_buffer_read() copies @len bytes of the buffer at @offset to @dst; smh_buffer_fill() sets
 * @len bytes at @offset to @value. @len 0 does nothing (after the checks).
 * Returns 0 or a negative errno: -EINVAL when @buf is NULL or not mapped (smh_map()), or
 * @src/@dst is NULL with @len > 0; -ERANGE when [@offset, @offset + @len) does not lie inside
 * the buffer's buf->size bytes (nothing is then touched).
 */
int smh_buffer_write(const struct smh_buffer *buf, uint64_t offset, const void *src, size_t len);
int smh_buffer_read(const struct smh_buffer *buf, uint64_t offset, void *dst, size_t len);
int smh_buffer_fill(const struct smh_buffer *buf, uint64_t offset, uint8_t value, size_t len);

/*
 * Cache maintenance around DMA by a device that does not snoop the CPU's caches, on the bytes
 * [@offset, @offset + @len) of a mapped buffer:
 * - smh_sync_for_device(): after the CPU wrote, before the device reads: writes the data cache
 *   lines covering the range back to memory (clean);
 * - smh_sync_for_cpu(): after the device wrote, before the CPU reads: writes back and
 *   invalidates those lines (clean and invalidate: user space cannot invalidate alone), so
 *   the CPU reads memory, not stale lines. Do not write the range between the device's write
 *   and this call: that data would be written over the device's.
 * Whole lines are maintained, so bytes next to the range (in the same lines) are cleaned too.
 * On a cached mapping (or one of unknown type): arm64 runs DC CVAC / DC CIVAC per line (line
 * size from CTR_EL0) and DSB SY; x86-64 runs CLFLUSHOPT (or CLFLUSH) per line and a fence,
 * although DMA is normally cache-coherent there and needs nothing. On a write-combine,
 * uncached or Device mapping only a barrier is needed, and run. @len 0 runs the barrier.
 * Returns 0 or a negative errno: -EINVAL when @buf is NULL or not mapped; -ERANGE when the
 * range does not lie inside the buffer (@offset + @len overflowing too); -EOPNOTSUPP on a
 * cached mapping where user space cannot maintain the cache (32-bit ARM: serve such memory
 * `no-map`, i.e. uncached, there).
 */
int smh_sync_for_device(const struct smh_buffer *buf, uint64_t offset, size_t len);
int smh_sync_for_cpu(const struct smh_buffer *buf, uint64_t offset, size_t len);

/*
 * Makes @buf importable by other connections: sets *tokenp to an unguessable token (the same
 * for every export of one buffer). The buffer stays until its last holder releases it.
 * Returns 0 or a negative errno: -EINVAL when this client does not hold @buf.
 */
int smh_export(struct smh_client *client, const struct smh_buffer *buf, uint64_t *tokenp);

/*
 * Takes a hold on the buffer exported as @token and fills @buf as smh_alloc() does. Importing
 * a buffer already held adds a hold (free it as many times).
 * Returns 0 or a negative errno: -ENOENT when no live buffer has that token.
 */
int smh_import(struct smh_client *client, uint64_t token, struct smh_buffer *buf);

/*
 * smh_import() that also copies the buffer's name (see smh_alloc_named()) into @name, which
 * has room for SMH_NAME_MAX + 1 bytes ("" for an unnamed buffer), if @name is not NULL.
 * Returns 0 or a negative errno, as smh_import().
 */
int smh_import_named(struct smh_client *client, uint64_t token, struct smh_buffer *buf, char *name);

/*
 * Bounds every later call on @client to @timeout_ms milliseconds of waiting for smhd (0: wait
 * forever); the default, set at smh_connect(), is $SMH_TIMEOUT_MS, else 5000. A call that
 * runs out of time returns -ETIMEDOUT, and the client is dead from then on: every call
 * returns -ETIMEDOUT (a late reply could otherwise answer the wrong request). Its buffers stay
 * held and mapped until smh_disconnect(); connect anew to go on.
 * Returns 0 or a negative errno: -EINVAL (@client NULL, @timeout_ms negative), -ECHILD.
 */
int smh_set_timeout(struct smh_client *client, int timeout_ms);

/*
 * A description of @err (a negative errno from this library; the sign is ignored). Never NULL.
 * Where the C library's text would mislead, it says what the code means here: -ENOENT "no live
 * buffer has this token ..., or no socket is at the path" (smh_import(), smh_connect()),
 * -ECHILD "this client belongs to the parent process (after fork)", and likewise -ESTALE,
 * -EPROTO, -ETIMEDOUT, -EDQUOT, -EMLINK, -ENOSPC, -EPERM, -EACCES (both also smh_map()'s
 * when the kernel refuses the mapping), -EMFILE, -ECONNREFUSED, -EPIPE, -ECONNRESET, -EBUSY.
 * Other codes get the C library's text.
 */
const char *smh_strerror(int err);

/*
 * The daemon's message for the last refusal on @client in this thread, or "" when there is
 * none. Every call that asks smhd clears it first, so it is "" after a success and after a
 * failure smhd did not send (-ECHILD, -ETIMEDOUT, a lost connection). Valid until the next
 * call on @client from this thread. (One message per thread: a refusal on another client
 * from the same thread replaces it, and this then returns "".)
 */
const char *smh_last_error(struct smh_client *client);

/* Diagnostics: level 0 error, 1 warning, 2 info, 3 debug. NULL restores silence. */
enum smh_log_level { SMH_LOG_ERROR, SMH_LOG_WARNING, SMH_LOG_INFO, SMH_LOG_DEBUG };
void smh_set_log_handler(void (*handler)(enum smh_log_level level, const char *msg, void *data),
			 void *data);

/* ---------------------------------------------------------------- inspection (smhctl) */

struct smh_region_info {
	uint32_t index;
	char label[SMH_REGION_LABEL_MAX];
	uint64_t phys_addr;
	uint64_t size;    /* bytes in the device tree */
	uint64_t managed; /* bytes the allocator manages (whole granules) */
	enum smh_reg_attr attr;
	int no_map;       /* the node has no-map */
	char backend[16]; /* "memfd" or "devmem" */
	char mapping[64]; /* the memory type obtained and why, for people */
	/*
	 * Appended: the same for programs. Fields are only ever appended; smh_get_regions()
	 * allocates the array, but a program indexes it with the sizeof() it was built with, so
	 * one built against an older header must be rebuilt with this one.
	 */
	enum smh_mapping mapping_kind;
};

struct smh_region_stats {
	uint32_t region;
	uint64_t total, used, free, largest_free, n_allocs;
	unsigned fragmentation; /* per mille */
};

struct smh_stats {
	uint64_t granule;
	uint32_t n_clients;
	uint64_t n_allocs;
	uint64_t n_shared;
	size_t n_regions;
	struct smh_region_stats *regions; /* n_regions entries */
};

struct smh_client_info {
	uint64_t id;
	int32_t pid;
	uint32_t uid, gid;
	char comm[32];
	uint64_t n_buffers;
	uint64_t bytes;
};

struct smh_alloc_info {
	uint64_t handle;
	uint32_t region;
	uint64_t offset, size, phys_addr;
	uint64_t owner; /* client id of the allocating connection */
	int shared;
	size_t n_holders;
	uint64_t *holders; /* client ids */
	/*
	 * Appended: the name given at allocation, "" for none (smh_alloc_named()). As for
	 * struct smh_region_info, a program indexing the array smh_list_allocs() returns must be
	 * built with this header.
	 */
	char name[SMH_NAME_MAX + 1];
};

/* This connection's client id, as smh_list_clients() and smh_list_allocs() name it. */
uint64_t smh_client_id(const struct smh_client *client);

/* The daemon's granule (smallest block). */
uint64_t smh_granule(const struct smh_client *client);

/* The regions; free *regionsp with free(). Returns 0 or a negative errno. */
int smh_get_regions(struct smh_client *client, struct smh_region_info **regionsp, size_t *np);

/* Statistics; release with smh_stats_finish(). Returns 0 or a negative errno. */
int smh_get_stats(struct smh_client *client, struct smh_stats *stats);
void smh_stats_finish(struct smh_stats *stats);

/*
 * The daemon's scrub backlog over all regions: bytes and blocks given back that are being
 * zeroed, neither free nor in use until they are clean (a daemon without a scrubber reports
 * 0). Returns 0 or a negative errno.
 */
int smh_get_scrubbing(struct smh_client *client, uint64_t *bytesp, uint64_t *blocksp);

/* The bounds smh_get_waits() counts over: 1, 5, 20, 100 and 1000 ms. */
#define SMH_WAIT_BOUNDS 5

/*
 * How long requests waited in smhd since it started: from the moment a request entered its
 * socket (the kernel's timestamp) to the moment its reply was written. It is the time a client
 * lost to smhd (its loop busy with others' work, memory being scrubbed, smhd off the CPU), not
 * the time the client waited for a CPU itself.
 */
struct smh_waits {
	uint64_t requests;   /* answered with an arrival time */
	uint64_t longest_us; /* the longest wait */
	uint64_t
		over[SMH_WAIT_BOUNDS]; /* requests that waited longer than 1, 5, 20, 100, 1000 ms */
};

/*
 * Fills @waits. Returns 0 or a negative errno: -EINVAL (@waits NULL), -EOPNOTSUPP from a
 * daemon older than the counts (@waits is zeroed on any error).
 */
int smh_get_waits(struct smh_client *client, struct smh_waits *waits);

/* What smh_get_poison() keeps of the latest reports. */
#define SMH_POISON_LAST 8

/* A block written after it was freed (smhd --debug-poison, docs/allocator.md). */
struct smh_poison_report {
	uint32_t region;
	uint64_t offset;  /* the block's offset in the region's fd */
	uint64_t size;    /* the block's bytes */
	uint64_t first;   /* offset in the block of the first byte changed */
	uint64_t changed; /* bytes changed */
	uint64_t handle;  /* the allocation the block belonged to */
	int32_t pid;      /* the last client that held it */
	char comm[32];    /* its command name */
};

struct smh_poison_info {
	int enabled;               /* smhd runs with --debug-poison */
	uint64_t n_reports;        /* blocks found written after free since smhd started */
	uint64_t quarantine_bytes; /* freed blocks holding the pattern, not checked yet */
	size_t n_last;
	struct smh_poison_report last[SMH_POISON_LAST]; /* the latest, oldest first */
};

/*
 * smhd's use-after-free findings into @info. Returns 0 or a negative errno: -EOPNOTSUPP from a
 * daemon older than the request.
 */
int smh_get_poison(struct smh_client *client, struct smh_poison_info *info);

/* Requests smhd refused since it started, of one kind (see smh_get_refusals()). */
struct smh_refusal_count {
	char kind[32]; /* "nomem", "quota", "permission", "max_clients", "invalid", ... */
	uint64_t count;
};

/*
 * The daemon's refusals by kind, every kind it counts (zeros too), in its order; free
 * *countsp with free(). docs/metrics.md lists the kinds; a daemon may add more, and one from
 * before the counts gives none (*np 0).
 * Returns 0 or a negative errno: -EINVAL (@countsp or @np NULL), -ENOMEM, -EPROTO (a kind that
 * is not lower-case letters and '_', or more than 64 kinds), and those of any call to smhd.
 */
int smh_get_refusals(struct smh_client *client, struct smh_refusal_count **countsp, size_t *np);

/* Every connected client; free *clientsp with free(). Returns 0 or a negative errno. */
int smh_list_clients(struct smh_client *client, struct smh_client_info **clientsp, size_t *np);

/* Every live allocation; release with smh_allocs_free(). Returns 0 or a negative errno. */
int smh_list_allocs(struct smh_client *client, struct smh_alloc_info **allocsp, size_t *np);
void smh_allocs_free(struct smh_alloc_info *allocs, size_t n);

/*
 * Occupancy of region @region cut into @n_cells equal cells (1..4096): fills @permille with
 * each cell's per mille in use and *cell_bytesp with the bytes per cell.
 * Returns 0 or a negative errno: -EINVAL for a bad region or cell count.
 */
int smh_get_occupancy(struct smh_client *client, uint32_t region, uint32_t n_cells,
		      uint16_t *permille, uint64_t *cell_bytesp);

/*
 * Events: what smhd does, as it happens (`smhctl events`). smh_events_subscribe() turns the
 * connection into a subscription: from then on it only receives events (every other call on
 * it returns -EBUSY; a daemon restart ends it). Only root and smhd's own uid may subscribe,
 * since the events name every client's buffers: others get -EPERM; past smhd's
 * --max-subscribers, -EMFILE. smhd never waits for a subscriber: what its queue has no room
 * for is dropped, and the subscriber, once it has read the rest, gets one SMH_EVENT_LOST
 * saying how many.
 */
enum smh_event_kind {
	SMH_EVENT_CONNECT = 1, /* a client said hello */
	SMH_EVENT_DISCONNECT,  /* a client left holding nothing */
	SMH_EVENT_DEATH,       /* a client left (died, hung up, was dropped) holding buffers */
	SMH_EVENT_ALLOC,
	SMH_EVENT_FREE, /* one hold dropped; `released`: the memory went back */
	SMH_EVENT_REALLOC,
	SMH_EVENT_EXPORT,
	SMH_EVENT_IMPORT,
	SMH_EVENT_LOST, /* `lost` events were dropped: the subscriber did not read in time */
};

struct smh_event {
	enum smh_event_kind kind; /* a kind this library does not know is passed on as is */
	uint64_t time_us;         /* CLOCK_REALTIME, microseconds */
	uint64_t client;          /* the client id (smh_list_clients()) */
	int32_t pid;
	uint32_t uid;
	char comm[32];             /* the client's command, as the daemon read it */
	uint64_t handle;           /* buffer events */
	uint32_t region;           /* buffer events */
	uint64_t size, phys_addr;  /* buffer events */
	uint64_t n_buffers, bytes; /* DEATH: holds released, and their bytes */
	int released;              /* FREE: the last hold, the memory went back */
	uint64_t lost;             /* LOST: events dropped */
	char why[64];              /* DEATH: why smhd dropped the client, "" for a hang-up */
};

/* Subscribes @client to events (see above). Returns 0 or a negative errno. */
int smh_events_subscribe(struct smh_client *client);

/*
 * Waits up to @timeout_ms (-1: for ever, 0: not at all) for the next event of a subscribed
 * @client and fills @ev. Returns 0, -EAGAIN when none came in time (or a signal interrupted
 * the wait), -EINVAL when @client did not subscribe, or the error that ended the connection
 * (-ECONNRESET: smhd went away, -EPROTO).
 */
int smh_events_next(struct smh_client *client, struct smh_event *ev, int timeout_ms);

/* The fd to poll() for POLLIN before smh_events_next(), or -EINVAL. */
int smh_events_fd(struct smh_client *client);

/* "alloc", "free", ..., "lost"; "unknown" for a kind this library does not know. */
const char *smh_event_kind_name(enum smh_event_kind kind);

#ifdef __cplusplus
}
#endif

#endif
