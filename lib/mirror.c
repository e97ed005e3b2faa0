/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mirror.c — the controller's actions on mirrored extents and failed
 * members (all with ctl_lock held, on the controller thread or a job).
 *
 * Model. An extent with ALT_EXISTS has two copies: the primary
 * (member/psector) and the alternate (alt_member/alt_psector). ALT_DIRTY
 * says the alternate is behind over the whole extent; the controller
 * splits extents at region boundaries (MIRROR_REGION_SECTORS, 1 MiB) so
 * the dirty extents are the mirror's dirty bitmap, kept in the map itself
 * and persisted with it. The primary of a mirrored extent is always a
 * good copy: when the member holding a primary fails, the copies are
 * swapped (the clean alternate becomes the primary) before anything is
 * marked behind.
 *
 * Failure: a member that returns an I/O error while it holds mirrored
 * copies is marked FAILED (member state, checkpoint at the next commit).
 * The fast path then reads only the other copy, and a write to a clean
 * extent with a copy on it faults: mirror_mark_behind_locked() marks the
 * region dirty on that member, the change is committed, and the write runs
 * again against the healthy copy only. So a write is acknowledged only
 * when its data is durable on a good copy AND the map says where the stale
 * copy is — a crash at any point cannot make a stale copy look current.
 *
 * Recovery: the job thread (job.c) probes failed members; one that answers
 * is OK again and the resync copies exactly the dirty regions (primary to
 * alternate), region by region, with NO_WRITE on the region being copied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pool_priv.h"

/* Copies the extents of d covering [vs, vs+ns), clipped (as map lookup). */
int mirror_desc_range(const struct vlun_vdisk_desc *d, uint64_t vs, uint64_t ns, struct vlun_extent **ret,
		      uint32_t *ret_n)
{
	if (ns == 0 || vs + ns > d->size_sectors)
		return -ERANGE;
	uint32_t lo = 0, hi = d->nextents;
	while (hi - lo > 1) { /* last extent with vsector <= vs */
		uint32_t mid = lo + (hi - lo) / 2;
		if (d->extents[mid].vsector <= vs)
			lo = mid;
		else
			hi = mid;
	}
	uint32_t cnt = 0;
	for (uint32_t i = lo; i < d->nextents && d->extents[i].vsector < vs + ns; i++)
		cnt++;
	struct vlun_extent *out = calloc(cnt ? cnt : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (uint32_t k = 0; k < cnt; k++) {
		struct vlun_extent e = d->extents[lo + k];
		uint64_t s = VLUN_MAX(e.vsector, vs), end = VLUN_MIN(e.vsector + e.nsectors, vs + ns);
		uint64_t clip = s - e.vsector;
		if (e.member != VLUN_NO_MEMBER && !(e.flags & VLUN_EXT_INVALID))
			e.psector += clip;
		if (e.flags & VLUN_EXT_ALT_EXISTS)
			e.alt_psector += clip;
		e.vsector = s;
		e.nsectors = end - s;
		out[k] = e;
	}
	*ret = out;
	*ret_n = cnt;
	return 0;
}

int mirror_publish_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vsector, uint64_t nsectors,
			  const struct vlun_extent *ext, uint32_t n, bool persist)
{
	struct vlun_vdisk *vd = pool_open_vdisk_locked(p, vdisk_id);
	int r;
	if (persist) {
		r = pool_record_change_locked(p, vdisk_id, vsector, nsectors, ext, n);
		if (r < 0)
			return r;
	}
	if (vd) {
		r = vlun_map_set(vdisk_map_of(vd), vsector, nsectors, ext, n);
		if (r < 0) {
			/* The description changed but the agents still see the
			 * old entry: they would write where the truth says
			 * not. Failing the caller is all that is left. */
			vlun_err("pool '%s': cannot publish the new map entry of vdisk %u at sector %llu: %s",
				 p->desc->name, vdisk_id, (unsigned long long)vsector, strerror(-r));
			return r;
		}
		vdisk_kick_parked_locked(vd);
	}
	return 0;
}

static bool holds_mirror_copy(struct vlun_pool *p, uint32_t m)
{
	for (uint32_t i = 0; i < p->desc->nvdisks; i++) {
		const struct vlun_vdisk_desc *d = &p->desc->vdisks[i];
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			if ((e->flags & VLUN_EXT_ALT_EXISTS) && (e->member == m || e->alt_member == m))
				return true;
		}
	}
	return false;
}

