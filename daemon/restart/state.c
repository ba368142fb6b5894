/* SPDX-License-Identifier: MIT */
/*
 * The state file (see state.h).
 *
 * Slots are numbered from 1 (0 means "no record" in the broker's structures). Slots never used
 * are taken in order (`next_fresh`); freed ones are taken first, last freed first, from a list
 * threaded through the free records themselves (each one's `seq` names the next): no memory of
 * the daemon's grows with the records, and a free touches only the record it frees. The file
 * grows (ftruncate + fallocate): the only system calls after start, and rare. Growing costs
 * what it adds, never what the file holds: the new part is at most GROW_MAX, and the file is
 * mapped from the start for all it may grow to (pages past its end are never touched), so the
 * mapping never moves. Doubling the file, moving its mapping and pushing every new slot on the
 * stack took 20-30 ms inside one allocation once a client held a million buffers (two million
 * records). Where that much address space is not to be had (32 bits: a part of it is mapped),
 * the mapping moves with mremap() past it, as before. The previous daemon's file is read whole
 * at start, checked record by record, reduced to the latest version of each record, and kept in
 * memory for daemon/restart/recover.c; the new daemon writes a fresh file beside it
 * (smhd.state.new) while it restores, and renames it over the old one once the restore is
 * done, so a crash during the restore leaves the old file to the next try.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bufname.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/proc.h"
#include "daemon/restart/state.h"

#define STATE_MAGIC   "smhstat1"
#define STATE_VERSION 3 /* 2: holds record their holder's uid; 3: allocations their name */
#define INITIAL_SLOTS 256
/* The most one growth adds to the file. */
#define GROW_MAX (UINT64_C(4) << 20)
/* The file's mapping: all it may grow to, or a part on 32 bits. */
#define RESERVE_64 ((size_t)STATE_FILE_MAX)
#define RESERVE_32 ((size_t)256 << 20)
/* The most slots: what fits in STATE_FILE_MAX in whole pages (the next smhd reads it back). */
#define MAX_SLOTS \
	(((uint64_t)STATE_FILE_MAX - sizeof(struct state_header)) / sizeof(struct state_record))

struct state_header {
	char magic[8];
	uint32_t version;
	uint32_t record_size;
	uint64_t fingerprint;
	uint64_t next_handle; /* raised at every allocation */
	uint64_t reserved[4];
};

struct state {
	char *dir;
	char path[4096], new_path[4096], lock_path[4096];
	int lock_fd;
	int fd;
	struct state_header *header; /* the mapping: header, then the records */
	size_t map_len;              /* the file's length: whole pages */
	size_t reserved;             /* mapped from header on: map_len and more */
	struct state_record *records;
	uint32_t n_slots;
	uint32_t next_fresh; /* slots from here to n_slots were never used */
	uint32_t free_head;  /* the last slot freed, 0 for none; its record's seq: the next */
	uint32_t n_free;
	uint64_t seq;
	bool failed; /* growing failed: logged, not again until it works */
};

/* A record of version 2 (main's before names), read to upgrade without loss. */
struct state_record_v2 {
	uint32_t kind, region;
	uint64_t handle, addr, size, align, token, session, count, proc_start;
	int32_t pid;
	uint32_t uid;
	uint64_t seq, check;
};

_Static_assert(sizeof(struct state_record_v2) == 96, "version 2 records are 96 bytes");
_Static_assert(sizeof(struct state_record) == 160, "version 3 records are 160 bytes");

uint64_t state_record_check(const struct state_record *r)
{
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, r, offsetof(struct state_record, check));

	return h ? h : 1;
}

static bool v2_valid(const struct state_record_v2 *r)
{
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, r, offsetof(struct state_record_v2, check));

	return r->check != 0 && r->check == (h ? h : 1);
}

/* Record @i of a file of @version into @rec (upgraded to the current layout). Valid or not. */
static bool read_record(const unsigned char *recs, uint32_t version, size_t i,
			struct state_record *rec)
{
	struct state_record_v2 v2;

