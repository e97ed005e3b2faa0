/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vdisk.c — virtual disk I/O: the fast path and its controller actions.
 *
 * Fast-path invariants (vlun_vdisk_submit and everything it calls, and the
 * io completion thread):
 *   - It only LOOKS UP the map (vlun_map_lookup: RCU, no lock) and SUBMITS
 *     physical I/O (vlun_io_submit). It never changes the map, the
 *     description, the allocator or the metadata, and never takes ctl_lock.
 *   - It never waits for the controller: a write piece that hits INVALID
 *     (thin, unallocated), NO_WRITE or an unbacked ZERO extent becomes a
 *     CTL_FAULT work item; thin UNMAP/WRITE_ZEROES become CTL_UNMAP; a FLUSH
 *     with metadata changes not yet durable becomes CTL_COMMIT.
 *   - Every physical I/O is counted in the pool's io epoch from before the
 *     lookup that produced its address until it completes, so the
 *     controller can wait for I/O issued under an old map before freed
 *     space is reused.
 *   - done() of a request runs exactly once, on an engine thread (io
 *     completion or controller), never inside vlun_vdisk_submit: results
 *     known at submit time (range errors, reads of unallocated space that
 *     are zero-filled without I/O) go through vlun_io_defer.
 *
 * Only the controller (pool.c's thread, ctl_lock held) allocates chunks,
 * zeroes them, calls vlun_map_set, records metadata deltas, frees space and
 * commits. A new thin chunk is fully written before it is published: the
 * parts the faulting write does not cover are zeroed first, then that
 * write's data lands, then the map points at the chunk — a reader never
 * sees another disk's old data there. Other writes to a chunk being
 * prepared wait on it and are re-dispatched after the install; faults on
 * different chunks proceed independently.
 *
 * Durability: a new chunk is recorded as a pending delta when written and
 * published (map entry, completion of the write that filled it) only
 * after the group commit that makes it durable: an acknowledged write
 * never rests on an allocation a crash could lose. Behind marks are the
 * same: committed before the map shows them (mirror.c), since a write to a
 * region already behind is acknowledged after the healthy copy alone.
 * Other map changes (unmap, migration flips) are pending deltas until the
 * next commit. FLUSH = every member fdatasynced and, if deltas are pending, one
 * vlun_meta_commit_delta shared by all flushes queued at that moment
 * (group commit); a FUA write completes only after such a commit when
 * anything is pending.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "node.h"
#include "pool_priv.h"
#include "snap.h"

#define LOOKUP_BATCH 32

struct vlun_vdisk {
	struct vlun_pool *pool;
	uint32_t id;
	char name[VLUN_NAME_MAX + 1];
	uint32_t layout;
	uint64_t chunk_sectors;
	bool readonly;
	struct vlun_map *map;

	pthread_mutex_t lock;   /* the last decrement of inflight + idle */
	pthread_cond_t idle;
	_Atomic uint64_t inflight; /* requests submitted and not completed */

	/* Finished vreqs kept for reuse (vreq_alloc): a vreq is allocated on
	 * the submitter's thread and freed on the completion thread, which
	 * defeats malloc's per-thread cache. Spin lock: a few instructions. */
	atomic_flag vreq_lock;
	void *vreq_cache;       /* list through the first pointer of each */
	unsigned vreq_ncache;

	/* controller only (ctl_lock) */
	struct prep *preps;     /* thin chunks being prepared */
	struct piece *parked;   /* NO_WRITE waiters */

	struct vlun_iostat stats; /* requests of this disk (stats.h) */

	/* Snapshots (snap.c): the store of a source (writes pass its hook),
	 * the session of a "<source>@<snapshot>" open; engine references
	 * (ctl_lock) keep a disk open while the snapshot engine uses it. */
	_Atomic(struct snap_store *) snap;
	struct snap_view *view;
	unsigned holds;
	bool user;
};

struct vreq {
	struct vlun_req *req;
	struct vlun_vdisk *vd;
	uint64_t t0;            /* vlun_iostat_begin of the vdisk */
	atomic_int refs;
	atomic_bool via_ctl;    /* some piece went through the controller */
	uint32_t status;        /* err_lock */
	uint64_t err_off;
	struct ctl_work w;      /* CTL_COMMIT before completion (FLUSH, FUA) */
	atomic_bool pc0_used;   /* pc0 was handed out (it is never reused) */
	struct snap_store *snap; /* write counted in this store's write epoch */
	unsigned snap_side;     /* its side + 1 (0: not counted) */
	/* The first piece of up to VREQ_PC0_IOV iovecs lives here, so the
	 * common request (one extent) costs one allocation. */
	_Alignas(max_align_t) unsigned char pc0[];
};

/* What a physical piece is, for its error handling. */
enum piece_kind {
	PK_PLAIN = 0,  /* an error is the request's error */
	PK_MREAD,      /* read of a clean mirrored range: retry on the other copy */
	PK_FLUSH,      /* fsync of one member: on error the controller decides
			* (a member holding only mirror copies fails over) */
	PK_MWRITE,     /* one side of a mirrored write: the controller marks the
			* failed side behind and the write succeeds on the other */
};

/* One piece of a request: a sub-range handled by one physical I/O or one
 * controller action. */
struct piece {
	struct vlun_pio pio;
	struct vreq *r;
	struct piece *next;     /* waiter lists */
	uint64_t boff;          /* byte offset inside the request */
	uint64_t len;           /* bytes */
	unsigned side;          /* io epoch side, when counted */
	bool counted;
	bool retried;           /* PK_MREAD: already moved to the other copy */
	uint8_t kind;           /* enum piece_kind */
	uint32_t member;        /* member of pio, VLUN_NO_MEMBER when none */
	uint32_t other;         /* PK_MREAD: the other copy's member */
	uint64_t other_poff;    /* PK_MREAD: and its byte offset */
	uint64_t t0;            /* member stats start */
	int err;                /* PK_MWRITE: the failed side's -errno */
	struct ctl_work w;
	int iovcnt;
	struct iovec iov[];
};

/* A thin chunk being allocated and written. */
struct prep {
	struct prep *next;
	struct vlun_vdisk *vd;
	uint64_t vchunk;        /* first virtual sector of the chunk */
	uint32_t member;
	uint64_t psector;
	struct piece *first;    /* the write whose data fills the chunk */
	struct piece *waiters;
	atomic_int zeros_left;
	atomic_int zero_err;
	int res;
	struct vlun_extent ext; /* the entry, once recorded (published after the commit) */
	struct vlun_pio zpio[2];
	struct ctl_work w;
};

#define VREQ_PC0_IOV 4
#define VREQ_SIZE (sizeof(struct vreq) + sizeof(struct piece) + VREQ_PC0_IOV * sizeof(struct iovec))
#define VREQ_CACHE_MAX 64 /* per vdisk: more than a runner keeps in flight */

static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static void dispatch(struct vreq *r, uint64_t boff, uint64_t len);
static void vreq_put(struct vreq *r);

/* ------------------------------------------------------------ helpers */

static void vreq_cache_lock(struct vlun_vdisk *vd)
{
	for (unsigned spins = 0; atomic_flag_test_and_set_explicit(&vd->vreq_lock, memory_order_acquire); spins++)
		if (spins >= 64)
			sched_yield(); /* the holder was preempted */
}

static void vreq_cache_unlock(struct vlun_vdisk *vd)
{
	atomic_flag_clear_explicit(&vd->vreq_lock, memory_order_release);
}

/* A zeroed vreq (with room for pc0), from vd's cache when it has one. */
static struct vreq *vreq_alloc(struct vlun_vdisk *vd)
{
	void *r;
	vreq_cache_lock(vd);
	r = vd->vreq_cache;
	if (r) {
		vd->vreq_cache = *(void **)r;
		vd->vreq_ncache--;
	}
	vreq_cache_unlock(vd);
	if (!r)
		return calloc(1, VREQ_SIZE);
	memset(r, 0, VREQ_SIZE);
	return r;
}

/* Gives r back to vd's cache (bounded) or to malloc. vd must stay open
 * meanwhile: call before the request is counted out of vd->inflight. */
static void vreq_release(struct vlun_vdisk *vd, struct vreq *r)
{
	void *m = r;
	vreq_cache_lock(vd);
	if (vd->vreq_ncache < VREQ_CACHE_MAX) {
		*(void **)m = vd->vreq_cache;
		vd->vreq_cache = m;
		vd->vreq_ncache++;
		m = NULL;
	}
	vreq_cache_unlock(vd);
	free(m);
}

static void vreq_cache_drain(struct vlun_vdisk *vd)
{
	while (vd->vreq_cache) {
		void *m = vd->vreq_cache;
		vd->vreq_cache = *(void **)m;
		free(m);
	}
	vd->vreq_ncache = 0;
}

static uint64_t iov_len_total(const struct iovec *iov, int n)
{
	uint64_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* A piece with the slice [boff, boff+len) of the request's iovec. */
static struct piece *piece_new(struct vreq *r, uint64_t boff, uint64_t len, bool data)
{
	const struct vlun_req *q = r->req;
	int cnt = 0;
	int first = 0;
	uint64_t skip = boff;
	if (data) {
		while (first < q->iovcnt && skip >= q->iov[first].iov_len) {
			skip -= q->iov[first].iov_len;
			first++;
		}
		uint64_t want = len + skip;
		for (int i = first; i < q->iovcnt && want > 0; i++) {
			cnt++;
			want -= VLUN_MIN(want, (uint64_t)q->iov[i].iov_len);
		}
	}
	struct piece *pc;
	if (cnt <= VREQ_PC0_IOV && !atomic_exchange(&r->pc0_used, true))
		pc = (struct piece *)r->pc0; /* zeroed with r, used once */
	else
		pc = calloc(1, sizeof(*pc) + (size_t)cnt * sizeof(struct iovec));
	if (!pc)
		return NULL;
	pc->r = r;
	pc->boff = boff;
	pc->len = len;
	pc->member = VLUN_NO_MEMBER;
	pc->other = VLUN_NO_MEMBER;
	if (data) {
		uint64_t want = len;
		for (int i = first; i < q->iovcnt && want > 0; i++) {
			uint64_t l = q->iov[i].iov_len - skip;
			uint64_t c = VLUN_MIN(l, want);
			pc->iov[pc->iovcnt].iov_base = (uint8_t *)q->iov[i].iov_base + skip;
			pc->iov[pc->iovcnt].iov_len = c;
			pc->iovcnt++;
			want -= c;
			skip = 0;
		}
	}
	atomic_fetch_add(&r->refs, 1);
	return pc;
}

static void piece_zero_fill(struct piece *pc)
{
	for (int i = 0; i < pc->iovcnt; i++)
		memset(pc->iov[i].iov_base, 0, pc->iov[i].iov_len);
}

static void vreq_fail(struct vreq *r, uint32_t st, uint64_t boff)
{
	pthread_mutex_lock(&err_lock);
	if (r->status == VLUN_OK || boff < r->err_off) {
		r->status = st;
		r->err_off = boff;
	}
	pthread_mutex_unlock(&err_lock);
}

static uint32_t status_of(const struct vreq *r, int res)
{
	uint32_t op = r->req->op;
	if (res == -ENOSPC)
		return VLUN_E_NOSPACE;
	if (res == -ENOMEM)
		return VLUN_E_NOMEM;
	if (res == -EROFS)
		return VLUN_E_READONLY;
	if (res == -EBADE || res == -EPERM)
		return VLUN_E_FENCED; /* reservation conflict / not the owner (node.c) */
	return op == VLUN_OP_READ ? VLUN_E_READ : VLUN_E_WRITE;
}

static void piece_free(struct piece *pc)
{
	if ((unsigned char *)pc != pc->r->pc0)
		free(pc);
}

/* Drops a piece (its request reference). */
static void piece_end(struct piece *pc, int res)
{
	struct vreq *r = pc->r;
	if (pc->counted)
		pool_io_exit(r->vd->pool, pc->side);
	if (res < 0)
		vreq_fail(r, status_of(r, res), pc->boff);
	piece_free(pc);
	vreq_put(r);
}

static void piece_end_status(struct piece *pc, uint32_t st)
{
	struct vreq *r = pc->r;
	if (pc->counted)
		pool_io_exit(r->vd->pool, pc->side);
	vreq_fail(r, st, pc->boff);
	piece_free(pc);
	vreq_put(r);
}

static unsigned iostat_dir(uint32_t pio_op)
{
	return pio_op == VLUN_PIO_READ ? VLUN_IOSTAT_READ
	       : pio_op == VLUN_PIO_WRITE ? VLUN_IOSTAT_WRITE : VLUN_IOSTAT_OTHER;
}

static void piece_pio_start(struct piece *pc);

/* A member returned an error: tell the controller (it decides whether the
 * member is failed). Best effort: without memory only the log knows. */
struct merr_work {
	struct ctl_work w;
	uint32_t member;
	int res;
};

static void report_member_error(struct vlun_pool *p, uint32_t member, int res)
{
	struct merr_work *mw = calloc(1, sizeof(*mw));
	if (!mw)
		return;
	mw->w.kind = CTL_MERR;
	mw->w.arg = mw;
	mw->member = member;
	mw->res = res;
	pool_ctl_queue(p, &mw->w);
}

static void piece_pio_done(struct vlun_pio *pio, int res)
{
	struct piece *pc = pio->priv;
	struct vlun_pool *p = pc->r->vd->pool;
	if (pc->member != VLUN_NO_MEMBER)
		vlun_iostat_end(&p->members[pc->member].stats, iostat_dir(pio->op),
				pio->op == VLUN_PIO_FSYNC ? 0 : pio->length, pc->t0, res);
	if (res < 0 && pc->kind == PK_MREAD && !pc->retried && pc->other != VLUN_NO_MEMBER &&
	    !atomic_load(&p->members[pc->other].failed)) {
		/* The other copy is clean: read it there; the host sees nothing. */
		vlun_warn("vdisk '%s': read of %llu bytes at virtual offset %llu failed on member %u (%s); "
			  "reading the mirror copy on member %u", pc->r->vd->name, (unsigned long long)pc->len,
			  (unsigned long long)(pc->r->req->offset + pc->boff), pc->member, strerror(-res),
			  pc->other);
		report_member_error(p, pc->member, res);
		pc->retried = true;
		pc->member = pc->other;
		pc->pio.offset = pc->other_poff;
		pc->pio.fd = p->members[pc->other].fd;
		pc->pio.direct = p->members[pc->other].direct;
		piece_pio_start(pc);
		return;
	}
	if (res == -EBADE && pc->member != VLUN_NO_MEMBER) {
		/* RESERVATION CONFLICT: another node preempted this one. Stop
		 * writing now; the controller confirms and fences (node.c). */
		atomic_store(&p->ha_fenced, true);
		report_member_error(p, pc->member, res);
		piece_end(pc, res);
		return;
	}
	if (res < 0 && (pc->kind == PK_FLUSH || pc->kind == PK_MWRITE) && pc->counted) {
		/* The physical I/O is over: leave its epoch before the
		 * controller takes the piece, or a commit that drains the
		 * epoch (frees pending) would wait for the controller itself. */
		pool_io_exit(p, pc->side);
		pc->counted = false;
	}
	if (res < 0 && pc->kind == PK_FLUSH) {
		vlun_warn("vdisk '%s': flush of member %u failed: %s", pc->r->vd->name, pc->member, strerror(-res));
		pc->w.kind = CTL_FFAIL;
		pc->w.arg = pc;
		pc->err = res;
		pool_ctl_queue(p, &pc->w);
		return;
	}
	if (res < 0 && pc->kind == PK_MWRITE) {
		/* The controller marks this side behind, commits, and ends the
		 * piece (successfully when the other side holds the data). */
		vlun_warn("vdisk '%s': mirrored write of %llu bytes at virtual offset %llu failed on member %u: %s",
			  pc->r->vd->name, (unsigned long long)pc->len,
			  (unsigned long long)(pc->r->req->offset + pc->boff), pc->member, strerror(-res));
		pc->w.kind = CTL_WFAIL;
		pc->w.arg = pc;
		pc->err = res;
		pool_ctl_queue(p, &pc->w);
		return;
	}
	if (res < 0) {
		const struct vlun_req *q = pc->r->req;
		vlun_err("vdisk '%s': %s of %llu bytes at virtual offset %llu (member %d, offset %llu) failed: %s",
			 pc->r->vd->name, q->op == VLUN_OP_READ ? "read" : q->op == VLUN_OP_FLUSH ? "flush" : "write",
			 (unsigned long long)pc->len, (unsigned long long)(q->offset + pc->boff),
			 pc->member == VLUN_NO_MEMBER ? -1 : (int)pc->member, (unsigned long long)pio->offset,
			 strerror(-res));
		if (pc->member != VLUN_NO_MEMBER)
			report_member_error(p, pc->member, res);
	}
	piece_end(pc, res);
}

static void inject_fail_cb(void *arg)
{
	struct piece *pc = arg;
	piece_pio_done(&pc->pio, -EIO);
}

/* Sends a prepared pio (first time or a retry elsewhere). */
static void piece_pio_start(struct piece *pc)
{
	struct vlun_pool *p = pc->r->vd->pool;
	if (pc->member != VLUN_NO_MEMBER) {
		pc->t0 = vlun_iostat_begin(&p->members[pc->member].stats);
		if (atomic_load(&p->members[pc->member].inject_fail)) {
			if (vlun_io_defer(p->io, inject_fail_cb, pc) == 0)
				return;
		}
	}
	int r = vlun_io_submit(p->io, &pc->pio);
	if (r < 0) {
		vlun_err("vdisk '%s': cannot queue I/O on fd %d: %s", pc->r->vd->name, pc->pio.fd, strerror(-r));
		if (pc->member != VLUN_NO_MEMBER)
			vlun_iostat_end(&p->members[pc->member].stats, iostat_dir(pc->pio.op), 0, pc->t0, r);
		piece_end_status(pc, r == -ENOMEM ? VLUN_E_NOMEM : VLUN_E_HW);
	}
}

/* Submits a counted piece's pio to a member (fast path or controller). */
static void piece_submit(struct piece *pc, uint32_t member, uint32_t op, uint64_t poff)
{
	const struct pool_member *m = &pc->r->vd->pool->members[member];
	pc->member = member;
	pc->pio.op = op;
	pc->pio.fd = m->fd;
	pc->pio.direct = m->direct;
	pc->pio.fua = op == VLUN_PIO_WRITE && (pc->r->req->flags & VLUN_REQ_FUA);
	pc->pio.offset = poff;
	pc->pio.length = op == VLUN_PIO_FSYNC ? 0 : pc->len;
	pc->pio.iov = pc->iov;
	pc->pio.iovcnt = pc->iovcnt;
	pc->pio.done = piece_pio_done;
	pc->pio.priv = pc;
	piece_pio_start(pc);
}

/* ------------------------------------------------------------ completion */

/* One request less in flight. Only the decrement to zero takes the lock
 * (and wakes vlun_vdisk_close, which checks under it): a closer can thus
 * not see zero and free vd before the last decrementer is done with it. */
static void vdisk_inflight_dec(struct vlun_vdisk *vd)
{
	uint64_t n = atomic_load(&vd->inflight);
	while (n > 1)
		if (atomic_compare_exchange_weak(&vd->inflight, &n, n - 1))
			return;
	pthread_mutex_lock(&vd->lock);
	if (atomic_fetch_sub(&vd->inflight, 1) == 1)
		pthread_cond_broadcast(&vd->idle);
	pthread_mutex_unlock(&vd->lock);
}

static void vreq_finish(struct vreq *r)
{
	struct vlun_vdisk *vd = r->vd;
	struct vlun_req *q = r->req;
	q->err_offset = r->status == VLUN_OK ? 0 : q->offset + r->err_off;
	uint32_t st = r->status;
	vlun_iostat_end(&vd->stats,
			q->op == VLUN_OP_READ ? VLUN_IOSTAT_READ
			: q->op == VLUN_OP_WRITE ? VLUN_IOSTAT_WRITE : VLUN_IOSTAT_OTHER,
			q->op == VLUN_OP_READ || q->op == VLUN_OP_WRITE ? q->length : 0, r->t0,
			st == VLUN_OK ? 0 : -EIO);
	if (r->snap_side)
		snap_write_exit(r->snap, r->snap_side - 1);
	vreq_release(vd, r);
	/* Count it out first: done() may close the disk. */
	vdisk_inflight_dec(vd);
	q->done(q, (enum vlun_status)st);
}

static void vreq_commit_done(void *arg, int res)
{
	struct vreq *r = arg;
	if (res < 0) {
		vlun_err("vdisk '%s': FUA write could not make its allocation durable: %s", r->vd->name,
			 strerror(-res));
		vreq_fail(r, VLUN_E_WRITE, 0);
	}
	vreq_finish(r);
}

static void vreq_put(struct vreq *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	const struct vlun_req *q = r->req;
	if (r->status == VLUN_OK && q->op == VLUN_OP_WRITE && (q->flags & VLUN_REQ_FUA) &&
	    atomic_load(&r->vd->pool->meta_dirty) > 0) {
		/* FUA: the map change that placed this data (a new chunk, a
		 * migrated extent, a region marked behind) must be durable too,
		 * whether this write faulted or went straight to a place an
		 * earlier, not yet committed, change made. */
		r->w.kind = CTL_COMMIT;
		r->w.fn = vreq_commit_done;
		r->w.arg = r;
		pool_ctl_queue(r->vd->pool, &r->w);
		return;
	}
	vreq_finish(r);
}

static void vreq_finish_deferred(void *arg)
{
	vreq_finish(arg);
}

/* ------------------------------------------------------------ controller */

static struct prep *prep_find(struct vlun_vdisk *vd, uint64_t vchunk)
{
	for (struct prep *p = vd->preps; p; p = p->next)
		if (p->vchunk == vchunk)
			return p;
	return NULL;
}

static void prep_unlink(struct vlun_vdisk *vd, struct prep *pr)
{
	for (struct prep **pp = &vd->preps; *pp; pp = &(*pp)->next)
		if (*pp == pr) {
			*pp = pr->next;
			return;
		}
}

static void redispatch_list(struct piece *list)
{
	while (list) {
		struct piece *pc = list;
		list = pc->next;
		dispatch(pc->r, pc->boff, pc->len);
		piece_end(pc, 0);
	}
}

/* The map of vd changed: writes parked on NO_WRITE try again. */
static void kick_parked(struct vlun_vdisk *vd)
{
	struct piece *list = vd->parked;
	vd->parked = NULL;
	redispatch_list(list);
}

/* The chunk is written (or failed): the controller publishes it. */
static void prep_finish(struct prep *pr, int res)
{
	pr->res = res;
	pr->w.kind = CTL_INSTALL;
	pr->w.arg = pr;
	pool_ctl_queue(pr->vd->pool, &pr->w);
}

static void prep_write_done(struct vlun_pio *pio, int res)
{
	prep_finish(pio->priv, res);
}

static void prep_write(struct prep *pr)
{
	struct vlun_pool *p = pr->vd->pool;
	struct piece *pc = pr->first;
	const struct pool_member *m = &p->members[pr->member];
	uint64_t poff = (pr->psector + (pc->r->req->offset / VLUN_SECTOR_SIZE + pc->boff / VLUN_SECTOR_SIZE -
					pr->vchunk)) << VLUN_SECTOR_SHIFT;
	pc->pio = (struct vlun_pio){
		.op = VLUN_PIO_WRITE, .fd = m->fd, .direct = m->direct,
		.fua = pc->r->req->flags & VLUN_REQ_FUA, .offset = poff, .length = pc->len,
		.iov = pc->iov, .iovcnt = pc->iovcnt, .done = prep_write_done, .priv = pr,
	};
	int r = vlun_io_submit(p->io, &pc->pio);
	if (r < 0)
		prep_finish(pr, r);
}

static void prep_zero_done(struct vlun_pio *pio, int res)
{
	struct prep *pr = pio->priv;
	if (res < 0)
		atomic_store(&pr->zero_err, res);
	if (atomic_fetch_sub(&pr->zeros_left, 1) != 1)
		return;
	int err = atomic_load(&pr->zero_err);
	if (err < 0)
		prep_finish(pr, err);
	else
		prep_write(pr);
}

/* Where a new chunk at vchunk would continue its neighbour on side dir
 * (-1 left, +1 right) physically: the neighbour is an allocated chunk in
 * the map or one being prepared (sequential writes at queue depth > 1
 * fault on consecutive chunks before any of them is installed). */
static bool neighbour_place(struct vlun_vdisk *vd, uint64_t vchunk, int dir, uint32_t *ret_member,
			    uint64_t *ret_psector)
{
	uint64_t cs = vd->chunk_sectors, ps;
	uint64_t nchunk = dir < 0 ? vchunk - cs : vchunk + cs;
	struct vlun_extent e;
	uint32_t member;

	if (dir < 0 ? vchunk < cs : nchunk >= vlun_map_size(vd->map))
		return false;
	struct prep *pr = prep_find(vd, nchunk);
	if (pr) {
		member = pr->member;
		ps = pr->psector; /* of the neighbour chunk */
	} else {
		/* the sector next to the chunk: its extent clipped to it */
		uint64_t s = dir < 0 ? vchunk - 1 : nchunk;
		if (vlun_map_lookup(vd->map, s, 1, &e, 1) != 1 || e.member == VLUN_NO_MEMBER ||
		    (e.flags & (VLUN_EXT_INVALID | VLUN_EXT_ZERO | VLUN_EXT_ERROR)))
			return false;
		member = e.member;
		ps = dir < 0 ? e.psector + 1 - cs : e.psector; /* where a neighbour chunk would start */
	}
	if (dir > 0 && ps < cs)
		return false;
	ps = dir < 0 ? ps + cs : ps - cs;
	*ret_member = member;
	*ret_psector = ps;
	return true;
}

/* Chooses and takes the physical place of a new chunk (policy: alloc.h,
 * vlun_alloc_get_at): right after the left neighbour, right before the
 * right neighbour, the neighbour's member, the member with most space. */
static int place_chunk(struct vlun_pool *p, struct vlun_vdisk *vd, uint64_t vchunk, uint32_t *ret_member,
		       uint64_t *ret_psector)
{
	uint64_t cs = vd->chunk_sectors;
	uint32_t hint = VLUN_NO_MEMBER;

	for (int dir = -1; dir <= 1; dir += 2) {
		uint32_t m;
		uint64_t ps;
		if (!neighbour_place(vd, vchunk, dir, &m, &ps))
			continue;
		if (hint == VLUN_NO_MEMBER)
			hint = m;
		if (ps % cs == 0 && vlun_alloc_get_at(p->alloc, m, ps, cs) == 0) {
			*ret_member = m;
			*ret_psector = ps;
			return 0;
		}
	}
	return vlun_alloc_get(p->alloc, cs, cs, hint, NULL, 0, ret_member, ret_psector);
}

/* Starts preparing a new chunk for piece pc (ctl_lock held). Placement
 * keeps virtual neighbours physically adjacent when it can, so sequential
 * first writes build one extent; a chunk without allocated neighbours goes
 * to the member with the most free space (see place_chunk and alloc.h). */
static void prep_start(struct vlun_pool *p, struct vlun_vdisk *vd, struct piece *pc, uint64_t vchunk)
{
	uint32_t member;
	uint64_t psector;
	int r = place_chunk(p, vd, vchunk, &member, &psector);
	if (r < 0) {
		if (r == -ENOSPC)
			vlun_warn("vdisk '%s': no free space for a %llu-byte chunk; write at %llu fails",
				  vd->name, (unsigned long long)(vd->chunk_sectors << VLUN_SECTOR_SHIFT),
				  (unsigned long long)(pc->r->req->offset + pc->boff));
		piece_end_status(pc, r == -ENOSPC ? VLUN_E_NOSPACE : VLUN_E_HW);
		return;
	}
	struct prep *pr = calloc(1, sizeof(*pr));
	if (!pr) {
		vlun_alloc_free(p->alloc, member, psector, vd->chunk_sectors);
		p->frees_pending = true;
		piece_end_status(pc, VLUN_E_NOMEM);
		return;
	}
	pr->vd = vd;
	pr->vchunk = vchunk;
	pr->member = member;
	pr->psector = psector;
	pr->first = pc;
	pr->next = vd->preps;
	vd->preps = pr;

	/* Zero what the write does not cover: [chunk, start) and [end, chunk end). */
	uint64_t start = pc->r->req->offset / VLUN_SECTOR_SIZE + pc->boff / VLUN_SECTOR_SIZE;
	uint64_t end = start + pc->len / VLUN_SECTOR_SIZE;
	uint64_t cend = vchunk + vd->chunk_sectors;
	const struct pool_member *m = &p->members[member];
	int nz = 0;
	uint64_t zs[2], zl[2];
	if (start > vchunk) {
		zs[nz] = psector;
		zl[nz++] = start - vchunk;
	}
	if (end < cend) {
		zs[nz] = psector + (end - vchunk);
		zl[nz++] = cend - end;
	}
	if (nz == 0) {
		prep_write(pr);
		return;
	}
	atomic_store(&pr->zeros_left, nz);
	for (int i = 0; i < nz; i++) {
		pr->zpio[i] = (struct vlun_pio){
			.op = VLUN_PIO_ZERO, .fd = m->fd, .direct = m->direct,
			.offset = zs[i] << VLUN_SECTOR_SHIFT, .length = zl[i] << VLUN_SECTOR_SHIFT,
			.done = prep_zero_done, .priv = pr,
		};
		r = vlun_io_submit(p->io, &pr->zpio[i]);
		if (r < 0)
			prep_zero_done(&pr->zpio[i], r);
	}
}

/* The chunk's allocation is durable (or the commit failed): publish it
 * to the agents, end the write that filled it and let its waiters run
 * (CTL_CALL: ctl_lock held). */
static void prep_publish(void *arg, int unused)
{
	(void)unused;
	struct prep *pr = arg;
	struct vlun_vdisk *vd = pr->vd;
	struct vlun_pool *p = vd->pool;
	int res = pr->res;
	if (res == 0) {
		res = vlun_map_set(vd->map, pr->vchunk, vd->chunk_sectors, &pr->ext, 1);
		if (res < 0)
			vlun_err("vdisk '%s': cannot publish the chunk at sector %llu: %s", vd->name,
				 (unsigned long long)pr->vchunk, strerror(-res));
	} else {
		vlun_err("vdisk '%s': the allocation of the chunk at sector %llu could not be made durable: %s",
			 vd->name, (unsigned long long)pr->vchunk, strerror(-res));
	}
	if (res < 0) {
		/* the description has the chunk: give it back there too */
		struct vlun_extent inv = { .vsector = pr->vchunk, .nsectors = vd->chunk_sectors,
					   .member = VLUN_NO_MEMBER, .alt_member = VLUN_NO_MEMBER,
					   .flags = VLUN_EXT_INVALID };
		if (pool_record_change_locked(p, vd->id, pr->vchunk, vd->chunk_sectors, &inv, 1) == 0) {
			vlun_alloc_free(p->alloc, pr->member, pr->psector, vd->chunk_sectors);
			if (pr->ext.alt_member != VLUN_NO_MEMBER)
				vlun_alloc_free(p->alloc, pr->ext.alt_member, pr->ext.alt_psector, vd->chunk_sectors);
			p->frees_pending = true;
		}
	}
	prep_unlink(vd, pr);
	piece_end(pr->first, res);
	redispatch_list(pr->waiters);
	free(pr);
	kick_parked(vd);
}

static void prep_committed(void *arg, int res)
{
	struct prep *pr = arg;
	pr->res = res;
	pr->w.kind = CTL_CALL;
	pr->w.fn = prep_publish;
	pr->w.arg = pr;
	pool_ctl_queue(pr->vd->pool, &pr->w);
}

/* The chunk is written (ctl_lock held). Its allocation goes into the
 * description and the next group commit; only when that is durable does
 * the map point at the chunk and the write that filled it complete. So an
 * acknowledged write never depends on an allocation that a crash of the
 * process could lose, whatever the write cache setting. Writes to the
 * chunk meanwhile wait on the prep, as while it was being written. */
static void prep_install(struct vlun_pool *p, struct prep *pr)
{
	struct vlun_vdisk *vd = pr->vd;
	int res = pr->res;
	uint32_t am = VLUN_NO_MEMBER;
	uint64_t aps = 0;
	if (res == 0) {
		struct vlun_extent e = {
			.vsector = pr->vchunk, .nsectors = vd->chunk_sectors, .psector = pr->psector,
			.alt_psector = 0, .member = pr->member, .alt_member = VLUN_NO_MEMBER,
			.flags = 0, .dirty_id = 0,
		};
		const struct vlun_vdisk_desc *dd = pool_vdesc_by_id_locked(p, vd->id);
		if (dd && (dd->flags & VLUN_VDISK_MIRRORED)) {
			/* A mirrored thin disk: the new chunk gets its second
			 * copy at once, behind until the resync fills it. */
			uint32_t allowed[VLUN_MAX_MEMBERS];
			size_t na = 0;
			for (uint32_t m = 0; m < p->nmembers; m++)
				if (m != pr->member && p->members[m].dev && !atomic_load(&p->members[m].failed))
					allowed[na++] = m;
			if (na && vlun_alloc_get(p->alloc, vd->chunk_sectors, vd->chunk_sectors, VLUN_NO_MEMBER, allowed,
						 na, &am, &aps) == 0) {
				e.alt_member = am;
				e.alt_psector = aps;
				e.flags |= VLUN_EXT_ALT_EXISTS | VLUN_EXT_ALT_DIRTY;
				jobs_kick(p);
			} else {
				vlun_warn("vdisk '%s': no room for the mirror copy of the new chunk at sector %llu; "
					  "it has one copy until space is added and 'vlunctl mirror add' runs",
					  vd->name, (unsigned long long)pr->vchunk);
			}
		}
		res = pool_record_change_locked(p, vd->id, pr->vchunk, vd->chunk_sectors, &e, 1);
		if (res == 0) {
			pr->ext = e;
			pr->w.kind = CTL_COMMIT;
			pr->w.fn = prep_committed;
			pr->w.arg = pr;
			pool_ctl_queue(p, &pr->w);
			return;
		}
		vlun_err("vdisk '%s': cannot record the chunk at sector %llu: %s", vd->name,
			 (unsigned long long)pr->vchunk, strerror(-res));
	}
	vlun_alloc_free(p->alloc, pr->member, pr->psector, vd->chunk_sectors);
	if (am != VLUN_NO_MEMBER)
		vlun_alloc_free(p->alloc, am, aps, vd->chunk_sectors);
	p->frees_pending = true;
	prep_unlink(vd, pr);
	piece_end(pr->first, res);
	redispatch_list(pr->waiters);
	free(pr);
	kick_parked(vd);
}

static void redispatch_commit_done(void *arg, int res)
{
	struct piece *w = arg;
	if (res < 0) {
		vlun_err("vdisk '%s': a map change for the write at %llu could not be made durable: %s",
			 w->r->vd->name, (unsigned long long)(w->r->req->offset + w->boff), strerror(-res));
		piece_end_status(w, VLUN_E_WRITE);
		return;
	}
	dispatch(w->r, w->boff, w->len);
	piece_end(w, 0);
}

/* Runs [boff, boff+len) of r again once the pending map changes are
 * durable (the next group commit). */
static void redispatch_after_commit(struct vlun_pool *p, struct vreq *r, uint64_t boff, uint64_t len)
{
	struct piece *w = piece_new(r, boff, len, false);
	if (!w) {
		vreq_fail(r, VLUN_E_NOMEM, boff);
		return;
	}
	w->w.kind = CTL_COMMIT;
	w->w.fn = redispatch_commit_done;
	w->w.arg = w;
	pool_ctl_queue(p, &w->w);
}

/* A write piece that needs the controller (ctl_lock held). */
static void fault_run(struct vlun_pool *p, struct piece *pc)
{
	struct vreq *r = pc->r;
	struct vlun_vdisk *vd = r->vd;
	uint64_t vs = r->req->offset / VLUN_SECTOR_SIZE + pc->boff / VLUN_SECTOR_SIZE;
	uint64_t ns = pc->len / VLUN_SECTOR_SIZE;
	struct vlun_extent ext[LOOKUP_BATCH];
	uint64_t done = 0;

	while (done < ns) {
		int n = vlun_map_lookup(vd->map, vs + done, ns - done, ext, LOOKUP_BATCH);
		if (n == -ENOBUFS)
			n = LOOKUP_BATCH;
		if (n < 0) {
			struct piece *rest = piece_new(r, pc->boff + done * VLUN_SECTOR_SIZE,
						       (ns - done) * VLUN_SECTOR_SIZE, false);
			if (rest)
				piece_end_status(rest, n == -ERANGE ? VLUN_E_RANGE : VLUN_E_HW);
			else
				vreq_fail(r, VLUN_E_NOMEM, pc->boff);
			break;
		}
		for (int i = 0; i < n; i++) {
			const struct vlun_extent *e = &ext[i];
			bool unbacked = e->member == VLUN_NO_MEMBER;
			uint64_t eoff = pc->boff + (e->vsector - vs) * VLUN_SECTOR_SIZE;
			bool clean = !unbacked && !(e->flags & (VLUN_EXT_INVALID | VLUN_EXT_ALT_DIRTY)) &&
				     (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER;
			uint32_t failed = VLUN_NO_MEMBER;
			if (clean && atomic_load(&p->members[e->member].failed))
				failed = e->member;
			else if (clean && atomic_load(&p->members[e->alt_member].failed))
				failed = e->alt_member;
			if (!(e->flags & (VLUN_EXT_INVALID | VLUN_EXT_NO_WRITE | VLUN_EXT_ZERO | VLUN_EXT_ERROR)) &&
			    failed == VLUN_NO_MEMBER) {
				/* Changed meanwhile: a normal write now. */
				dispatch(r, eoff, e->nsectors * VLUN_SECTOR_SIZE);
				continue;
			}
			if ((e->flags & VLUN_EXT_NO_WRITE) && !unbacked) {
				/* copied right now (resync, migration): wait */
				struct piece *w = piece_new(r, eoff, e->nsectors * VLUN_SECTOR_SIZE, true);
				if (!w) {
					vreq_fail(r, VLUN_E_NOMEM, pc->boff);
					continue;
				}
				w->next = vd->parked;
				vd->parked = w;
				continue;
			}
			if ((e->flags & VLUN_EXT_ERROR) || failed != VLUN_NO_MEMBER) {
				/* Change the persistent map, then write again once
				 * that change is durable. */
				int rr = failed != VLUN_NO_MEMBER
						 ? mirror_mark_behind_locked(p, vd->id, e->vsector, e->nsectors, failed)
						 : mirror_repair_error_locked(p, vd->id, e->vsector, e->nsectors);
				if (rr < 0) {
					vreq_fail(r, VLUN_E_WRITE, eoff);
					continue;
				}
				redispatch_after_commit(p, r, eoff, e->nsectors * VLUN_SECTOR_SIZE);
				continue;
			}
			if (!unbacked || vd->chunk_sectors == 0 || vd->layout != VLUN_LAYOUT_THIN) {
				vlun_err("vdisk '%s': write to an extent at sector %llu with flags 0x%x that "
					 "this version cannot fill", vd->name, (unsigned long long)e->vsector,
					 e->flags);
				vreq_fail(r, VLUN_E_HW, pc->boff + (e->vsector - vs) * VLUN_SECTOR_SIZE);
				continue;
			}
			/* Thin allocation, chunk by chunk. */
			uint64_t s = e->vsector, end = e->vsector + e->nsectors;
			while (s < end) {
				uint64_t vchunk = s - s % vd->chunk_sectors;
				uint64_t ce = VLUN_MIN(end, vchunk + vd->chunk_sectors);
				struct piece *w = piece_new(r, pc->boff + (s - vs) * VLUN_SECTOR_SIZE,
							    (ce - s) * VLUN_SECTOR_SIZE, true);
				if (!w) {
					vreq_fail(r, VLUN_E_NOMEM, pc->boff + (s - vs) * VLUN_SECTOR_SIZE);
				} else {
					struct prep *pr = prep_find(vd, vchunk);
					if (pr) {
						w->next = pr->waiters;
						pr->waiters = w;
					} else {
						prep_start(p, vd, w, vchunk);
					}
				}
				s = ce;
			}
		}
		done = ext[n - 1].vsector + ext[n - 1].nsectors - vs;
	}
	piece_end(pc, 0);
}

/* UNMAP / WRITE_ZEROES on a thin disk (ctl_lock held): whole chunks go
 * back to the pool, partial chunks that are allocated are zeroed. */
static void unmap_run(struct vlun_pool *p, struct piece *pc)
{
	struct vreq *r = pc->r;
	struct vlun_vdisk *vd = r->vd;
	uint64_t cs = vd->chunk_sectors;
	uint64_t vs = r->req->offset / VLUN_SECTOR_SIZE + pc->boff / VLUN_SECTOR_SIZE;
	uint64_t ve = vs + pc->len / VLUN_SECTOR_SIZE;
	uint64_t a = VLUN_ALIGN_UP(vs, cs), b = ve - ve % cs;
	struct vlun_extent ext[LOOKUP_BATCH];

	/* Partial chunks at either end: zero what is allocated. */
	uint64_t part[2][2];
	int np = 0;
	if (a > b) { /* inside one chunk */
		part[np][0] = vs;
		part[np++][1] = ve;
	} else {
		if (vs < a)
			part[np][0] = vs, part[np++][1] = a;
		if (b < ve && b >= a)
			part[np][0] = b, part[np++][1] = ve;
	}
	unsigned side = pool_io_enter(p);
	for (int k = 0; k < np; k++) {
		uint64_t s = part[k][0];
		while (s < part[k][1]) {
			int n = vlun_map_lookup(vd->map, s, part[k][1] - s, ext, LOOKUP_BATCH);
			if (n == -ENOBUFS)
				n = LOOKUP_BATCH;
			if (n <= 0)
				break;
			for (int i = 0; i < n; i++) {
				const struct vlun_extent *e = &ext[i];
				if (e->member == VLUN_NO_MEMBER || (e->flags & (VLUN_EXT_INVALID | VLUN_EXT_ZERO)))
					continue;
				if (e->flags & VLUN_EXT_ERROR) {
					vreq_fail(r, VLUN_E_WRITE, (e->vsector - vs) * VLUN_SECTOR_SIZE + pc->boff);
					continue;
				}
				struct piece *z = piece_new(r, pc->boff + (e->vsector - vs) * VLUN_SECTOR_SIZE,
							    e->nsectors * VLUN_SECTOR_SIZE, false);
				if (!z) {
					vreq_fail(r, VLUN_E_NOMEM, pc->boff);
					continue;
				}
				z->side = side;
				z->counted = true;
				pool_io_enter_side(p, side);
				bool both = (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER &&
					    !(e->flags & VLUN_EXT_ALT_DIRTY);
				struct piece *za = NULL;
				if (both) {
					/* made before z is sent: z may be freed on completion */
					za = piece_new(r, z->boff, z->len, false);
					if (za) {
						za->side = side;
						za->counted = true;
						za->kind = PK_MWRITE;
						pool_io_enter_side(p, side);
					} else {
						vreq_fail(r, VLUN_E_NOMEM, pc->boff);
					}
				}
				z->kind = both ? PK_MWRITE : PK_PLAIN;
				piece_submit(z, e->member, VLUN_PIO_ZERO, e->psector << VLUN_SECTOR_SHIFT);
				if (za)
					piece_submit(za, e->alt_member, VLUN_PIO_ZERO, e->alt_psector << VLUN_SECTOR_SHIFT);
			}
			s = ext[n - 1].vsector + ext[n - 1].nsectors;
		}
	}
	pool_io_exit(p, side);

	/* Whole chunks: free what is allocated, one map change for the run. */
	if (a < b) {
		bool any = false;
		uint64_t s = a;
		while (s < b) {
			int n = vlun_map_lookup(vd->map, s, b - s, ext, LOOKUP_BATCH);
			if (n == -ENOBUFS)
				n = LOOKUP_BATCH;
			if (n <= 0)
				break;
			for (int i = 0; i < n; i++) {
				const struct vlun_extent *e = &ext[i];
				if (e->member != VLUN_NO_MEMBER && !(e->flags & VLUN_EXT_INVALID)) {
					vlun_alloc_free(p->alloc, e->member, e->psector, e->nsectors);
					any = true;
				}
				if (e->flags & VLUN_EXT_ALT_EXISTS && e->alt_member != VLUN_NO_MEMBER) {
					vlun_alloc_free(p->alloc, e->alt_member, e->alt_psector, e->nsectors);
					any = true;
				}
			}
			s = ext[n - 1].vsector + ext[n - 1].nsectors;
		}
		if (any) {
			struct vlun_extent inv = {
				.vsector = a, .nsectors = b - a, .member = VLUN_NO_MEMBER,
				.alt_member = VLUN_NO_MEMBER, .flags = VLUN_EXT_INVALID,
			};
			int rr = vlun_map_set(vd->map, a, b - a, &inv, 1);
			if (rr == 0)
				rr = pool_record_change_locked(p, vd->id, a, b - a, &inv, 1);
			if (rr < 0) {
				vlun_err("vdisk '%s': unmap of sectors %llu..%llu failed: %s", vd->name,
					 (unsigned long long)a, (unsigned long long)b, strerror(-rr));
				vreq_fail(r, VLUN_E_HW, pc->boff);
			}
			p->frees_pending = true;
			atomic_store(&r->via_ctl, true);
			kick_parked(vd);
		}
	}
	piece_end(pc, 0);
}

static void wfail_commit_done(void *arg, int res)
{
	struct piece *pc = arg;
	piece_end(pc, res < 0 ? res : 0);
}

/* One side of a mirrored write failed (ctl_lock held): the member is
 * failed, the range is behind on it; the write succeeds if the other side
 * does — after the change is durable. */
static void wfail_run(struct vlun_pool *p, struct piece *pc)
{
	struct vreq *r = pc->r;
	uint64_t vs = r->req->offset / VLUN_SECTOR_SIZE + pc->boff / VLUN_SECTOR_SIZE;
	char why[96];
	snprintf(why, sizeof(why), "a write failed: %s", strerror(-pc->err));
	mirror_member_fail_locked(p, pc->member, why);
	int rr = mirror_mark_behind_locked(p, r->vd->id, vs, pc->len / VLUN_SECTOR_SIZE, pc->member);
	if (rr < 0) {
		piece_end(pc, pc->err);
		return;
	}
	pc->w.kind = CTL_COMMIT;
	pc->w.fn = wfail_commit_done;
	pc->w.arg = pc;
	pool_ctl_queue(p, &pc->w);
}

void vdisk_ctl_run_locked(struct vlun_pool *p, struct ctl_work *w)
{
	switch (w->kind) {
	case CTL_FAULT:
		fault_run(p, w->arg);
		break;
	case CTL_UNMAP:
		unmap_run(p, w->arg);
		break;
	case CTL_INSTALL:
		prep_install(p, w->arg);
		break;
	case CTL_WFAIL:
		wfail_run(p, w->arg);
		break;
	case CTL_FFAIL: {
		/* A member's cache flush failed: what it acknowledged since
		 * the last good flush may be lost. Where it holds mirror copies
		 * those are marked behind (the member fails over); data that
		 * lives only there makes the flush fail. */
		struct piece *pc = w->arg;
		char why[96];
		snprintf(why, sizeof(why), "a cache flush failed: %s", strerror(-pc->err));
		int rr = mirror_member_flush_failed_locked(p, pc->member, why);
		if (rr < 0) {
			piece_end(pc, pc->err);
			break;
		}
		pc->w.kind = CTL_COMMIT;
		pc->w.fn = wfail_commit_done;
		pc->w.arg = pc;
		pool_ctl_queue(p, &pc->w);
		break;
	}
	case CTL_MERR: {
		struct merr_work *mw = w->arg;
		if (mw->res == -EBADE)
			pool_ha_conflict_locked(p, mw->member, mw->res); /* not a failed member */
		else
			mirror_member_error_locked(p, mw->member, mw->res);
		free(mw);
		break;
	}
	default:
		break;
	}
}

/* ------------------------------------------------------------ fast path */

static void to_ctl(struct vreq *r, uint64_t boff, uint64_t len, enum ctl_work_kind kind, bool data)
{
	struct piece *pc = piece_new(r, boff, len, data);
	if (!pc) {
		vreq_fail(r, VLUN_E_NOMEM, boff);
		return;
	}
	atomic_store(&r->via_ctl, true);
	if (kind == CTL_FAULT)
		vlun_iostat_fault(&r->vd->stats);
	pc->w.kind = kind;
	pc->w.arg = pc;
	pool_ctl_queue(r->vd->pool, &pc->w);
}

/* Which copy of a clean mirrored extent serves a read: the member with
 * fewer commands outstanding, then the lower recent latency. */
static bool read_alt(struct vlun_pool *p, uint32_t pm, uint32_t am)
{
	uint64_t po = vlun_iostat_outstanding(&p->members[pm].stats);
	uint64_t ao = vlun_iostat_outstanding(&p->members[am].stats);
	if (po != ao)
		return ao < po;
	uint64_t pl = vlun_iostat_recent_ns(&p->members[pm].stats);
	uint64_t al = vlun_iostat_recent_ns(&p->members[am].stats);
	return al < pl;
}

/* A physical piece of extent e to member at poff (counted in side). */
static void submit_piece(struct vreq *r, unsigned side, uint64_t eoff, uint64_t elen, uint32_t member,
			 uint64_t poff, uint32_t op, uint8_t kind)
{
	struct vlun_pool *p = r->vd->pool;
	struct piece *pc = piece_new(r, eoff, elen, op == VLUN_PIO_READ || op == VLUN_PIO_WRITE);
	if (!pc) {
		vreq_fail(r, VLUN_E_NOMEM, eoff);
		return;
	}
	pc->side = side;
	pc->counted = true;
	pc->kind = kind;
	pool_io_enter_side(p, side);
	piece_submit(pc, member, op, poff);
}

/* Splits [boff, boff+len) of a READ / WRITE / WRITE_ZEROES (non-thin)
 * request along the map and submits the pieces.
 *
 * Mirrored extents (ALT_EXISTS): a clean one is read from either copy
 * (read_alt) and retried on the other on error; written to both copies
 * (PK_MWRITE pieces). A dirty one (ALT_DIRTY: the alternate is behind) is
 * read from and written to the primary only. A clean extent with a copy
 * on a FAILED member is a fault: the controller first marks the range
 * behind on that member (durably), then the write runs again and goes to
 * the healthy copy only. ERROR extents fault too (a clean alternate is
 * promoted) — reads of one use the clean alternate directly. */
static void dispatch(struct vreq *r, uint64_t boff, uint64_t len)
{
	struct vlun_vdisk *vd = r->vd;
	struct vlun_pool *p = vd->pool;
	const struct vlun_req *q = r->req;
	uint64_t vs = q->offset / VLUN_SECTOR_SIZE + boff / VLUN_SECTOR_SIZE;
	uint64_t ns = len / VLUN_SECTOR_SIZE;
	struct vlun_extent ext[LOOKUP_BATCH];
	uint64_t done = 0;

	unsigned side = pool_io_enter(p);
	vlun_io_plug(p->io); /* the pieces go to the kernel in one submission */
	while (done < ns) {
		int n = vlun_map_lookup(vd->map, vs + done, ns - done, ext, LOOKUP_BATCH);
		if (n == -ENOBUFS)
			n = LOOKUP_BATCH;
		if (n <= 0) {
			vreq_fail(r, n == -ERANGE ? VLUN_E_RANGE : VLUN_E_HW, boff + done * VLUN_SECTOR_SIZE);
			break;
		}
		for (int i = 0; i < n; i++) {
			const struct vlun_extent *e = &ext[i];
			uint64_t eoff = boff + (e->vsector - vs) * VLUN_SECTOR_SIZE;
			uint64_t elen = e->nsectors * VLUN_SECTOR_SIZE;
			bool unbacked = e->member == VLUN_NO_MEMBER || (e->flags & VLUN_EXT_INVALID);
			bool mirrored = !unbacked && (e->flags & VLUN_EXT_ALT_EXISTS) &&
					e->alt_member != VLUN_NO_MEMBER;
			bool clean = mirrored && !(e->flags & VLUN_EXT_ALT_DIRTY);
			bool pfail = !unbacked && atomic_load(&p->members[e->member].failed);
			bool afail = mirrored && atomic_load(&p->members[e->alt_member].failed);
			uint64_t ppos = e->psector << VLUN_SECTOR_SHIFT, apos = e->alt_psector << VLUN_SECTOR_SHIFT;

			if (q->op == VLUN_OP_READ) {
				if ((e->flags & VLUN_EXT_ERROR) && !(clean && !afail)) {
					vreq_fail(r, VLUN_E_READ, eoff);
					continue;
				}
				if (unbacked || (e->flags & VLUN_EXT_ZERO)) {
					/* zeros without I/O */
					struct piece *pc = piece_new(r, eoff, elen, true);
					if (!pc) {
						vreq_fail(r, VLUN_E_NOMEM, eoff);
						continue;
					}
					piece_zero_fill(pc);
					piece_end(pc, 0);
					continue;
				}
				if (!clean || afail) {
					submit_piece(r, side, eoff, elen, e->member, ppos, VLUN_PIO_READ, PK_PLAIN);
					continue;
				}
				bool alt = pfail || (e->flags & VLUN_EXT_ERROR) || read_alt(p, e->member, e->alt_member);
				struct piece *pc = piece_new(r, eoff, elen, true);
				if (!pc) {
					vreq_fail(r, VLUN_E_NOMEM, eoff);
					continue;
				}
				pc->side = side;
				pc->counted = true;
				pool_io_enter_side(p, side);
				if (!(e->flags & VLUN_EXT_ERROR)) {
					pc->kind = PK_MREAD;
					pc->other = alt ? e->member : e->alt_member;
					pc->other_poff = alt ? ppos : apos;
				}
				piece_submit(pc, alt ? e->alt_member : e->member, VLUN_PIO_READ, alt ? apos : ppos);
				continue;
			}

			/* WRITE / WRITE_ZEROES */
			bool zeroes = q->op == VLUN_OP_WRITE_ZEROES;
			if (zeroes && (unbacked || (e->flags & VLUN_EXT_ZERO)))
				continue;
			if (unbacked || (e->flags & (VLUN_EXT_NO_WRITE | VLUN_EXT_ZERO | VLUN_EXT_ERROR)) ||
			    (clean && (pfail || afail))) {
				to_ctl(r, eoff, elen, CTL_FAULT, !zeroes);
				continue;
			}
			uint32_t op = zeroes ? VLUN_PIO_ZERO : VLUN_PIO_WRITE;
			if (!clean) {
				submit_piece(r, side, eoff, elen, e->member, ppos, op, PK_PLAIN);
				continue;
			}
			submit_piece(r, side, eoff, elen, e->member, ppos, op, PK_MWRITE);
			submit_piece(r, side, eoff, elen, e->alt_member, apos, op, PK_MWRITE);
		}
		done = ext[n - 1].vsector + ext[n - 1].nsectors - vs;
	}
	vlun_io_unplug(p->io);
	pool_io_exit(p, side);
}

static void flush_commit_done(void *arg, int res)
{
	struct piece *pc = arg;
	if (res < 0)
		vlun_err("vdisk '%s': flush could not make the metadata durable: %s", pc->r->vd->name,
			 strerror(-res));
	piece_end(pc, res);
}

static void flush_start(struct vreq *r)
{
	struct vlun_pool *p = r->vd->pool;
	if (atomic_load(&p->meta_dirty) > 0) {
		/* Allocations not durable yet: the controller fsyncs every
		 * member and commits, shared with other flushes. */
		struct piece *pc = piece_new(r, 0, 0, false);
		if (!pc) {
			vreq_fail(r, VLUN_E_NOMEM, 0);
			return;
		}
		pc->w.kind = CTL_COMMIT;
		pc->w.fn = flush_commit_done;
		pc->w.arg = pc;
		pool_ctl_queue(p, &pc->w);
		return;
	}
	vlun_io_plug(p->io); /* one submission for all members */
	for (uint32_t m = 0; m < p->nmembers; m++) {
		/* A failed member holds no copy anyone relies on. */
		if (!p->members[m].dev || atomic_load(&p->members[m].failed))
			continue;
		struct piece *pc = piece_new(r, 0, 0, false);
		if (!pc) {
			vreq_fail(r, VLUN_E_NOMEM, 0);
			continue;
		}
		pc->kind = PK_FLUSH;
		piece_submit(pc, m, VLUN_PIO_FSYNC, 0);
	}
	vlun_io_unplug(p->io);
}

VLUN_EXPORT int vlun_vdisk_submit(struct vlun_vdisk *vd, struct vlun_req *req)
{
	if (!vd || !req || !req->done || req->op > VLUN_OP_WRITE_ZEROES)
		return -EINVAL;
	bool data = req->op == VLUN_OP_READ || req->op == VLUN_OP_WRITE;
	if (req->op != VLUN_OP_FLUSH) {
		if (req->offset % VLUN_SECTOR_SIZE || req->length % VLUN_SECTOR_SIZE)
			return -EINVAL;
		if (data && req->length > 0 &&
		    (!req->iov || req->iovcnt <= 0 || iov_len_total(req->iov, req->iovcnt) < req->length))
			return -EINVAL;
	}

	if (vd->view)
		return snap_view_submit(vd->view, req);
	/* Copy-on-first-write: only disks with a snapshot store pay for it. */
	struct snap_store *ss = atomic_load_explicit(&vd->snap, memory_order_acquire);
	int snap_side = -1;
	if (ss && req->op != VLUN_OP_READ && req->op != VLUN_OP_FLUSH && !vd->readonly) {
		snap_side = snap_write_enter(ss, req->offset, req->length);
		if (snap_side < 0) {
			atomic_fetch_add(&vd->inflight, 1);
			int rr = snap_source_write(ss, vd, req);
			if (rr < 0)
				vdisk_inflight_dec(vd);
			return rr;
		}
	}

	/* A standby serves reads from the owner's newest maps (node.c). */
	bool standby_stale = req->op == VLUN_OP_READ && atomic_load(&vd->pool->ha_fenced) &&
			     pool_ha_standby_sync(vd->pool) < 0;

	struct vreq *r = vreq_alloc(vd);
	if (!r) {
		if (snap_side >= 0)
			snap_write_exit(ss, (unsigned)snap_side);
		return -ENOMEM;
	}
	if (snap_side >= 0) {
		r->snap = ss;
		r->snap_side = (unsigned)snap_side + 1;
	}
	r->req = req;
	r->vd = vd;
	r->t0 = vlun_iostat_begin(&vd->stats);
	atomic_init(&r->refs, 1);
	req->err_offset = 0;
	atomic_fetch_add(&vd->inflight, 1);

	uint64_t size = vlun_map_size(vd->map) << VLUN_SECTOR_SHIFT;
	bool writes = req->op != VLUN_OP_READ && req->op != VLUN_OP_FLUSH;
	if (req->op != VLUN_OP_FLUSH && (req->offset > size || req->length > size - req->offset)) {
		vreq_fail(r, VLUN_E_RANGE, 0);
	} else if (writes && vd->readonly) {
		vreq_fail(r, VLUN_E_READONLY, 0);
	} else if (standby_stale || ((writes || req->op == VLUN_OP_FLUSH) && atomic_load(&vd->pool->ha_fenced))) {
		vreq_fail(r, VLUN_E_FENCED, 0); /* standby or fenced: not the owner (node.c) */
	} else if (req->op == VLUN_OP_FLUSH) {
		flush_start(r);
	} else if (req->length == 0) {
		/* nothing to do */
	} else if (req->op == VLUN_OP_UNMAP || req->op == VLUN_OP_WRITE_ZEROES) {
		if (vd->layout == VLUN_LAYOUT_THIN)
			to_ctl(r, 0, req->length, CTL_UNMAP, false);
		else if (req->op == VLUN_OP_WRITE_ZEROES)
			dispatch(r, 0, req->length);
		/* UNMAP on a fully provisioned disk: nothing to give back */
	} else {
		dispatch(r, 0, req->length);
	}

	/* Drop the submit reference; if everything is already done, the
	 * completion must still not run inside submit. */
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return 0;
	atomic_store(&r->refs, 1);
	if (r->status == VLUN_OK && req->op == VLUN_OP_WRITE && (req->flags & VLUN_REQ_FUA) &&
	    atomic_load(&vd->pool->meta_dirty) > 0) {
		vreq_put(r); /* queues the commit */
		return 0;
	}
	int rr = vlun_io_defer(vd->pool->io, vreq_finish_deferred, r);
	if (rr < 0) {
		if (r->snap_side)
			snap_write_exit(r->snap, r->snap_side - 1);
		vreq_release(vd, r);
		vdisk_inflight_dec(vd);
		return rr;
	}
	return 0;
}

/* ------------------------------------------------------------ open/close */

uint32_t vdisk_id_of(const struct vlun_vdisk *vd)
{
	return vd->id;
}

struct vlun_map *vdisk_map_of(const struct vlun_vdisk *vd)
{
	return vd->map;
}

bool vdisk_busy(const struct vlun_vdisk *vd)
{
	return atomic_load(&vd->inflight) > 0;
}

const struct vlun_iostat *vdisk_stats_of(const struct vlun_vdisk *vd)
{
	return &vd->stats;
}

void vdisk_kick_parked_locked(struct vlun_vdisk *vd)
{
	kick_parked(vd);
}

/* An engine reference (snap.c) rather than a user's open. */
#define VDISK_OPEN_HOLD (1u << 30)

static int vdisk_open_plain(struct vlun_pool *p, const char *name, unsigned flags, struct vlun_vdisk **ret,
			    char **ret_reason);

VLUN_EXPORT int vlun_vdisk_open(struct vlun_pool *p, const char *name, unsigned flags,
				struct vlun_vdisk **ret, char **ret_reason)
{
	if (!p || !name || !ret)
		return -EINVAL;
	if (strchr(name, '@'))
		return snap_view_open(p, name, flags, ret, ret_reason);
	int r = snap_source_attach(p, name, ret_reason);
	if (r < 0)
		return r;
	return vdisk_open_plain(p, name, flags & ~VDISK_OPEN_HOLD, ret, ret_reason);
}

static int vdisk_open_plain(struct vlun_pool *p, const char *name, unsigned flags, struct vlun_vdisk **ret,
			    char **ret_reason)
{
	int r;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk *vd = NULL;
	struct vlun_vdisk_desc *d = pool_find_vdisk_locked(p, name);
	if (!d) {
		vlun_set_reason(ret_reason, "pool '%s' has no virtual disk '%s'", p->desc->name, name);
		r = -ENOENT;
		goto out;
	}
	char sw[160];
	const char *refuse = (flags & VDISK_OPEN_HOLD) ? NULL : snap_refuse_locked(p, d, "export", sw, sizeof(sw));
	if (refuse) {
		vlun_set_reason(ret_reason, "%s", refuse);
		r = -EPERM;
		goto out;
	}
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i]->id == d->id) {
			if (flags & VDISK_OPEN_HOLD) {
				p->open[i]->holds++;
				*ret = p->open[i];
				r = 0;
				goto out;
			}
			if (p->open[i]->user) {
				vlun_set_reason(ret_reason, "virtual disk '%s' is already open in this process", name);
				r = -EBUSY;
				goto out;
			}
			/* held by the snapshot engine: the user shares it */
			p->open[i]->user = true;
			p->open[i]->readonly = (flags & VLUN_VDISK_OPEN_RDONLY) || (p->flags & VLUN_OPEN_RDONLY);
			*ret = p->open[i];
			r = 0;
			goto out;
		}
	struct vlun_vdisk **no = realloc(p->open, (p->nopen + 1) * sizeof(*no));
	if (no)
		p->open = no;
	vd = calloc(1, sizeof(*vd));
	if (!vd || !no) {
		r = -ENOMEM;
		goto out;
	}
	vd->pool = p;
	vd->id = d->id;
	snprintf(vd->name, sizeof(vd->name), "%s", d->name);
	vd->layout = d->layout;
	vd->chunk_sectors = d->chunk_sectors;
	vd->readonly = (flags & VLUN_VDISK_OPEN_RDONLY) || (p->flags & VLUN_OPEN_RDONLY);
	vd->user = !(flags & VDISK_OPEN_HOLD);
	vd->holds = (flags & VDISK_OPEN_HOLD) ? 1 : 0;
	pthread_mutex_init(&vd->lock, NULL);
	pthread_cond_init(&vd->idle, NULL);
	vlun_iostat_init(&vd->stats);
	r = vlun_map_new(d->extents, d->nextents, d->size_sectors, &vd->map);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot build the map of '%s': %s", name, strerror(-r));
		goto out;
	}
	r = pool_start_locked(p);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot start the I/O engine for '%s': %s", name, strerror(-r));
		goto out;
	}
	p->open[p->nopen++] = vd;
	*ret = vd;
	vd = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&p->ctl_lock);
	if (vd) {
		vlun_map_free(vd->map);
		free(vd);
	}
	return r;
}

