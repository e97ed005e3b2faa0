/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * job.c — long copies while hosts do I/O: mirror resync and online
 * migration, on one job thread per held pool (or in vlunctl's thread when
 * nothing holds the pool: vlun_jobs_run).
 *
 * Every copy is one REGION (at most MIRROR_REGION_SECTORS of one extent)
 * and goes through the same steps:
 *
 *   1. ctl_lock: plan from the description (the persistent truth): which
 *      copy to read, where to write (migration: allocate the target), the
 *      new entry. Publish the old entry with NO_WRITE to the open map only
 *      (volatile: never in the metadata). Unlock.
 *   2. pool_epoch_drain: writes issued under the old entry have completed;
 *      later writes to the region fault and park in the controller.
 *   3. Copy without any lock (blkdev pread/pwrite), then flush the target.
 *   4. ctl_lock: if the region's entry in the description is still what
 *      was planned, publish the new entry (metadata delta, map, parked
 *      writes run again) and free the old place (reusable only after the
 *      commit that records it, alloc.h). If anything changed the region
 *      meanwhile (UNMAP, a failure, a new chunk), undo: the target goes
 *      back, the map gets the description's entry again, and the region is
 *      tried again later.
 *
 * Crash safety: the new entry becomes durable with the next commit (every
 * FLUSH and FUA write forces one, vdisk.c); until then the old entry and
 * its data are intact and still allocated, so a crash loses at most
 * writes the host never saw as durable. Migrations are recorded in the
 * metadata (JOB records) and resume on the next open; resync needs no
 * record — the ALT_DIRTY extents are its work list.
 *
 * Failed members are probed every few seconds (read + rewrite of the label
 * block); one that answers is restored and its stale regions resynced.
 * At the same pace the owner refreshes its PR registrations
 * (pool_ha_refresh, node.c): a path that comes back, or lost its
 * registration, is registered again without waiting for tcmu-runner's
 * get_lock_state, and a preempted owner learns it even when idle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "node.h"
#include "pool_priv.h"
#include "snap.h"

#define PROBE_INTERVAL_MS 3000
#define COPY_BUF (1u << 20)
#define COMMIT_EVERY 32      /* regions between commits of a long job */
#define DONE_KEEP_S 600      /* finished jobs stay listed this long */
#define MAX_FINISHED 16

struct job_rt {
	uint32_t id;
	uint32_t kind;
	uint32_t state;
	uint32_t vdisk_id;
	uint64_t total, done, rate, bps, started, finished;
	char what[128];
	char error[160];
	/* scan cursor: vdisk position and sector */
	uint32_t cur_vdisk;
	uint64_t cur_sector;
	/* rate limiting and speed */
	uint64_t t_start_ns, bytes_since_start;
	uint64_t win_ns, win_bytes;
	uint64_t retry_ns;        /* not before this (after an error) */
	unsigned regions;
};

