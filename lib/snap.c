/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * snap.c — copy-on-first-write snapshot sessions (issue 5).
 *
 * STORE: per source disk with sessions, a hidden LINEAR vdisk of the pool
 * (flag SNAP_RESERVE, ".snap.<source>") plus a SNAP_STORE record; sessions
 * are SNAP records (meta.c). Session create/delete/fail = a checkpoint.
 * RESERVE FORMAT (bytes inside the reserve vdisk, little endian, written
 * only through the vdisk I/O path, 4 KiB per write):
 *   0     header copy A (4 KiB block, header in its first 512-byte sector:
 *         "VLUNSNAP", major 1, minor 0, crc32c, seq, source id, reserve id,
 *         chunk sectors, nslots, 248, copy, created); 4096: copy B.
 *         Rewritten (A then B, seq+1) only when the reserve grows.
 *   8192  groups: group g = one 4 KiB table block, then 248 slots of a chunk.
 *         Table block = 8 sectors, each self-contained: magic "SNPT", crc32c,
 *         group, sector index, 31 entries {chunk u64 (bit 63: written through
 *         a writable snapshot), session mask u64}; mask 0 = free slot.
 *   Torn writes: every 512-byte sector is checked alone and a write changes
 *   one entry (or strips bits, idempotent), so a torn 4 KiB block leaves
 *   each entry old or new. The table is the truth; the free set, the chunk
 *   -> slots chains and the per-chunk "done" bitmap are rebuilt at load
 *   (bits of gone or FAILED sessions stripped; a session in a written slot
 *   and in another slot of one chunk keeps the written one).
 * COPY-ON-FIRST-WRITE (commit order): a source write whose chunks are not
 *   all "done" goes to the snapshot worker thread (not the controller). It
 *   reads the old chunk from the source, writes it FUA to a free slot,
 *   writes the table block FUA with mask = active sessions that have no
 *   copy of the chunk, publishes the entry in memory, waits for snapshot
 *   reads that looked the chunk up before (read epoch), sets the done bit,
 *   then submits the write again through the hook. A crash before the
 *   table write leaves a free slot; after it, a complete saved copy.
 * SESSION CREATE: strip the chosen bit if stale, commit the SNAP record,
 *   clear every done bit, drain the store's write epoch (writes that passed
 *   the hook before are complete). DELETE: commit without the record, strip
 *   the bit (slots with mask 0 are free after a read drain); the last one
 *   removes store and reserve in the same checkpoint.
 * FULL: FAIL_SNAPSHOT commits the sessions FAILED, strips their bits, the
 *   write goes on; FAIL_WRITE fails the write (VLUN_E_NOSPACE).
 * Locks: snap_pool.lock (API, store list) > store.io_lock (table writes,
 *   slot choice) > store.lock (memory index) > ctl_lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "layout.h"
#include "pool_priv.h"
#include "snap.h"

/* initial-exec: the handler .so may import nothing beyond libc, tcmu and its
 * libraries, and the general-dynamic model would pull in __tls_get_addr */
__thread bool snap_internal_op __attribute__((tls_model("initial-exec")));

#define NONE UINT32_MAX
#define HDR_MAGIC "VLUNSNAP"
#define T_MAGIC 0x54504e53u /* "SNPT" */

/* ================================================================ codec */

uint64_t snap_group_off(uint64_t cb, uint64_t g)
{
	return SNAP_HDR_AREA + g * (SNAP_BLOCK + SNAP_GROUP_ENTRIES * cb);
}

uint64_t snap_slot_off(uint64_t cb, uint64_t slot)
{
	return snap_group_off(cb, slot / SNAP_GROUP_ENTRIES) + SNAP_BLOCK + (slot % SNAP_GROUP_ENTRIES) * cb;
}

uint64_t snap_slots_for(uint64_t cb, uint64_t bytes)
{
	if (cb == 0 || bytes < SNAP_HDR_AREA + SNAP_BLOCK + cb)
		return 0;
	uint64_t u = bytes - SNAP_HDR_AREA, gsz = SNAP_BLOCK + SNAP_GROUP_ENTRIES * cb;
	uint64_t full = u / gsz, rem = u % gsz;
	uint64_t extra = rem >= SNAP_BLOCK + cb ? (rem - SNAP_BLOCK) / cb : 0;
	return full * SNAP_GROUP_ENTRIES + extra;
}

static uint64_t bytes_for_slots(uint64_t cb, uint64_t n)
{
	uint64_t g = n / SNAP_GROUP_ENTRIES, r = n % SNAP_GROUP_ENTRIES;
	return snap_group_off(cb, g) + (r ? SNAP_BLOCK + r * cb : 0);
}

void snap_hdr_encode(const struct snap_hdr *h, unsigned copy, uint8_t blk[SNAP_BLOCK])
{
	memset(blk, 0, SNAP_BLOCK);
	memcpy(blk, HDR_MAGIC, 8);
	vlun_put_le16(blk + 8, 1);
	vlun_put_le16(blk + 10, 0);
	vlun_put_le64(blk + 16, h->seq);
	vlun_put_le32(blk + 24, h->source_id);
	vlun_put_le32(blk + 28, h->reserve_id);
	vlun_put_le64(blk + 32, h->chunk_sectors);
	vlun_put_le64(blk + 40, h->nslots);
	vlun_put_le32(blk + 48, SNAP_GROUP_ENTRIES);
	vlun_put_le32(blk + 52, copy);
	vlun_put_le64(blk + 56, h->created);
	vlun_put_le32(blk + 12, vlun_crc32c(0, blk, 512));
}

int snap_hdr_decode(const uint8_t blk[SNAP_BLOCK], unsigned copy, struct snap_hdr *ret, char *why, size_t whylen)
{
	uint8_t s[512];
	memcpy(s, blk, 512);
	if (memcmp(s, HDR_MAGIC, 8) != 0) {
		snprintf(why, whylen, "header copy %c: no snapshot reserve magic", 'A' + copy);
		return -EUCLEAN;
	}
	uint32_t crc = vlun_get_le32(s + 12);
	vlun_put_le32(s + 12, 0);
	if (vlun_crc32c(0, s, 512) != crc) {
		snprintf(why, whylen, "header copy %c: checksum mismatch (torn or corrupt)", 'A' + copy);
		return -EUCLEAN;
	}
	if (vlun_get_le16(s + 8) != 1) {
		snprintf(why, whylen, "header copy %c: format %u.%u is not supported; upgrade vlun", 'A' + copy,
			 vlun_get_le16(s + 8), vlun_get_le16(s + 10));
		return -EPROTONOSUPPORT;
	}
	if (vlun_get_le32(s + 48) != SNAP_GROUP_ENTRIES || vlun_get_le32(s + 52) != copy) {
		snprintf(why, whylen, "header copy %c: wrong group size or copy index (misplaced block)", 'A' + copy);
		return -EUCLEAN;
	}
	struct snap_hdr h = {
		.seq = vlun_get_le64(s + 16), .source_id = vlun_get_le32(s + 24), .reserve_id = vlun_get_le32(s + 28),
		.chunk_sectors = vlun_get_le64(s + 32), .nslots = vlun_get_le64(s + 40), .created = vlun_get_le64(s + 56),
	};
	if (h.chunk_sectors == 0 || (h.chunk_sectors & (h.chunk_sectors - 1)) || h.nslots > (1ull << 32) - 2) {
		snprintf(why, whylen, "header copy %c: bad chunk size %" PRIu64 " or slot count %" PRIu64, 'A' + copy,
			 h.chunk_sectors, h.nslots);
		return -EUCLEAN;
	}
	*ret = h;
	return 0;
}

void snap_tblock_encode(const struct snap_entry *e, uint64_t g, uint8_t blk[SNAP_BLOCK])
{
	memset(blk, 0, SNAP_BLOCK);
	for (unsigned sx = 0; sx < 8; sx++) {
		uint8_t *s = blk + sx * 512;
		vlun_put_le32(s, T_MAGIC);
		vlun_put_le32(s + 8, (uint32_t)g);
		vlun_put_le16(s + 12, (uint16_t)sx);
		vlun_put_le16(s + 14, 1);
		for (unsigned i = 0; i < SNAP_SECTOR_ENTRIES; i++) {
			const struct snap_entry *x = &e[sx * SNAP_SECTOR_ENTRIES + i];
			vlun_put_le64(s + 16 + i * 16, x->chunk);
			vlun_put_le64(s + 24 + i * 16, x->mask);
		}
		vlun_put_le32(s + 4, vlun_crc32c(0, s, 512));
	}
}

int snap_tsector_decode(const uint8_t *sec, uint64_t g, unsigned sidx, struct snap_entry *e, char *why,
			size_t whylen)
{
	uint8_t s[512];
	memcpy(s, sec, 512);
	bool zero = true;
	for (unsigned i = 0; i < 512 && zero; i++)
		zero = s[i] == 0;
	if (zero) {
		memset(e, 0, SNAP_SECTOR_ENTRIES * sizeof(*e));
		return 0;
	}
	uint32_t crc = vlun_get_le32(s + 4);
	vlun_put_le32(s + 4, 0);
	if (vlun_get_le32(s) != T_MAGIC || vlun_crc32c(0, s, 512) != crc) {
		snprintf(why, whylen, "table group %" PRIu64 " sector %u: %s", g, sidx,
			 vlun_get_le32(s) != T_MAGIC ? "no table magic" : "checksum mismatch (torn or corrupt)");
		return -EUCLEAN;
	}
	if (vlun_get_le32(s + 8) != (uint32_t)g || vlun_get_le16(s + 12) != sidx || vlun_get_le16(s + 14) != 1) {
		snprintf(why, whylen, "table group %" PRIu64 " sector %u: names group %u sector %u version %u "
			 "(misplaced or newer)", g, sidx, vlun_get_le32(s + 8), vlun_get_le16(s + 12),
			 vlun_get_le16(s + 14));
		return -EUCLEAN;
	}
	for (unsigned i = 0; i < SNAP_SECTOR_ENTRIES; i++) {
		e[i].chunk = vlun_get_le64(s + 16 + i * 16);
		e[i].mask = vlun_get_le64(s + 24 + i * 16);
	}
	return 0;
}

/* ================================================================ runtime */

struct sess {
	bool used;
	uint32_t id;
	uint32_t state;
	uint32_t flags;
	char name[VLUN_NAME_MAX + 1];
	unsigned views;
};

struct snap_store {
	struct snap_store *next;
	struct vlun_pool *p;
	uint32_t source_id, reserve_id;
	char source[VLUN_NAME_MAX + 1];
	char resname[VLUN_NAME_MAX + 1];
	uint64_t cb, chunk_sectors, nchunks, src_bytes;
	uint32_t policy;
	struct vlun_vdisk *src, *res;
	struct snap_hdr hdr;
	pthread_mutex_t io_lock;
	pthread_mutex_t lock;
	struct snap_entry *e;  /* [nslots] */
	uint8_t *pend;         /* freed, not reusable before a read drain */
	uint32_t *snext;       /* [nslots] chain */
	uint32_t *chead;       /* [nchunks] first slot or NONE */
	_Atomic uint64_t *done;/* [nchunks/64] */
	uint64_t nslots, nused, cursor;
	uint64_t active, bits;
	struct sess sess[VLUN_MAX_SNAPSHOTS];
	atomic_ulong rd_active[2];
	atomic_uint rd_epoch;
	atomic_ulong wr_active[2];
	atomic_uint wr_epoch;
	atomic_uint nheld;     /* work items of the worker */
	bool dead;
};

struct snap_view {
	struct snap_store *ss;
	unsigned bit;
	bool writable;
	struct vlun_vdisk *vd;
	atomic_ulong inflight;
	pthread_mutex_t m;
	pthread_cond_t c;
	char name[2 * VLUN_NAME_MAX + 2];
};

enum { W_SRC = 1, W_VIEW = 2 };
struct snap_work {
	struct snap_work *next;
	int kind;
	struct snap_store *ss;
	struct vlun_vdisk *vd;
	struct snap_view *v;
	struct vlun_req *orig;
	struct vlun_req inner;
};

/* The pool's rollback job (see "rollback" below). */
struct snap_rb {
	pthread_mutex_t lock;       /* these fields; taken under ctl_lock, nothing under it */
	bool busy;                  /* a rollback is claimed (checks or copy) */
	bool stop;                  /* pool close: stop between two chunks */
	bool joinable;              /* thread (snap_rollback_start) to be joined */
	pthread_t thread;
	struct vlun_job_info job;   /* the running or the last rollback; id 0: none yet */
	uint64_t finished;          /* unix time the last one ended */
	uint64_t t0_ns, win_ns, win_bytes;
};