VLUN_EXPORT void vlun_vdisk_close(struct vlun_vdisk *vd)
{
	if (!vd)
		return;
	if (vd->view) {
		snap_view_close(vd->view);
		return;
	}
	pthread_mutex_lock(&vd->lock);
	while (atomic_load(&vd->inflight) > 0)
		pthread_cond_wait(&vd->idle, &vd->lock);
	pthread_mutex_unlock(&vd->lock);

	struct vlun_pool *p = vd->pool;
	pthread_mutex_lock(&p->ctl_lock);
	vd->user = false;
	if (vd->holds > 0) {
		/* the snapshot engine still uses it */
		vd->readonly = p->flags & VLUN_OPEN_RDONLY;
		pthread_mutex_unlock(&p->ctl_lock);
		return;
	}
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i] == vd) {
			p->open[i] = p->open[--p->nopen];
			break;
		}
	/* NO_WRITE waiters cannot be left behind: nothing is in flight. */
	pthread_mutex_unlock(&p->ctl_lock);
	vlun_map_free(vd->map);
	vreq_cache_drain(vd);
	pthread_mutex_destroy(&vd->lock);
	pthread_cond_destroy(&vd->idle);
	free(vd);
}

VLUN_EXPORT uint64_t vlun_vdisk_size(const struct vlun_vdisk *vd)
{
	return vd ? vlun_map_size(vd->map) << VLUN_SECTOR_SHIFT : 0;
}