static void commit_soon_done(void *arg, int res)
{
	(void)res;
	free(arg);
}

/* Make what changed durable at the next controller round, even if no
 * request waits for it. */
static void commit_soon(struct vlun_pool *p)
{
	struct ctl_work *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->kind = CTL_COMMIT;
	w->fn = commit_soon_done;
	w->arg = w;
	pool_ctl_queue(p, w);
}

/* Swaps the copies of an extent: the alternate becomes the primary. */
static void swap_copies(struct vlun_extent *e)
{
	uint32_t m = e->member;
	uint64_t ps = e->psector;
	e->member = e->alt_member;
	e->psector = e->alt_psector;
	e->alt_member = m;
	e->alt_psector = ps;
}

void mirror_member_fail_locked(struct vlun_pool *p, uint32_t m, const char *why)
{
	if (m >= p->desc->nmembers || atomic_load(&p->members[m].failed))
		return;
	struct vlun_member_desc *md = &p->desc->members[m];
	/* kept short: tcmu-runner's log lines are about 256 bytes */
	vlun_err("pool '%s': member %u marked FAILED (%s); I/O goes on on the mirror copies; resync when it "
		 "returns", p->desc->name, m, why);
	atomic_store(&p->members[m].failed, true);
	md->state = VLUN_MEMBER_FAILED;
	vlun_alloc_set_member_state(p->alloc, m, VLUN_MEMBER_FAILED);
	p->need_full_commit = true;

	/* Primaries on m with a clean alternate on a healthy member swap.
	 * Collected first: publishing changes the description's arrays, and
	 * each publish touches only its own (disjoint) range. */
	for (uint32_t i = 0; i < p->desc->nvdisks; i++) {
		const struct vlun_vdisk_desc *d = &p->desc->vdisks[i];
		uint32_t id = d->id, cnt = 0;
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			cnt += e->member == m && (e->flags & VLUN_EXT_ALT_EXISTS) && !(e->flags & VLUN_EXT_ALT_DIRTY) &&
			       e->alt_member != VLUN_NO_MEMBER && !atomic_load(&p->members[e->alt_member].failed);
		}
		if (cnt == 0)
			continue;
		struct vlun_extent *sw = calloc(cnt, sizeof(*sw));
		if (!sw) {
			vlun_err("pool '%s': out of memory switching vdisk %u to its mirror copies", p->desc->name, id);
			continue;
		}
		uint32_t j = 0;
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			if (e->member == m && (e->flags & VLUN_EXT_ALT_EXISTS) && !(e->flags & VLUN_EXT_ALT_DIRTY) &&
			    e->alt_member != VLUN_NO_MEMBER && !atomic_load(&p->members[e->alt_member].failed))
				sw[j++] = *e;
		}
		for (j = 0; j < cnt; j++) {
			swap_copies(&sw[j]);
			int r = mirror_publish_locked(p, id, sw[j].vsector, sw[j].nsectors, &sw[j], 1, true);
			if (r < 0)
				vlun_err("pool '%s': cannot switch vdisk %u sectors %llu+%llu to its mirror copy: %s",
					 p->desc->name, id, (unsigned long long)sw[j].vsector,
					 (unsigned long long)sw[j].nsectors, strerror(-r));
		}
		free(sw);
	}
	commit_soon(p);
}

void mirror_member_error_locked(struct vlun_pool *p, uint32_t m, int res)
{
	if (m >= p->desc->nmembers || atomic_load(&p->members[m].failed))
		return;
	if (!holds_mirror_copy(p, m)) {
		/* Nothing to fail over to: the error went to the host. */
		return;
	}
	char why[96];
	snprintf(why, sizeof(why), "an I/O error: %s", strerror(-res));
	mirror_member_fail_locked(p, m, why);
}

void mirror_member_restore_locked(struct vlun_pool *p, uint32_t m)
{
	if (m >= p->desc->nmembers || !atomic_load(&p->members[m].failed))
		return;
	vlun_info("pool '%s': member %u ('%s') answers again: marked OK; resync of its stale ranges follows",
		  p->desc->name, m, p->desc->members[m].path_hint);
	atomic_store(&p->members[m].failed, false);
	p->desc->members[m].state = VLUN_MEMBER_OK;
	vlun_alloc_set_member_state(p->alloc, m, VLUN_MEMBER_OK);
	p->need_full_commit = true;
	commit_soon(p);
	jobs_kick(p);
}