struct snap_pool {
	pthread_mutex_t lock;
	struct snap_store *stores, *zombies;
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct snap_work *q_head, **q_tail;
	bool stop, started;
	pthread_t thread;
	struct snap_rb rb;
};

/* ---------------------------------------------------------------- sync I/O */

struct sio {
	struct vlun_req req;
	struct iovec iov;
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
	enum vlun_status st;
};

static void sio_done(struct vlun_req *q, enum vlun_status st)
{
	struct sio *s = q->priv;
	pthread_mutex_lock(&s->m);
	s->st = st;
	s->done = true;
	pthread_cond_signal(&s->c);
	pthread_mutex_unlock(&s->m);
}

static int vd_io(struct vlun_vdisk *vd, uint32_t op, uint32_t flags, uint64_t off, void *buf, uint64_t len)
{
	struct sio s = { 0 };
	pthread_mutex_init(&s.m, NULL);
	pthread_cond_init(&s.c, NULL);
	s.iov.iov_base = buf;
	s.iov.iov_len = len;
	s.req.op = op;
	s.req.flags = flags;
	s.req.offset = off;
	s.req.length = op == VLUN_OP_FLUSH ? 0 : len;
	s.req.iov = buf ? &s.iov : NULL;
	s.req.iovcnt = buf ? 1 : 0;
	s.req.done = sio_done;
	s.req.priv = &s;
	int r = vlun_vdisk_submit(vd, &s.req);
	if (r == 0) {
		pthread_mutex_lock(&s.m);
		while (!s.done)
			pthread_cond_wait(&s.c, &s.m);
		pthread_mutex_unlock(&s.m);
		r = s.st == VLUN_OK ? 0 : s.st == VLUN_E_NOSPACE ? -ENOSPC : s.st == VLUN_E_NOMEM ? -ENOMEM : -EIO;
	}
	pthread_mutex_destroy(&s.m);
	pthread_cond_destroy(&s.c);
	return r;
}

/* A write of the engine to the reserve: a crash point (blkdev.h). */
static int res_write(struct snap_store *ss, const char *what, uint64_t off, const void *buf, uint64_t len)
{
	switch (vlun_crash_point(what, ss->resname, off, len)) {
	case VLUN_CRASH_SKIP:
		return 0;
	case VLUN_CRASH_EIO:
		return -EIO;
	case VLUN_CRASH_TORN:
		vd_io(ss->res, VLUN_OP_WRITE, VLUN_REQ_FUA, off, (void *)buf, VLUN_MIN(len, 512u));
		_exit(VLUN_CRASH_EXIT_CODE);
	default:
		break;
	}
	return vd_io(ss->res, VLUN_OP_WRITE, VLUN_REQ_FUA, off, (void *)buf, len);
}

static void *abuf(uint64_t len)
{
	void *b = NULL;
	if (posix_memalign(&b, 4096, len ? len : 4096) != 0)
		return NULL;
	return b;
}

/* ---------------------------------------------------------------- epochs */

static unsigned rd_enter(struct snap_store *ss)
{
	unsigned side = atomic_load(&ss->rd_epoch) & 1;
	atomic_fetch_add(&ss->rd_active[side], 1);
	return side;
}

static void rd_exit(struct snap_store *ss, unsigned side)
{
	atomic_fetch_sub(&ss->rd_active[side], 1);
}

static void rd_drain(struct snap_store *ss)
{
	unsigned old = atomic_fetch_add(&ss->rd_epoch, 1) & 1;
	for (unsigned n = 0; atomic_load(&ss->rd_active[old]) > 0; n++)
		usleep(n < 100 ? 20 : 500);
}

static void wr_drain(struct snap_store *ss)
{
	unsigned old = atomic_fetch_add(&ss->wr_epoch, 1) & 1;
	for (unsigned n = 0; atomic_load(&ss->wr_active[old]) > 0; n++)
		usleep(n < 100 ? 20 : 500);
}

/* ---------------------------------------------------------------- index */

static bool done_test(struct snap_store *ss, uint64_t c)
{
	return atomic_load(&ss->done[c / 64]) & (1ull << (c % 64));
}

static uint64_t covered(struct snap_store *ss, uint64_t c)
{
	uint64_t m = 0;
	for (uint32_t s = ss->chead[c]; s != NONE; s = ss->snext[s])
		m |= ss->e[s].mask;
	return m;
}

static uint32_t find_slot(struct snap_store *ss, uint64_t c, uint64_t bit)
{
	for (uint32_t s = ss->chead[c]; s != NONE; s = ss->snext[s])
		if (ss->e[s].mask & bit)
			return s;
	return NONE;
}

/* lock held */
static void done_update(struct snap_store *ss, uint64_t c)
{
	uint64_t b = 1ull << (c % 64);
	if ((ss->active & ~covered(ss, c)) == 0)
		atomic_fetch_or(&ss->done[c / 64], b);
	else
		atomic_fetch_and(&ss->done[c / 64], ~b);
}

static uint64_t e_chunk(const struct snap_entry *e)
{
	return e->chunk & ~SNAP_ENTRY_WRITTEN;
}

/* Sets entry s in memory (lock held); a slot becoming free is pending. */
static void apply_entry(struct snap_store *ss, uint32_t s, struct snap_entry ne)
{
	struct snap_entry *o = &ss->e[s];
	if (o->mask) {
		uint64_t c = e_chunk(o);
		for (uint32_t *pp = &ss->chead[c]; *pp != NONE; pp = &ss->snext[*pp])
			if (*pp == s) {
				*pp = ss->snext[s];
				break;
			}
		ss->nused--;
		if (!ne.mask)
			ss->pend[s] = 1;
	}
	if (ne.mask) {
		uint64_t c = e_chunk(&ne);
		ss->snext[s] = ss->chead[c];
		ss->chead[c] = s;
		ss->nused++;
	}
	*o = ne;
}

static uint32_t alloc_slot(struct snap_store *ss)
{
	for (uint64_t k = 0; k < ss->nslots; k++) {
		uint64_t s = (ss->cursor + k) % ss->nslots;
		if (ss->e[s].mask == 0 && !ss->pend[s]) {
			ss->cursor = s + 1;
			return (uint32_t)s;
		}
	}
	return NONE;
}

static void pend_clear(struct snap_store *ss)
{
	rd_drain(ss);
	pthread_mutex_lock(&ss->lock);
	memset(ss->pend, 0, ss->nslots);
	pthread_mutex_unlock(&ss->lock);
}

/* Writes group g's block with entries e[] where slot `s` reads as `ne`
 * (io_lock held). */
static int write_group(struct snap_store *ss, const char *what, uint64_t g, const struct snap_entry *over,
		       uint32_t over_slot)
{
	struct snap_entry ent[SNAP_GROUP_ENTRIES];
	memset(ent, 0, sizeof(ent));
	uint64_t first = g * SNAP_GROUP_ENTRIES;
	for (unsigned i = 0; i < SNAP_GROUP_ENTRIES && first + i < ss->nslots; i++)
		ent[i] = (first + i == over_slot && over) ? *over : ss->e[first + i];
	uint8_t *blk = abuf(SNAP_BLOCK);
	if (!blk)
		return -ENOMEM;
	snap_tblock_encode(ent, g, blk);
	int r = res_write(ss, what, snap_group_off(ss->cb, g), blk, SNAP_BLOCK);
	free(blk);
	return r;
}

static int write_entry(struct snap_store *ss, const char *what, uint32_t s, struct snap_entry ne)
{
	int r = write_group(ss, what, s / SNAP_GROUP_ENTRIES, &ne, s);
	if (r < 0)
		vlun_err("snapshot reserve of '%s': writing table entry of slot %u failed: %s", ss->source, s,
			 strerror(-r));
	return r;
}

/* Removes the bits from every entry, durably (io_lock held). */
static int strip_bits(struct snap_store *ss, uint64_t bits)
{
	uint64_t ng = VLUN_DIV_ROUND_UP(ss->nslots, SNAP_GROUP_ENTRIES);
	int ret = 0;
	bool freed = false;
	for (uint64_t g = 0; g < ng; g++) {
		uint64_t first = g * SNAP_GROUP_ENTRIES, last = VLUN_MIN(ss->nslots, first + SNAP_GROUP_ENTRIES);
		bool any = false;
		for (uint64_t s = first; s < last && !any; s++)
			any = ss->e[s].mask & bits;
		if (!any)
			continue;
		struct snap_entry ent[SNAP_GROUP_ENTRIES];
		memset(ent, 0, sizeof(ent));
		for (uint64_t s = first; s < last; s++) {
			ent[s - first] = ss->e[s];
			ent[s - first].mask &= ~bits;
			if (!ent[s - first].mask)
				ent[s - first].chunk = 0;
		}
		uint8_t *blk = abuf(SNAP_BLOCK);
		if (!blk)
			return -ENOMEM;
		snap_tblock_encode(ent, g, blk);
		int r = res_write(ss, "snap-strip", snap_group_off(ss->cb, g), blk, SNAP_BLOCK);
		free(blk);
		if (r < 0) {
			ret = r;
			continue;
		}
		pthread_mutex_lock(&ss->lock);
		for (uint64_t s = first; s < last; s++)
			if (ss->e[s].mask & bits) {
				uint64_t c = e_chunk(&ss->e[s]);
				apply_entry(ss, (uint32_t)s, ent[s - first]);
				freed |= ent[s - first].mask == 0;
				done_update(ss, c);
			}
		pthread_mutex_unlock(&ss->lock);
	}
	if (freed)
		pend_clear(ss);
	return ret;
}

/* ---------------------------------------------------------------- worker */

static struct snap_pool *sp_get(struct vlun_pool *p)
{
	pthread_mutex_lock(&p->ctl_lock);
	if (!p->snap) {
		struct snap_pool *sp = calloc(1, sizeof(*sp));
		if (sp) {
			pthread_mutex_init(&sp->lock, NULL);
			pthread_mutex_init(&sp->q_lock, NULL);
			pthread_cond_init(&sp->q_cond, NULL);
			pthread_mutex_init(&sp->rb.lock, NULL);
			sp->q_tail = &sp->q_head;
			p->snap = sp;
		}
	}
	struct snap_pool *sp = p->snap;
	pthread_mutex_unlock(&p->ctl_lock);
	return sp;
}

static void *worker_main(void *arg);

static int worker_start(struct snap_pool *sp)
{
	pthread_mutex_lock(&sp->q_lock);
	int r = 0;
	if (!sp->started) {
		r = -pthread_create(&sp->thread, NULL, worker_main, sp);
		sp->started = r == 0;
	}
	pthread_mutex_unlock(&sp->q_lock);
	return r;
}

static void queue_work(struct vlun_pool *p, struct snap_work *w)
{
	struct snap_pool *sp = p->snap;
	atomic_fetch_add(&w->ss->nheld, 1);
	w->next = NULL;
	pthread_mutex_lock(&sp->q_lock);
	*sp->q_tail = w;
	sp->q_tail = &w->next;
	pthread_cond_signal(&sp->q_cond);
	pthread_mutex_unlock(&sp->q_lock);
}