	if (version == STATE_VERSION) {
		memcpy(rec, recs + i * sizeof(*rec), sizeof(*rec));
		return rec->check != 0 && rec->check == state_record_check(rec);
	}
	memcpy(&v2, recs + i * sizeof(v2), sizeof(v2));
	if (!v2_valid(&v2))
		return false;
	*rec = (struct state_record){
		.kind = v2.kind,
		.region = v2.region,
		.handle = v2.handle,
		.addr = v2.addr,
		.size = v2.size,
		.align = v2.align,
		.token = v2.token,
		.session = v2.session,
		.count = v2.count,
		.proc_start = v2.proc_start,
		.pid = v2.pid,
		.uid = v2.uid,
		.seq = v2.seq,
	};
	rec->check = state_record_check(rec);
	return true;
}

/*
 * A name the check vouches for is still anyone's bytes: one that is not terminated inside its
 * field, or not a name smhd would have accepted, is dropped (the buffer is kept, unnamed).
 */
static void check_name(struct state_record *rec)
{
	size_t len = strnlen(rec->name, sizeof(rec->name));

	if (len < sizeof(rec->name) && (rec->kind != STATE_HOLD || len == 0) &&
	    bufname_valid(rec->name, len, NULL, 0))
		return;
	log_warning("Buffer %llu: the state file gives it a name smhd does not accept; restored "
		    "without it",
		    (unsigned long long)rec->handle);
	memset(rec->name, 0, sizeof(rec->name));
	rec->check = state_record_check(rec);
}

/* ---------------------------------------------------------------- reading the old file */

static bool same_key(const struct state_record *a, const struct state_record *b)
{
	return a->kind == b->kind && a->handle == b->handle &&
	       (a->kind != STATE_HOLD || a->session == b->session);
}

static int by_key(const void *x, const void *y)
{
	const struct state_record *a = x, *b = y;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->handle != b->handle)
		return a->handle < b->handle ? -1 : 1;
	if (a->kind == STATE_HOLD && a->session != b->session)
		return a->session < b->session ? -1 : 1;
	return a->seq < b->seq ? 1 : a->seq > b->seq ? -1 : 0; /* newest first */
}

/* Keeps the valid records of @buf, newest version of each. Returns 0 or -ENOMEM. */
static int parse_records(const unsigned char *buf, size_t len, struct state_old *old)
{
	const struct state_header *h = (const void *)buf;
	size_t n = (len - sizeof(*h)) / h->record_size, kept = 0;
	struct state_record *r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct state_record rec;

		if (!read_record(buf + sizeof(*h), h->version, i, &rec))
			continue;
		/* A valid check does not make the numbers sane: the file may be anyone's bytes. */
		if (rec.handle == 0 || rec.handle >= STATE_HANDLE_MAX ||
		    (rec.kind == STATE_HOLD && (rec.count == 0 || rec.count > STATE_COUNT_MAX)))
			continue;
		if (rec.kind != STATE_ALLOC && rec.kind != STATE_HOLD)
			continue;
		check_name(&rec);
		r[kept++] = rec;
	}
	qsort(r, kept, sizeof(*r), by_key);
	n = 0;
	for (size_t i = 0; i < kept; i++)
		if (n == 0 || !same_key(&r[n - 1], &r[i]))
			r[n++] = r[i];
	old->records = r;
	old->n_records = n;
	/* Bounded like the records' handles: UINT64_MAX would wrap every later handle to 0. */
	old->next_handle = h->next_handle < STATE_HANDLE_MAX ? h->next_handle : 0;
	return 0;
}

static int read_all(int fd, unsigned char **bufp, size_t *lenp)
{
	struct stat st;
	unsigned char *buf;
	size_t done = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < 0 || st.st_size > STATE_FILE_MAX)
		return -EINVAL; /* a FIFO would block the start; a huge file is not ours */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	*bufp = buf;
	*lenp = done;
	return 0;
}

/* Sets a file of another configuration or format aside, and says so. */
static void set_aside(const struct state *s, const char *why)
{
	char aside[4200];

	snprintf(aside, sizeof(aside), "%s.old", s->path);
	log_warning("%s %s: renamed to %s; starting with nothing to recover", s->path, why, aside);
	if (rename(s->path, aside) < 0)
		log_warning("Could not rename %s: %s", s->path, strerror(errno));
}