/* What a behind mark changes, recorded in the description but not yet
 * published to the fast path. */
struct behind_mark {
	uint32_t vdisk_id;
	uint64_t a, b; /* region-aligned range */
	struct vlun_extent *ext;
	uint32_t n;
};

/* Records the mark as a pending delta; bm->ext is NULL when nothing
 * changed. The map is left as it is: see mirror_mark_behind_locked. */
static int mark_behind_record_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vs, uint64_t ns, uint32_t m,
				     struct behind_mark *bm)
{
	memset(bm, 0, sizeof(*bm));
	struct vlun_vdisk_desc *d = pool_vdesc_by_id_locked(p, vdisk_id);
	if (!d)
		return -ENOENT;
	uint64_t a = vs - vs % MIRROR_REGION_SECTORS;
	uint64_t b = VLUN_MIN(VLUN_ALIGN_UP(vs + ns, (uint64_t)MIRROR_REGION_SECTORS), d->size_sectors);
	struct vlun_extent *ext;
	uint32_t n;
	int r = mirror_desc_range(d, a, b - a, &ext, &n);
	if (r < 0)
		return r;
	bool changed = false;
	for (uint32_t k = 0; k < n; k++) {
		struct vlun_extent *e = &ext[k];
		bool touched = e->vsector < vs + ns && e->vsector + e->nsectors > vs;
		bool mirrored = (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER;
		if (!mirrored) {
			if (touched && e->member == m) {
				r = -EIO;
				break;
			}
			continue;
		}
		if (e->alt_member == m) {
			changed |= !(e->flags & VLUN_EXT_ALT_DIRTY);
			e->flags |= VLUN_EXT_ALT_DIRTY;
		} else if (e->member == m) {
			if (e->flags & VLUN_EXT_ALT_DIRTY) {
				/* the only current copy is on the failed member */
				if (touched) {
					r = -EIO;
					break;
				}
				continue;
			}
			swap_copies(e);
			e->flags |= VLUN_EXT_ALT_DIRTY;
			changed = true;
		}
	}
	if (r == -EIO)
		vlun_err("pool '%s': vdisk '%s' sectors %llu+%llu have no good copy left besides member %u",
			 p->desc->name, d->name, (unsigned long long)vs, (unsigned long long)ns, m);
	if (r == 0 && changed) {
		r = pool_record_change_locked(p, vdisk_id, a, b - a, ext, n);
		if (r == 0) {
			*bm = (struct behind_mark){ .vdisk_id = vdisk_id, .a = a, .b = b, .ext = ext, .n = n };
			return 0;
		}
	}
	free(ext);
	return r;
}

/* The marks reach the map only after the commit that records them: a
 * write that finds a region already behind writes the healthy copy only
 * and is acknowledged at once, so the mark it relies on must be durable
 * by then (else a crash leaves a clean extent whose copies differ). If
 * the commit fails the marks are published all the same: the writes that
 * wait for a commit fail with it, and nothing else is left to do. */
static int mark_behind_publish_locked(struct vlun_pool *p, struct behind_mark *bm, size_t nbm)
{
	bool any = false;
	for (size_t i = 0; i < nbm; i++)
		any |= bm[i].ext != NULL;
	if (!any)
		return 0;
	int c = pool_commit_locked(p);
	if (c < 0)
		vlun_err("pool '%s': the commit of a behind mark failed: %s", p->desc->name, strerror(-c));
	int ret = 0;
	for (size_t i = 0; i < nbm; i++) {
		if (!bm[i].ext)
			continue;
		int r = mirror_publish_locked(p, bm[i].vdisk_id, bm[i].a, bm[i].b - bm[i].a, bm[i].ext, bm[i].n,
					      false);
		if (r < 0)
			ret = r;
		free(bm[i].ext);
		bm[i].ext = NULL;
	}
	return ret;
}

int mirror_mark_behind_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vs, uint64_t ns, uint32_t m)
{
	struct behind_mark bm;
	int r = mark_behind_record_locked(p, vdisk_id, vs, ns, m, &bm);
	int rp = mark_behind_publish_locked(p, &bm, 1);
	return r < 0 ? r : rp;
}