VLUN_EXPORT uint32_t vlun_vdisk_layout(const struct vlun_vdisk *vd)
{
	return vd ? vd->layout : 0;
}

VLUN_EXPORT uint64_t vlun_vdisk_chunk_bytes(const struct vlun_vdisk *vd)
{
	return vd && vd->layout != VLUN_LAYOUT_LINEAR ? vd->chunk_sectors << VLUN_SECTOR_SHIFT : 0;
}

VLUN_EXPORT int vlun_vdisk_lba_status(struct vlun_vdisk *vd, uint64_t offset, uint64_t max_len,
				      bool *ret_mapped, uint64_t *ret_len)
{
	if (!vd || !ret_mapped || !ret_len || offset % VLUN_SECTOR_SIZE)
		return -EINVAL;
	uint64_t size = vlun_map_size(vd->map);
	uint64_t s = offset >> VLUN_SECTOR_SHIFT;
	if (s >= size)
		return -ERANGE;
	if (vd->view) {
		/* a snapshot reads as provisioned everywhere */
		uint64_t left = (size - s) << VLUN_SECTOR_SHIFT;
		*ret_mapped = true;
		*ret_len = max_len && max_len < left ? max_len - max_len % VLUN_SECTOR_SIZE : left;
		return 0;
	}
	uint64_t want = max_len >> VLUN_SECTOR_SHIFT;
	if (want == 0 || want > size - s)
		want = size - s;
	struct vlun_extent ext[LOOKUP_BATCH];
	bool mapped = false, first = true;
	uint64_t run = 0;
	while (run < want) {
		int n = vlun_map_lookup(vd->map, s + run, want - run, ext, LOOKUP_BATCH);
		if (n == -ENOBUFS)
			n = LOOKUP_BATCH;
		if (n <= 0)
			return n == 0 ? -EIO : n;
		for (int i = 0; i < n; i++) {
			bool m = !(ext[i].flags & (VLUN_EXT_INVALID | VLUN_EXT_ZERO)) &&
				 ext[i].member != VLUN_NO_MEMBER;
			if (first) {
				mapped = m;
				first = false;
			} else if (m != mapped) {
				goto done;
			}
			run += ext[i].nsectors;
		}
	}
done:
	*ret_mapped = mapped;
	*ret_len = VLUN_MIN(run, want) << VLUN_SECTOR_SHIFT;
	return 0;
}