struct job_runner {
	struct vlun_pool *p;
	pthread_t thread;
	bool threaded;
	pthread_mutex_t lock;     /* below; taken after ctl_lock, never before */
	pthread_cond_t cond;
	bool stop, kicked;
	struct job_rt resync;
	struct job_rt *mig;       /* runtime state of the persistent jobs */
	size_t nmig;
	struct job_rt finished[MAX_FINISHED];
	size_t nfinished;
	uint64_t next_probe_ns;
	uint64_t next_refresh_ns; /* PR refresh: not hurried by kicks */
	void *buf;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool mfailed(struct vlun_pool *p, uint32_t m)
{
	return m == VLUN_NO_MEMBER || m >= p->nmembers || !p->members[m].dev ||
	       atomic_load(&p->members[m].failed) || atomic_load(&p->members[m].inject_fail);
}

/* ------------------------------------------------------------ copying */

struct copy_op {
	uint32_t src, dst;
	uint64_t src_ps, dst_ps, n;
};

struct plan {
	uint32_t vdisk_id;
	struct vlun_extent old, neu;
	struct copy_op op[2];
	int nop;
	/* targets allocated for this region (given back on abort) */
	uint32_t tgt_m[2];
	uint64_t tgt_ps[2];
	int ntgt;
	/* old places freed on success */
	uint32_t free_m[2];
	uint64_t free_ps[2];
	int nfree;
};

static int copy_data(struct job_runner *jr, const struct copy_op *op)
{
	struct vlun_pool *p = jr->p;
	struct vlun_blkdev *src = p->members[op->src].dev, *dst = p->members[op->dst].dev;
	uint64_t off = 0, len = op->n << VLUN_SECTOR_SHIFT;
	while (off < len) {
		size_t l = (size_t)VLUN_MIN((uint64_t)COPY_BUF, len - off);
		int r;
		if (atomic_load(&p->members[op->src].inject_fail))
			r = -EIO;
		else
			r = vlun_blkdev_pread(src, jr->buf, l, (op->src_ps << VLUN_SECTOR_SHIFT) + off);
		if (r < 0) {
			vlun_err("pool '%s': copy: reading %zu bytes at offset %llu of member %u ('%s') failed: %s",
				 p->desc->name, l, (unsigned long long)((op->src_ps << VLUN_SECTOR_SHIFT) + off),
				 op->src, src->name, strerror(-r));
			return r == -EIO ? -EREMOTEIO : r; /* tells the caller: the source */
		}
		if (atomic_load(&p->members[op->dst].inject_fail))
			r = -EIO;
		else
			r = vlun_blkdev_pwrite(dst, jr->buf, l, (op->dst_ps << VLUN_SECTOR_SHIFT) + off);
		if (r < 0) {
			vlun_err("pool '%s': copy: writing %zu bytes at offset %llu of member %u ('%s') failed: %s",
				 p->desc->name, l, (unsigned long long)((op->dst_ps << VLUN_SECTOR_SHIFT) + off),
				 op->dst, dst->name, strerror(-r));
			return r;
		}
		off += l;
	}
	int r = atomic_load(&p->members[op->dst].inject_fail) ? -EIO : vlun_blkdev_flush(dst);
	if (r < 0)
		vlun_err("pool '%s': copy: flushing member %u ('%s') failed: %s", p->desc->name, op->dst,
			 dst->name, strerror(-r));
	return r;
}

static void plan_giveback_locked(struct vlun_pool *p, struct plan *pl)
{
	for (int i = 0; i < pl->ntgt; i++)
		vlun_alloc_put_back(p->alloc, pl->tgt_m[i], pl->tgt_ps[i], pl->old.nsectors);
	pl->ntgt = 0;
}

/* The description's entry of the planned region again (drops NO_WRITE). */
static void restore_map_locked(struct vlun_pool *p, const struct plan *pl)
{
	struct vlun_vdisk *vd = pool_open_vdisk_locked(p, pl->vdisk_id);
	struct vlun_vdisk_desc *d = pool_vdesc_by_id_locked(p, pl->vdisk_id);
	if (!vd || !d)
		return;
	struct vlun_extent *ext;
	uint32_t n;
	if (mirror_desc_range(d, pl->old.vsector, pl->old.nsectors, &ext, &n) == 0) {
		vlun_map_set(vdisk_map_of(vd), pl->old.vsector, pl->old.nsectors, ext, n);
		free(ext);
	}
	vdisk_kick_parked_locked(vd);
}

/* Steps 1-4 for one planned region; ctl_lock held on entry and exit.
 * 0 done, -EAGAIN the region changed (try again), other: copy failed. */
static int run_plan_locked(struct job_runner *jr, struct plan *pl)
{
	struct vlun_pool *p = jr->p;
	struct vlun_vdisk *vd = pool_open_vdisk_locked(p, pl->vdisk_id);
	if (vd) {
		struct vlun_extent nw = pl->old;
		nw.flags |= VLUN_EXT_NO_WRITE;
		int r = vlun_map_set(vdisk_map_of(vd), nw.vsector, nw.nsectors, &nw, 1);
		if (r < 0) {
			plan_giveback_locked(p, pl);
			return r;
		}
	}
	pthread_mutex_unlock(&p->ctl_lock);

	pool_epoch_drain(p);
	int r = 0;
	for (int i = 0; i < pl->nop && r == 0; i++)
		r = copy_data(jr, &pl->op[i]);

	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk_desc *d = pool_vdesc_by_id_locked(p, pl->vdisk_id);
	struct vlun_extent *cur = NULL;
	uint32_t n = 0;
	bool same = d && mirror_desc_range(d, pl->old.vsector, pl->old.nsectors, &cur, &n) == 0 && n == 1 &&
		    memcmp(&cur[0], &pl->old, sizeof(pl->old)) == 0;
	free(cur);
	if (r < 0 || !same) {
		plan_giveback_locked(p, pl);
		restore_map_locked(p, pl);
		if (r < 0) {
			/* which member: -EREMOTEIO marks the source */
			for (int i = 0; i < pl->nop; i++) {
				uint32_t m = r == -EREMOTEIO ? pl->op[i].src : pl->op[i].dst;
				mirror_member_error_locked(p, m, -EIO);
			}
			return r == -EREMOTEIO ? -EIO : r;
		}
		return -EAGAIN;
	}
	r = mirror_publish_locked(p, pl->vdisk_id, pl->neu.vsector, pl->neu.nsectors, &pl->neu, 1, true);
	if (r < 0) {
		plan_giveback_locked(p, pl);
		restore_map_locked(p, pl);
		return r;
	}
	for (int i = 0; i < pl->nfree; i++)
		vlun_alloc_free(p->alloc, pl->free_m[i], pl->free_ps[i], pl->old.nsectors);
	if (pl->nfree)
		p->frees_pending = true;
	return 0;
}

/* ------------------------------------------------------------ resync */

/* The next dirty region with both copies usable, from the cursor. */
static bool resync_find_locked(struct job_runner *jr, struct plan *pl, uint64_t *ret_remaining)
{
	struct vlun_pool *p = jr->p;
	struct job_rt *rt = &jr->resync;
	uint64_t remaining = 0;
	bool found = false;
	for (uint32_t i = 0; i < p->desc->nvdisks; i++) {
		const struct vlun_vdisk_desc *d = &p->desc->vdisks[i];
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			if (!(e->flags & VLUN_EXT_ALT_EXISTS) || !(e->flags & VLUN_EXT_ALT_DIRTY))
				continue;
			remaining += e->nsectors << VLUN_SECTOR_SHIFT;
			if (found || mfailed(p, e->member) || mfailed(p, e->alt_member))
				continue;
			uint64_t s = e->vsector;
			if (i == rt->cur_vdisk && rt->cur_sector > s && rt->cur_sector < e->vsector + e->nsectors)
				s = rt->cur_sector;
			uint64_t end = VLUN_MIN(e->vsector + e->nsectors,
						VLUN_ALIGN_UP(s + 1, (uint64_t)MIRROR_REGION_SECTORS));
			memset(pl, 0, sizeof(*pl));
			pl->vdisk_id = d->id;
			pl->old = *e;
			pl->old.vsector = s;
			pl->old.nsectors = end - s;
			pl->old.psector += s - e->vsector;
			pl->old.alt_psector += s - e->vsector;
			pl->neu = pl->old;
			pl->neu.flags &= ~VLUN_EXT_ALT_DIRTY;
			pl->op[0] = (struct copy_op){ .src = e->member, .src_ps = pl->old.psector,
						      .dst = e->alt_member, .dst_ps = pl->old.alt_psector,
						      .n = pl->old.nsectors };
			pl->nop = 1;
			rt->cur_vdisk = i;
			rt->cur_sector = end;
			found = true;
		}
	}
	*ret_remaining = remaining;
	return found;
}

/* ------------------------------------------------------------ migration */