/* Commits sessions in `bits` as FAILED with why (io_lock held). */
static int fail_sessions(struct snap_store *ss, uint64_t bits, const char *why)
{
	struct vlun_pool *p = ss->p;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_pool_desc *d = p->desc;
	for (uint32_t i = 0; i < d->nsnaps; i++) {
		struct vlun_snap_desc *s = &d->snaps[i];
		if (s->source_id == ss->source_id && (bits & (1ull << s->bit))) {
			s->state = VLUN_SNAP_FAILED;
			snprintf(s->why, sizeof(s->why), "%s", why);
			vlun_err("snapshot '%s@%s' FAILED: %s", ss->source, s->name, why);
		}
	}
	p->need_full_commit = true;
	int r = pool_commit_locked(p);
	pthread_mutex_unlock(&p->ctl_lock);
	if (r < 0) {
		vlun_err("snapshot reserve of '%s': cannot commit the failed sessions: %s", ss->source, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&ss->lock);
	ss->active &= ~bits;
	for (unsigned b = 0; b < VLUN_MAX_SNAPSHOTS; b++)
		if (bits & (1ull << b))
			ss->sess[b].state = VLUN_SNAP_FAILED;
	pthread_mutex_unlock(&ss->lock);
	return strip_bits(ss, bits);
}

/* Saves chunk c for the sessions that need it. 0 (nothing more needed), or
 * -ENOSPC (FAIL_WRITE), -EIO. */
static int cow_chunk(struct snap_store *ss, uint64_t c)
{
	pthread_mutex_lock(&ss->io_lock);
	pthread_mutex_lock(&ss->lock);
	int r = 0;
	if (done_test(ss, c)) {
		pthread_mutex_unlock(&ss->lock);
		goto out;
	}
	uint64_t need = ss->active & ~covered(ss, c);
	if (need == 0) {
		done_update(ss, c);
		pthread_mutex_unlock(&ss->lock);
		goto out;
	}
	uint32_t s = alloc_slot(ss);
	pthread_mutex_unlock(&ss->lock);
	if (s == NONE) {
		if (ss->policy == VLUN_SNAP_FULL_FAIL_WRITE) {
			vlun_err("snapshot reserve of '%s' full at %" PRIu64 " chunks: the write to chunk %" PRIu64
				 " fails (policy fail-write); grow it with vlunctl snapshot reserve", ss->source,
				 ss->nslots, c);
			r = -ENOSPC;
			goto out;
		}
		char why[200];
		snprintf(why, sizeof(why), "reserve of '%s' full at %" PRIu64 " chunks; grow it with vlunctl snapshot reserve",
			 ss->source, ss->nslots);
		r = fail_sessions(ss, need, why);
		pthread_mutex_lock(&ss->lock);
		done_update(ss, c);
		pthread_mutex_unlock(&ss->lock);
		goto out;
	}
	uint64_t len = VLUN_MIN(ss->cb, ss->src_bytes - c * ss->cb);
	void *buf = abuf(ss->cb);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	r = vd_io(ss->src, VLUN_OP_READ, 0, c * ss->cb, buf, len);
	if (r == 0)
		r = res_write(ss, "snap-copy", snap_slot_off(ss->cb, s), buf, len);
	free(buf);
	struct snap_entry ne = { .chunk = c, .mask = need };
	if (r == 0)
		r = write_entry(ss, "snap-cow-table", s, ne);
	if (r < 0) {
		vlun_err("snapshot reserve of '%s': saving chunk %" PRIu64 " failed: %s", ss->source, c, strerror(-r));
		r = -EIO;
		goto out;
	}
	pthread_mutex_lock(&ss->lock);
	apply_entry(ss, s, ne);
	pthread_mutex_unlock(&ss->lock);
	rd_drain(ss); /* snapshot reads that looked c up in the source are over */
	pthread_mutex_lock(&ss->lock);
	done_update(ss, c);
	pthread_mutex_unlock(&ss->lock);
out:
	pthread_mutex_unlock(&ss->io_lock);
	return r;
}

static void inner_done(struct vlun_req *q, enum vlun_status st)
{
	struct snap_work *w = q->priv;
	struct vlun_req *orig = w->orig;
	struct vlun_vdisk *vd = w->vd;
	orig->err_offset = q->err_offset;
	free(w);
	vdisk_snap_hold_end(vd);
	orig->done(orig, st);
}

static void work_end(struct snap_work *w, enum vlun_status st)
{
	struct vlun_req *orig = w->orig;
	struct vlun_vdisk *vd = w->vd;
	orig->err_offset = st == VLUN_OK ? 0 : orig->offset;
	free(w);
	if (vd)
		vdisk_snap_hold_end(vd);
	orig->done(orig, st);
}

static void do_src_write(struct snap_work *w)
{
	struct snap_store *ss = w->ss;
	struct vlun_req *q = w->orig;
	enum vlun_status st = VLUN_OK;
	if (q->length > 0 && q->offset < ss->src_bytes) {
		uint64_t c0 = q->offset / ss->cb;
		uint64_t c1 = (VLUN_MIN(q->offset + q->length, ss->src_bytes) - 1) / ss->cb;
		for (uint64_t c = c0; c <= c1; c++) {
			int r = cow_chunk(ss, c);
			if (r < 0) {
				st = r == -ENOSPC ? VLUN_E_NOSPACE : VLUN_E_HW;
				break;
			}
		}
	}
	atomic_fetch_sub(&ss->nheld, 1);
	if (st != VLUN_OK) {
		work_end(w, st);
		return;
	}
	/* Again through the hook: a session created meanwhile copies too. */
	w->inner = *q;
	w->inner.done = inner_done;
	w->inner.priv = w;
	int r = vlun_vdisk_submit(w->vd, &w->inner);
	if (r < 0)
		work_end(w, r == -ENOMEM ? VLUN_E_NOMEM : VLUN_E_HW);
}

static void iov_gather(const struct iovec *iov, int cnt, uint64_t skip, uint8_t *dst, uint64_t len)
{
	for (int i = 0; i < cnt && len > 0; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		uint64_t n = VLUN_MIN(len, iov[i].iov_len - skip);
		memcpy(dst, (uint8_t *)iov[i].iov_base + skip, n);
		dst += n;
		len -= n;
		skip = 0;
	}
}

static int mark_written(struct snap_store *ss, struct sess *se)
{
	if (se->flags & VLUN_SNAP_WRITTEN)
		return 0;
	struct vlun_pool *p = ss->p;
	pthread_mutex_lock(&p->ctl_lock);
	for (uint32_t i = 0; i < p->desc->nsnaps; i++)
		if (p->desc->snaps[i].id == se->id)
			p->desc->snaps[i].flags |= VLUN_SNAP_WRITTEN;
	p->need_full_commit = true;
	int r = pool_commit_locked(p);
	pthread_mutex_unlock(&p->ctl_lock);
	if (r == 0)
		se->flags |= VLUN_SNAP_WRITTEN;
	return r;
}

/* A write through a writable snapshot, chunk c, [a, a+n) inside it, data
 * at request offset boff (io_lock held). */
static int view_write_chunk(struct snap_view *v, const struct vlun_req *q, uint64_t c, uint64_t a, uint64_t n,
			    uint64_t boff)
{
	struct snap_store *ss = v->ss;
	uint64_t bit = 1ull << v->bit;
	pthread_mutex_lock(&ss->lock);
	uint32_t old = find_slot(ss, c, bit);
	bool priv = old != NONE && ss->e[old].mask == bit;
	uint32_t ns = priv ? NONE : alloc_slot(ss);
	pthread_mutex_unlock(&ss->lock);
	bool zero = q->op == VLUN_OP_WRITE_ZEROES || q->op == VLUN_OP_UNMAP;
	uint64_t len = VLUN_MIN(ss->cb, ss->src_bytes - c * ss->cb);
	int r;
	if (priv) {
		uint8_t *b = abuf(n);
		if (!b)
			return -ENOMEM;
		if (zero)
			memset(b, 0, n);
		else
			iov_gather(q->iov, q->iovcnt, boff, b, n);
		r = res_write(ss, "snap-view-write", snap_slot_off(ss->cb, old) + a, b, n);
		free(b);
		return r;
	}
	if (ns == NONE)
		return -ENOSPC;
	uint8_t *buf = abuf(ss->cb);
	if (!buf)
		return -ENOMEM;
	r = old != NONE ? vd_io(ss->res, VLUN_OP_READ, 0, snap_slot_off(ss->cb, old), buf, len)
			: vd_io(ss->src, VLUN_OP_READ, 0, c * ss->cb, buf, len);
	if (r == 0) {
		if (zero)
			memset(buf + a, 0, n);
		else
			iov_gather(q->iov, q->iovcnt, boff, buf + a, n);
		r = res_write(ss, "snap-view-copy", snap_slot_off(ss->cb, ns), buf, len);
	}
	free(buf);
	struct snap_entry ne = { .chunk = c | SNAP_ENTRY_WRITTEN, .mask = bit };
	if (r == 0)
		r = write_entry(ss, "snap-view-table", ns, ne);
	if (r < 0)
		return r;
	/* in memory before the old entry's block is built: it may be the same
	 * block (the chain lists the new slot first, so reads take it) */
	pthread_mutex_lock(&ss->lock);
	apply_entry(ss, ns, ne);
	pthread_mutex_unlock(&ss->lock);
	struct snap_entry oe = { 0 };
	if (old != NONE) {
		oe = ss->e[old];
		oe.mask &= ~bit;
		if (!oe.mask)
			oe.chunk = 0;
		r = write_entry(ss, "snap-view-table", old, oe);
	}
	pthread_mutex_lock(&ss->lock);
	if (old != NONE && r == 0)
		apply_entry(ss, old, oe);
	done_update(ss, c);
	pthread_mutex_unlock(&ss->lock);
	if (old != NONE && r == 0 && !oe.mask)
		pend_clear(ss);
	return 0; /* a failed strip of the old entry is resolved at load (written wins) */
}

static void do_view_write(struct snap_work *w)
{
	struct snap_view *v = w->v;
	struct snap_store *ss = v->ss;
	struct vlun_req *q = w->orig;
	enum vlun_status st = VLUN_OK;
	pthread_mutex_lock(&ss->io_lock);
	struct sess *se = &ss->sess[v->bit];
	if (se->state != VLUN_SNAP_ACTIVE) {
		vlun_err("snapshot '%s' is FAILED: write refused", v->name);
		st = VLUN_E_HW;
	} else if (mark_written(ss, se) < 0) {
		st = VLUN_E_HW;
	} else {
		uint64_t off = q->offset, end = q->offset + q->length;
		while (off < end) {
			uint64_t c = off / ss->cb, a = off % ss->cb, n = VLUN_MIN(end - off, ss->cb - a);
			int r = view_write_chunk(v, q, c, a, n, off - q->offset);
			if (r < 0) {
				if (r == -ENOSPC)
					vlun_err("snapshot '%s': reserve full, write of chunk %" PRIu64 " refused", v->name, c);
				st = r == -ENOSPC ? VLUN_E_NOSPACE : VLUN_E_WRITE;
				break;
			}
			off += n;
		}
	}
	pthread_mutex_unlock(&ss->io_lock);
	atomic_fetch_sub(&ss->nheld, 1);
	if (atomic_fetch_sub(&v->inflight, 1) == 1) {
		pthread_mutex_lock(&v->m);
		pthread_cond_broadcast(&v->c);
		pthread_mutex_unlock(&v->m);
	}
	w->vd = NULL;
	work_end(w, st);
}

static void *worker_main(void *arg)
{
	struct snap_pool *sp = arg;
	for (;;) {
		pthread_mutex_lock(&sp->q_lock);
		while (!sp->q_head && !sp->stop)
			pthread_cond_wait(&sp->q_cond, &sp->q_lock);
		struct snap_work *w = sp->q_head;
		if (w) {
			sp->q_head = w->next;
			if (!sp->q_head)
				sp->q_tail = &sp->q_head;
		}
		pthread_mutex_unlock(&sp->q_lock);
		if (!w)
			break;
		if (w->kind == W_SRC)
			do_src_write(w);
		else
			do_view_write(w);
	}
	return NULL;
}

/* ---------------------------------------------------------------- hooks */

int snap_write_enter(struct snap_store *ss, uint64_t offset, uint64_t length)
{
	unsigned side = atomic_load(&ss->wr_epoch) & 1;
	atomic_fetch_add(&ss->wr_active[side], 1);
	if (length == 0 || offset >= ss->src_bytes)
		return (int)side;
	uint64_t c0 = offset / ss->cb, c1 = (VLUN_MIN(offset + length, ss->src_bytes) - 1) / ss->cb;
	for (uint64_t c = c0; c <= c1; c++)
		if (!done_test(ss, c)) {
			atomic_fetch_sub(&ss->wr_active[side], 1);
			return -1;
		}
	return (int)side;
}

void snap_write_exit(struct snap_store *ss, unsigned side)
{
	atomic_fetch_sub(&ss->wr_active[side], 1);
}

int snap_source_write(struct snap_store *ss, struct vlun_vdisk *vd, struct vlun_req *req)
{
	struct snap_work *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->kind = W_SRC;
	w->ss = ss;
	w->vd = vd;
	w->orig = req;
	queue_work(ss->p, w);
	return 0;
}

/* ---------------------------------------------------------------- stores */

static struct snap_store *store_find(struct snap_pool *sp, uint32_t source_id)
{
	for (struct snap_store *s = sp->stores; s; s = s->next)
		if (s->source_id == source_id)
			return s;
	return NULL;
}

static struct vlun_snap_store_desc *sdesc_locked(struct vlun_pool *p, uint32_t source_id)
{
	for (uint32_t i = 0; i < p->desc->nsnap_stores; i++)
		if (p->desc->snap_stores[i].source_id == source_id)
			return &p->desc->snap_stores[i];
	return NULL;
}

static void store_free(struct snap_store *ss)
{
	if (!ss)
		return;
	free(ss->e);
	free(ss->pend);
	free(ss->snext);
	free(ss->chead);
	free((void *)ss->done);
	pthread_mutex_destroy(&ss->lock);
	pthread_mutex_destroy(&ss->io_lock);
	free(ss);
}

static int store_arrays(struct snap_store *ss, uint64_t nslots)
{
	struct snap_entry *e = realloc(ss->e, (nslots ? nslots : 1) * sizeof(*e));
	if (e)
		ss->e = e;
	uint8_t *pd = realloc(ss->pend, nslots ? nslots : 1);
	if (pd)
		ss->pend = pd;
	uint32_t *sn = realloc(ss->snext, (nslots ? nslots : 1) * sizeof(*sn));
	if (sn)
		ss->snext = sn;
	if (!e || !pd || !sn)
		return -ENOMEM;
	for (uint64_t s = ss->nslots; s < nslots; s++) {
		ss->e[s] = (struct snap_entry){ 0 };
		ss->pend[s] = 0;
		ss->snext[s] = NONE;
	}
	ss->nslots = nslots;
	return 0;
}

/* Removes the store (and its reserve) of source_id from the description
 * and commits (ctl_lock held). Its space is free once that is durable. */
static int store_remove_locked(struct vlun_pool *p, uint32_t source_id)
{
	struct vlun_pool_desc *d = p->desc;
	struct vlun_snap_store_desc *sd = sdesc_locked(p, source_id);
	if (!sd)
		return 0;
	uint32_t rid = sd->reserve_id;
	struct vlun_snap_store_desc saved = *sd;
	size_t si = (size_t)(sd - d->snap_stores);
	memmove(sd, sd + 1, (d->nsnap_stores - si - 1) * sizeof(*sd));
	d->nsnap_stores--;
	struct vlun_vdisk_desc *vd = pool_vdesc_by_id_locked(p, rid);
	struct vlun_vdisk_desc gone = { 0 };
	size_t vi = 0;
	if (vd) {
		vi = (size_t)(vd - d->vdisks);
		gone = *vd;
		memmove(vd, vd + 1, (d->nvdisks - vi - 1) * sizeof(*vd));
		d->nvdisks--;
		d->generation++;
	}
	p->need_full_commit = true;
	int r = pool_commit_locked(p);
	if (r < 0) {
		if (gone.extents || gone.nextents) {
			memmove(&d->vdisks[vi + 1], &d->vdisks[vi], (d->nvdisks - vi) * sizeof(*vd));
			d->vdisks[vi] = gone;
			d->nvdisks++;
		}
		memmove(&d->snap_stores[si + 1], &d->snap_stores[si], (d->nsnap_stores - si) * sizeof(*sd));
		d->snap_stores[si] = saved;
		d->nsnap_stores++;
		return r;
	}
	if (vd) {
		vlun_layout_release(p->alloc, &gone);
		pool_epoch_drain(p);
		vlun_alloc_commit_done(p->alloc);
		free(gone.extents);
	}
	return 0;
}

static int write_headers(struct snap_store *ss)
{
	uint8_t *blk = abuf(SNAP_BLOCK);
	if (!blk)
		return -ENOMEM;
	int r = 0;
	for (unsigned k = 0; k < 2 && r == 0; k++) {
		snap_hdr_encode(&ss->hdr, k, blk);
		r = res_write(ss, "snap-header", k * SNAP_BLOCK, blk, SNAP_BLOCK);
	}
	free(blk);
	return r;
}

static struct snap_store *store_new(struct vlun_pool *p, const struct vlun_snap_store_desc *sd,
				    const struct vlun_vdisk_desc *src, const struct vlun_vdisk_desc *res)
{
	struct snap_store *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return NULL;
	ss->p = p;
	ss->source_id = sd->source_id;
	ss->reserve_id = sd->reserve_id;
	ss->policy = sd->full_policy;
	ss->chunk_sectors = sd->chunk_sectors;
	ss->cb = sd->chunk_sectors << VLUN_SECTOR_SHIFT;
	ss->src_bytes = src->size_sectors << VLUN_SECTOR_SHIFT;
	ss->nchunks = VLUN_DIV_ROUND_UP(ss->src_bytes, ss->cb);
	snprintf(ss->source, sizeof(ss->source), "%s", src->name);
	snprintf(ss->resname, sizeof(ss->resname), "%s", res->name);
	pthread_mutex_init(&ss->lock, NULL);
	pthread_mutex_init(&ss->io_lock, NULL);
	ss->chead = malloc((ss->nchunks ? ss->nchunks : 1) * sizeof(*ss->chead));
	ss->done = calloc(VLUN_DIV_ROUND_UP(ss->nchunks, 64) + 1, sizeof(uint64_t));
	if (!ss->chead || !ss->done) {
		store_free(ss);
		return NULL;
	}
	for (uint64_t c = 0; c < ss->nchunks; c++)
		ss->chead[c] = NONE;
	for (uint32_t i = 0; i < p->desc->nsnaps; i++) {
		const struct vlun_snap_desc *s = &p->desc->snaps[i];
		if (s->source_id != ss->source_id)
			continue;
		struct sess *se = &ss->sess[s->bit];
		se->used = true;
		se->id = s->id;
		se->state = s->state;
		se->flags = s->flags;
		snprintf(se->name, sizeof(se->name), "%s", s->name);
		ss->bits |= 1ull << s->bit;
		if (s->state == VLUN_SNAP_ACTIVE)
			ss->active |= 1ull << s->bit;
	}
	return ss;
}

static void store_index(struct snap_store *ss)
{
	ss->nused = 0;
	for (uint64_t c = 0; c < ss->nchunks; c++)
		ss->chead[c] = NONE;
	for (uint64_t s = ss->nslots; s-- > 0;) {
		if (!ss->e[s].mask)
			continue;
		uint64_t c = e_chunk(&ss->e[s]);
		ss->snext[s] = ss->chead[c];
		ss->chead[c] = (uint32_t)s;
		ss->nused++;
	}
	for (uint64_t c = 0; c < ss->nchunks; c++)
		done_update(ss, c);
}

/* Reads the reserve's table and rebuilds the in-memory state. */
static int store_read(struct snap_store *ss, char *why, size_t whylen)
{
	uint8_t *blk = abuf(2 * SNAP_BLOCK);
	if (!blk)
		return -ENOMEM;
	int r = vd_io(ss->res, VLUN_OP_READ, 0, 0, blk, 2 * SNAP_BLOCK);
	if (r < 0) {
		snprintf(why, whylen, "cannot read the reserve header: %s", strerror(-r));
		free(blk);
		return r;
	}
	struct snap_hdr h[2];
	char w2[2][96] = { "", "" };
	int ok[2];
	for (unsigned k = 0; k < 2; k++)
		ok[k] = snap_hdr_decode(blk + k * SNAP_BLOCK, k, &h[k], w2[k], sizeof(w2[k])) == 0;
	free(blk);
	if (!ok[0] && !ok[1]) {
		snprintf(why, whylen, "%.95s; %.95s", w2[0], w2[1]);
		return -EUCLEAN;
	}
	ss->hdr = ok[0] && (!ok[1] || h[0].seq >= h[1].seq) ? h[0] : h[1];
	if (ss->hdr.source_id != ss->source_id || ss->hdr.reserve_id != ss->reserve_id ||
	    ss->hdr.chunk_sectors != ss->chunk_sectors) {
		snprintf(why, whylen, "reserve header belongs to source %u / reserve %u / chunk %" PRIu64
			 " sectors, not to this store", ss->hdr.source_id, ss->hdr.reserve_id, ss->hdr.chunk_sectors);
		return -EUCLEAN;
	}
	r = store_arrays(ss, ss->hdr.nslots);
	if (r < 0)
		return r;
	uint64_t ng = VLUN_DIV_ROUND_UP(ss->nslots, SNAP_GROUP_ENTRIES);
	uint8_t *tb = abuf(SNAP_BLOCK);
	if (!tb)
		return -ENOMEM;
	for (uint64_t g = 0; g < ng && r == 0; g++) {
		r = vd_io(ss->res, VLUN_OP_READ, 0, snap_group_off(ss->cb, g), tb, SNAP_BLOCK);
		if (r < 0) {
			snprintf(why, whylen, "cannot read table group %" PRIu64 ": %s", g, strerror(-r));
			break;
		}
		for (unsigned sx = 0; sx < 8 && r == 0; sx++) {
			struct snap_entry ent[SNAP_SECTOR_ENTRIES];
			r = snap_tsector_decode(tb + sx * 512, g, sx, ent, why, whylen);
			for (unsigned i = 0; i < SNAP_SECTOR_ENTRIES && r == 0; i++) {
				uint64_t s = g * SNAP_GROUP_ENTRIES + sx * SNAP_SECTOR_ENTRIES + i;
				if (s < ss->nslots)
					ss->e[s] = ent[i];
				if (s < ss->nslots && ent[i].mask && e_chunk(&ent[i]) >= ss->nchunks) {
					snprintf(why, whylen, "table slot %" PRIu64 " names chunk %" PRIu64 " beyond the source",
						 s, e_chunk(&ent[i]));
					r = -EUCLEAN;
				}
			}
		}
	}
	free(tb);
	return r;
}

/* Strips bits nobody may have (gone / FAILED sessions) and duplicates. */
static int store_repair(struct snap_store *ss)
{
	uint64_t bad = ~ss->active;
	bool any = false;
	for (uint64_t s = 0; s < ss->nslots && !any; s++)
		any = ss->e[s].mask & bad;
	store_index(ss);
	int r = any ? strip_bits(ss, bad) : 0;
	/* a session in two slots of one chunk keeps the written one */
	for (uint64_t c = 0; c < ss->nchunks && r == 0; c++) {
		uint64_t seen = 0;
		for (uint32_t s = ss->chead[c]; s != NONE; s = ss->snext[s]) {
			if (!(ss->e[s].chunk & SNAP_ENTRY_WRITTEN))
				continue;
			seen |= ss->e[s].mask;
		}
		for (uint32_t s = ss->chead[c]; s != NONE;) {
			uint32_t nx = ss->snext[s];
			if (!(ss->e[s].chunk & SNAP_ENTRY_WRITTEN) && (ss->e[s].mask & seen)) {
				struct snap_entry ne = ss->e[s];
				ne.mask &= ~seen;
				if (!ne.mask)
					ne.chunk = 0;
				r = write_entry(ss, "snap-repair", s, ne);
				if (r == 0)
					apply_entry(ss, s, ne);
			}
			s = nx;
		}
	}
	memset(ss->pend, 0, ss->nslots);
	for (uint64_t c = 0; c < ss->nchunks; c++)
		done_update(ss, c);
	return r;
}

/* The loaded store of source_id (sp->lock held); -ENOENT none. */
static int store_get(struct snap_pool *sp, struct vlun_pool *p, uint32_t source_id, struct snap_store **ret,
		     char **ret_reason)
{
	struct snap_store *ss = store_find(sp, source_id);
	if (ss) {
		*ret = ss;
		return 0;
	}
	if (p->flags & VLUN_OPEN_RDONLY) {
		vlun_set_reason(ret_reason, "pool '%s' is open read-only: snapshots need it writable", p->desc->name);
		return -EROFS;
	}
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_snap_store_desc *sd = sdesc_locked(p, source_id);
	if (!sd) {
		pthread_mutex_unlock(&p->ctl_lock);
		return -ENOENT;
	}
	bool has = false;
	for (uint32_t i = 0; i < p->desc->nsnaps && !has; i++)
		has = p->desc->snaps[i].source_id == source_id;
	if (!has) {
		/* an interrupted first create or last delete: no session, no store */
		int r = store_remove_locked(p, source_id);
		pthread_mutex_unlock(&p->ctl_lock);
		return r < 0 ? r : -ENOENT;
	}
	const struct vlun_vdisk_desc *src = pool_vdesc_by_id_locked(p, source_id);
	const struct vlun_vdisk_desc *res = pool_vdesc_by_id_locked(p, sd->reserve_id);
	ss = src && res ? store_new(p, sd, src, res) : NULL;
	pthread_mutex_unlock(&p->ctl_lock);
	if (!ss)
		return -ENOMEM;
	int r = worker_start(sp);
	if (r == 0)
		r = vdisk_hold(p, ss->source_id, &ss->src);
	if (r == 0)
		r = vdisk_hold(p, ss->reserve_id, &ss->res);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot open the snapshot store of '%s': %s", ss->source, strerror(-r));
		goto fail;
	}
	char why[200] = "";
	pthread_mutex_lock(&ss->io_lock);
	r = store_read(ss, why, sizeof(why));
	if (r == -EUCLEAN) {
		/* the table cannot be trusted: its sessions fail, the table restarts empty */
		char fw[128];
		snprintf(fw, sizeof(fw), "reserve table unreadable: %.100s", why);
		vlun_err("snapshot reserve of '%s': %s; its sessions are marked FAILED", ss->source, why);
		for (uint64_t s = 0; s < ss->nslots; s++)
			ss->e[s] = (struct snap_entry){ 0 };
		r = fail_sessions(ss, ss->bits, fw);
		uint64_t ng = VLUN_DIV_ROUND_UP(ss->nslots, SNAP_GROUP_ENTRIES);
		for (uint64_t g = 0; g < ng && r == 0; g++)
			r = write_group(ss, "snap-reset", g, NULL, NONE);
	}
	if (r == 0)
		r = store_repair(ss);
	pthread_mutex_unlock(&ss->io_lock);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot load the snapshot store of '%s': %s", ss->source,
				why[0] ? why : strerror(-r));
		goto fail;
	}
	vdisk_set_snap(ss->src, ss);
	ss->next = sp->stores;
	sp->stores = ss;
	*ret = ss;
	return 0;