int mirror_repair_error_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vs, uint64_t ns)
{
	struct vlun_vdisk_desc *d = pool_vdesc_by_id_locked(p, vdisk_id);
	if (!d)
		return -ENOENT;
	struct vlun_extent *ext;
	uint32_t n;
	int r = mirror_desc_range(d, vs, ns, &ext, &n);
	if (r < 0)
		return r;
	bool changed = false;
	for (uint32_t k = 0; k < n && r == 0; k++) {
		struct vlun_extent *e = &ext[k];
		if (!(e->flags & VLUN_EXT_ERROR))
			continue;
		if (!(e->flags & VLUN_EXT_ALT_EXISTS) || (e->flags & VLUN_EXT_ALT_DIRTY) ||
		    e->alt_member == VLUN_NO_MEMBER || atomic_load(&p->members[e->alt_member].failed)) {
			r = -EIO;
			break;
		}
		/* The clean alternate becomes the primary; the damaged copy is
		 * behind and is rewritten by the resync. */
		swap_copies(e);
		e->flags = (e->flags & ~VLUN_EXT_ERROR) | VLUN_EXT_ALT_DIRTY;
		changed = true;
	}
	if (r == 0 && !changed)
		r = -EIO; /* nothing this can repair: the write fails */
	if (r == 0) {
		r = mirror_publish_locked(p, vdisk_id, vs, ns, ext, n, true);
		jobs_kick(p);
	}
	free(ext);
	return r;
}

/* ------------------------------------------------------------ management */

static int mgmt_begin(struct vlun_pool *p, const char *name, uint64_t offset, uint64_t length,
		      struct vlun_vdisk_desc **ret_d, uint64_t *ret_vs, uint64_t *ret_ns, char **ret_reason)
{
	if (p->flags & (VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK)) {
		vlun_set_reason(ret_reason, "pool '%s' is open read-only here", p->desc->name);
		return -EROFS;
	}
	struct vlun_vdisk_desc *d = name ? pool_find_vdisk_locked(p, name) : NULL;
	if (!d) {
		vlun_set_reason(ret_reason, "pool '%s' has no virtual disk '%s'", p->desc->name, name ? name : "");
		return -ENOENT;
	}
	uint64_t size = d->size_sectors << VLUN_SECTOR_SHIFT;
	if (length == 0 && offset < size)
		length = size - offset;
	if (offset % VLUN_SECTOR_SIZE || length % VLUN_SECTOR_SIZE || offset >= size || length > size - offset) {
		vlun_set_reason(ret_reason, "range %llu+%llu is not inside '%s' (%llu bytes) or not 512-byte "
				"aligned", (unsigned long long)offset, (unsigned long long)length, name,
				(unsigned long long)size);
		return -ERANGE;
	}
	*ret_d = d;
	*ret_vs = offset >> VLUN_SECTOR_SHIFT;
	*ret_ns = length >> VLUN_SECTOR_SHIFT;
	return 0;
}

struct taken {
	uint32_t m;
	uint64_t ps, n;
};