static int read_old(struct state *s, uint64_t fingerprint, struct state_old *old)
{
	const struct state_header *h;
	unsigned char *buf = NULL;
	size_t len = 0;
	/* O_NONBLOCK: opening a FIFO would wait for a writer; read_all() refuses what is not a file. */
	int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	int ret;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = read_all(fd, &buf, &len);
	close(fd);
	if (ret < 0)
		return ret;
	h = (const void *)buf;
	if (len < sizeof(*h) || memcmp(h->magic, STATE_MAGIC, 8) != 0 ||
	    !((h->version == STATE_VERSION && h->record_size == sizeof(struct state_record)) ||
	      (h->version == 2 && h->record_size == sizeof(struct state_record_v2))))
		set_aside(s, "is not a state file of this smhd");
	else if (h->fingerprint != fingerprint)
		set_aside(s, "describes another configuration (backend, granule or regions)");
	else {
		old->found = true;
		ret = parse_records(buf, len, old);
	}
	free(buf);
	return ret;
}

void state_old_finish(struct state_old *old)
{
	free(old->records);
	*old = (struct state_old){ 0 };
}

/* ---------------------------------------------------------------- the new file */

/*
 * Maps the file for all it may grow to (RESERVE_64; RESERVE_32 on 32 bits), or just its @len
 * bytes when that much address space is not to be had: pages past the end of the file are
 * never touched, and become usable as ftruncate() extends it.
 */
static int map_first(struct state *s, size_t len)
{
	size_t want = sizeof(void *) >= 8 ? RESERVE_64 : RESERVE_32;
	void *map = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);

	if (map == MAP_FAILED) {
		want = len;
		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
		if (map == MAP_FAILED)
			return -errno;
	}
	s->header = map;
	s->reserved = want;
	return 0;
}

/* The file grew to @len: within the mapping, nothing to do; past it, the mapping moves. */
static int map_more(struct state *s, size_t len)
{
	void *map;

	if (len <= s->reserved)
		return 0;
	map = mremap(s->header, s->reserved, len, MREMAP_MAYMOVE);
	if (map == MAP_FAILED)
		return -errno;
	s->header = map;
	s->reserved = len;
	return 0;
}

/* Grows the file to hold @n_slots records (at least), or maps its first ones. */
static int map_file(struct state *s, uint32_t n_slots)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = sizeof(struct state_header) + (size_t)n_slots * sizeof(struct state_record);
	int ret;

	len = (len + page - 1) / page * page;
	n_slots = (uint32_t)((len - sizeof(struct state_header)) / sizeof(struct state_record));
	/*
	 * Reserve the blocks now: a store into a mapped page the file system cannot back (a full
	 * tmpfs) would be SIGBUS later, on the request path; here it is an error we report.
	 */
	if (ftruncate(s->fd, (off_t)len) < 0)
		return -errno;
	ret = posix_fallocate(s->fd, (off_t)s->map_len, (off_t)(len - s->map_len));
	if (ret)
		return -ret;
	ret = s->header ? map_more(s, len) : map_first(s, len);
	if (ret < 0)
		return ret;
	s->map_len = len;
	s->records = (struct state_record *)(s->header + 1);
	s->n_slots = n_slots;
	return 0;
}

/* Slots that may be taken without growing. */
static uint64_t n_available(const struct state *s)
{
	return (uint64_t)s->n_free + s->n_slots + 1 - s->next_fresh;
}

static int create_new(struct state *s, uint64_t fingerprint)
{
	int ret;

	s->fd = open(s->new_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0) {
		ret = -errno;
		log_error("Could not create %s: %s", s->new_path, strerror(errno));
		return ret;
	}
	s->next_fresh = 1;
	ret = map_file(s, INITIAL_SLOTS);
	if (ret < 0) {
		log_error("Could not map %s: %s", s->new_path, strerror(-ret));
		return ret;
	}
	memcpy(s->header->magic, STATE_MAGIC, 8);
	s->header->version = STATE_VERSION;
	s->header->record_size = sizeof(struct state_record);
	s->header->fingerprint = fingerprint;
	s->header->next_handle = 1;
	return 0;
}