fail:
	vdisk_release(ss->res);
	vdisk_release(ss->src);
	store_free(ss);
	return r;
}

/* Drops a loaded store (its sessions are gone from the description). */
static void store_drop(struct snap_pool *sp, struct snap_store *ss)
{
	for (struct snap_store **pp = &sp->stores; *pp; pp = &(*pp)->next)
		if (*pp == ss) {
			*pp = ss->next;
			break;
		}
	vdisk_set_snap(ss->src, NULL);
	while (atomic_load(&ss->nheld) > 0)
		usleep(200);
	wr_drain(ss);
	wr_drain(ss);
	vdisk_release(ss->res);
	vdisk_release(ss->src);
	ss->res = ss->src = NULL;
	ss->dead = true;
	/* writers that loaded the pointer may still touch its counters */
	ss->next = sp->zombies;
	sp->zombies = ss;
}

/* Creates a store for a source (sp->lock held); not committed: the first
 * session's checkpoint commits it. */
static int store_create(struct snap_pool *sp, struct vlun_pool *p, const struct vlun_snapshot_create_opts *o,
			uint32_t source_id, struct snap_store **ret, char **ret_reason)
{
	uint64_t cbytes = o->chunk_bytes ? o->chunk_bytes : VLUN_SNAP_DEFAULT_CHUNK;
	if (cbytes < 4096 || (cbytes & (cbytes - 1)) || cbytes > (512ull << 20)) {
		vlun_set_reason(ret_reason, "snapshot chunk size %" PRIu64 " must be a power of two from 4 KiB to 512 MiB",
				cbytes);
		return -EINVAL;
	}
	if (o->full_policy > VLUN_SNAP_FULL_FAIL_WRITE) {
		vlun_set_reason(ret_reason, "unknown reserve-full policy %d", o->full_policy);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_pool_desc *d = p->desc;
	struct vlun_vdisk_desc *src = pool_vdesc_by_id_locked(p, source_id);
	uint64_t sbytes = src->size_sectors << VLUN_SECTOR_SHIFT;
	uint64_t want = o->reserve_bytes ? o->reserve_bytes : VLUN_MAX(sbytes / 5, bytes_for_slots(cbytes, 16));
	want = VLUN_ALIGN_UP(want, 4096);
	uint64_t nslots = snap_slots_for(cbytes, want);
	int r;
	if (nslots == 0) {
		vlun_set_reason(ret_reason, "a snapshot reserve of %" PRIu64 " bytes holds no %" PRIu64 "-byte chunk "
				"(needs at least %" PRIu64 ")", want, cbytes, bytes_for_slots(cbytes, 1));
		r = -EINVAL;
		goto out;
	}
	struct vlun_vdisk_desc nv = { 0 };
	nv.id = d->next_vdisk_id;
	vlun_uuid_generate(nv.uuid);
	if (strlen(src->name) + 6 <= VLUN_NAME_MAX)
		snprintf(nv.name, sizeof(nv.name), ".snap.%s", src->name);
	else
		snprintf(nv.name, sizeof(nv.name), ".snap.%u", source_id);
	if (pool_find_vdisk_locked(p, nv.name)) {
		vlun_set_reason(ret_reason, "pool '%s' already has a virtual disk '%s' (the reserve name); rename it",
				d->name, nv.name);
		r = -EEXIST;
		goto out;
	}
	nv.layout = VLUN_LAYOUT_LINEAR;
	nv.size_sectors = want >> VLUN_SECTOR_SHIFT;
	nv.flags = VLUN_VDISK_SNAP_RESERVE;
	nv.generation = 1;
	char why[200] = "";
	r = vlun_layout_build(p->alloc, d, &nv, NULL, 0, why, sizeof(why));
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot lay out the snapshot reserve of '%s': %s", src->name,
				why[0] ? why : strerror(-r));
		goto out;
	}
	struct vlun_vdisk_desc *nvs = realloc(d->vdisks, (d->nvdisks + 1) * sizeof(*nvs));
	struct vlun_snap_store_desc *nss = realloc(d->snap_stores, (d->nsnap_stores + 1) * sizeof(*nss));
	if (nvs)
		d->vdisks = nvs;
	if (nss)
		d->snap_stores = nss;
	if (!nvs || !nss) {
		vlun_layout_release(p->alloc, &nv);
		free(nv.extents);
		p->frees_pending = true;
		r = -ENOMEM;
		goto out;
	}
	d->vdisks[d->nvdisks++] = nv;
	d->next_vdisk_id++;
	d->generation++;
	struct vlun_snap_store_desc sd = { .source_id = source_id, .reserve_id = nv.id,
					   .chunk_sectors = cbytes >> VLUN_SECTOR_SHIFT,
					   .full_policy = o->full_policy < 0 ? VLUN_SNAP_FULL_FAIL_SNAPSHOT
									     : (uint32_t)o->full_policy };
	d->snap_stores[d->nsnap_stores++] = sd;
	struct snap_store *ss = store_new(p, &sd, pool_vdesc_by_id_locked(p, source_id), &nv);
	pthread_mutex_unlock(&p->ctl_lock);
	r = ss ? worker_start(sp) : -ENOMEM;
	if (r == 0)
		r = vdisk_hold(p, source_id, &ss->src);
	if (r == 0)
		r = vdisk_hold(p, sd.reserve_id, &ss->res);
	if (r == 0)
		r = store_arrays(ss, nslots);
	if (r == 0) {
		ss->hdr = (struct snap_hdr){ .seq = 1, .source_id = source_id, .reserve_id = sd.reserve_id,
					     .chunk_sectors = sd.chunk_sectors, .nslots = nslots,
					     .created = (uint64_t)time(NULL) };
		uint64_t ng = VLUN_DIV_ROUND_UP(nslots, SNAP_GROUP_ENTRIES);
		for (uint64_t g = 0; g < ng && r == 0; g++)
			r = write_group(ss, "snap-init", g, NULL, NONE);
		if (r == 0)
			r = write_headers(ss);
	}
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot initialize the snapshot reserve of '%s': %s", ss ? ss->source : "?",
				strerror(-r));
		if (ss) {
			vdisk_release(ss->res);
			vdisk_release(ss->src);
			store_free(ss);
		}
		pthread_mutex_lock(&p->ctl_lock);
		int rr = store_remove_locked(p, source_id);
		if (rr < 0)
			vlun_warn("pool '%s': the unused snapshot reserve stays until the next open: %s", d->name,
				  strerror(-rr));
		goto out;
	}
	store_index(ss);
	vdisk_set_snap(ss->src, ss);
	ss->next = sp->stores;
	sp->stores = ss;
	*ret = ss;
	return 0;