VLUN_EXPORT int vlun_mirror_add(struct vlun_pool *p, const char *vdisk, uint64_t offset, uint64_t length,
				const uint32_t *members, size_t nmembers, char **ret_reason)
{
	if (!p || (nmembers && !members))
		return -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk_desc *d;
	uint64_t vs, ns;
	struct vlun_extent *ext = NULL, *out = NULL;
	struct taken *tk = NULL;
	size_t ntk = 0, nout = 0, cap = 0;
	uint32_t n = 0;
	int r = mgmt_begin(p, vdisk, offset, length, &d, &vs, &ns, ret_reason);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < nmembers; i++)
		if (members[i] >= p->desc->nmembers) {
			vlun_set_reason(ret_reason, "pool '%s' has no member %u", p->desc->name, members[i]);
			r = -ENOENT;
			goto out;
		}
	uint32_t id = d->id;
	bool whole_thin = d->layout == VLUN_LAYOUT_THIN && vs == 0 && ns == d->size_sectors;
	r = mirror_desc_range(d, vs, ns, &ext, &n);
	if (r < 0)
		goto out;
	uint64_t added = 0;
	for (uint32_t k = 0; k < n; k++) {
		struct vlun_extent e = ext[k];
		bool unbacked = e.member == VLUN_NO_MEMBER || (e.flags & VLUN_EXT_INVALID);
		uint64_t left = (unbacked || (e.flags & VLUN_EXT_ALT_EXISTS)) ? 0 : e.nsectors;
		if (left == 0) {
			if (nout == cap) {
				cap = cap ? 2 * cap : 64;
				struct vlun_extent *no = realloc(out, cap * sizeof(*no));
				if (!no) { r = -ENOMEM; goto undo; }
				out = no;
			}
			out[nout++] = e;
			continue;
		}
		uint32_t allowed[VLUN_MAX_MEMBERS];
		size_t na = 0;
		for (uint32_t m = 0; m < p->desc->nmembers; m++) {
			bool listed = nmembers == 0;
			for (size_t i = 0; i < nmembers; i++)
				listed |= members[i] == m;
			if (listed && m != e.member && !atomic_load(&p->members[m].failed))
				allowed[na++] = m;
		}
		uint64_t pos = 0;
		while (left > 0) {
			uint64_t want = left;
			uint32_t am = VLUN_NO_MEMBER;
			uint64_t aps = 0;
			for (;;) {
				uint64_t align = want % MIRROR_REGION_SECTORS == 0 ? MIRROR_REGION_SECTORS : 8;
				if (want % align)
					align = 1;
				r = na ? vlun_alloc_get(p->alloc, want, align, VLUN_NO_MEMBER, allowed, na, &am, &aps)
				       : -ENOSPC;
				if (r != -ENOSPC || want <= MIRROR_REGION_SECTORS)
					break;
				want = VLUN_MAX((uint64_t)MIRROR_REGION_SECTORS,
						(want / 2) - (want / 2) % MIRROR_REGION_SECTORS);
			}
			if (r < 0) {
				vlun_set_reason(ret_reason, "no room for a second copy of '%s' sectors %llu+%llu on "
						"%s other than member %u", vdisk,
						(unsigned long long)(e.vsector + pos), (unsigned long long)left,
						nmembers ? "the members given" : "any healthy member", e.member);
				goto undo;
			}
			struct taken *nt = realloc(tk, (ntk + 1) * sizeof(*nt));
			if (!nt) {
				vlun_alloc_put_back(p->alloc, am, aps, want);
				r = -ENOMEM;
				goto undo;
			}
			tk = nt;
			tk[ntk++] = (struct taken){ am, aps, want };
			if (nout == cap) {
				cap = cap ? 2 * cap : 64;
				struct vlun_extent *no = realloc(out, cap * sizeof(*no));
				if (!no) { r = -ENOMEM; goto undo; }
				out = no;
			}
			struct vlun_extent pe = e;
			pe.vsector = e.vsector + pos;
			pe.psector = e.psector + pos;
			pe.nsectors = want;
			pe.alt_member = am;
			pe.alt_psector = aps;
			pe.flags |= VLUN_EXT_ALT_EXISTS | VLUN_EXT_ALT_DIRTY;
			out[nout++] = pe;
			pos += want;
			left -= want;
			added += want;
		}
	}
	if (added == 0 && !whole_thin) {
		vlun_set_reason(ret_reason, "'%s' sectors %llu+%llu are already mirrored (or not allocated)", vdisk,
				(unsigned long long)vs, (unsigned long long)ns);
		r = -EEXIST;
		goto undo;
	}
	if (added) {
		r = mirror_publish_locked(p, id, vs, ns, out, (uint32_t)nout, true);
		if (r < 0) {
			vlun_set_reason(ret_reason, "cannot record the mirror of '%s': %s", vdisk, strerror(-r));
			goto undo;
		}
	}
	if (whole_thin) {
		struct vlun_vdisk_desc *dd = pool_find_vdisk_locked(p, vdisk);
		dd->flags |= VLUN_VDISK_MIRRORED;
		p->need_full_commit = true;
	}
	r = pool_commit_locked(p);
	if (r < 0)
		vlun_set_reason(ret_reason, "cannot commit the mirror of '%s': %s", vdisk, strerror(-r));
	else
		vlun_info("pool '%s': vdisk '%s': second copy of %llu bytes added; resync fills it", p->desc->name,
			  vdisk, (unsigned long long)(added << VLUN_SECTOR_SHIFT));
	goto out;