/* ------------------------------------------------------------ snapshot engine (snap.h) */

int vdisk_hold(struct vlun_pool *p, uint32_t id, struct vlun_vdisk **ret)
{
	pthread_mutex_lock(&p->ctl_lock);
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i]->id == id) {
			p->open[i]->holds++;
			*ret = p->open[i];
			pthread_mutex_unlock(&p->ctl_lock);
			return 0;
		}
	const struct vlun_vdisk_desc *d = pool_vdesc_by_id_locked(p, id);
	char name[VLUN_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", d ? d->name : "");
	pthread_mutex_unlock(&p->ctl_lock);
	if (!d)
		return -ENOENT;
	return vdisk_open_plain(p, name, VDISK_OPEN_HOLD, ret, NULL);
}

void vdisk_release(struct vlun_vdisk *vd)
{
	if (!vd)
		return;
	struct vlun_pool *p = vd->pool;
	pthread_mutex_lock(&p->ctl_lock);
	bool last = --vd->holds == 0 && !vd->user;
	if (last)
		vd->user = true; /* closed below as its last user */
	pthread_mutex_unlock(&p->ctl_lock);
	if (last)
		vlun_vdisk_close(vd);
}

void vdisk_set_snap(struct vlun_vdisk *vd, struct snap_store *ss)
{
	atomic_store_explicit(&vd->snap, ss, memory_order_release);
}

