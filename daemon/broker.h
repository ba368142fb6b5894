/* SPDX-License-Identifier: MIT */
/*
 * The broker: who holds which allocation. It sits between the connections and the pool and
 * knows nothing of sockets or protobuf.
 *
 * Every allocation has a handle (never reused while the daemon runs) and a list of holds; a
 * hold ties it to one client with a count (importing a buffer one already holds adds to the
 * count). The client that allocated is its owner. Export gives the allocation a random token
 * that another client imports to take a hold. The allocation goes back to the pool when its
 * last hold goes: on free, or when a client is removed (its connection closed, its process
 * died).
 *
 * Free memory is always zero: an allocation is scrubbed (through the scrub callbacks) before
 * its blocks go back to the pool, and the tail a shrinking realloc gives back is scrubbed too.
 * So allocating never has to zero, and a new allocation never shows a previous owner's bytes.
 * In smhd the scrub runs on the scrubber's thread (daemon/scrub.h): memory on its way back is
 * neither free nor held, and an allocation only it could serve waits for it (-EAGAIN).
 *
 * Restart (docs/restart.md): every client has a random session secret. A journal, when set,
 * hears of every change to an allocation or a hold at the moment it happens (before the reply
 * goes out, and before memory given back is scrubbed), so that daemon/restart/state.c can keep a
 * record a restarted daemon trusts. That daemon restores the allocations and gives their holds
 * to orphan clients, one per session, which are not connections and not counted as clients; a
 * connection resuming a session takes its holds over, and orphans left are removed like
 * clients.
 */
#ifndef DAEMON_BROKER_H
#define DAEMON_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/bufname.h"
#include "common/hmap.h"
#include "common/list.h"
#include "common/slab.h"
#include "common/treap.h"
#include "core/pool.h"

/*
 * How memory given back is scrubbed. With queue() (smhd: daemon/scrub.h), the broker hands it
 * the live block, which the scrubber frees into the pool once clean; memory given back by a
 * realloc is taken back from the pool first (pool_reserve()), so that it is never free dirty.
 * Without queue() (tests), zero() clears the memory at once and the broker frees it.
 */
/* Blocks larger than this are scrubbed in pieces of it, so that memory comes back gradually. */
#define BROKER_SCRUB_PIECE (UINT64_C(4) << 20)

struct broker_client;

/* Whose memory a block given back was: the allocation, and the last client that held it. */
struct broker_freed {
	uint64_t handle;
	const struct broker_client *client; /* NULL: none (a restore dropped it) */
};

struct broker_scrub {
	/* Sets [@addr, @addr + @len) of region @region to zero. */
	void (*zero)(void *data, uint32_t region, uint64_t addr, uint64_t len);
	void *data;
	/* Takes @blk, a live block of the pool no client holds, to zero and free it. */
	void (*queue)(void *data, const struct pool_block *blk);
	/* The backlog of region @region: bytes and blocks queued and not yet freed. */
	void (*backlog)(void *data, uint32_t region, uint64_t *bytesp, uint64_t *blocksp);
	/*
	 * Optional (smhd --debug-poison): called instead of queue() for memory an allocation gave
	 * back, told whose it was.
	 */
	void (*queue_freed)(void *data, const struct pool_block *blk,
			    const struct broker_freed *from);
	/*
	 * Optional: an allocation or a realloc is about to wait for the backlog (-EAGAIN); the
	 * scrubber must not hold memory back from it (the poison quarantine).
	 */
	void (*waiting)(void *data);
	/*
	 * Optional: the depot of empty slab chunks the broker's allocations and holds share
	 * (common/slab.h; the scrubber's); it must outlive the broker. NULL: each its own.
	 */
	struct slab_depot *depot;
	/*
	 * Optional: takes the mapped memory the broker's hash maps give back as they shrink or
	 * grow (hmap_set_unmap()), with @unmap_data; it must outlive the broker. NULL: munmap().
	 */
	void (*unmap)(void *data, void *addr, size_t len);
	void *unmap_data;
	/*
	 * Optional: faults in the new tables of the broker's hash maps off the loop
	 * (hmap_set_populate()), with @unmap_data. NULL: the loop takes the faults.
	 */
	void (*populate)(void *data, void *addr, size_t len);
};