/* Nobody but root and us can change a directory entry of @st's. */
static bool dir_safe(const struct stat *st)
{
	if (!S_ISDIR(st->st_mode) || (st->st_uid != 0 && st->st_uid != geteuid()))
		return false;
	/* Writable by others: only with the sticky bit, which keeps them off our entries. */
	return !(st->st_mode & 022) || (st->st_mode & S_ISVTX);
}

/*
 * Checks every directory on the way to @path's last component (which is not checked): each
 * one is dir_safe(), so nobody else can swap the state directory after we checked it. @path
 * may contain symbolic links (as /var/run does) when each is root's or ours; their targets
 * are checked in turn, resolved (with no link left) when @follow. Returns 0 or -EPERM (logged
 * if @loud) or another negative errno.
 */
static int check_ancestors(const char *path, bool follow, bool loud)
{
	char buf[PATH_MAX], real[PATH_MAX];
	struct stat st;
	size_t len = strlen(path), end;

	if (path[0] != '/') {
		if (len + 2 >= sizeof(buf))
			return -ENAMETOOLONG;
		if (!getcwd(buf, sizeof(buf) - len - 2))
			return -errno;
		strcat(strcat(buf, "/"), path);
	} else if (len < sizeof(buf)) {
		memcpy(buf, path, len + 1);
	} else {
		return -ENAMETOOLONG;
	}
	end = strlen(buf);
	while (end > 1 && buf[end - 1] == '/')
		buf[--end] = '\0';
	end = (size_t)(strrchr(buf, '/') - buf); /* the parent: buf[0, end), "/" when 0 */
	/* The root, then each prefix that ends before a '/', as itself (links not followed). */
	for (size_t i = 0; i <= end; i++) {
		char keep;

		if (i > 0 && (buf[i] != '/' || buf[i - 1] == '/'))
			continue;
		keep = buf[i ? i : 1];
		buf[i ? i : 1] = '\0';
		if (lstat(buf, &st) < 0) {
			int ret = -errno;

			buf[i ? i : 1] = keep;
			return ret;
		}
		if (S_ISLNK(st.st_mode) && follow && (st.st_uid == 0 || st.st_uid == geteuid())) {
			/* Its target, resolved, must be safe, and so must be everything above it. */
			int ret = realpath(buf, real) ? check_ancestors(real, false, loud) : -errno;

			if (ret == 0 && (lstat(real, &st) < 0 || !dir_safe(&st)))
				ret = -EPERM;
			if (ret == -EPERM && loud)
				log_error("The state directory %s lies behind the link %s, whose "
					  "target "
					  "users other than root and uid %u may change",
					  path, buf, (unsigned)geteuid());
			if (ret < 0) {
				buf[i ? i : 1] = keep;
				return ret;
			}
		} else if (!dir_safe(&st)) {
			if (loud)
				log_error(
					"The state directory %s lies in %s, which users other than "
					"root and uid %u may change (they could swap the directory "
					"after smhd checked it)",
					path, buf, (unsigned)geteuid());
			buf[i ? i : 1] = keep;
			return -EPERM;
		}
		buf[i ? i : 1] = keep;
	}
	return 0;
}

int state_dir_check(const char *dir, bool loud)
{
	struct stat st;
	int ret = check_ancestors(dir, true, loud);

	if (ret < 0)
		return ret;
	/* 0700: only smhd reads its state (the default, the socket's directory, exists already). */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_error("Could not create the state directory %s: %s", dir, strerror(errno));
		return ret;
	}
	if (lstat(dir, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022))
		return 0;
	if (loud)
		log_error("The state directory %s must be a directory owned by uid %u that nobody "
			  "else may write to (another user could plant files smhd trusts)",
			  dir, (unsigned)geteuid());
	return -EPERM;
}

void state_set_next_handle(struct state *s, uint64_t next_handle)
{
	if (next_handle > s->header->next_handle)
		s->header->next_handle = next_handle;
}