bool vdisk_user_open(struct vlun_vdisk *vd)
{
	return vd->user;
}

void vdisk_snap_hold_end(struct vlun_vdisk *vd)
{
	vdisk_inflight_dec(vd);
}

int vdisk_new_view(struct vlun_pool *p, const char *name, uint64_t size_sectors, struct snap_view *v,
		   struct vlun_vdisk **ret)
{
	struct vlun_vdisk *vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	struct vlun_extent inv = { .vsector = 0, .nsectors = size_sectors, .member = VLUN_NO_MEMBER,
				   .alt_member = VLUN_NO_MEMBER, .flags = VLUN_EXT_INVALID };
	int r = vlun_map_new(&inv, 1, size_sectors, &vd->map);
	if (r < 0) {
		free(vd);
		return r;
	}
	vd->pool = p;
	vd->id = UINT32_MAX;
	snprintf(vd->name, sizeof(vd->name), "%s", name);
	vd->layout = VLUN_LAYOUT_LINEAR;
	vd->view = v;
	pthread_mutex_init(&vd->lock, NULL);
	pthread_cond_init(&vd->idle, NULL);
	vlun_iostat_init(&vd->stats);
	*ret = vd;
	return 0;
}

void vdisk_free_view(struct vlun_vdisk *vd)
{
	if (!vd)
		return;
	vlun_map_free(vd->map);
	vreq_cache_drain(vd);
	pthread_mutex_destroy(&vd->lock);
	pthread_cond_destroy(&vd->idle);
	free(vd);
}