static bool job_moves(const struct vlun_job_desc *j, uint32_t m)
{
	if (m == VLUN_NO_MEMBER)
		return false;
	if (j->from_member != VLUN_NO_MEMBER)
		return m == j->from_member;
	return !(j->to_mask[m / 64] & (1ull << (m % 64)));
}

static bool mask_empty(const uint64_t *mask)
{
	for (size_t k = 0; k < VLUN_MAX_MEMBERS / 64; k++)
		if (mask[k])
			return false;
	return true;
}

/* Target for n sectors of a copy: an allowed, healthy member other than
 * avoid (the other copy's member) and the job's source. */
static int job_alloc(struct vlun_pool *p, const struct vlun_job_desc *j, uint64_t n, uint32_t avoid,
		     uint32_t *ret_m, uint64_t *ret_ps)
{
	uint32_t allowed[VLUN_MAX_MEMBERS];
	size_t na = 0;
	for (uint32_t m = 0; m < p->nmembers; m++) {
		if (m == avoid || mfailed(p, m) || (j->from_member != VLUN_NO_MEMBER && m == j->from_member))
			continue;
		if (!mask_empty(j->to_mask) && !(j->to_mask[m / 64] & (1ull << (m % 64))))
			continue;
		allowed[na++] = m;
	}
	if (na == 0)
		return -ENOSPC;
	uint64_t align = n % MIRROR_REGION_SECTORS == 0 ? MIRROR_REGION_SECTORS : 8;
	if (n % align)
		align = 1;
	return vlun_alloc_get(p->alloc, n, align, VLUN_NO_MEMBER, allowed, na, ret_m, ret_ps);
}

/* Plans moving one copy of the region: a target on an allowed member other
 * than avoid, a copy op from (src, src_ps) when copy, the old place
 * (old_m, old_ps) freed on success; ret_m and ret_ps get the target. On
 * error everything planned so far is given back. */
static int plan_move(struct vlun_pool *p, const struct vlun_job_desc *j, struct plan *pl, uint32_t avoid,
		     bool copy, uint32_t src, uint64_t src_ps, uint32_t old_m, uint64_t old_ps, uint32_t *ret_m,
		     uint64_t *ret_ps)
{
	uint64_t n = pl->old.nsectors;
	uint32_t tm;
	uint64_t tp;
	int r = job_alloc(p, j, n, avoid, &tm, &tp);
	if (r < 0) {
		plan_giveback_locked(p, pl);
		return r;
	}
	if (copy)
		pl->op[pl->nop++] = (struct copy_op){ .src = src, .src_ps = src_ps, .dst = tm, .dst_ps = tp, .n = n };
	pl->tgt_m[pl->ntgt] = tm;
	pl->tgt_ps[pl->ntgt++] = tp;
	pl->free_m[pl->nfree] = old_m;
	pl->free_ps[pl->nfree++] = old_ps;
	*ret_m = tm;
	*ret_ps = tp;
	return 0;
}

static bool in_scope(const struct vlun_job_desc *j, const struct vlun_vdisk_desc *d, uint64_t *lo, uint64_t *hi)
{
	if (j->vdisk_id != UINT32_MAX && j->vdisk_id != d->id)
		return false;
	*lo = j->vdisk_id == UINT32_MAX ? 0 : j->vsector;
	*hi = j->vdisk_id == UINT32_MAX || j->nsectors == 0 ? d->size_sectors
								: VLUN_MIN(d->size_sectors, j->vsector + j->nsectors);
	return *lo < *hi;
}

/* The next region of job j to move; plans it and allocates its targets.
 * Returns 1 found, 0 nothing left, <0 error (no space). */
static int migrate_find_locked(struct job_runner *jr, const struct vlun_job_desc *j, struct job_rt *rt,
			       struct plan *pl, uint64_t *ret_remaining)
{
	struct vlun_pool *p = jr->p;
	uint64_t remaining = 0;
	int found = 0;
	for (uint32_t i = 0; i < p->desc->nvdisks; i++) {
		const struct vlun_vdisk_desc *d = &p->desc->vdisks[i];
		uint64_t lo, hi;
		if (!in_scope(j, d, &lo, &hi))
			continue;
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			if (e->vsector + e->nsectors <= lo || e->vsector >= hi)
				continue;
			if (e->member == VLUN_NO_MEMBER || (e->flags & VLUN_EXT_INVALID))
				continue;
			bool alt = (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER;
			bool mp = job_moves(j, e->member), ma = alt && job_moves(j, e->alt_member);
			if (!mp && !ma)
				continue;
			uint64_t s0 = VLUN_MAX(e->vsector, lo), e0 = VLUN_MIN(e->vsector + e->nsectors, hi);
			remaining += (e0 - s0) << VLUN_SECTOR_SHIFT;
			if (found)
				continue;
			uint64_t s = s0;
			if (i == rt->cur_vdisk && rt->cur_sector > s && rt->cur_sector < e0)
				s = rt->cur_sector;
			uint64_t end = VLUN_MIN(e0, VLUN_ALIGN_UP(s + 1, (uint64_t)MIRROR_REGION_SECTORS));
			memset(pl, 0, sizeof(*pl));
			pl->vdisk_id = d->id;
			pl->old = *e;
			pl->old.vsector = s;
			pl->old.nsectors = end - s;
			pl->old.psector += s - e->vsector;
			if (alt)
				pl->old.alt_psector += s - e->vsector;
			pl->neu = pl->old;
			bool aclean = alt && !(e->flags & VLUN_EXT_ALT_DIRTY);
			if (mp) {
				/* read the primary; if its member failed, the clean alternate */
				bool from_alt = mfailed(p, e->member) && aclean && !mfailed(p, e->alt_member);
				int r = plan_move(p, j, pl, alt ? e->alt_member : VLUN_NO_MEMBER, true,
						  from_alt ? e->alt_member : e->member,
						  from_alt ? pl->old.alt_psector : pl->old.psector,
						  e->member, pl->old.psector, &pl->neu.member, &pl->neu.psector);
				if (r < 0)
					return r;
			}
			if (ma) {
				/* a behind copy moves without data: the resync fills it */
				bool pbad = mfailed(p, e->member);
				int r = plan_move(p, j, pl, pl->neu.member, aclean, pbad ? e->alt_member : e->member,
						  pbad ? pl->old.alt_psector : pl->old.psector, e->alt_member,
						  pl->old.alt_psector, &pl->neu.alt_member, &pl->neu.alt_psector);
				if (r < 0)
					return r;
			}
			rt->cur_vdisk = i;
			rt->cur_sector = end;
			found = 1;
		}
	}
	*ret_remaining = remaining;
	return found;
}