struct broker_client {
	uint64_t id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	char comm[32];
	uint64_t session;    /* random secret; holds are recorded under it (see journal) */
	uint64_t proc_start; /* the journal's: the process's start time, 0 until read */
	bool orphan;         /* restored after a restart, no connection (in broker.orphans) */
	bool dying;          /* disconnected, its holds released in slices (in broker.dying) */
	int refused;         /* 0, or the errno its hello is refused with (daemon/policy.h) */
	uint64_t n_buffers;  /* holds, counted with their counts */
	uint64_t bytes;      /* broker_alloc_cost() of those holds, counted with their counts */
	struct list holds;   /* struct broker_hold.client_link */
	struct list link;    /* broker's clients, in id order */
};

/*
 * The most holds one client may have on one allocation (imports of the same buffer): what a
 * restarted daemon restores (daemon/restart/state.h), so a hold it would drop cannot exist.
 */
#define BROKER_HOLD_COUNT_MAX (UINT64_C(1) << 20)

/* One client's hold on one allocation: @count handles to it. broker_hold_alloc(): which. */
struct broker_hold {
	struct broker_client *client; /* NULL: an allocation's own hold, not in use */
	struct broker_hold *next;     /* the allocation's next hold */
	uint32_t count : 21;          /* at most BROKER_HOLD_COUNT_MAX */
	uint32_t inside : 1;          /* the allocation's own; else in a struct broker_hold_more */
	/* Only in the one inside: its allocation's alignment (broker_alloc_align()). */
	uint32_t align_log2p1 : 7; /* 0: none; else log2(alignment) + 1 */
	uint32_t slot;             /* the journal's record, 0 for none */
	struct list client_link;
};

/* A hold beyond the one inside the allocation, which must name it. */
struct broker_hold_more {
	struct broker_hold hold;
	struct broker_alloc *alloc;
};

/*
 * A live buffer. Most have one holder, the client that allocated it: its hold is kept inside
 * (@own), and only further holders (imports) take a struct broker_hold of their own, chained
 * from own.next. broker_first_hold() and hold->next walk them all.
 */
struct broker_alloc {
	/* In the broker's index of the allocations, in handle order; the key is the handle. */
	union {
		struct treap_node by_handle;
		struct {
			struct treap_node *by_handle_links_[3];
			uint64_t handle; /* by_handle.key */
		};
	};
	/* NULL while it is unnamed, not exported and held by one client: see below. */
	struct broker_alloc_extra *extra;
	struct pool_block blk; /* blk.tag: the journal's record, 0 for none */
	/*
	 * The hold inside; also keeps the alignment asked at allocation, which a realloc that
	 * moves keeps (own.align_log2p1: broker_alloc_align()).
	 */
	struct broker_hold own;
};

_Static_assert(BROKER_HOLD_COUNT_MAX < (UINT64_C(1) << 21), "a hold's count fits its bits");

/*
 * What most allocations do not need, kept out of line: made for a name at allocation, a first
 * export, or a second holder, and kept until the allocation goes. Without it, the owner is the
 * client of the hold inside.
 */
struct broker_alloc_extra {
	uint64_t token; /* 0 until exported */
	uint64_t owner; /* the id of the client that allocated it; 0 until a restore's first hold */
	char name[];    /* given at allocation (common/bufname.h); "" for none */
};

_Static_assert(offsetof(struct broker_alloc, handle) ==
		       offsetof(struct broker_alloc, by_handle) + offsetof(struct treap_node, key),
	       "an allocation's handle is its index key");

