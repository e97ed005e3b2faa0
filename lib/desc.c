/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * desc.c — the pool description (struct vlun_pool_desc): deep copy, free,
 * and the invariants every description must hold before it is committed
 * or after it is decoded from disk.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

VLUN_EXPORT void vlun_pool_desc_free(struct vlun_pool_desc *d)
{
	if (!d)
		return;
	if (d->vdisks)
		for (uint32_t i = 0; i < d->nvdisks; i++)
			free(d->vdisks[i].extents);
	free(d->vdisks);
	free(d->members);
	free(d->jobs);
	free(d->snaps);
	free(d->snap_stores);
	free(d);
}

VLUN_EXPORT int vlun_pool_desc_dup(const struct vlun_pool_desc *src, struct vlun_pool_desc **ret)
{
	struct vlun_pool_desc *d;

	if (!src || !ret)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = *src;
	d->members = NULL;
	d->vdisks = NULL;
	d->jobs = NULL;
	d->snaps = NULL;
	d->snap_stores = NULL;
	if (src->nsnaps > 0) {
		if (!src->snaps)
			goto inval;
		d->snaps = calloc(src->nsnaps, sizeof(*d->snaps));
		if (!d->snaps)
			goto nomem;
		memcpy(d->snaps, src->snaps, src->nsnaps * sizeof(*d->snaps));
	}
	if (src->nsnap_stores > 0) {
		if (!src->snap_stores)
			goto inval;
		d->snap_stores = calloc(src->nsnap_stores, sizeof(*d->snap_stores));
		if (!d->snap_stores)
			goto nomem;
		memcpy(d->snap_stores, src->snap_stores, src->nsnap_stores * sizeof(*d->snap_stores));
	}
	if (src->njobs > 0) {
		if (!src->jobs)
			goto inval;
		d->jobs = calloc(src->njobs, sizeof(*d->jobs));
		if (!d->jobs)
			goto nomem;
		memcpy(d->jobs, src->jobs, src->njobs * sizeof(*d->jobs));
	}
	if (src->nmembers > 0) {
		if (!src->members)
			goto inval;
		d->members = calloc(src->nmembers, sizeof(*d->members));
		if (!d->members)
			goto nomem;
		memcpy(d->members, src->members, src->nmembers * sizeof(*d->members));
	}
	if (src->nvdisks > 0) {
		if (!src->vdisks)
			goto inval;
		d->vdisks = calloc(src->nvdisks, sizeof(*d->vdisks));
		if (!d->vdisks)
			goto nomem;
		for (uint32_t i = 0; i < src->nvdisks; i++) {
			const struct vlun_vdisk_desc *sv = &src->vdisks[i];
			struct vlun_vdisk_desc *dv = &d->vdisks[i];

			*dv = *sv;
			dv->extents = NULL;
			dv->extents_cap = 0;
			if (sv->nextents == 0)
				continue;
			if (!sv->extents) {
				dv->nextents = 0;
				goto inval;
			}
			dv->extents = calloc(sv->nextents, sizeof(*dv->extents));
			if (!dv->extents) {
				dv->nextents = 0;
				goto nomem;
			}
			memcpy(dv->extents, sv->extents, sv->nextents * sizeof(*dv->extents));
		}
	}
	*ret = d;
	return 0;
nomem:
	vlun_pool_desc_free(d);
	return -ENOMEM;
inval:
	vlun_pool_desc_free(d);
	return -EINVAL;
}

/* The one merge rule for extents, used by the runtime map (map.c) and by
 * the description edits of a journal delta (meta.c), so both stay extent
 * for extent alike: b continues a virtually and physically with the same
 * flags, member, alternate and dirty bitmap; an extent without a member
 * (INVALID, unbacked ZERO) merges whatever its psector (the merged one keeps
 * the leftmost's). */