undo:
	for (size_t i = 0; i < ntk; i++)
		vlun_alloc_put_back(p->alloc, tk[i].m, tk[i].ps, tk[i].n);
out:
	pthread_mutex_unlock(&p->ctl_lock);
	if (r == 0)
		jobs_kick(p);
	free(ext);
	free(out);
	free(tk);
	return r;
}

VLUN_EXPORT int vlun_mirror_remove(struct vlun_pool *p, const char *vdisk, uint64_t offset, uint64_t length,
				   uint32_t member, char **ret_reason)
{
	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk_desc *d;
	uint64_t vs, ns;
	struct vlun_extent *ext = NULL;
	uint32_t n = 0;
	int r = mgmt_begin(p, vdisk, offset, length, &d, &vs, &ns, ret_reason);
	if (r < 0)
		goto out;
	if (member != VLUN_NO_MEMBER && member >= p->desc->nmembers) {
		vlun_set_reason(ret_reason, "pool '%s' has no member %u", p->desc->name, member);
		r = -ENOENT;
		goto out;
	}
	uint32_t id = d->id;
	bool whole = vs == 0 && ns == d->size_sectors;
	r = mirror_desc_range(d, vs, ns, &ext, &n);
	if (r < 0)
		goto out;
	/* check first, change nothing on refusal */
	uint64_t dropped = 0;
	for (uint32_t k = 0; k < n; k++) {
		const struct vlun_extent *e = &ext[k];
		if (!(e->flags & VLUN_EXT_ALT_EXISTS) || e->alt_member == VLUN_NO_MEMBER)
			continue;
		if (member != VLUN_NO_MEMBER && e->member == member &&
		    ((e->flags & VLUN_EXT_ALT_DIRTY) || atomic_load(&p->members[e->alt_member].failed))) {
			vlun_set_reason(ret_reason, "the copy of '%s' sectors %llu+%llu on member %u is the only "
					"current one (the other is behind or on a failed member); resync first",
					vdisk, (unsigned long long)e->vsector, (unsigned long long)e->nsectors, member);
			r = -EBUSY;
			goto out;
		}
		if (member == VLUN_NO_MEMBER || e->member == member || e->alt_member == member)
			dropped += e->nsectors;
	}
	if (dropped == 0) {
		if (member == VLUN_NO_MEMBER)
			vlun_set_reason(ret_reason, "'%s' sectors %llu+%llu have no mirror copy", vdisk,
					(unsigned long long)vs, (unsigned long long)ns);
		else
			vlun_set_reason(ret_reason, "'%s' sectors %llu+%llu have no mirror copy on member %u", vdisk,
					(unsigned long long)vs, (unsigned long long)ns, member);
		r = -ENOENT;
		goto out;
	}
	for (uint32_t k = 0; k < n; k++) {
		struct vlun_extent *e = &ext[k];
		if (!(e->flags & VLUN_EXT_ALT_EXISTS) || e->alt_member == VLUN_NO_MEMBER)
			continue;
		if (member != VLUN_NO_MEMBER && e->member == member) {
			vlun_alloc_free(p->alloc, e->member, e->psector, e->nsectors);
			swap_copies(e);
		} else if (member == VLUN_NO_MEMBER || e->alt_member == member) {
			vlun_alloc_free(p->alloc, e->alt_member, e->alt_psector, e->nsectors);
		} else {
			continue;
		}
		e->flags &= ~(VLUN_EXT_ALT_EXISTS | VLUN_EXT_ALT_DIRTY);
		e->alt_member = VLUN_NO_MEMBER;
		e->alt_psector = 0;
	}
	p->frees_pending = true;
	r = mirror_publish_locked(p, id, vs, ns, ext, n, true);
	if (r == 0 && whole && member == VLUN_NO_MEMBER) {
		struct vlun_vdisk_desc *dd = pool_find_vdisk_locked(p, vdisk);
		if (dd->flags & VLUN_VDISK_MIRRORED) {
			dd->flags &= ~VLUN_VDISK_MIRRORED;
			p->need_full_commit = true;
		}
	}
	if (r == 0)
		r = pool_commit_locked(p);
	if (r < 0)
		vlun_set_reason(ret_reason, "cannot record the removal of the mirror of '%s': %s", vdisk, strerror(-r));
	else
		vlun_info("pool '%s': vdisk '%s': one copy of %llu bytes dropped", p->desc->name, vdisk,
			  (unsigned long long)(dropped << VLUN_SECTOR_SHIFT));
out:
	pthread_mutex_unlock(&p->ctl_lock);
	free(ext);
	return r;
}