/* The allocation @h holds. */
static inline struct broker_alloc *broker_hold_alloc(const struct broker_hold *h)
{
	if (h->inside)
		return list_entry(h, struct broker_alloc, own);
	return list_entry(h, struct broker_hold_more, hold)->alloc;
}

/* The allocation's first hold, or NULL (none: it is being restored). */
static inline struct broker_hold *broker_first_hold(const struct broker_alloc *a)
{
	return a->own.client ? (struct broker_hold *)&a->own : a->own.next;
}

/* The alignment asked at allocation, 0 for none. */
static inline uint64_t broker_alloc_align(const struct broker_alloc *a)
{
	return a->own.align_log2p1 ? UINT64_C(1) << (a->own.align_log2p1 - 1) : 0;
}

/* Whether one client alone holds the allocation. */
static inline bool broker_alloc_held_by_one(const struct broker_alloc *a)
{
	const struct broker_hold *h = broker_first_hold(a);

	return h && !h->next;
}

/* How many clients hold the allocation (a walk of its holds). */
static inline size_t broker_alloc_n_holders(const struct broker_alloc *a)
{
	size_t n = 0;

	for (const struct broker_hold *h = broker_first_hold(a); h; h = h->next)
		n++;
	return n;
}

/* The allocation's name, "" for none. */
static inline const char *broker_alloc_name(const struct broker_alloc *a)
{
	return a->extra ? a->extra->name : "";
}

/* The allocation's export token, 0 until exported. */
static inline uint64_t broker_alloc_token(const struct broker_alloc *a)
{
	return a->extra ? a->extra->token : 0;
}

/*
 * The id of the client that allocated it (after a restart: of the orphan restored holding it,
 * then of the connection that resumed that session). 0 for none yet.
 */
static inline uint64_t broker_alloc_owner(const struct broker_alloc *a)
{
	if (a->extra)
		return a->extra->owner;
	return a->own.client ? a->own.client->id : 0;
}

/*
 * Told of every change, synchronously, in the order it happens. Any callback may be NULL.
 * Before a change that gives a client memory or a hold (alloc, import, realloc, a first
 * export), the broker asks reserve() for room for the records it will write; when there is
 * none (the state file cannot grow: its file system is full) the request fails with that
 * errno and nothing changes: memory the journal could not record is never handed out.
 */
struct broker_journal {
	int (*reserve)(void *data, unsigned n_records);         /* 0 or a negative errno */
	void (*alloc)(void *data, struct broker_alloc *a);      /* new, moved, resized, exported */
	void (*alloc_gone)(void *data, struct broker_alloc *a); /* before its memory is scrubbed */
	void (*hold)(void *data, struct broker_hold *h);        /* new, count or holder changed */
	void (*hold_gone)(void *data, struct broker_hold *h);
	void *data;
};

struct broker {
	struct pool *pool;
	struct broker_scrub scrub;
	struct hmap tokens;     /* token -> struct broker_alloc */
	struct list clients;    /* in id order */
	struct treap by_handle; /* the allocations, in handle order: found by handle here */
	struct list orphans;    /* restored sessions nobody resumed yet */
	struct list dying;      /* disconnected clients whose holds are being released */
	struct broker_journal journal;
	struct slab alloc_slab; /* struct broker_alloc, a million at a time (common/slab.h) */
	struct slab hold_slab;  /* struct broker_hold_more */
	uint64_t next_client_id;
	uint64_t next_handle;
	size_t n_clients;
	size_t n_orphans;
	uint64_t n_shared;
};

/* @pool is borrowed and must outlive the broker. */
void broker_init(struct broker *b, struct pool *pool, const struct broker_scrub *scrub);
/* Releases every client (and so every allocation). */
void broker_finish(struct broker *b);

/* A new client with the next id. Returns 0 or -ENOMEM. */
int broker_client_add(struct broker *b, pid_t pid, uid_t uid, gid_t gid, const char *comm,
		      struct broker_client **clientp);