/* ------------------------------------------------------------ the runner */

static struct job_rt *mig_rt(struct job_runner *jr, const struct vlun_job_desc *j)
{
	for (size_t i = 0; i < jr->nmig; i++)
		if (jr->mig[i].id == j->id)
			return &jr->mig[i];
	struct job_rt *n = realloc(jr->mig, (jr->nmig + 1) * sizeof(*n));
	if (!n)
		return NULL;
	jr->mig = n;
	struct job_rt *rt = &jr->mig[jr->nmig++];
	memset(rt, 0, sizeof(*rt));
	rt->id = j->id;
	rt->kind = VLUN_JOB_MIGRATE;
	rt->state = VLUN_JOB_QUEUED;
	rt->vdisk_id = j->vdisk_id;
	rt->rate = j->rate;
	rt->started = (uint64_t)time(NULL);
	return rt;
}

static void job_describe(struct vlun_pool *p, const struct vlun_job_desc *j, char *out, size_t len)
{
	const struct vlun_vdisk_desc *d = j->vdisk_id == UINT32_MAX ? NULL : pool_vdesc_by_id_locked(p, j->vdisk_id);
	char from[32] = "", to[64] = "";
	if (j->from_member != VLUN_NO_MEMBER)
		snprintf(from, sizeof(from), " off member %u", j->from_member);
	if (!mask_empty(j->to_mask)) {
		size_t o = (size_t)snprintf(to, sizeof(to), " to member");
		for (uint32_t m = 0; m < VLUN_MAX_MEMBERS && o < sizeof(to) - 6; m++)
			if (j->to_mask[m / 64] & (1ull << (m % 64)))
				o += (size_t)snprintf(to + o, sizeof(to) - o, " %u", m);
	}
	snprintf(out, len, "migrate %s%s%s%s", d ? "vdisk '" : "all vdisks", d ? d->name : "", d ? "'" : "", from);
	size_t l = strlen(out);
	snprintf(out + l, len - l, "%s", to);
}

static void rt_finish(struct job_runner *jr, struct job_rt *rt, uint32_t state)
{
	rt->state = state;
	rt->finished = (uint64_t)time(NULL);
	if (jr->nfinished == MAX_FINISHED) {
		memmove(&jr->finished[0], &jr->finished[1], (MAX_FINISHED - 1) * sizeof(jr->finished[0]));
		jr->nfinished--;
	}
	jr->finished[jr->nfinished++] = *rt;
}

static void rt_account(struct job_rt *rt, uint64_t bytes)
{
	uint64_t t = now_ns();
	rt->done += bytes;
	rt->bytes_since_start += bytes;
	rt->win_bytes += bytes;
	if (rt->win_ns == 0)
		rt->win_ns = t;
	if (t - rt->win_ns >= 1000000000ull) {
		rt->bps = rt->win_bytes * 1000000000ull / (t - rt->win_ns);
		rt->win_ns = t;
		rt->win_bytes = 0;
	}
}

/* Sleeps as the rate limit says (bytes since start / rate); false if the
 * runner is stopping. */
static bool rate_wait(struct job_runner *jr, struct job_rt *rt)
{
	if (rt->rate == 0)
		return true;
	uint64_t due = rt->t_start_ns + rt->bytes_since_start * 1000000000ull / rt->rate;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= due)
			return true;
		pthread_mutex_lock(&jr->lock);
		bool stop = jr->stop;
		if (!stop) {
			uint64_t wait = VLUN_MIN(due - t, 200000000ull);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + wait;
			ts.tv_sec += (time_t)(ns / 1000000000ull);
			ts.tv_nsec = (long)(ns % 1000000000ull);
			pthread_cond_timedwait(&jr->cond, &jr->lock, &ts);
			stop = jr->stop;
		}
		pthread_mutex_unlock(&jr->lock);
		if (stop)
			return false;
	}
}

/* Probes failed members: read and rewrite the label block. */
static void probe_failed(struct job_runner *jr)
{
	struct vlun_pool *p = jr->p;
	for (uint32_t m = 0; m < p->nmembers; m++) {
		if (!p->members[m].dev || !atomic_load(&p->members[m].failed))
			continue;
		int r = -EIO;
		if (!atomic_load(&p->members[m].inject_fail)) {
			r = vlun_blkdev_pread(p->members[m].dev, jr->buf, 4096, 4096);
			if (r == 0)
				r = vlun_blkdev_pwrite(p->members[m].dev, jr->buf, 4096, 4096);
			if (r == 0)
				r = vlun_blkdev_flush(p->members[m].dev);
		}
		if (r < 0)
			continue;
		pthread_mutex_lock(&p->ctl_lock);
		mirror_member_restore_locked(p, m);
		int c = pool_commit_locked(p);
		pthread_mutex_unlock(&p->ctl_lock);
		if (c < 0)
			vlun_err("pool '%s': cannot record member %u as healthy again: %s", p->desc->name, m,
				 strerror(-c));
	}
}