out:
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

/* Grows the reserve to bytes (sp->lock held). */
static int store_grow(struct snap_store *ss, uint64_t bytes, char **ret_reason)
{
	struct vlun_pool *p = ss->p;
	bytes = VLUN_ALIGN_UP(bytes, 4096);
	uint64_t cur = bytes_for_slots(ss->cb, ss->nslots);
	pthread_mutex_lock(&p->ctl_lock);
	const struct vlun_vdisk_desc *rd = pool_vdesc_by_id_locked(p, ss->reserve_id);
	uint64_t rsize = rd ? rd->size_sectors << VLUN_SECTOR_SHIFT : 0;
	pthread_mutex_unlock(&p->ctl_lock);
	if (bytes < rsize || bytes < cur) {
		vlun_set_reason(ret_reason, "the reserve of '%s' is %" PRIu64 " bytes; it can only grow", ss->source, rsize);
		return -EINVAL;
	}
	if (bytes == rsize)
		return 0;
	snap_internal_op = true;
	char *why = NULL;
	int r = vlun_vdisk_resize(p, ss->resname, bytes, false, &why);
	snap_internal_op = false;
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot grow the reserve of '%s': %s", ss->source, why ? why : strerror(-r));
		free(why);
		return r;
	}
	free(why);
	uint64_t n = snap_slots_for(ss->cb, bytes);
	pthread_mutex_lock(&ss->io_lock);
	uint64_t old = ss->nslots, og = VLUN_DIV_ROUND_UP(old, SNAP_GROUP_ENTRIES);
	pthread_mutex_lock(&ss->lock);
	r = store_arrays(ss, n);
	pthread_mutex_unlock(&ss->lock);
	/* new groups get empty tables before the header counts them */
	for (uint64_t g = og; r == 0 && g < VLUN_DIV_ROUND_UP(n, SNAP_GROUP_ENTRIES); g++)
		r = write_group(ss, "snap-grow", g, NULL, NONE);
	if (r == 0) {
		ss->hdr.seq++;
		ss->hdr.nslots = n;
		r = write_headers(ss);
	}
	if (r < 0) {
		pthread_mutex_lock(&ss->lock);
		ss->nslots = old;
		pthread_mutex_unlock(&ss->lock);
		vlun_set_reason(ret_reason, "cannot extend the reserve table of '%s': %s", ss->source, strerror(-r));
	} else {
		vlun_info("snapshot reserve of '%s' grown to %" PRIu64 " chunks", ss->source, n);
	}
	pthread_mutex_unlock(&ss->io_lock);
	return r;
}

/* ---------------------------------------------------------------- API */