static int lock_dir(struct state *s, const char *socket)
{
	s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lock_fd < 0) {
		log_error("Could not open %s: %s", s->lock_path, strerror(errno));
		return -errno;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK) {
		log_error("Another smhd is listening on %s: it holds %s", socket, s->lock_path);
		return -EADDRINUSE;
	}
	log_error("Could not lock %s: %s", s->lock_path, strerror(errno));
	return -errno;
}

int state_open(const char *dir, uint64_t fingerprint, const char *socket, struct state **statep,
	       struct state_old *old)
{
	struct state *s = calloc(1, sizeof(*s));
	int ret;

	*old = (struct state_old){ 0 };
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return -ENOMEM;
	}
	s->lock_fd = s->fd = -1;
	snprintf(s->path, sizeof(s->path), "%s/smhd.state", dir);
	snprintf(s->new_path, sizeof(s->new_path), "%s/smhd.state.new", dir);
	snprintf(s->lock_path, sizeof(s->lock_path), "%s/smhd.lock", dir);
	ret = state_dir_check(dir, true);
	if (ret < 0)
		goto err;
	ret = lock_dir(s, socket);
	if (ret < 0)
		goto err;
	ret = read_old(s, fingerprint, old);
	if (ret < 0) {
		log_error("Could not read %s: %s", s->path, strerror(-ret));
		goto err;
	}
	ret = create_new(s, fingerprint);
	if (ret < 0)
		goto err;
	*statep = s;
	return 0;

err:
	state_old_finish(old);
	state_close(s, false);
	return ret;
}

int state_commit(struct state *s)
{
	if (rename(s->new_path, s->path) < 0) {
		log_error("Could not put %s in place: %s", s->path, strerror(errno));
		return -errno;
	}
	return 0;
}

void state_close(struct state *s, bool clean)
{
	if (!s)
		return;
	if (s->header)
		munmap(s->header, s->reserved);
	if (s->fd >= 0)
		close(s->fd);
	if (clean) {
		unlink(s->path);
		unlink(s->lock_path);
	}
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->dir);
	free(s);
}

const char *state_dir(const struct state *s)
{
	return s->dir;
}

uint64_t state_n_records(const struct state *s)
{
	return (uint64_t)s->next_fresh - 1 - s->n_free;
}

/* ---------------------------------------------------------------- the journal */

/*
 * Makes room for @n more records, growing the file. Returns 0 or -ENOSPC, whatever the
 * cause (the log says it, once until growing works again). The broker asks before every change
 * that gives memory or a hold, and refuses it when there is no room: what the file cannot
 * record is never served. A refused request retries the growth (a system call per refusal,
 * none while there is room).
 */
static int reserve(void *data, unsigned n)
{
	struct state *s = data;
	int ret = 0;

	while (n_available(s) < n && ret == 0) {
		/* Doubling while small, then GROW_MAX at a time; never past what is read back. */
		uint64_t add = s->n_slots < GROW_MAX / sizeof(struct state_record)
				       ? s->n_slots
				       : GROW_MAX / sizeof(struct state_record);
		uint64_t want = (uint64_t)s->n_slots + add, most = MAX_SLOTS;

		want = want < most ? want : most;
		if (want <= s->n_slots)
			ret = -EFBIG; /* the next daemon would not read it back */
		else
			ret = map_file(s, (uint32_t)want);
	}
	if (ret == 0) {
		if (s->failed)
			log_info("%s grows again: allocations are served again", s->new_path);
		s->failed = false;
		return 0;
	}
	if (!s->failed)
		log_error("Could not grow %s: %s; allocations and imports are refused (ENOSPC) "
			  "until it can",
			  s->new_path, strerror(-ret));
	s->failed = true;
	return -ENOSPC;
}

/*
 * Whether the free list's head is a slot this daemon freed, and its link a slot too: the list
 * lives in the file, where another process of smhd's user could write. Checked before either
 * is used as an index, so that a bad link costs the free slots, never a live record.
 */