bool vlun_extent_mergeable(const struct vlun_extent *a, const struct vlun_extent *b)
{
	if (a->vsector + a->nsectors != b->vsector || a->flags != b->flags || a->member != b->member ||
	    a->alt_member != b->alt_member || a->dirty_id != b->dirty_id)
		return false;
	if (a->member != VLUN_NO_MEMBER && a->psector + a->nsectors != b->psector)
		return false;
	if (a->alt_member != VLUN_NO_MEMBER && a->alt_psector + a->nsectors != b->alt_psector)
		return false;
	return true;
}

static int why_fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_fail(char *why, size_t whylen, const char *fmt, ...)
{
	if (why && whylen > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

/* A physical range used by an extent (primary or alternate). */
struct prange {
	uint64_t start, end; /* sectors, [start, end) */
	uint32_t member;
	uint32_t vdisk;      /* index into d->vdisks, for the message */
	uint64_t vsector;
	bool alt;
};

static int prange_cmp(const void *a, const void *b)
{
	const struct prange *x = a, *y = b;

	if (x->member != y->member)
		return x->member < y->member ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

static bool name_ok(const char *name, size_t cap)
{
	size_t n = strnlen(name, cap);

	return n > 0 && n < cap && vlun_name_valid(name);
}

/* Checks that [ps, ps+n) lies in member mi's data area. */
static int check_phys(const struct vlun_pool_desc *d, const struct vlun_vdisk_desc *v, uint32_t e,
		      uint32_t mi, uint64_t ps, uint64_t n, const char *what, char *why, size_t whylen)
{
	const struct vlun_member_desc *m;

	if (mi >= d->nmembers)
		return why_fail(why, whylen, "vdisk '%s' extent %u: %s member %u does not exist (pool has %u)",
				v->name, e, what, mi, d->nmembers);
	m = &d->members[mi];
	if (ps < m->data_start || ps - m->data_start > m->data_sectors ||
	    n > m->data_sectors - (ps - m->data_start))
		return why_fail(why, whylen,
				"vdisk '%s' extent %u: %s sectors %llu+%llu outside member %u's data area %llu+%llu",
				v->name, e, what, (unsigned long long)ps, (unsigned long long)n, mi,
				(unsigned long long)m->data_start, (unsigned long long)m->data_sectors);
	return 0;
}

#define FAIL(...) do { ret = why_fail(why, whylen, __VA_ARGS__); goto out; } while (0)

VLUN_EXPORT int vlun_pool_desc_validate(const struct vlun_pool_desc *d, char *why, size_t whylen)
{
	struct prange *r = NULL;
	size_t nr = 0, cap = 0;
	int ret = 0;

	if (why && whylen)
		why[0] = 0;
	if (!d)
		return why_fail(why, whylen, "no description");
	if (!name_ok(d->name, sizeof(d->name)))
		FAIL("pool name is not valid (1..%d chars of [A-Za-z0-9._-])", VLUN_NAME_MAX);
	if (d->nmembers == 0 || d->nmembers > VLUN_MAX_MEMBERS)
		FAIL("pool has %u members (must be 1..%d)", d->nmembers, VLUN_MAX_MEMBERS);
	if (!d->members)
		FAIL("pool has %u members but no member table", d->nmembers);
	if (d->nvdisks > VLUN_MAX_VDISKS)
		FAIL("pool has %u virtual disks (limit %d)", d->nvdisks, VLUN_MAX_VDISKS);
	if (d->nvdisks > 0 && !d->vdisks)
		FAIL("pool has %u virtual disks but no vdisk table", d->nvdisks);

	for (uint32_t i = 0; i < d->nmembers; i++) {
		const struct vlun_member_desc *m = &d->members[i];

		if (m->index != i)
			FAIL("member at position %u has index %u", i, m->index);
		if (m->state > VLUN_MEMBER_FAILED)
			FAIL("member %u has unknown state %u", i, m->state);
		if (strnlen(m->path_hint, sizeof(m->path_hint)) >= sizeof(m->path_hint))
			FAIL("member %u: path hint is not terminated", i);
		if (m->data_start > UINT64_MAX / VLUN_SECTOR_SIZE ||
		    m->data_sectors > UINT64_MAX / VLUN_SECTOR_SIZE - m->data_start ||
		    (m->data_start + m->data_sectors) * VLUN_SECTOR_SIZE > m->size_bytes)
			FAIL("member %u: data area %llu+%llu sectors exceeds its size %llu bytes",
					i, (unsigned long long)m->data_start,
					(unsigned long long)m->data_sectors, (unsigned long long)m->size_bytes);
		for (uint32_t j = 0; j < i; j++)
			if (!memcmp(d->members[j].uuid, m->uuid, VLUN_UUID_LEN))
				FAIL("members %u and %u have the same uuid", j, i);
	}

	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *v = &d->vdisks[i];
		uint64_t pos = 0;

		if (!name_ok(v->name, sizeof(v->name)))
			FAIL("vdisk %u: name is not valid", v->id);
		if (v->id >= d->next_vdisk_id)
			FAIL("vdisk '%s': id %u is not below next_vdisk_id %u",
					v->name, v->id, d->next_vdisk_id);
		for (uint32_t j = 0; j < i; j++) {
			if (d->vdisks[j].id == v->id)
				FAIL("vdisks '%s' and '%s' have the same id %u",
						d->vdisks[j].name, v->name, v->id);
			if (!strcmp(d->vdisks[j].name, v->name))
				FAIL("two vdisks are named '%s'", v->name);
		}
		if (v->layout < VLUN_LAYOUT_LINEAR || v->layout > VLUN_LAYOUT_THIN)
			FAIL("vdisk '%s': unknown layout %u", v->name, v->layout);
		if (v->size_sectors == 0)
			FAIL("vdisk '%s': size is 0", v->name);
		if (v->flags & ~VLUN_VDISK_KNOWN_FLAGS)
			FAIL("vdisk '%s': unknown flags 0x%x", v->name, v->flags & ~VLUN_VDISK_KNOWN_FLAGS);
		if (v->nextents == 0 || v->nextents > VLUN_MAX_EXTENTS)
			FAIL("vdisk '%s': %u extents (must be 1..%u)", v->name,
					v->nextents, VLUN_MAX_EXTENTS);
		if (!v->extents)
			FAIL("vdisk '%s': no extent table", v->name);
		for (uint32_t e = 0; e < v->nextents; e++) {
			const struct vlun_extent *x = &v->extents[e];
			bool unmapped = x->flags & (VLUN_EXT_INVALID | VLUN_EXT_ZERO);

			if (x->vsector != pos)
				FAIL("vdisk '%s' extent %u starts at sector %llu, expected %llu (%s)",
						v->name, e, (unsigned long long)x->vsector, (unsigned long long)pos,
						x->vsector > pos ? "gap" : "overlap or unsorted");
			if (x->nsectors == 0)
				FAIL("vdisk '%s' extent %u is empty", v->name, e);
			if (x->nsectors > v->size_sectors - pos)
				FAIL("vdisk '%s' extent %u ends past the disk size %llu",
						v->name, e, (unsigned long long)v->size_sectors);
			pos += x->nsectors;
			if (x->flags & ~VLUN_EXT_KNOWN_FLAGS)
				FAIL("vdisk '%s' extent %u has unknown flags 0x%x",
						v->name, e, x->flags & ~VLUN_EXT_KNOWN_FLAGS);
			if ((x->flags & VLUN_EXT_ALT_DIRTY) && !(x->flags & VLUN_EXT_ALT_EXISTS))
				FAIL("vdisk '%s' extent %u: ALT_DIRTY without ALT_EXISTS", v->name, e);
			if (!(x->flags & VLUN_EXT_ALT_EXISTS) && x->alt_member != VLUN_NO_MEMBER)
				FAIL("vdisk '%s' extent %u: alternate member %u without ALT_EXISTS",
						v->name, e, x->alt_member);
			if (!(unmapped && x->member == VLUN_NO_MEMBER)) {
				if (x->member == VLUN_NO_MEMBER && !(x->flags & VLUN_EXT_ERROR))
					FAIL("vdisk '%s' extent %u is mapped but has no member",
							v->name, e);
				if (x->member != VLUN_NO_MEMBER) {
					ret = check_phys(d, v, e, x->member, x->psector, x->nsectors, "primary", why, whylen);
					if (ret < 0)
						goto out;
				}
			}
			if (x->flags & VLUN_EXT_ALT_EXISTS) {
				ret = check_phys(d, v, e, x->alt_member, x->alt_psector, x->nsectors, "alternate", why, whylen);
				if (ret < 0)
					goto out;
			}
			for (int k = 0; k < 2; k++) {
				uint32_t mi = k ? x->alt_member : x->member;

				if (mi == VLUN_NO_MEMBER || (k && !(x->flags & VLUN_EXT_ALT_EXISTS)))
					continue;
				if (nr == cap) {
					size_t ncap = cap ? cap * 2 : 256;
					struct prange *nrp = realloc(r, ncap * sizeof(*r));

					if (!nrp) {
						ret = -ENOMEM;
						goto out;
					}
					r = nrp;
					cap = ncap;
				}
				r[nr++] = (struct prange){
					.start = k ? x->alt_psector : x->psector,
					.end = (k ? x->alt_psector : x->psector) + x->nsectors,
					.member = mi, .vdisk = i, .vsector = x->vsector, .alt = k,
				};
			}
		}
		if (pos != v->size_sectors)
			FAIL("vdisk '%s': extents cover %llu of %llu sectors",
					v->name, (unsigned long long)pos, (unsigned long long)v->size_sectors);
	}

	if (d->njobs > VLUN_MAX_JOBS || (d->njobs && !d->jobs))
		FAIL("pool has %u jobs (limit %d)", d->njobs, VLUN_MAX_JOBS);
	for (uint32_t i = 0; i < d->njobs; i++) {
		const struct vlun_job_desc *j = &d->jobs[i];
		bool known = j->vdisk_id == UINT32_MAX;
		for (uint32_t k = 0; k < d->nvdisks && !known; k++)
			known = d->vdisks[k].id == j->vdisk_id;
		if (j->kind != VLUN_JOB_MIGRATE)
			FAIL("job %u: unknown kind %u", j->id, j->kind);
		if (!known)
			FAIL("job %u: names vdisk id %u, which does not exist", j->id, j->vdisk_id);
		if (j->from_member != VLUN_NO_MEMBER && j->from_member >= d->nmembers)
			FAIL("job %u: from member %u does not exist", j->id, j->from_member);
		for (uint32_t k = 0; k < i; k++)
			if (d->jobs[k].id == j->id)
				FAIL("two jobs have id %u", j->id);
	}

	/* Snapshot stores and sessions (snap.c). */
	if ((d->nsnaps && !d->snaps) || (d->nsnap_stores && !d->snap_stores))
		FAIL("snapshot arrays missing");
	for (uint32_t i = 0; i < d->nsnap_stores; i++) {
		const struct vlun_snap_store_desc *s = &d->snap_stores[i];
		const struct vlun_vdisk_desc *src = NULL, *res = NULL;
		for (uint32_t k = 0; k < d->nvdisks; k++) {
			if (d->vdisks[k].id == s->source_id)
				src = &d->vdisks[k];
			if (d->vdisks[k].id == s->reserve_id)
				res = &d->vdisks[k];
		}
		if (!src || !res)
			FAIL("snapshot store %u: source vdisk id %u or reserve vdisk id %u does not exist", i,
			     s->source_id, s->reserve_id);
		if ((src->flags & VLUN_VDISK_SNAP_RESERVE) || !(res->flags & VLUN_VDISK_SNAP_RESERVE) ||
		    res->layout != VLUN_LAYOUT_LINEAR)
			FAIL("snapshot store of '%s': reserve '%s' is not a linear SNAP_RESERVE disk (or the source is one)",
			     src->name, res->name);
		if (s->chunk_sectors == 0 || (s->chunk_sectors & (s->chunk_sectors - 1)) || s->chunk_sectors > (1u << 20))
			FAIL("snapshot store of '%s': chunk %llu sectors is not a power of two <= 512 MiB", src->name,
			     (unsigned long long)s->chunk_sectors);
		if (s->full_policy > VLUN_SNAP_FULL_FAIL_WRITE)
			FAIL("snapshot store of '%s': unknown full policy %u", src->name, s->full_policy);
		for (uint32_t k = 0; k < i; k++)
			if (d->snap_stores[k].source_id == s->source_id || d->snap_stores[k].reserve_id == s->reserve_id)
				FAIL("two snapshot stores share source %u or reserve %u", s->source_id, s->reserve_id);
	}
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		bool owned = !(d->vdisks[i].flags & VLUN_VDISK_SNAP_RESERVE);
		for (uint32_t k = 0; k < d->nsnap_stores && !owned; k++)
			owned = d->snap_stores[k].reserve_id == d->vdisks[i].id;
		if (!owned)
			FAIL("vdisk '%s' is a snapshot reserve of no store", d->vdisks[i].name);
	}
	for (uint32_t i = 0; i < d->nsnaps; i++) {
		const struct vlun_snap_desc *s = &d->snaps[i];
		bool store = false;
		for (uint32_t k = 0; k < d->nsnap_stores && !store; k++)
			store = d->snap_stores[k].source_id == s->source_id;
		if (!store)
			FAIL("snapshot %u ('%.63s'): its source vdisk id %u has no snapshot store", s->id, s->name,
			     s->source_id);
		if (s->bit >= VLUN_MAX_SNAPSHOTS || s->state > VLUN_SNAP_FAILED || !memchr(s->name, 0, sizeof(s->name)) ||
		    !vlun_name_valid(s->name) ||
		    !memchr(s->why, 0, sizeof(s->why)))
			FAIL("snapshot %u: bad bit %u, state %u or name", s->id, s->bit, s->state);
		if (s->id >= d->next_snap_id)
			FAIL("snapshot %u: id not below next_snap_id %u", s->id, d->next_snap_id);
		for (uint32_t k = 0; k < i; k++) {
			const struct vlun_snap_desc *o = &d->snaps[k];
			if (o->id == s->id)
				FAIL("two snapshots have id %u", s->id);
			if (o->source_id == s->source_id && (o->bit == s->bit || strcmp(o->name, s->name) == 0))
				FAIL("snapshots %u and %u of source %u share a bit or a name", o->id, s->id, s->source_id);
		}
	}

	if (nr > 1)
		qsort(r, nr, sizeof(*r), prange_cmp);
	for (size_t i = 1; i < nr; i++) {
		const struct prange *a = &r[i - 1], *b = &r[i];

		if (a->member == b->member && b->start < a->end) {
			ret = why_fail(why, whylen,
				       "member %u sectors %llu..%llu are used twice: vdisk '%s' vsector %llu%s and vdisk '%s' vsector %llu%s",
				       a->member, (unsigned long long)b->start,
				       (unsigned long long)VLUN_MIN(a->end, b->end) - 1,
				       d->vdisks[a->vdisk].name, (unsigned long long)a->vsector, a->alt ? " (alternate)" : "",
				       d->vdisks[b->vdisk].name, (unsigned long long)b->vsector, b->alt ? " (alternate)" : "");
			goto out;
		}
	}
out:
	free(r);
	return ret;
}