/* One region of resync. 1 done one, 0 nothing to do, <0 error. */
static int resync_step(struct job_runner *jr)
{
	struct vlun_pool *p = jr->p;
	struct job_rt *rt = &jr->resync;
	struct plan pl;
	uint64_t remaining;
	pthread_mutex_lock(&p->ctl_lock);
	bool found = resync_find_locked(jr, &pl, &remaining);
	if (!found) {
		if (rt->cur_sector || rt->cur_vdisk) {
			/* wrap: look from the start once more */
			rt->cur_sector = 0;
			rt->cur_vdisk = 0;
			found = resync_find_locked(jr, &pl, &remaining);
		}
	}
	pthread_mutex_lock(&jr->lock);
	if (!found) {
		if (rt->state == VLUN_JOB_RUNNING) {
			bool waiting = remaining > 0;
			rt->total = rt->done + remaining;
			if (!waiting) {
				vlun_info("pool '%s': resync done: %llu bytes copied", p->desc->name,
					  (unsigned long long)rt->done);
				rt_finish(jr, rt, VLUN_JOB_DONE);
				rt->state = VLUN_JOB_DONE;
			} else {
				rt->state = VLUN_JOB_WAITING;
				snprintf(rt->error, sizeof(rt->error),
					 "%llu bytes behind wait for a failed member to come back",
					 (unsigned long long)remaining);
			}
		}
		pthread_mutex_unlock(&jr->lock);
		if (p->npending)
			pool_commit_locked(p);
		pthread_mutex_unlock(&p->ctl_lock);
		return 0;
	}
	if (rt->state != VLUN_JOB_RUNNING) {
		memset(rt, 0, sizeof(*rt));
		rt->kind = VLUN_JOB_RESYNC;
		rt->state = VLUN_JOB_RUNNING;
		rt->vdisk_id = UINT32_MAX;
		rt->started = (uint64_t)time(NULL);
		rt->t_start_ns = now_ns();
		rt->cur_vdisk = 0;
		snprintf(rt->what, sizeof(rt->what), "resync of mirror copies that are behind");
		vlun_info("pool '%s': resync started: %llu bytes behind", p->desc->name, (unsigned long long)remaining);
	}
	rt->rate = atomic_load(&p->resync_rate);
	rt->total = rt->done + remaining;
	pthread_mutex_unlock(&jr->lock);

	int r = run_plan_locked(jr, &pl);
	if (r == 0 && ++rt->regions % COMMIT_EVERY == 0)
		pool_commit_locked(p);
	pthread_mutex_unlock(&p->ctl_lock);
	pthread_mutex_lock(&jr->lock);
	if (r == 0)
		rt_account(rt, pl.old.nsectors << VLUN_SECTOR_SHIFT);
	else if (r != -EAGAIN)
		snprintf(rt->error, sizeof(rt->error), "copy of vdisk %u sector %llu failed: %s", pl.vdisk_id,
			 (unsigned long long)pl.old.vsector, strerror(-r));
	pthread_mutex_unlock(&jr->lock);
	if (r == 0 && !rate_wait(jr, rt))
		return 0;
	return r == -EAGAIN ? 1 : r < 0 ? r : 1;
}

/* One region of migration job index ji. 1 done one, 0 finished, <0 error. */
static int migrate_step(struct job_runner *jr, uint32_t job_id)
{
	struct vlun_pool *p = jr->p;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_job_desc j;
	bool have = false;
	for (uint32_t i = 0; i < p->desc->njobs; i++)
		if (p->desc->jobs[i].id == job_id) {
			j = p->desc->jobs[i];
			have = true;
		}
	if (!have) {
		pthread_mutex_unlock(&p->ctl_lock);
		return 0;
	}
	pthread_mutex_lock(&jr->lock);
	struct job_rt *rt = mig_rt(jr, &j);
	pthread_mutex_unlock(&jr->lock);
	if (!rt) {
		pthread_mutex_unlock(&p->ctl_lock);
		return -ENOMEM;
	}
	struct plan pl;
	uint64_t remaining;
	int f = migrate_find_locked(jr, &j, rt, &pl, &remaining);
	if (f == 0 && (rt->cur_sector || rt->cur_vdisk)) {
		rt->cur_sector = 0;
		rt->cur_vdisk = 0;
		f = migrate_find_locked(jr, &j, rt, &pl, &remaining);
	}
	if (f <= 0) {
		pthread_mutex_lock(&jr->lock);
		if (f == 0) {
			/* nothing left: the job is done and leaves the metadata */
			for (uint32_t i = 0; i < p->desc->njobs; i++)
				if (p->desc->jobs[i].id == job_id) {
					p->desc->jobs[i] = p->desc->jobs[--p->desc->njobs];
					break;
				}
			p->need_full_commit = true;
			rt->total = rt->done;
			vlun_info("pool '%s': %s: done, %llu bytes moved", p->desc->name, rt->what,
				  (unsigned long long)rt->done);
			rt_finish(jr, rt, VLUN_JOB_DONE);
			*rt = jr->mig[--jr->nmig];
		} else {
			rt->state = VLUN_JOB_WAITING;
			snprintf(rt->error, sizeof(rt->error), "no room for the moved data on the target members (%s); "
				 "add a member or free space, the job retries", strerror(-f));
			rt->retry_ns = now_ns() + 10000000000ull;
		}
		pthread_mutex_unlock(&jr->lock);
		int c = pool_commit_locked(p);
		pthread_mutex_unlock(&p->ctl_lock);
		if (c < 0)
			vlun_err("pool '%s': commit after migration job %u failed: %s", p->desc->name, job_id,
				 strerror(-c));
		return f;
	}
	pthread_mutex_lock(&jr->lock);
	if (rt->state != VLUN_JOB_RUNNING) {
		rt->state = VLUN_JOB_RUNNING;
		rt->error[0] = 0;
		if (!rt->t_start_ns)
			rt->t_start_ns = now_ns();
		job_describe(p, &j, rt->what, sizeof(rt->what));
		vlun_info("pool '%s': %s: %llu bytes to move", p->desc->name, rt->what,
			  (unsigned long long)remaining);
	}
	rt->rate = j.rate;
	rt->total = rt->done + remaining;
	pthread_mutex_unlock(&jr->lock);

	int r = run_plan_locked(jr, &pl);
	if (r == 0 && ++rt->regions % COMMIT_EVERY == 0)
		pool_commit_locked(p);
	pthread_mutex_unlock(&p->ctl_lock);
	pthread_mutex_lock(&jr->lock);
	/* rt may have moved (realloc by another job's entry): look it up */
	struct job_rt *rt2 = NULL;
	for (size_t i = 0; i < jr->nmig; i++)
		if (jr->mig[i].id == job_id)
			rt2 = &jr->mig[i];
	if (rt2 && r == 0)
		rt_account(rt2, pl.old.nsectors << VLUN_SECTOR_SHIFT);
	else if (rt2 && r != -EAGAIN) {
		snprintf(rt2->error, sizeof(rt2->error), "copy of vdisk %u sector %llu failed: %s; retrying",
			 pl.vdisk_id, (unsigned long long)pl.old.vsector, strerror(-r));
		rt2->retry_ns = now_ns() + 5000000000ull;
	}
	pthread_mutex_unlock(&jr->lock);
	if (r == 0 && rt2 && !rate_wait(jr, rt2))
		return 0;
	return r == -EAGAIN ? 1 : r < 0 ? r : 1;
}