static bool free_head_ok(const struct state *s)
{
	uint32_t slot = s->free_head;
	uint64_t next;

	if (slot == 0 || slot >= s->next_fresh || s->records[slot - 1].check != 0)
		return false;
	next = s->records[slot - 1].seq;
	return s->n_free == 1 || (next > 0 && next < s->next_fresh);
}

/* A free slot, growing the file when there is none. 0 when it cannot grow (logged once). */
static uint32_t take_slot(struct state *s)
{
	uint32_t slot;

	if (s->n_free > 0 && !free_head_ok(s)) {
		log_warning("%s: its list of free records was overwritten (by another process?); "
			    "the %u records on it are left unused",
			    s->path, s->n_free);
		s->free_head = 0;
		s->n_free = 0;
	}
	if (n_available(s) == 0 && reserve(s, 1) < 0)
		return 0;
	if (s->n_free == 0)
		return s->next_fresh++;
	slot = s->free_head;
	s->free_head = (uint32_t)s->records[slot - 1].seq;
	s->n_free--;
	return slot;
}

static void clear_slot(struct state *s, uint32_t *slotp)
{
	if (*slotp == 0)
		return;
	__atomic_store_n(&s->records[*slotp - 1].check, 0, __ATOMIC_RELEASE);
	/* The slot is reused only after this store: keep later field stores behind it. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	/* A record whose check is 0 is read by no one: its seq can link it into the free list. */
	s->records[*slotp - 1].seq = s->free_head;
	s->free_head = *slotp;
	s->n_free++;
	*slotp = 0;
}

/* Writes @rec into a new slot, then retires the record it replaces (*@slotp). */
static void write_record(struct state *s, struct state_record *rec, uint32_t *slotp)
{
	uint32_t slot = take_slot(s);
	struct state_record *r;

	/*
	 * Only changes that give nothing back get here without room (reserve() came first for the
	 * others): a lower count, a resumed session's new pid. The old record stays: it keeps the
	 * buffer longer after a restart, where no record would release it while still mapped.
	 */
	if (slot == 0)
		return;
	r = &s->records[slot - 1];
	rec->seq = ++s->seq;
	rec->check = 0;
	memcpy(r, rec, offsetof(struct state_record, check));
	__atomic_store_n(&r->check, state_record_check(rec), __ATOMIC_RELEASE);
	clear_slot(s, slotp);
	*slotp = slot;
}

static void on_alloc(void *data, struct broker_alloc *a)
{
	struct state *s = data;
	struct state_record rec = {
		.kind = STATE_ALLOC,
		.region = a->blk.region,
		.handle = a->handle,
		.addr = a->blk.addr,
		.size = a->blk.size,
		.align = broker_alloc_align(a),
		.token = broker_alloc_token(a),
	};
	const char *name = broker_alloc_name(a);

	/* NUL-padded: the initializer zeroed the rest. */
	memcpy(rec.name, name, strnlen(name, sizeof(rec.name) - 1));
	if (a->handle >= s->header->next_handle)
		s->header->next_handle = a->handle + 1;
	write_record(s, &rec, &a->blk.tag);
}

static void on_alloc_gone(void *data, struct broker_alloc *a)
{
	clear_slot(data, &a->blk.tag);
}

static void on_hold(void *data, struct broker_hold *h)
{
	struct broker_client *c = h->client;
	struct state_record rec = {
		.kind = STATE_HOLD,
		.handle = broker_hold_alloc(h)->handle,
		.session = c->session,
		.count = h->count,
		.pid = c->pid,
		.uid = (uint32_t)c->uid,
	};

	/* Once per connection: a syscall or three at its first buffer, none after. */
	if (c->proc_start == 0 && c->pid > 0)
		c->proc_start = proc_start_time(c->pid);
	rec.proc_start = c->proc_start;
	write_record(data, &rec, &h->slot);
}

static void on_hold_gone(void *data, struct broker_hold *h)
{
	clear_slot(data, &h->slot);
}

struct broker_journal state_journal(struct state *s)
{
	return (struct broker_journal){
		.reserve = reserve,
		.alloc = on_alloc,
		.alloc_gone = on_alloc_gone,
		.hold = on_hold,
		.hold_gone = on_hold_gone,
		.data = s,
	};
}