VLUN_EXPORT int vlun_mirror_split(struct vlun_pool *p, const char *vdisk, const char *new_name, char **ret_reason)
{
	if (!p || !new_name)
		return -EINVAL;
	if (!vlun_name_valid(new_name)) {
		vlun_set_reason(ret_reason, "virtual disk name '%s' is not valid: use 1..%d characters of "
				"[A-Za-z0-9._-]", new_name, VLUN_NAME_MAX);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_vdisk_desc *d;
	uint64_t vs, ns;
	struct vlun_extent *src = NULL, *dst = NULL, *old = NULL;
	bool held = false;
	int r = mgmt_begin(p, vdisk, 0, 0, &d, &vs, &ns, ret_reason);
	if (r < 0)
		goto out;
	if (pool_find_vdisk_locked(p, new_name)) {
		vlun_set_reason(ret_reason, "pool '%s' already has a virtual disk '%s'", p->desc->name, new_name);
		r = -EEXIST;
		goto out;
	}
	if (p->desc->nvdisks >= VLUN_MAX_VDISKS) {
		vlun_set_reason(ret_reason, "pool '%s' already has %d virtual disks", p->desc->name, VLUN_MAX_VDISKS);
		r = -E2BIG;
		goto out;
	}
	for (uint32_t k = 0; k < d->nextents; k++) {
		const struct vlun_extent *e = &d->extents[k];
		if (e->member == VLUN_NO_MEMBER || (e->flags & VLUN_EXT_INVALID))
			continue;
		bool mirrored = (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER;
		if (!mirrored || (e->flags & VLUN_EXT_ALT_DIRTY) || atomic_load(&p->members[e->alt_member].failed)) {
			vlun_set_reason(ret_reason, "'%s' sectors %llu+%llu are %s; split needs every allocated "
					"extent mirrored and in sync", vdisk, (unsigned long long)e->vsector,
					(unsigned long long)e->nsectors,
					!mirrored ? "not mirrored (vlunctl mirror add)" : "behind (wait for the resync)");
			r = -EBUSY;
			goto out;
		}
	}
	uint32_t id = d->id, n = d->nextents;
	uint64_t gen = d->generation;
	struct vlun_vdisk *open = pool_open_vdisk_locked(p, id);
	if (open) {
		/* Hold writes: NO_WRITE on the whole disk, then wait for what
		 * is in flight. */
		struct vlun_extent *nw = calloc(n, sizeof(*nw));
		if (!nw) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(nw, d->extents, n * sizeof(*nw));
		for (uint32_t k = 0; k < n; k++)
			nw[k].flags |= VLUN_EXT_NO_WRITE;
		r = vlun_map_set(vdisk_map_of(open), 0, d->size_sectors, nw, n);
		free(nw);
		if (r < 0)
			goto out;
		held = true;
		pthread_mutex_unlock(&p->ctl_lock);
		pool_epoch_drain(p);
		pthread_mutex_lock(&p->ctl_lock);
		d = pool_find_vdisk_locked(p, vdisk);
		if (!d || d->generation != gen) {
			vlun_set_reason(ret_reason, "'%s' changed while its writes were being held; try again", vdisk);
			r = -EAGAIN;
			goto out;
		}
	}
	src = calloc(n, sizeof(*src));
	dst = calloc(n, sizeof(*dst));
	struct vlun_vdisk_desc *nvs = realloc(p->desc->vdisks, (p->desc->nvdisks + 1) * sizeof(*nvs));
	if (nvs) {
		p->desc->vdisks = nvs;
		d = pool_find_vdisk_locked(p, vdisk);
	}
	if (!src || !dst || !nvs) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t k = 0; k < n; k++) {
		struct vlun_extent e = d->extents[k];
		struct vlun_extent c = e;
		if (e.member != VLUN_NO_MEMBER && !(e.flags & VLUN_EXT_INVALID)) {
			c.member = e.alt_member;
			c.psector = e.alt_psector;
		}
		c.flags &= ~(VLUN_EXT_ALT_EXISTS | VLUN_EXT_ALT_DIRTY);
		c.alt_member = VLUN_NO_MEMBER;
		c.alt_psector = 0;
		e.flags &= ~(VLUN_EXT_ALT_EXISTS | VLUN_EXT_ALT_DIRTY);
		e.alt_member = VLUN_NO_MEMBER;
		e.alt_psector = 0;
		src[k] = e;
		dst[k] = c;
	}
	struct vlun_vdisk_desc nv = *d;
	nv.id = p->desc->next_vdisk_id;
	vlun_uuid_generate(nv.uuid);
	snprintf(nv.name, sizeof(nv.name), "%s", new_name);
	nv.flags = 0;
	nv.generation = 1;
	nv.extents = dst;
	nv.extents_cap = 0;
	old = d->extents;
	d->extents = src;
	d->extents_cap = 0;
	d->flags &= ~VLUN_VDISK_MIRRORED;
	d->generation++;
	p->desc->vdisks[p->desc->nvdisks++] = nv;
	p->desc->next_vdisk_id++;
	p->desc->generation++;
	p->need_full_commit = true;
	r = pool_commit_locked(p);
	if (r < 0) {
		/* back to the mirrored disk */
		p->desc->nvdisks--;
		p->desc->next_vdisk_id--;
		d = pool_find_vdisk_locked(p, vdisk);
		d->extents = old;
		d->generation--;
		old = src; /* freed below */
		src = NULL;
		vlun_set_reason(ret_reason, "cannot commit the split of '%s': %s", vdisk, strerror(-r));
		goto out;
	}
	dst = NULL; /* owned by the new vdisk */
	src = NULL; /* owned by the source */
	vlun_info("pool '%s': vdisk '%s' split: its mirror copies are now vdisk '%s'", p->desc->name, vdisk,
		  new_name);
out:
	if (held) {
		struct vlun_vdisk_desc *dd = pool_find_vdisk_locked(p, vdisk);
		struct vlun_vdisk *ov = dd ? pool_open_vdisk_locked(p, dd->id) : NULL;
		if (ov && dd) {
			vlun_map_set(vdisk_map_of(ov), 0, dd->size_sectors, dd->extents, dd->nextents);
			vdisk_kick_parked_locked(ov);
		}
	}
	pthread_mutex_unlock(&p->ctl_lock);
	free(old);
	free(src);
	free(dst);
	return r;
}

int mirror_member_flush_failed_locked(struct vlun_pool *p, uint32_t m, const char *why)
{
	if (m >= p->desc->nmembers)
		return -EINVAL;
	if (!holds_mirror_copy(p, m))
		return -EIO; /* nothing to fail over to: the flush error stands */
	mirror_member_fail_locked(p, m, why);
	int ret = 0;
	for (uint32_t i = 0; i < p->desc->nvdisks; i++) {
		uint32_t id = p->desc->vdisks[i].id;
		const struct vlun_vdisk_desc *d = &p->desc->vdisks[i];
		uint32_t cnt = 0;
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			bool backed = e->member != VLUN_NO_MEMBER && !(e->flags & VLUN_EXT_INVALID);
			bool mirrored = (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER;
			if (backed && !mirrored && e->member == m)
				ret = -EIO;
			cnt += mirrored && (e->member == m || e->alt_member == m);
		}
		if (cnt == 0)
			continue;
		struct vlun_extent *ranges = calloc(cnt, sizeof(*ranges));
		if (!ranges)
			return -ENOMEM;
		uint32_t j = 0;
		for (uint32_t k = 0; k < d->nextents; k++) {
			const struct vlun_extent *e = &d->extents[k];
			if ((e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER &&
			    (e->member == m || e->alt_member == m))
				ranges[j++] = *e;
		}
		struct behind_mark *bm = calloc(cnt, sizeof(*bm));
		if (!bm) {
			free(ranges);
			return -ENOMEM;
		}
		for (j = 0; j < cnt; j++) {
			int r = mark_behind_record_locked(p, id, ranges[j].vsector, ranges[j].nsectors, m, &bm[j]);
			if (r < 0)
				ret = r;
		}
		int r = mark_behind_publish_locked(p, bm, cnt); /* one commit for all */
		if (r < 0)
			ret = r;
		free(bm);
		free(ranges);
	}
	return ret;
}