static int find_source(struct vlun_pool *p, const char *source, uint32_t *ret_id, char **ret_reason)
{
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk_desc *d = source ? pool_find_vdisk_locked(p, source) : NULL;
	int r = 0;
	if (!d) {
		vlun_set_reason(ret_reason, "pool '%s' has no virtual disk '%s'", p->desc->name, source ? source : "");
		r = -ENOENT;
	} else if (d->flags & VLUN_VDISK_SNAP_RESERVE) {
		vlun_set_reason(ret_reason, "'%s' is a snapshot reserve, not a source", source);
		r = -EINVAL;
	} else {
		*ret_id = d->id;
	}
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

static int sess_find(struct snap_store *ss, const char *name)
{
	for (unsigned b = 0; b < VLUN_MAX_SNAPSHOTS; b++)
		if (ss->sess[b].used && strcmp(ss->sess[b].name, name) == 0)
			return (int)b;
	return -1;
}

static int writable_pool(struct vlun_pool *p, char **ret_reason)
{
	if (p->flags & VLUN_OPEN_RDONLY) {
		vlun_set_reason(ret_reason, "pool is open read-only");
		return -EROFS;
	}
	return 0;
}

/* The start of a change to the pool's snapshots: the pool is writable and
 * has its snapshot state. 0 with *ret_sp, or negative errno. */
static int changing_pool(struct vlun_pool *p, struct snap_pool **ret_sp, char **ret_reason)
{
	int r = writable_pool(p, ret_reason);
	if (r < 0)
		return r;
	struct snap_pool *sp = sp_get(p);
	if (!sp)
		return -ENOMEM;
	*ret_sp = sp;
	return 0;
}

VLUN_EXPORT int vlun_snapshot_create(struct vlun_pool *p, const struct vlun_snapshot_create_opts *o,
				     char **ret_reason)
{
	if (!p || !o || !o->source || !o->name)
		return -EINVAL;
	if (!vlun_name_valid(o->name)) {
		vlun_set_reason(ret_reason, "snapshot name '%s' is not valid: use 1..%d characters of [A-Za-z0-9._-]",
				o->name, VLUN_NAME_MAX);
		return -EINVAL;
	}
	int r = writable_pool(p, ret_reason);
	uint32_t sid = 0;
	if (r == 0)
		r = find_source(p, o->source, &sid, ret_reason);
	struct snap_pool *sp = r == 0 ? sp_get(p) : NULL;
	if (r < 0)
		return r;
	if (!sp)
		return -ENOMEM;
	pthread_mutex_lock(&sp->lock);
	struct snap_store *ss = NULL;
	bool fresh = false;
	r = store_get(sp, p, sid, &ss, ret_reason);
	if (r == -ENOENT) {
		r = store_create(sp, p, o, sid, &ss, ret_reason);
		fresh = r == 0;
	} else if (r == 0 && (o->reserve_bytes || o->full_policy >= 0)) {
		pthread_mutex_unlock(&sp->lock);
		r = vlun_snapshot_reserve_set(p, o->source, o->reserve_bytes, o->full_policy, ret_reason);
		pthread_mutex_lock(&sp->lock);
		ss = store_find(sp, sid);
		if (r == 0 && !ss)
			r = -ENOENT;
	}
	if (r < 0)
		goto out;
	if (sess_find(ss, o->name) >= 0) {
		vlun_set_reason(ret_reason, "'%s' already has a snapshot '%s'", ss->source, o->name);
		r = -EEXIST;
		goto out;
	}
	unsigned bit = 0;
	while (bit < VLUN_MAX_SNAPSHOTS && ss->sess[bit].used)
		bit++;
	if (bit == VLUN_MAX_SNAPSHOTS) {
		vlun_set_reason(ret_reason, "'%s' already has %d snapshots; delete one first", ss->source,
				VLUN_MAX_SNAPSHOTS);
		r = -E2BIG;
		goto out;
	}
	pthread_mutex_lock(&ss->io_lock);
	bool stale = false;
	for (uint64_t s = 0; s < ss->nslots && !stale; s++)
		stale = ss->e[s].mask & (1ull << bit);
	if (stale)
		r = strip_bits(ss, 1ull << bit);
	if (r == 0) {
		pthread_mutex_lock(&p->ctl_lock);
		struct vlun_pool_desc *d = p->desc;
		struct vlun_snap_desc *ns = realloc(d->snaps, (d->nsnaps + 1) * sizeof(*ns));
		if (!ns) {
			r = -ENOMEM;
		} else {
			d->snaps = ns;
			struct vlun_snap_desc sn = { .id = d->next_snap_id, .source_id = sid, .bit = bit,
						     .state = VLUN_SNAP_ACTIVE, .created = (uint64_t)time(NULL) };
			snprintf(sn.name, sizeof(sn.name), "%s", o->name);
			d->snaps[d->nsnaps++] = sn;
			d->next_snap_id++;
			p->need_full_commit = true;
			r = pool_commit_locked(p);
			if (r < 0) {
				d->nsnaps--;
				d->next_snap_id--;
			} else {
				struct sess *se = &ss->sess[bit];
				*se = (struct sess){ .used = true, .id = sn.id, .state = VLUN_SNAP_ACTIVE };
				snprintf(se->name, sizeof(se->name), "%s", o->name);
			}
		}
		pthread_mutex_unlock(&p->ctl_lock);
	}
	if (r == 0) {
		pthread_mutex_lock(&ss->lock);
		ss->bits |= 1ull << bit;
		ss->active |= 1ull << bit;
		for (uint64_t k = 0; k < VLUN_DIV_ROUND_UP(ss->nchunks, 64); k++)
			atomic_store(&ss->done[k], 0);
		pthread_mutex_unlock(&ss->lock);
		/* writes that passed the hook before are complete now */
		wr_drain(ss);
		vlun_info("snapshot '%s@%s' created (session bit %u)", ss->source, o->name, bit);
	} else {
		vlun_set_reason(ret_reason, "cannot commit snapshot '%s@%s': %s", ss->source, o->name, strerror(-r));
	}
	pthread_mutex_unlock(&ss->io_lock);
	if (r < 0 && fresh) {
		store_drop(sp, ss);
		pthread_mutex_lock(&p->ctl_lock);
		store_remove_locked(p, sid);
		pthread_mutex_unlock(&p->ctl_lock);
	}
out:
	pthread_mutex_unlock(&sp->lock);
	return r;
}

/* The store and session bit of source/name (sp->lock held). */
static int lookup(struct snap_pool *sp, struct vlun_pool *p, const char *source, const char *name,
		  struct snap_store **ret_ss, unsigned *ret_bit, char **ret_reason)
{
	uint32_t sid;
	int r = find_source(p, source, &sid, ret_reason);
	if (r < 0)
		return r;
	struct snap_store *ss;
	r = store_get(sp, p, sid, &ss, ret_reason);
	if (r == -ENOENT)
		vlun_set_reason(ret_reason, "'%s' has no snapshots", source);
	if (r < 0)
		return r;
	int b = name ? sess_find(ss, name) : -1;
	if (name && b < 0) {
		vlun_set_reason(ret_reason, "'%s' has no snapshot '%s'", source, name);
		return -ENOENT;
	}
	*ret_ss = ss;
	if (ret_bit)
		*ret_bit = b < 0 ? 0 : (unsigned)b;
	return 0;
}

VLUN_EXPORT int vlun_snapshot_delete(struct vlun_pool *p, const char *source, const char *name,
				     char **ret_reason)
{
	if (!p || !source || !name)
		return -EINVAL;
	struct snap_pool *sp;
	int r = changing_pool(p, &sp, ret_reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&sp->lock);
	struct snap_store *ss;
	unsigned bit;
	r = lookup(sp, p, source, name, &ss, &bit, ret_reason);
	if (r < 0)
		goto out;
	if (ss->sess[bit].views) {
		vlun_set_reason(ret_reason, "snapshot '%s@%s' is open for I/O; remove its backstore first", source, name);
		r = -EBUSY;
		goto out;
	}
	unsigned nsess = 0;
	for (unsigned b = 0; b < VLUN_MAX_SNAPSHOTS; b++)
		nsess += ss->sess[b].used;
	pthread_mutex_lock(&ss->io_lock);
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_pool_desc *d = p->desc;
	uint32_t idx = 0;
	while (idx < d->nsnaps && d->snaps[idx].id != ss->sess[bit].id)
		idx++;
	struct vlun_snap_desc gone = d->snaps[idx];
	memmove(&d->snaps[idx], &d->snaps[idx + 1], (d->nsnaps - idx - 1) * sizeof(gone));
	d->nsnaps--;
	if (nsess == 1) {
		r = store_remove_locked(p, ss->source_id);
	} else {
		p->need_full_commit = true;
		r = pool_commit_locked(p);
	}
	if (r < 0) {
		memmove(&d->snaps[idx + 1], &d->snaps[idx], (d->nsnaps - idx) * sizeof(gone));
		d->snaps[idx] = gone;
		d->nsnaps++;
	}
	pthread_mutex_unlock(&p->ctl_lock);
	if (r < 0) {
		pthread_mutex_unlock(&ss->io_lock);
		vlun_set_reason(ret_reason, "cannot commit the deletion of snapshot '%s@%s': %s", source, name,
				strerror(-r));
		goto out;
	}
	pthread_mutex_lock(&ss->lock);
	ss->bits &= ~(1ull << bit);
	ss->active &= ~(1ull << bit);
	ss->sess[bit] = (struct sess){ 0 };
	pthread_mutex_unlock(&ss->lock);
	if (nsess > 1) {
		int rr = strip_bits(ss, 1ull << bit);
		if (rr < 0)
			vlun_warn("snapshot '%s@%s' deleted; freeing its chunks failed (%s), retried at the next open",
				  source, name, strerror(-rr));
	}
	pthread_mutex_unlock(&ss->io_lock);
	if (nsess == 1)
		store_drop(sp, ss);
	vlun_info("snapshot '%s@%s' deleted%s", source, name, nsess == 1 ? " (its reserve too)" : "");
out:
	pthread_mutex_unlock(&sp->lock);
	return r;
}

/* ------------------------------------------------------------- rollback
 *
 * A rollback is a job of the pool's job list (VLUN_JOB_ROLLBACK; volatile:
 * no JOB record, an interrupted rollback is simply run again): total = the
 * bytes of the session's saved chunks, done grows chunk by chunk, the rate
 * is measured over about a second. One at a time per pool (sp->rb.busy);
 * the copy holds sp->lock. snap_rollback_start() runs it on a thread of
 * its own so that the control channel answers "jobs" meanwhile; pool close
 * (rb_stop) stops it between two chunks.
 */
#define RB_KEEP_S 600 /* a finished rollback stays listed this long */

/* snap_rollback_start waiting for the checks of its thread. */
struct rb_hand {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool checked;
	int r;
	char *reason;
	uint32_t id;
};

static uint64_t rb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void rb_checked(struct rb_hand *h, int r, char **reason, uint32_t id)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->m);
	h->r = r;
	h->reason = *reason;
	*reason = NULL;
	h->id = id;
	h->checked = true;
	pthread_cond_signal(&h->c);
	pthread_mutex_unlock(&h->m);
}

/* Claims the pool's rollback slot. */
static int rb_claim(struct vlun_pool *p, struct snap_pool *sp, char **ret_reason)
{
	pthread_mutex_lock(&sp->rb.lock);
	bool busy = sp->rb.busy || sp->rb.stop;
	struct vlun_job_info j = sp->rb.job;
	if (!busy)
		sp->rb.busy = true;
	pthread_mutex_unlock(&sp->rb.lock);
	if (!busy)
		return 0;
	if (j.state == VLUN_JOB_RUNNING)
		vlun_set_reason(ret_reason, "pool '%s' is running another rollback (job %u: %s); wait until "
				"'vlunctl jobs' shows it done", p->desc->name, j.id, j.what);
	else
		vlun_set_reason(ret_reason, "pool '%s' is starting another rollback (or closing); retry",
				p->desc->name);
	return -EBUSY;
}

static void rb_account(struct snap_pool *sp, uint64_t bytes)
{
	uint64_t t = rb_now_ns();
	struct snap_rb *rb = &sp->rb;
	pthread_mutex_lock(&rb->lock);
	rb->job.done_bytes += bytes;
	rb->win_bytes += bytes;
	if (t - rb->win_ns >= 1000000000ull) {
		rb->job.bytes_per_sec = rb->win_bytes * 1000000000ull / (t - rb->win_ns);
		rb->win_ns = t;
		rb->win_bytes = 0;
	} else if (rb->job.bytes_per_sec == 0 && t - rb->t0_ns >= 100000000ull) {
		rb->job.bytes_per_sec = rb->job.done_bytes * 1000000000ull / (t - rb->t0_ns);
	}
	pthread_mutex_unlock(&rb->lock);
}

static bool rb_stopping(struct snap_pool *sp)
{
	pthread_mutex_lock(&sp->rb.lock);
	bool stop = sp->rb.stop;
	pthread_mutex_unlock(&sp->rb.lock);
	return stop;
}

/* The rollback proper, with the slot claimed (released at the end); h
 * (NULL: synchronous) hears the outcome of the checks. */
static int rollback_run(struct vlun_pool *p, struct snap_pool *sp, const char *source, const char *name,
			struct rb_hand *h, char **ret_reason)
{
	char *reason = NULL;
	struct snap_store *ss;
	unsigned bit;
	uint64_t *list = NULL, n = 0, total = 0;
	uint8_t *buf = NULL;
	pthread_mutex_lock(&sp->lock);
	int r = lookup(sp, p, source, name, &ss, &bit, &reason);
	if (r < 0)
		goto refused;
	pthread_mutex_lock(&p->ctl_lock);
	bool busy = vdisk_user_open(ss->src);
	pthread_mutex_unlock(&p->ctl_lock);
	if (busy || ss->sess[bit].views) {
		vlun_set_reason(&reason, "%s '%s%s%s' is open for I/O; remove its backstore first",
				busy ? "source" : "snapshot", source, busy ? "" : "@", busy ? "" : name);
		r = -EBUSY;
		goto refused;
	}
	if (ss->sess[bit].state != VLUN_SNAP_ACTIVE) {
		vlun_set_reason(&reason, "snapshot '%s@%s' is FAILED; it cannot be rolled back", source, name);
		r = -EINVAL;
		goto refused;
	}
	/* The chunks it holds, listed first: the restoring writes add copies
	 * for other sessions, never for this one. */
	uint64_t bitm = 1ull << bit;
	pthread_mutex_lock(&ss->lock);
	list = malloc((ss->nused ? ss->nused : 1) * 2 * sizeof(uint64_t));
	for (uint64_t s = 0; list && s < ss->nslots; s++)
		if (ss->e[s].mask & bitm) {
			uint64_t c = e_chunk(&ss->e[s]);
			list[2 * n] = c;
			list[2 * n + 1] = s;
			total += VLUN_MIN(ss->cb, ss->src_bytes - c * ss->cb);
			n++;
		}
	pthread_mutex_unlock(&ss->lock);
	buf = abuf(ss->cb);
	if (!list || !buf) {
		r = -ENOMEM;
		goto refused;
	}

	pthread_mutex_lock(&p->ctl_lock);
	uint32_t id = p->desc->next_job_id ? p->desc->next_job_id : 1;
	p->desc->next_job_id = id + 1;
	uint32_t src_id = ss->source_id;
	pthread_mutex_unlock(&p->ctl_lock);
	pthread_mutex_lock(&sp->rb.lock);
	sp->rb.job = (struct vlun_job_info){ .id = id, .kind = VLUN_JOB_ROLLBACK, .state = VLUN_JOB_RUNNING,
					     .vdisk_id = src_id, .total_bytes = total,
					     .started = (uint64_t)time(NULL) };
	snprintf(sp->rb.job.what, sizeof(sp->rb.job.what), "rollback '%s' from snapshot '%s'", source, name);
	sp->rb.t0_ns = sp->rb.win_ns = rb_now_ns();
	sp->rb.win_bytes = 0;
	pthread_mutex_unlock(&sp->rb.lock);
	rb_checked(h, 0, &reason, id);