/* Releases every hold of @client (a connection's or an orphan), then frees it. */
void broker_client_remove(struct broker *b, struct broker_client *client);

/*
 * Removes @client, a connection that closed, releasing at most @budget of its holds now; the
 * rest wait on the dying list for broker_reap(), so that a client with a million buffers does
 * not stall the loop. It stops counting as a client at once. Returns whether work is left.
 */
bool broker_client_retire(struct broker *b, struct broker_client *client, size_t budget);

/* Releases at most @budget holds of dying clients. Returns whether work is left. */
bool broker_reap(struct broker *b, size_t budget);

/*
 * The scrubbing backlog of region @region (UINT32_MAX: of all), in bytes and blocks: memory
 * neither free nor held, on its way back to the pool.
 */
void broker_scrubbing(const struct broker *b, uint32_t region, uint64_t *bytesp, uint64_t *blocksp);

/*
 * Scrubs all free memory of region @region before it is served (a restart's kept region,
 * devmem at start-up): with a queue, it is taken from the pool in pieces and queued; without,
 * zeroed at once. Returns 0 or -ENOMEM.
 */
int broker_scrub_free(struct broker *b, uint32_t region);

/*
 * Allocates for @c. Returns 0 and sets *allocp, or a negative errno as pool_alloc() (-EINVAL,
 * -ENOMEM), or the journal's reserve() (-ENOSPC: it cannot be recorded), or -EAGAIN when no
 * clean memory can hold it now but memory being scrubbed might: ask again when a scrub ends
 * (-ENOMEM once there is no backlog left to wait for).
 */
int broker_alloc(struct broker *b, struct broker_client *c, enum smh_reg_attr attr, uint64_t size,
		 uint64_t align, struct broker_alloc **allocp);

/*
 * broker_alloc() of a buffer named @name (NULL or "": none), which the journal records with
 * it. The caller checked it (bufname_valid()); a longer one is cut to BUFNAME_MAX bytes.
 */
int broker_alloc_named(struct broker *b, struct broker_client *c, enum smh_reg_attr attr,
		       uint64_t size, uint64_t align, const char *name,
		       struct broker_alloc **allocp);

/* Drops one hold of @c on @handle. Returns 0 or -EINVAL when @c holds no such buffer. */
int broker_free(struct broker *b, struct broker_client *c, uint64_t handle);

/*
 * Resizes @handle, which @c must hold, keeping its alignment when it moves. Returns 0 and sets
 * *allocp, or a negative errno: -EINVAL (not held, size 0), -EBUSY (another client holds it
 * too and maps it where it is), -ENOMEM, -EAGAIN (as broker_alloc()), or the journal's
 * reserve() (-ENOSPC).
 */
int broker_realloc(struct broker *b, struct broker_client *c, uint64_t handle, uint64_t size,
		   struct broker_alloc **allocp);

/*
 * Gives @handle a token (a new random one the first time). Returns 0 or a negative errno:
 * -EINVAL (not held), -ENOMEM, or the journal's reserve() (-ENOSPC).
 */
int broker_export(struct broker *b, struct broker_client *c, uint64_t handle, uint64_t *tokenp);

/*
 * Takes a hold on the allocation exported as @token. Returns 0 or a negative errno: -ENOENT,
 * -EMLINK (@c holds it BROKER_HOLD_COUNT_MAX times already), -ENOMEM, or the journal's
 * reserve() (-ENOSPC).
 */
int broker_import(struct broker *b, struct broker_client *c, uint64_t token,
		  struct broker_alloc **allocp);

/* Sets the journal (NULL: none). */
void broker_set_journal(struct broker *b, const struct broker_journal *journal);