/* One round over everything: probe, resync, each migration. Returns true
 * when some job did work (call again at once). */
static bool jobs_round(struct job_runner *jr, int *ret_err)
{
	struct vlun_pool *p = jr->p;
	bool worked = false;
	uint64_t t = now_ns();
	if (atomic_load(&p->ha_fenced))
		return false; /* HA standby or fenced: only the owner copies (node.c) */
	if (t >= jr->next_probe_ns) {
		probe_failed(jr);
		jr->next_probe_ns = t + PROBE_INTERVAL_MS * 1000000ull;
	}
	if (t >= jr->next_refresh_ns) {
		/* PR IN on every path of every member: every 3 s, not per kick */
		jr->next_refresh_ns = t + PROBE_INTERVAL_MS * 1000000ull;
		if (pool_ha_refresh(p) == -EPERM) {
			/* preempted: fenced now (node.c logged it); tell the
			 * holder (the handler tells tcmu-runner) */
			void (*fn)(void *) = atomic_load(&p->on_fenced);

			if (fn)
				fn(atomic_load(&p->on_fenced_arg));
			return false;
		}
	}
	int r = resync_step(jr);
	if (r > 0)
		worked = true;
	else if (r < 0 && ret_err)
		*ret_err = r;

	uint32_t ids[VLUN_MAX_JOBS];
	uint32_t n = 0;
	pthread_mutex_lock(&p->ctl_lock);
	for (uint32_t i = 0; i < p->desc->njobs && n < VLUN_MAX_JOBS; i++)
		ids[n++] = p->desc->jobs[i].id;
	pthread_mutex_unlock(&p->ctl_lock);
	for (uint32_t i = 0; i < n; i++) {
		pthread_mutex_lock(&jr->lock);
		bool later = false;
		for (size_t k = 0; k < jr->nmig; k++)
			if (jr->mig[k].id == ids[i] && jr->mig[k].retry_ns > now_ns())
				later = true;
		pthread_mutex_unlock(&jr->lock);
		if (later)
			continue;
		r = migrate_step(jr, ids[i]);
		if (r > 0)
			worked = true;
		else if (r < 0 && ret_err)
			*ret_err = r;
	}
	return worked;
}

static void *jobs_main(void *arg)
{
	struct job_runner *jr = arg;
	for (;;) {
		pthread_mutex_lock(&jr->lock);
		bool stop = jr->stop;
		pthread_mutex_unlock(&jr->lock);
		if (stop)
			break;
		if (jobs_round(jr, NULL))
			continue;
		pthread_mutex_lock(&jr->lock);
		if (!jr->stop && !jr->kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + 1000000000ull;
			ts.tv_sec += (time_t)(ns / 1000000000ull);
			ts.tv_nsec = (long)(ns % 1000000000ull);
			pthread_cond_timedwait(&jr->cond, &jr->lock, &ts);
		}
		if (jr->kicked)
			jr->next_probe_ns = 0;
		jr->kicked = false;
		pthread_mutex_unlock(&jr->lock);
	}
	return NULL;
}

static int runner_new(struct vlun_pool *p, struct job_runner **ret)
{
	struct job_runner *jr = calloc(1, sizeof(*jr));
	if (!jr)
		return -ENOMEM;
	if (posix_memalign(&jr->buf, 4096, COPY_BUF) != 0) {
		free(jr);
		return -ENOMEM;
	}
	jr->p = p;
	pthread_mutex_init(&jr->lock, NULL);
	pthread_cond_init(&jr->cond, NULL);
	jr->resync.kind = VLUN_JOB_RESYNC;
	jr->resync.state = VLUN_JOB_DONE;
	*ret = jr;
	return 0;
}

static void runner_free(struct job_runner *jr)
{
	if (!jr)
		return;
	pthread_mutex_destroy(&jr->lock);
	pthread_cond_destroy(&jr->cond);
	free(jr->mig);
	free(jr->buf);
	free(jr);
}

int jobs_start_locked(struct vlun_pool *p)
{
	if (p->jobs)
		return 0;
	struct job_runner *jr;
	int r = runner_new(p, &jr);
	if (r < 0)
		return r;
	r = -pthread_create(&jr->thread, NULL, jobs_main, jr);
	if (r < 0) {
		runner_free(jr);
		return r;
	}
	jr->threaded = true;
	p->jobs = jr;
	return 0;
}

void jobs_stop(struct vlun_pool *p)
{
	struct job_runner *jr = p->jobs;
	if (!jr)
		return;
	pthread_mutex_lock(&jr->lock);
	jr->stop = true;
	pthread_cond_broadcast(&jr->cond);
	pthread_mutex_unlock(&jr->lock);
	if (jr->threaded)
		pthread_join(jr->thread, NULL);
	p->jobs = NULL;
	runner_free(jr);
}