	vlun_info("rollback of '%s' to snapshot '%s' (job %u): %" PRIu64 " chunks to restore", source, name, id, n);
	const char *what = "";
	for (uint64_t i = 0; i < n && r == 0; i++) {
		uint64_t c = list[2 * i], len = VLUN_MIN(ss->cb, ss->src_bytes - c * ss->cb);
		if (rb_stopping(sp)) {
			r = -ECANCELED;
			what = "the pool is closing";
			break;
		}
		r = vd_io(ss->res, VLUN_OP_READ, 0, snap_slot_off(ss->cb, list[2 * i + 1]), buf, len);
		what = "reading a saved chunk";
		if (r == 0) {
			r = vd_io(ss->src, VLUN_OP_WRITE, 0, c * ss->cb, buf, len);
			what = "writing the source";
		}
		if (r == 0)
			rb_account(sp, len);
		if (n >= 10 && (i + 1) % (n / 10) == 0)
			vlun_info("rollback of '%s' to '%s': %" PRIu64 "%% (%" PRIu64 " of %" PRIu64 " chunks)", source,
				  name, (i + 1) * 100 / n, i + 1, n);
	}
	if (r == 0) {
		r = vd_io(ss->src, VLUN_OP_FLUSH, 0, 0, NULL, 0);
		what = "flushing the source";
	}
	if (r == -ECANCELED)
		vlun_set_reason(&reason, "rollback of '%s' to '%s' stopped: %s (the source is partly restored; "
				"run it again)", source, name, what);
	else if (r < 0)
		vlun_set_reason(&reason, "rollback of '%s' to '%s' failed %s: %s (the source is partly restored; "
				"run it again)", source, name, what, strerror(-r));
	pthread_mutex_unlock(&sp->lock);
	if (r == -ECANCELED)
		vlun_warn("%s", reason ? reason : strerror(-r));
	else if (r < 0)
		vlun_err("%s", reason ? reason : strerror(-r));
	else
		vlun_info("rollback of '%s' to snapshot '%s' done (job %u)", source, name, id);
	/* the outcome and a free slot at once: whoever sees it done may start the next */
	pthread_mutex_lock(&sp->rb.lock);
	sp->rb.job.state = r < 0 ? VLUN_JOB_FAILED : VLUN_JOB_DONE;
	if (r < 0)
		snprintf(sp->rb.job.error, sizeof(sp->rb.job.error), "%s", reason ? reason : strerror(-r));
	sp->rb.finished = (uint64_t)time(NULL);
	sp->rb.busy = false;
	pthread_mutex_unlock(&sp->rb.lock);
	goto out;
refused:
	pthread_mutex_unlock(&sp->lock);
	pthread_mutex_lock(&sp->rb.lock);
	sp->rb.busy = false;
	pthread_mutex_unlock(&sp->rb.lock);
	rb_checked(h, r, &reason, 0); /* after the slot is free: a retry is not refused */
out:
	free(list);
	free(buf);
	if (ret_reason && reason)
		*ret_reason = reason;
	else
		free(reason);
	return r;
}

VLUN_EXPORT int vlun_snapshot_rollback(struct vlun_pool *p, const char *source, const char *name,
				       char **ret_reason)
{
	if (!p || !source || !name)
		return -EINVAL;
	struct snap_pool *sp;
	int r = changing_pool(p, &sp, ret_reason);
	if (r < 0)
		return r;
	r = rb_claim(p, sp, ret_reason);
	if (r < 0)
		return r;
	return rollback_run(p, sp, source, name, NULL, ret_reason);
}

struct rb_arg {
	struct vlun_pool *p;
	struct snap_pool *sp;
	struct rb_hand *h;
	char source[VLUN_NAME_MAX + 1];
	char name[VLUN_NAME_MAX + 1];
};

static void *rb_main(void *arg)
{
	struct rb_arg *a = arg;
	(void)rollback_run(a->p, a->sp, a->source, a->name, a->h, NULL); /* the job and the log tell */
	free(a);
	return NULL;
}

int snap_rollback_start(struct vlun_pool *p, const char *source, const char *name, uint32_t *ret_job_id,
			char **ret_reason)
{
	if (!p || !source || !name)
		return -EINVAL;
	if (strlen(source) > VLUN_NAME_MAX || strlen(name) > VLUN_NAME_MAX) {
		vlun_set_reason(ret_reason, "name too long (at most %d characters)", VLUN_NAME_MAX);
		return -EINVAL;
	}
	struct snap_pool *sp;
	int r = changing_pool(p, &sp, ret_reason);
	if (r < 0)
		return r;
	r = rb_claim(p, sp, ret_reason);
	if (r < 0)
		return r;
	/* the last rollback's thread has ended (it released the slot) */
	pthread_mutex_lock(&sp->rb.lock);
	bool join = sp->rb.joinable;
	pthread_t old = sp->rb.thread;
	sp->rb.joinable = false;
	pthread_mutex_unlock(&sp->rb.lock);
	if (join)
		pthread_join(old, NULL);

	struct rb_hand h = { .checked = false };
	struct rb_arg *a = calloc(1, sizeof(*a));
	if (!a) {
		r = -ENOMEM;
		goto unclaim;
	}
	*a = (struct rb_arg){ .p = p, .sp = sp, .h = &h };
	snprintf(a->source, sizeof(a->source), "%s", source);
	snprintf(a->name, sizeof(a->name), "%s", name);
	pthread_mutex_init(&h.m, NULL);
	pthread_cond_init(&h.c, NULL);
	pthread_t th;
	r = -pthread_create(&th, NULL, rb_main, a);
	if (r < 0) {
		free(a);
		pthread_mutex_destroy(&h.m);
		pthread_cond_destroy(&h.c);
		vlun_set_reason(ret_reason, "cannot start the rollback thread: %s", strerror(-r));
		goto unclaim;
	}
	pthread_mutex_lock(&sp->rb.lock);
	sp->rb.thread = th;
	sp->rb.joinable = true;
	pthread_mutex_unlock(&sp->rb.lock);
	pthread_mutex_lock(&h.m);
	while (!h.checked)
		pthread_cond_wait(&h.c, &h.m);
	pthread_mutex_unlock(&h.m);
	pthread_mutex_destroy(&h.m);
	pthread_cond_destroy(&h.c);
	if (h.r < 0) {
		if (ret_reason && h.reason)
			*ret_reason = h.reason;
		else
			free(h.reason);
		return h.r;
	}
	free(h.reason);
	if (ret_job_id)
		*ret_job_id = h.id;
	return 0;
unclaim:
	pthread_mutex_lock(&sp->rb.lock);
	sp->rb.busy = false;
	pthread_mutex_unlock(&sp->rb.lock);
	return r;
}

/* Pool close: the running rollback stops between two chunks. */
static void rb_stop(struct snap_pool *sp)
{
	pthread_mutex_lock(&sp->rb.lock);
	sp->rb.stop = true;
	bool join = sp->rb.joinable;
	pthread_t th = sp->rb.thread;
	sp->rb.joinable = false;
	pthread_mutex_unlock(&sp->rb.lock);
	if (join)
		pthread_join(th, NULL);
}

int snap_jobs_append_locked(struct vlun_pool *p, struct vlun_job_info **v, size_t *n)
{
	struct snap_pool *sp = p->snap;
	if (!sp)
		return 0;
	pthread_mutex_lock(&sp->rb.lock);
	struct vlun_job_info j = sp->rb.job;
	bool show = j.id != 0 &&
		    (j.state == VLUN_JOB_RUNNING || sp->rb.finished + RB_KEEP_S >= (uint64_t)time(NULL));
	pthread_mutex_unlock(&sp->rb.lock);
	if (!show)
		return 0;
	struct vlun_job_info *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = j;
	*v = nv;
	return 0;
}

VLUN_EXPORT int vlun_snapshot_reserve_set(struct vlun_pool *p, const char *source, uint64_t reserve_bytes,
					  int full_policy, char **ret_reason)
{
	if (!p || !source)
		return -EINVAL;
	if (full_policy > VLUN_SNAP_FULL_FAIL_WRITE) {
		vlun_set_reason(ret_reason, "unknown reserve-full policy %d", full_policy);
		return -EINVAL;
	}
	struct snap_pool *sp;
	int r = changing_pool(p, &sp, ret_reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&sp->lock);
	struct snap_store *ss;
	r = lookup(sp, p, source, NULL, &ss, NULL, ret_reason);
	if (r == 0 && reserve_bytes)
		r = store_grow(ss, reserve_bytes, ret_reason);
	if (r == 0 && full_policy >= 0 && (uint32_t)full_policy != ss->policy) {
		pthread_mutex_lock(&p->ctl_lock);
		struct vlun_snap_store_desc *sd = sdesc_locked(p, ss->source_id);
		uint32_t old = sd->full_policy;
		sd->full_policy = (uint32_t)full_policy;
		p->need_full_commit = true;
		r = pool_commit_locked(p);
		if (r < 0) {
			sd->full_policy = old;
			vlun_set_reason(ret_reason, "cannot commit the policy of '%s': %s", source, strerror(-r));
		} else {
			ss->policy = (uint32_t)full_policy;
		}
		pthread_mutex_unlock(&p->ctl_lock);
	}
	pthread_mutex_unlock(&sp->lock);
	return r;
}

VLUN_EXPORT int vlun_snapshot_list(struct vlun_pool *p, const char *source, struct vlun_snapshot_info **ret,
				   size_t *ret_n)
{
	if (!p || !ret || !ret_n)
		return -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_pool_desc *d = NULL;
	int r = vlun_pool_desc_dup(p->desc, &d);
	pthread_mutex_unlock(&p->ctl_lock);
	if (r < 0)
		return r;
	struct vlun_snapshot_info *out = calloc(d->nsnaps ? d->nsnaps : 1, sizeof(*out));
	if (!out) {
		vlun_pool_desc_free(d);
		return -ENOMEM;
	}
	struct snap_pool *sp = (p->flags & VLUN_OPEN_RDONLY) ? NULL : sp_get(p);
	if (sp)
		pthread_mutex_lock(&sp->lock);
	size_t n = 0;
	for (uint32_t i = 0; i < d->nsnaps; i++) {
		const struct vlun_snap_desc *s = &d->snaps[i];
		const struct vlun_vdisk_desc *src = NULL;
		const struct vlun_snap_store_desc *sd = NULL;
		for (uint32_t k = 0; k < d->nvdisks; k++)
			if (d->vdisks[k].id == s->source_id)
				src = &d->vdisks[k];
		for (uint32_t k = 0; k < d->nsnap_stores; k++)
			if (d->snap_stores[k].source_id == s->source_id)
				sd = &d->snap_stores[k];
		if (!src || !sd || (source && strcmp(source, src->name) != 0))
			continue;
		struct vlun_snapshot_info *o = &out[n++];
		o->d = *s;
		snprintf(o->source, sizeof(o->source), "%s", src->name);
		o->chunk_bytes = sd->chunk_sectors << VLUN_SECTOR_SHIFT;
		o->full_policy = sd->full_policy;
		struct snap_store *ss = NULL;
		if (sp && store_get(sp, p, s->source_id, &ss, NULL) == 0) {
			uint64_t bit = 1ull << s->bit, saved = 0, shared = 0;
			pthread_mutex_lock(&ss->lock);
			for (uint64_t k = 0; k < ss->nslots; k++)
				if (ss->e[k].mask & bit) {
					saved++;
					shared += (ss->e[k].mask & ~bit) != 0;
				}
			o->saved_bytes = saved * ss->cb;
			o->shared_bytes = shared * ss->cb;
			o->reserve_used_bytes = ss->nused * ss->cb;
			o->reserve_total_bytes = ss->nslots * ss->cb;
			o->open = ss->sess[s->bit].views > 0;
			o->d.state = ss->sess[s->bit].state;
			pthread_mutex_unlock(&ss->lock);
		}
	}
	if (sp)
		pthread_mutex_unlock(&sp->lock);
	vlun_pool_desc_free(d);
	*ret = out;
	*ret_n = n;
	return 0;
}

/* ---------------------------------------------------------------- views */

struct vio_sub {
	struct vlun_req q;
	struct vio *parent;
	struct iovec *iov;
};

struct vio {
	struct vlun_req *orig;
	struct snap_view *v;
	atomic_int left;
	atomic_uint st;
	unsigned side;
	bool counted;
	int nsub;
	struct vio_sub sub[];
};