/*
 * Restoring after a restart. broker_orphan_add() makes the holder of a recorded session;
 * broker_restore_alloc() takes the recorded block back from the pool (pool_reserve()) under
 * @handle, with @token (0: not exported) and no hold yet (O(1) when the handles come in
 * increasing order, as the state file gives them, O(log n) otherwise); broker_restore_hold()
 * gives @orphan @count holds on it. An allocation left without hold must be dropped with
 * broker_restore_drop(). Each returns 0 or a negative errno: -EBUSY/-EINVAL from the pool,
 * -EINVAL for an alignment the daemon could not have given (not a power of two, not the
 * address's, larger than the region), -EEXIST for a handle or token restored twice, -ENOMEM.
 */
int broker_orphan_add(struct broker *b, uint64_t session, pid_t pid, uid_t uid, uint64_t proc_start,
		      struct broker_client **orphanp);
int broker_restore_alloc(struct broker *b, uint64_t handle, const struct pool_block *blk,
			 uint64_t align, uint64_t token, struct broker_alloc **allocp);
/* broker_restore_alloc() of a buffer named @name (NULL or "": none; cut as broker_alloc_named()). */
int broker_restore_alloc_named(struct broker *b, uint64_t handle, const struct pool_block *blk,
			       uint64_t align, uint64_t token, const char *name,
			       struct broker_alloc **allocp);
int broker_restore_hold(struct broker *b, struct broker_alloc *a, struct broker_client *orphan,
			uint64_t count);
void broker_restore_drop(struct broker *b, struct broker_alloc *a);

/* The orphan whose session is @session, or NULL. */
struct broker_client *broker_find_orphan(struct broker *b, uint64_t session);

/*
 * @c takes over the holds of the orphan whose session is @session, and that session. Sets
 * *n_reclaimedp to the holds taken (with their counts). Only a connection of the uid that held
 * the session may: a session secret that leaked to another user gives it nothing.
 * Returns 0 or a negative errno (@c then keeps its own): -ENOENT when no orphan has that
 * session, -EPERM when its uid is not @c's.
 */
int broker_resume(struct broker *b, struct broker_client *c, uint64_t session,
		  uint64_t *n_reclaimedp);

/* @c's hold on @handle, or NULL. */
struct broker_hold *broker_find_hold(struct broker *b, struct broker_client *c, uint64_t handle);
/* The allocation of @handle, or NULL. */
struct broker_alloc *broker_find_alloc(struct broker *b, uint64_t handle);
/* How many allocations there are. */
static inline size_t broker_n_allocs(const struct broker *b)
{
	return b->by_handle.n;
}

/*
 * Listing in pages: the live allocation with the smallest handle above @handle, or NULL.
 * O(log n), whether @handle is live or was freed since.
 */
struct broker_alloc *broker_alloc_after(struct broker *b, uint64_t handle);

/* The live allocation after @a in handle order, or NULL. */
struct broker_alloc *broker_alloc_next(struct broker *b, const struct broker_alloc *a);

/* The allocation exported as @token, or NULL. */
struct broker_alloc *broker_find_token(struct broker *b, uint64_t token);

/* Exported, or held by more than one client. */
bool broker_alloc_shared(const struct broker_alloc *a);

/*
 * What holding @a costs in bytes (quotas, `smhctl clients`): its size, or its alignment when
 * larger. The buddy allocator meets an alignment by splitting a free block of that size, so a
 * small buffer aligned to A fragments the region as a buffer of A bytes would; charged only
 * its size, a quota of Q bytes could cut Q / 64 blocks of any size.
 */
uint64_t broker_alloc_cost(const struct broker_alloc *a);

/* broker_alloc_cost() of a buffer of @size bytes (granule-rounded) aligned to @align. */
uint64_t broker_cost(uint64_t size, uint64_t align);

/*
 * Why an allocation of @size bytes aligned to @align found no room in @attr's regions, as one
 * sentence into @buf: each region's free bytes and largest free run, and the clients holding
 * the most (command, pid, bytes). O(regions + clients): for a refusal, not the request path.
 */
void broker_explain_nomem(const struct broker *b, enum smh_reg_attr attr, uint64_t size,
			  uint64_t align, char *buf, size_t buf_size);

#endif