void jobs_kick(struct vlun_pool *p)
{
	struct job_runner *jr = p->jobs;
	if (!jr)
		return;
	pthread_mutex_lock(&jr->lock);
	jr->kicked = true;
	pthread_cond_broadcast(&jr->cond);
	pthread_mutex_unlock(&jr->lock);
}

/* ------------------------------------------------------------ public API */

static void info_of(const struct job_rt *rt, struct vlun_job_info *o)
{
	memset(o, 0, sizeof(*o));
	o->id = rt->id;
	o->kind = rt->kind;
	o->state = rt->state;
	o->vdisk_id = rt->vdisk_id;
	o->total_bytes = rt->total;
	o->done_bytes = rt->done;
	o->rate = rt->rate;
	o->bytes_per_sec = rt->bps;
	o->started = rt->started;
	snprintf(o->what, sizeof(o->what), "%s", rt->what);
	snprintf(o->error, sizeof(o->error), "%s", rt->error);
}

static int list_locked(struct vlun_pool *p, struct job_runner *jr, struct vlun_job_info **ret, size_t *ret_n)
{
	size_t cap = 1 + p->desc->njobs + MAX_FINISHED, n = 0;
	struct vlun_job_info *v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (jr)
		pthread_mutex_lock(&jr->lock);
	if (jr && jr->resync.state != VLUN_JOB_DONE)
		info_of(&jr->resync, &v[n++]);
	for (uint32_t i = 0; i < p->desc->njobs; i++) {
		const struct vlun_job_desc *j = &p->desc->jobs[i];
		const struct job_rt *rt = NULL;
		for (size_t k = 0; jr && k < jr->nmig; k++)
			if (jr->mig[k].id == j->id)
				rt = &jr->mig[k];
		if (rt) {
			info_of(rt, &v[n]);
		} else {
			memset(&v[n], 0, sizeof(v[n]));
			v[n].id = j->id;
			v[n].kind = j->kind;
			v[n].state = VLUN_JOB_QUEUED;
			v[n].vdisk_id = j->vdisk_id;
			v[n].rate = j->rate;
			v[n].started = j->created;
		}
		if (!v[n].what[0])
			job_describe(p, j, v[n].what, sizeof(v[n].what));
		n++;
	}
	uint64_t t = (uint64_t)time(NULL);
	for (size_t k = 0; jr && k < jr->nfinished; k++)
		if (jr->finished[k].finished + DONE_KEEP_S >= t)
			info_of(&jr->finished[k], &v[n++]);
	if (jr)
		pthread_mutex_unlock(&jr->lock);
	*ret = v;
	*ret_n = n;
	return 0;
}