static void vio_finish(struct vio *x)
{
	struct snap_view *v = x->v;
	struct vlun_req *q = x->orig;
	enum vlun_status st = (enum vlun_status)atomic_load(&x->st);
	if (x->counted)
		rd_exit(v->ss, x->side);
	q->err_offset = st == VLUN_OK ? 0 : q->offset;
	for (int i = 0; i < x->nsub; i++)
		free(x->sub[i].iov);
	free(x);
	if (atomic_fetch_sub(&v->inflight, 1) == 1) {
		pthread_mutex_lock(&v->m);
		pthread_cond_broadcast(&v->c);
		pthread_mutex_unlock(&v->m);
	}
	q->done(q, st);
}

static void vio_put(struct vio *x)
{
	if (atomic_fetch_sub(&x->left, 1) == 1)
		vio_finish(x);
}

static void vio_deferred(void *arg)
{
	vio_finish(arg);
}

static void vio_sub_done(struct vlun_req *q, enum vlun_status st)
{
	struct vio_sub *s = q->priv;
	if (st != VLUN_OK) {
		unsigned ok = VLUN_OK;
		atomic_compare_exchange_strong(&s->parent->st, &ok, (unsigned)st);
	}
	vio_put(s->parent);
}

static int iov_slice(const struct iovec *iov, int cnt, uint64_t skip, uint64_t len, struct iovec **ret, int *ret_n)
{
	struct iovec *o = calloc((size_t)cnt, sizeof(*o));
	if (!o)
		return -ENOMEM;
	int n = 0;
	for (int i = 0; i < cnt && len > 0; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		uint64_t l = VLUN_MIN(len, iov[i].iov_len - skip);
		o[n].iov_base = (uint8_t *)iov[i].iov_base + skip;
		o[n++].iov_len = l;
		len -= l;
		skip = 0;
	}
	*ret = o;
	*ret_n = n;
	return 0;
}

int snap_view_submit(struct snap_view *v, struct vlun_req *req)
{
	struct snap_store *ss = v->ss;
	bool data = req->op == VLUN_OP_READ || req->op == VLUN_OP_WRITE;
	if (req->op > VLUN_OP_WRITE_ZEROES || (req->op != VLUN_OP_FLUSH &&
	    (req->offset % VLUN_SECTOR_SIZE || req->length % VLUN_SECTOR_SIZE)) ||
	    (data && req->length && (!req->iov || req->iovcnt <= 0)))
		return -EINVAL;
	uint64_t nch = req->op == VLUN_OP_READ && req->length ?
			       (req->offset + req->length - 1) / ss->cb - req->offset / ss->cb + 1 : 1;
	struct vio *x = calloc(1, sizeof(*x) + nch * sizeof(struct vio_sub));
	if (!x)
		return -ENOMEM;
	x->orig = req;
	x->v = v;
	atomic_init(&x->left, 1);
	atomic_fetch_add(&v->inflight, 1);
	req->err_offset = 0;
	unsigned st = VLUN_OK;
	bool writes = req->op == VLUN_OP_WRITE || req->op == VLUN_OP_WRITE_ZEROES || req->op == VLUN_OP_UNMAP;
	if (req->op != VLUN_OP_FLUSH && (req->offset > ss->src_bytes || req->length > ss->src_bytes - req->offset)) {
		st = VLUN_E_RANGE;
	} else if (writes && !v->writable) {
		st = VLUN_E_READONLY;
	} else if (ss->sess[v->bit].state != VLUN_SNAP_ACTIVE) {
		vlun_err("snapshot '%s' is FAILED (%s): I/O refused", v->name, "see vlunctl snapshot list");
		st = VLUN_E_HW;
	} else if (req->length == 0 && req->op != VLUN_OP_FLUSH) {
		/* nothing */
	} else if (writes) {
		struct snap_work *w = calloc(1, sizeof(*w));
		if (!w) {
			st = VLUN_E_NOMEM;
		} else {
			free(x);
			w->kind = W_VIEW;
			w->ss = ss;
			w->v = v;
			w->orig = req;
			queue_work(ss->p, w);
			return 0;
		}
	} else if (req->op == VLUN_OP_FLUSH) {
		x->nsub = 1;
		struct vio_sub *s = &x->sub[0];
		s->parent = x;
		s->q = (struct vlun_req){ .op = VLUN_OP_FLUSH, .done = vio_sub_done, .priv = s };
		atomic_fetch_add(&x->left, 1);
		if (vlun_vdisk_submit(ss->res, &s->q) < 0) {
			st = VLUN_E_NOMEM;
			atomic_fetch_sub(&x->left, 1);
		}
	} else {
		x->side = rd_enter(ss);
		x->counted = true;
		uint64_t bit = 1ull << v->bit, off = req->offset, end = req->offset + req->length;
		pthread_mutex_lock(&ss->lock);
		while (off < end) {
			uint64_t c = off / ss->cb, a = off % ss->cb, n = VLUN_MIN(end - off, ss->cb - a);
			uint32_t slot = find_slot(ss, c, bit);
			struct vio_sub *s = &x->sub[x->nsub++];
			s->parent = x;
			int cnt = 0;
			if (iov_slice(req->iov, req->iovcnt, off - req->offset, n, &s->iov, &cnt) < 0) {
				st = VLUN_E_NOMEM;
				x->nsub--;
				break;
			}
			s->q = (struct vlun_req){ .op = VLUN_OP_READ, .length = n, .iov = s->iov, .iovcnt = cnt,
						  .done = vio_sub_done, .priv = s };
			s->q.offset = slot == NONE ? off : snap_slot_off(ss->cb, slot) + a;
			s->q.internal[3] = slot == NONE ? (void *)ss->src : (void *)ss->res;
			off += n;
		}
		pthread_mutex_unlock(&ss->lock);
		for (int i = 0; i < x->nsub && st == VLUN_OK; i++) {
			struct vio_sub *s = &x->sub[i];
			struct vlun_vdisk *target = s->q.internal[3];
			s->q.internal[3] = NULL;
			atomic_fetch_add(&x->left, 1);
			if (vlun_vdisk_submit(target, &s->q) < 0) {
				atomic_fetch_sub(&x->left, 1);
				st = VLUN_E_NOMEM;
			}
		}
	}
	if (st != VLUN_OK) {
		unsigned ok = VLUN_OK;
		atomic_compare_exchange_strong(&x->st, &ok, st);
	}
	/* the completion never runs inside submit */
	if (atomic_fetch_sub(&x->left, 1) == 1) {
		if (vlun_io_defer(ss->p->io, vio_deferred, x) < 0) {
			if (x->counted)
				rd_exit(ss, x->side);
			for (int i = 0; i < x->nsub; i++)
				free(x->sub[i].iov);
			free(x);
			atomic_fetch_sub(&v->inflight, 1);
			return -ENOMEM;
		}
	}
	return 0;
}

int snap_view_open(struct vlun_pool *p, const char *name, unsigned flags, struct vlun_vdisk **ret,
		   char **ret_reason)
{
	const char *at = strchr(name, '@');
	char src[VLUN_NAME_MAX + 1];
	size_t sl = (size_t)(at - name);
	if (sl == 0 || sl > VLUN_NAME_MAX || !vlun_name_valid(at + 1)) {
		vlun_set_reason(ret_reason, "'%s' is not <source>@<snapshot> with valid names", name);
		return -EINVAL;
	}
	memcpy(src, name, sl);
	src[sl] = 0;
	struct snap_pool *sp = sp_get(p);
	if (!sp)
		return -ENOMEM;
	pthread_mutex_lock(&sp->lock);
	struct snap_store *ss;
	unsigned bit;
	int r = lookup(sp, p, src, at + 1, &ss, &bit, ret_reason);
	if (r < 0)
		goto out;
	if (ss->sess[bit].views) {
		vlun_set_reason(ret_reason, "snapshot '%s' is already open in this process", name);
		r = -EBUSY;
		goto out;
	}
	if (ss->sess[bit].state != VLUN_SNAP_ACTIVE) {
		vlun_set_reason(ret_reason, "snapshot '%s' is FAILED; delete it", name);
		r = -EIO;
		goto out;
	}
	struct snap_view *v = calloc(1, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	v->ss = ss;
	v->bit = bit;
	v->writable = flags & VLUN_VDISK_OPEN_WRITABLE;
	snprintf(v->name, sizeof(v->name), "%s", name);
	pthread_mutex_init(&v->m, NULL);
	pthread_cond_init(&v->c, NULL);
	r = vdisk_new_view(p, name, ss->src_bytes >> VLUN_SECTOR_SHIFT, v, &v->vd);
	if (r < 0) {
		free(v);
		goto out;
	}
	ss->sess[bit].views++;
	*ret = v->vd;
out:
	pthread_mutex_unlock(&sp->lock);
	return r;
}

void snap_view_close(struct snap_view *v)
{
	pthread_mutex_lock(&v->m);
	while (atomic_load(&v->inflight) > 0)
		pthread_cond_wait(&v->c, &v->m);
	pthread_mutex_unlock(&v->m);
	struct snap_pool *sp = v->ss->p->snap;
	pthread_mutex_lock(&sp->lock);
	v->ss->sess[v->bit].views--;
	pthread_mutex_unlock(&sp->lock);
	vdisk_free_view(v->vd);
	pthread_mutex_destroy(&v->m);
	pthread_cond_destroy(&v->c);
	free(v);
}

int snap_source_attach(struct vlun_pool *p, const char *name, char **ret_reason)
{
	if (p->flags & VLUN_OPEN_RDONLY)
		return 0;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk_desc *d = pool_find_vdisk_locked(p, name);
	bool has = d && sdesc_locked(p, d->id);
	uint32_t id = d ? d->id : 0;
	pthread_mutex_unlock(&p->ctl_lock);
	if (!has)
		return 0;
	struct snap_pool *sp = sp_get(p);
	if (!sp)
		return -ENOMEM;
	pthread_mutex_lock(&sp->lock);
	struct snap_store *ss;
	int r = store_get(sp, p, id, &ss, ret_reason);
	pthread_mutex_unlock(&sp->lock);
	return r == -ENOENT ? 0 : r;
}

const char *snap_refuse_locked(struct vlun_pool *p, const struct vlun_vdisk_desc *d, const char *op, char *buf,
			       size_t len)
{
	if (snap_internal_op)
		return NULL;
	if (d->flags & VLUN_VDISK_SNAP_RESERVE) {
		snprintf(buf, len, "'%s' is a snapshot reserve: it cannot be %s; use vlunctl snapshot "
			 "(delete the snapshots, or 'snapshot reserve' to grow it)", d->name,
			 strcmp(op, "export") == 0 ? "exported" : strcmp(op, "delete") == 0 ? "deleted" : "resized");
		return buf;
	}
	if (strcmp(op, "export") != 0 && sdesc_locked(p, d->id)) {
		unsigned n = 0;
		for (uint32_t i = 0; i < p->desc->nsnaps; i++)
			n += p->desc->snaps[i].source_id == d->id;
		snprintf(buf, len, "virtual disk '%s' has %u snapshot session(s): it cannot be %s while they "
			 "exist; delete them first (vlunctl snapshot delete)", d->name, n,
			 strcmp(op, "delete") == 0 ? "deleted" : "resized");
		return buf;
	}
	return NULL;
}

void snap_pool_stop(struct vlun_pool *p)
{
	struct snap_pool *sp = p->snap;
	if (!sp)
		return;
	rb_stop(sp); /* a rollback holds sp->lock while it copies */
	pthread_mutex_lock(&sp->lock);
	while (sp->stores) {
		struct snap_store *ss = sp->stores;
		/* the worker finishes what it holds first */
		while (atomic_load(&ss->nheld) > 0)
			usleep(200);
		sp->stores = ss->next;
		vdisk_set_snap(ss->src, NULL);
		vdisk_release(ss->res);
		vdisk_release(ss->src);
		store_free(ss);
	}
	while (sp->zombies) {
		struct snap_store *ss = sp->zombies;
		sp->zombies = ss->next;
		store_free(ss);
	}
	pthread_mutex_unlock(&sp->lock);
	pthread_mutex_lock(&sp->q_lock);
	sp->stop = true;
	pthread_cond_signal(&sp->q_cond);
	bool started = sp->started;
	pthread_mutex_unlock(&sp->q_lock);
	if (started)
		pthread_join(sp->thread, NULL);
	pthread_mutex_destroy(&sp->lock);
	pthread_mutex_destroy(&sp->q_lock);
	pthread_cond_destroy(&sp->q_cond);
	pthread_mutex_destroy(&sp->rb.lock);
	free(sp);
	p->snap = NULL;
}