VLUN_EXPORT int vlun_jobs_list(struct vlun_pool *p, struct vlun_job_info **ret, size_t *ret_n)
{
	if (!p || !ret || !ret_n)
		return -EINVAL;
	struct vlun_job_info *v = NULL;
	size_t n = 0;
	pthread_mutex_lock(&p->ctl_lock);
	int r = list_locked(p, p->jobs, &v, &n);
	if (r == 0)
		r = snap_jobs_append_locked(p, &v, &n); /* a running snapshot rollback */
	pthread_mutex_unlock(&p->ctl_lock);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int writable(struct vlun_pool *p, char **ret_reason)
{
	if (p->flags & (VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK)) {
		vlun_set_reason(ret_reason, "pool '%s' is open read-only here; jobs run in the process that "
				"holds it", p->desc->name);
		return -EROFS;
	}
	return 0;
}

VLUN_EXPORT int vlun_migrate_start(struct vlun_pool *p, const struct vlun_migrate_opts *o, uint32_t *ret_job_id,
				   char **ret_reason)
{
	if (!p || !o)
		return -EINVAL;
	int r = writable(p, ret_reason);
	if (r < 0)
		return r;
	struct vlun_job_desc j = { .kind = VLUN_JOB_MIGRATE, .vdisk_id = UINT32_MAX,
				   .from_member = o->from_member, .rate = o->rate,
				   .created = (uint64_t)time(NULL) };
	pthread_mutex_lock(&p->ctl_lock);
	if (o->from_member != VLUN_NO_MEMBER && o->from_member >= p->desc->nmembers) {
		vlun_set_reason(ret_reason, "pool '%s' has no member %u (members 0..%u)", p->desc->name,
				o->from_member, p->desc->nmembers - 1);
		r = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < o->nto; i++) {
		if (o->to[i] >= p->desc->nmembers) {
			vlun_set_reason(ret_reason, "pool '%s' has no member %u to migrate to", p->desc->name, o->to[i]);
			r = -ENOENT;
			goto out;
		}
		if (o->to[i] == o->from_member) {
			vlun_set_reason(ret_reason, "member %u is both the source and a target", o->to[i]);
			r = -EINVAL;
			goto out;
		}
		j.to_mask[o->to[i] / 64] |= 1ull << (o->to[i] % 64);
	}
	if (o->from_member == VLUN_NO_MEMBER && o->nto == 0) {
		vlun_set_reason(ret_reason, "say what to move: a member to empty (off-member) or the members to "
				"move to (to)");
		r = -EINVAL;
		goto out;
	}
	if (o->vdisk) {
		struct vlun_vdisk_desc *d = pool_find_vdisk_locked(p, o->vdisk);
		if (!d) {
			vlun_set_reason(ret_reason, "pool '%s' has no virtual disk '%s'", p->desc->name, o->vdisk);
			r = -ENOENT;
			goto out;
		}
		uint64_t size = d->size_sectors << VLUN_SECTOR_SHIFT;
		if (o->offset % VLUN_SECTOR_SIZE || o->length % VLUN_SECTOR_SIZE || o->offset >= size ||
		    o->length > size - o->offset) {
			vlun_set_reason(ret_reason, "range %llu+%llu is not inside '%s' (%llu bytes) or not "
					"512-byte aligned", (unsigned long long)o->offset,
					(unsigned long long)o->length, o->vdisk, (unsigned long long)size);
			r = -ERANGE;
			goto out;
		}
		j.vdisk_id = d->id;
		j.vsector = o->offset >> VLUN_SECTOR_SHIFT;
		j.nsectors = o->length >> VLUN_SECTOR_SHIFT;
	} else if (o->offset || o->length) {
		vlun_set_reason(ret_reason, "a range needs a virtual disk");
		r = -EINVAL;
		goto out;
	}
	if (p->desc->njobs >= VLUN_MAX_JOBS) {
		vlun_set_reason(ret_reason, "pool '%s' already has %d jobs; wait for some to finish",
				p->desc->name, VLUN_MAX_JOBS);
		r = -EBUSY;
		goto out;
	}
	struct vlun_job_desc *nj = realloc(p->desc->jobs, (p->desc->njobs + 1) * sizeof(*nj));
	if (!nj) {
		r = -ENOMEM;
		goto out;
	}
	p->desc->jobs = nj;
	j.id = p->desc->next_job_id ? p->desc->next_job_id : 1;
	p->desc->next_job_id = j.id + 1;
	p->desc->jobs[p->desc->njobs++] = j;
	p->need_full_commit = true;
	r = pool_commit_locked(p);
	if (r < 0) {
		p->desc->njobs--;
		vlun_set_reason(ret_reason, "cannot record the migration in the metadata: %s", strerror(-r));
		goto out;
	}
	if (ret_job_id)
		*ret_job_id = j.id;
	r = 0;
out:
	pthread_mutex_unlock(&p->ctl_lock);
	if (r == 0)
		jobs_kick(p);
	return r;
}

VLUN_EXPORT int vlun_resync_start(struct vlun_pool *p, uint64_t rate, char **ret_reason)
{
	if (!p)
		return -EINVAL;
	int r = writable(p, ret_reason);
	if (r < 0)
		return r;
	atomic_store(&p->resync_rate, rate);
	jobs_kick(p);
	return 0;
}

VLUN_EXPORT int vlun_job_cancel(struct vlun_pool *p, uint32_t id, char **ret_reason)
{
	if (!p)
		return -EINVAL;
	int r = writable(p, ret_reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&p->ctl_lock);
	r = -ENOENT;
	for (uint32_t i = 0; i < p->desc->njobs; i++)
		if (p->desc->jobs[i].id == id) {
			p->desc->jobs[i] = p->desc->jobs[--p->desc->njobs];
			r = 0;
			break;
		}
	if (r < 0) {
		vlun_set_reason(ret_reason, "pool '%s' has no job %u%s", p->desc->name, id,
				id == 0 ? " (the resync cannot be cancelled: remove the mirror instead)" : "");
		pthread_mutex_unlock(&p->ctl_lock);
		return r;
	}
	p->need_full_commit = true;
	r = pool_commit_locked(p);
	struct job_runner *jr = p->jobs;
	if (jr) {
		pthread_mutex_lock(&jr->lock);
		for (size_t k = 0; k < jr->nmig; k++)
			if (jr->mig[k].id == id) {
				rt_finish(jr, &jr->mig[k], VLUN_JOB_CANCELLED);
				jr->mig[k] = jr->mig[--jr->nmig];
				break;
			}
		pthread_mutex_unlock(&jr->lock);
	}
	pthread_mutex_unlock(&p->ctl_lock);
	if (r < 0)
		vlun_set_reason(ret_reason, "cannot record the cancel in the metadata: %s", strerror(-r));
	return r;
}

VLUN_EXPORT int vlun_jobs_run(struct vlun_pool *p, void (*progress)(const struct vlun_job_info *info, void *arg),
			      void *arg)
{
	if (!p)
		return -EINVAL;
	int r = writable(p, NULL);
	if (r < 0)
		return r;
	if (p->jobs) /* a thread already runs them: just report until idle */
		return -EBUSY;
	struct job_runner *jr;
	r = runner_new(p, &jr);
	if (r < 0)
		return r;
	p->jobs = jr;
	int err = 0;
	uint64_t last = 0;
	for (;;) {
		bool worked = jobs_round(jr, &err);
		uint64_t t = now_ns();
		if (progress && (t - last >= 1000000000ull || !worked)) {
			last = t;
			struct vlun_job_info *v;
			size_t n;
			pthread_mutex_lock(&p->ctl_lock);
			int lr = list_locked(p, jr, &v, &n);
			pthread_mutex_unlock(&p->ctl_lock);
			if (lr == 0) {
				for (size_t i = 0; i < n; i++)
					progress(&v[i], arg);
				free(v);
			}
		}
		if (!worked) {
			/* done, or waiting for something only time can fix */
			bool waiting = false;
			pthread_mutex_lock(&jr->lock);
			waiting = jr->nmig > 0;
			pthread_mutex_unlock(&jr->lock);
			if (!waiting || err)
				break;
			if (p->desc->njobs == 0)
				break;
			sleep(1);
		}
	}
	pthread_mutex_lock(&p->ctl_lock);
	int c = pool_commit_locked(p);
	pthread_mutex_unlock(&p->ctl_lock);
	p->jobs = NULL;
	runner_free(jr);
	return err ? err : c;
}

VLUN_EXPORT int vlun_pool_inject_member_fault(struct vlun_pool *p, uint32_t member, bool fail)
{
	if (!p)
		return -EINVAL;
	if (member >= p->nmembers)
		return -ENOENT;
	vlun_warn("pool '%s': fault injection: I/O to member %u %s", p->desc->name, member,
		  fail ? "now fails with EIO" : "works again");
	atomic_store(&p->members[member].inject_fail, fail);
	if (!fail)
		jobs_kick(p);
	return 0;
}
