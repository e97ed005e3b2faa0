/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * layout.c — initial extents of a virtual disk and resizing.
 *
 * linear   pieces of free runs, largest runs first (possibly several
 *          members), each piece starting 1 MiB aligned and, except the
 *          last, a multiple of 1 MiB long.
 * striped  W members each give one contiguous region of rows × stripe
 *          (aligned to the stripe size); stripe unit u lives on member
 *          u mod W at region + (u div W) × stripe. One extent per unit, so
 *          size / stripe must stay within VLUN_MAX_EXTENTS. The size must
 *          be a multiple of the stripe size.
 * thin     one INVALID extent; chunk a power of two, at least 4 KiB.
 *
 * Every function either succeeds completely or takes nothing: placement
 * is taken from the allocator as it is decided and put back
 * (vlun_alloc_put_back) if a later step fails. Space a resize frees
 * (shrink) goes to the allocator's pending list. The caller bumps
 * vd->generation and commits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "layout.h"

#define LINEAR_ALIGN 2048u /* sectors: 1 MiB */
#define MIN_CHUNK 8u       /* sectors: 4 KiB */

struct placed {
	uint32_t member;
	uint64_t psector, nsectors;
};

/* Taken ranges, to put back on failure. */
struct takes {
	struct placed *v;
	size_t n, cap;
};

static int takes_add(struct takes *t, uint32_t member, uint64_t ps, uint64_t n)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct placed *nv = realloc(t->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = cap;
	}
	t->v[t->n++] = (struct placed){ member, ps, n };
	return 0;
}

static void takes_undo(struct vlun_alloc *a, struct takes *t)
{
	for (size_t i = t->n; i-- > 0;)
		vlun_alloc_put_back(a, t->v[i].member, t->v[i].psector, t->v[i].nsectors);
	t->n = 0;
}

static char *fmt_sectors(uint64_t sectors, char *buf, size_t len)
{
	vlun_format_size(sectors << VLUN_SECTOR_SHIFT, buf, len);
	return buf;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static struct vlun_extent mapped(uint64_t vsector, uint64_t n, uint32_t member, uint64_t ps)
{
	return (struct vlun_extent){
		.vsector = vsector, .nsectors = n, .psector = ps, .member = member,
		.alt_member = VLUN_NO_MEMBER,
	};
}

/* A thin range no chunk backs yet: reads zero until the first write. */
static struct vlun_extent unallocated(uint64_t vsector, uint64_t n)
{
	return (struct vlun_extent){
		.vsector = vsector, .nsectors = n, .member = VLUN_NO_MEMBER,
		.alt_member = VLUN_NO_MEMBER, .flags = VLUN_EXT_INVALID,
	};
}

/* Candidate members: the given list (each must exist and be OK) or every
 * OK member. */
static int candidates(const struct vlun_pool_desc *pool, const uint32_t *members, size_t nmembers,
		      uint32_t *out, uint32_t *ret_n, char *why, size_t whylen)
{
	uint32_t n = 0;

	if (members && nmembers > 0) {
		for (size_t i = 0; i < nmembers; i++) {
			uint32_t m = members[i];

			if (m >= pool->nmembers) {
				snprintf(why, whylen, "member %u does not exist (the pool has %u members)",
					 m, pool->nmembers);
				return -ENOENT;
			}
			if (pool->members[m].state != VLUN_MEMBER_OK) {
				snprintf(why, whylen, "member %u (%s) is %s", m,
					 pool->members[m].path_hint,
					 pool->members[m].state == VLUN_MEMBER_MISSING ? "missing" : "failed");
				return -ENODEV;
			}
			for (uint32_t j = 0; j < n; j++)
				if (out[j] == m) {
					snprintf(why, whylen, "member %u is listed twice", m);
					return -EINVAL;
				}
			out[n++] = m;
		}
	} else {
		for (uint32_t m = 0; m < pool->nmembers && n < VLUN_MAX_MEMBERS; m++)
			if (pool->members[m].state == VLUN_MEMBER_OK)
				out[n++] = m;
	}
	if (n == 0) {
		snprintf(why, whylen, "no healthy member to allocate from");
		return -ENOSPC;
	}
	*ret_n = n;
	return 0;
}

/* ------------------------------------------------------------- linear */

struct lrun {
	uint32_t member;
	uint64_t start, usable; /* aligned start, sectors from there to the run's end */
};

static int cmp_lrun(const void *x, const void *y)
{
	const struct lrun *a = x, *b = y;

	if (a->usable != b->usable)
		return a->usable > b->usable ? -1 : 1;
	if (a->member != b->member)
		return a->member < b->member ? -1 : 1;
	return a->start < b->start ? -1 : a->start > b->start;
}

/* Places [vstart, vstart+need) linearly, appending to out. If
 * (prefer_member, prefer_ps) is given, first grows in place from there. */
static int linear_place(struct vlun_alloc *a, const uint32_t *cand, uint32_t nc, uint64_t vstart,
			uint64_t need, uint32_t prefer_member, uint64_t prefer_ps,
			struct takes *tk, struct vlun_extent **ret, size_t *ret_n, char *why,
			size_t whylen)
{
	struct lrun *runs = NULL;
	size_t nruns = 0, cap = 0, nout = 0;
	struct vlun_extent *out = NULL;
	uint64_t avail = 0, pos = vstart, left = need;
	int r = 0;

	for (uint32_t i = 0; i < nc; i++) {
		struct vlun_alloc_run *fr = NULL;
		size_t nfr = 0;

		r = vlun_alloc_runs(a, cand[i], &fr, &nfr);
		if (r < 0)
			goto out;
		for (size_t j = 0; j < nfr; j++) {
			uint64_t end = fr[j].start + fr[j].len, s;

			if (cand[i] == prefer_member && fr[j].start == prefer_ps) {
				s = fr[j].start; /* grows the previous extent in place */
			} else {
				s = VLUN_ALIGN_UP(fr[j].start, LINEAR_ALIGN);
				if (s >= end)
					continue;
			}
			if (nruns == cap) {
				struct lrun *nv;

				cap = cap ? cap * 2 : 64;
				nv = realloc(runs, cap * sizeof(*nv));
				if (!nv) {
					free(fr);
					r = -ENOMEM;
					goto out;
				}
				runs = nv;
			}
			runs[nruns++] = (struct lrun){ cand[i], s, end - s };
			avail += end - s;
		}
		free(fr);
	}
	if (avail < need) {
		char b1[32], b2[32];

		snprintf(why, whylen, "not enough free space: need %s, %s free in pool%s",
			 fmt_sectors(need, b1, sizeof(b1)), fmt_sectors(avail, b2, sizeof(b2)),
			 nc == 1 ? " on the allowed member" : "");
		r = -ENOSPC;
		goto out;
	}
	qsort(runs, nruns, sizeof(*runs), cmp_lrun);
	/* the in-place run goes first */
	for (size_t i = 0; i < nruns; i++)
		if (runs[i].member == prefer_member && runs[i].start == prefer_ps && i > 0) {
			struct lrun t = runs[i];

			memmove(&runs[1], &runs[0], i * sizeof(*runs));
			runs[0] = t;
			break;
		}

	out = malloc((nruns ? nruns : 1) * sizeof(*out));
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nruns && left > 0; i++) {
		uint64_t piece = runs[i].usable >= left ? left : runs[i].usable / LINEAR_ALIGN * LINEAR_ALIGN;

		if (piece == 0)
			continue;
		r = vlun_alloc_take(a, runs[i].member, runs[i].start, piece);
		if (r < 0)
			goto out;
		r = takes_add(tk, runs[i].member, runs[i].start, piece);
		if (r < 0) {
			vlun_alloc_put_back(a, runs[i].member, runs[i].start, piece);
			goto out;
		}
		out[nout++] = mapped(pos, piece, runs[i].member, runs[i].start);
		pos += piece;
		left -= piece;
	}
	if (left > 0) {
		/* only the rounding of pieces to 1 MiB can leave this */
		char b1[32], b2[32];

		snprintf(why, whylen,
			 "not enough free space: need %s, %s free in pool but too fragmented in runs under 1 MiB",
			 fmt_sectors(need, b1, sizeof(b1)), fmt_sectors(avail, b2, sizeof(b2)));
		r = -ENOSPC;
		goto out;
	}
	*ret = out;
	*ret_n = nout;
	out = NULL;
out:
	free(out);
	free(runs);
	return r;
}

/* ------------------------------------------------------------ striped */

struct fitting {
	uint32_t member;
	uint64_t free;
};

static int cmp_fitting(const void *x, const void *y)
{
	const struct fitting *a = x, *b = y;

	if (a->free != b->free)
		return a->free > b->free ? -1 : 1;
	return a->member < b->member ? -1 : a->member > b->member;
}

/* Allocates one region of per_member[i] sectors on each of the members
 * (order given, or chosen: most free first when members_in is NULL). */
static int stripe_regions(struct vlun_alloc *a, const uint32_t *cand, uint32_t nc, uint32_t width,
			  const uint32_t *fixed, const uint64_t *per_member, uint64_t stripe,
			  struct takes *tk, uint32_t *ret_members, uint64_t *ret_base, char *why,
			  size_t whylen)
{
	struct fitting f[VLUN_MAX_MEMBERS];
	uint32_t got = 0;
	char b1[32];
	int r;

	if (fixed) {
		for (uint32_t i = 0; i < width; i++) {
			uint32_t mem;
			uint64_t ps;

			if (per_member[i] == 0) {
				ret_members[i] = fixed[i];
				ret_base[i] = 0;
				continue;
			}
			r = vlun_alloc_get(a, per_member[i], stripe, fixed[i], &fixed[i], 1, &mem, &ps);
			if (r < 0) {
				snprintf(why, whylen,
					 "not enough free space: member %u has no contiguous free run of %s for its stripes",
					 fixed[i], fmt_sectors(per_member[i], b1, sizeof(b1)));
				return r;
			}
			if ((r = takes_add(tk, mem, ps, per_member[i])) < 0) {
				vlun_alloc_put_back(a, mem, ps, per_member[i]);
				return r;
			}
			ret_members[i] = mem;
			ret_base[i] = ps;
		}
		return 0;
	}

	for (uint32_t i = 0; i < nc; i++)
		f[i] = (struct fitting){ cand[i], vlun_alloc_free_sectors(a, cand[i]) };
	qsort(f, nc, sizeof(f[0]), cmp_fitting);
	for (uint32_t i = 0; i < nc && got < width; i++) {
		uint32_t mem;
		uint64_t ps;

		if (vlun_alloc_get(a, per_member[got], stripe, f[i].member, &f[i].member, 1, &mem, &ps) < 0)
			continue;
		if ((r = takes_add(tk, mem, ps, per_member[got])) < 0) {
			vlun_alloc_put_back(a, mem, ps, per_member[got]);
			return r;
		}
		ret_members[got] = mem;
		ret_base[got] = ps;
		got++;
	}
	if (got < width) {
		snprintf(why, whylen,
			 "not enough free space for a striped disk: need %s contiguous on each of %u members, only %u members have that much",
			 fmt_sectors(per_member[0], b1, sizeof(b1)), width, got);
		return -ENOSPC;
	}
	return 0;
}

/* Extents for stripe units [u0, u1) on the given members; bases hold the
 * region of each member for the rows from row0 = u0 / width on. */
static void stripe_fill(struct vlun_extent *out, uint64_t u0, uint64_t u1, uint64_t stripe,
			uint32_t width, const uint32_t *mem, const uint64_t *base)
{
	uint64_t row0 = u0 / width;

	for (uint64_t u = u0; u < u1; u++) {
		uint32_t col = (uint32_t)(u % width);
		uint64_t row = u / width - row0;

		out[u - u0] = mapped(u * stripe, stripe, mem[col], base[col] + row * stripe);
	}
}

/* Sectors each column needs for units [u0, u1). */
static void stripe_need(uint64_t u0, uint64_t u1, uint32_t width, uint64_t stripe, uint64_t *per)
{
	for (uint32_t c = 0; c < width; c++)
		per[c] = 0;
	if (u1 <= u0)
		return;
	for (uint32_t c = 0; c < width; c++) {
		/* units u in [u0,u1) with u % width == c */
		uint64_t first = u0 + ((c + width - (uint32_t)(u0 % width)) % width);

		per[c] = first < u1 ? ((u1 - 1 - first) / width + 1) * stripe : 0;
	}
}

/* Extents merge when width == 1 (consecutive units on one member). */
static int merge_inplace(struct vlun_extent *v, size_t n, size_t *ret_n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (k > 0 && v[k - 1].member == v[i].member && v[k - 1].flags == v[i].flags &&
		    v[k - 1].alt_member == VLUN_NO_MEMBER && v[i].alt_member == VLUN_NO_MEMBER &&
		    v[k - 1].member != VLUN_NO_MEMBER &&
		    v[k - 1].psector + v[k - 1].nsectors == v[i].psector &&
		    v[k - 1].vsector + v[k - 1].nsectors == v[i].vsector)
			v[k - 1].nsectors += v[i].nsectors;
		else
			v[k++] = v[i];
	}
	*ret_n = k;
	return 0;
}

/* ------------------------------------------------------------- checks */

static int check_stripe(uint64_t size, uint64_t stripe, uint32_t width, char *why, size_t whylen)
{
	char b1[32], b2[32];

	if (!is_pow2(stripe) || stripe < MIN_CHUNK) {
		snprintf(why, whylen, "stripe size %s must be a power of two of at least 4 KiB",
			 fmt_sectors(stripe, b1, sizeof(b1)));
		return -EINVAL;
	}
	if (size % stripe) {
		snprintf(why, whylen, "size %s is not a multiple of the stripe size %s",
			 fmt_sectors(size, b1, sizeof(b1)), fmt_sectors(stripe, b2, sizeof(b2)));
		return -EINVAL;
	}
	if (size / stripe > VLUN_MAX_EXTENTS) {
		snprintf(why, whylen,
			 "a striped disk of %s with stripe size %s needs %llu extents, more than the limit of %u per disk: use a larger stripe size",
			 fmt_sectors(size, b1, sizeof(b1)), fmt_sectors(stripe, b2, sizeof(b2)),
			 (unsigned long long)(size / stripe), VLUN_MAX_EXTENTS);
		return -E2BIG;
	}
	return 0;
}

static int check_thin(uint64_t size, uint64_t chunk, char *why, size_t whylen)
{
	char b1[32], b2[32];

	if (!is_pow2(chunk) || chunk < MIN_CHUNK) {
		snprintf(why, whylen, "thin chunk size %s must be a power of two of at least 4 KiB",
			 fmt_sectors(chunk, b1, sizeof(b1)));
		return -EINVAL;
	}
	if (VLUN_DIV_ROUND_UP(size, chunk) > VLUN_MAX_EXTENTS) {
		snprintf(why, whylen,
			 "a thin disk of %s with chunk size %s could need %llu extents, more than the limit of %u per disk: use a larger chunk",
			 fmt_sectors(size, b1, sizeof(b1)), fmt_sectors(chunk, b2, sizeof(b2)),
			 (unsigned long long)VLUN_DIV_ROUND_UP(size, chunk), VLUN_MAX_EXTENTS);
		return -E2BIG;
	}
	return 0;
}

/* -------------------------------------------------------------- build */

int vlun_layout_build(struct vlun_alloc *a, const struct vlun_pool_desc *pool,
		      struct vlun_vdisk_desc *vd, const uint32_t *members, size_t nmembers,
		      char *why, size_t whylen)
{
	char dummy[1];
	uint32_t cand[VLUN_MAX_MEMBERS], nc = 0;
	struct takes tk = { 0 };
	struct vlun_extent *ext = NULL;
	size_t n = 0;
	uint64_t size, unit = 0;
	uint32_t width = 0;
	int r;

	if (!why || whylen == 0) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	why[0] = '\0';
	if (!a || !pool || !vd)
		return -EINVAL;
	size = vd->size_sectors;
	if (size == 0) {
		snprintf(why, whylen, "size must be greater than 0");
		return -EINVAL;
	}

	switch (vd->layout) {
	case VLUN_LAYOUT_THIN:
		unit = vd->chunk_sectors ? vd->chunk_sectors : VLUN_THIN_CHUNK_DEFAULT >> VLUN_SECTOR_SHIFT;
		r = check_thin(size, unit, why, whylen);
		if (r < 0)
			return r;
		ext = malloc(sizeof(*ext));
		if (!ext)
			return -ENOMEM;
		ext[0] = unallocated(0, size);
		n = 1;
		break;

	case VLUN_LAYOUT_LINEAR:
		r = candidates(pool, members, nmembers, cand, &nc, why, whylen);
		if (r < 0)
			return r;
		r = linear_place(a, cand, nc, 0, size, VLUN_NO_MEMBER, 0, &tk, &ext, &n, why, whylen);
		if (r < 0)
			goto fail;
		break;

	case VLUN_LAYOUT_STRIPED: {
		uint32_t mem[VLUN_MAX_MEMBERS];
		uint64_t base[VLUN_MAX_MEMBERS], per[VLUN_MAX_MEMBERS], units;

		r = candidates(pool, members, nmembers, cand, &nc, why, whylen);
		if (r < 0)
			return r;
		unit = vd->chunk_sectors ? vd->chunk_sectors : VLUN_STRIPE_DEFAULT >> VLUN_SECTOR_SHIFT;
		width = vd->stripe_width ? vd->stripe_width : nc;
		if (width > nc) {
			snprintf(why, whylen, "stripe width %u needs %u healthy members, %u available",
				 width, width, nc);
			return -ENOSPC;
		}
		r = check_stripe(size, unit, width, why, whylen);
		if (r < 0)
			return r;
		units = size / unit;
		stripe_need(0, units, width, unit, per);
		r = stripe_regions(a, cand, nc, width, NULL, per, unit, &tk, mem, base, why, whylen);
		if (r < 0)
			goto fail;
		ext = malloc(units * sizeof(*ext));
		if (!ext) {
			r = -ENOMEM;
			goto fail;
		}
		stripe_fill(ext, 0, units, unit, width, mem, base);
		merge_inplace(ext, units, &n);
		break;
	}
	default:
		snprintf(why, whylen, "unknown layout %u", vd->layout);
		return -EINVAL;
	}

	vd->extents = ext;
	vd->extents_cap = 0;
	vd->nextents = (uint32_t)n;
	vd->chunk_sectors = vd->layout == VLUN_LAYOUT_LINEAR ? 0 : unit;
	vd->stripe_width = width;
	free(tk.v);
	return 0;
fail:
	takes_undo(a, &tk);
	free(tk.v);
	free(ext);
	return r;
}

/* ------------------------------------------------------------- resize */

static int release_range(struct vlun_alloc *a, const struct vlun_extent *e)
{
	int r = 0;

	if (e->member != VLUN_NO_MEMBER)
		r = vlun_alloc_free(a, e->member, e->psector, e->nsectors);
	if (r == 0 && e->alt_member != VLUN_NO_MEMBER)
		r = vlun_alloc_free(a, e->alt_member, e->alt_psector, e->nsectors);
	return r;
}

static int shrink(struct vlun_alloc *a, struct vlun_vdisk_desc *vd, uint64_t new_size, char *why,
		  size_t whylen)
{
	struct vlun_extent *v = vd->extents;
	uint32_t keep = 0;
	int r;

	if (vd->layout == VLUN_LAYOUT_STRIPED && vd->chunk_sectors && new_size % vd->chunk_sectors) {
		char b1[32];

		snprintf(why, whylen, "new size is not a multiple of the stripe size %s",
			 fmt_sectors(vd->chunk_sectors, b1, sizeof(b1)));
		return -EINVAL;
	}
	while (keep < vd->nextents && v[keep].vsector < new_size)
		keep++;
	/* free the tail: the part of the last kept extent beyond new_size and
	 * every extent after it */
	if (keep > 0 && v[keep - 1].vsector + v[keep - 1].nsectors > new_size) {
		struct vlun_extent t = v[keep - 1];
		uint64_t cut = t.vsector + t.nsectors - new_size;

		t.vsector = new_size;
		t.nsectors = cut;
		t.psector += v[keep - 1].nsectors - cut;
		t.alt_psector += v[keep - 1].nsectors - cut;
		r = release_range(a, &t);
		if (r < 0)
			goto broken;
		v[keep - 1].nsectors -= cut;
	}
	for (uint32_t i = keep; i < vd->nextents; i++) {
		r = release_range(a, &v[i]);
		if (r < 0)
			goto broken;
	}
	vd->nextents = keep;
	vd->size_sectors = new_size;
	return 0;
broken:
	snprintf(why, whylen, "releasing the tail failed (%s): the allocator disagrees with the map",
		 strerror(-r));
	return r;
}

int vlun_layout_resize(struct vlun_alloc *a, const struct vlun_pool_desc *pool,
		       struct vlun_vdisk_desc *vd, uint64_t new_size, char *why, size_t whylen)
{
	char dummy[1];
	struct takes tk = { 0 };
	struct vlun_extent *add = NULL, *nv;
	size_t nadd = 0;
	uint64_t old;
	int r;

	if (!why || whylen == 0) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	why[0] = '\0';
	if (!a || !pool || !vd)
		return -EINVAL;
	old = vd->size_sectors;
	if (new_size == 0) {
		snprintf(why, whylen, "size must be greater than 0");
		return -EINVAL;
	}
	if (new_size == old)
		return 0;
	if (new_size < old)
		return shrink(a, vd, new_size, why, whylen);

	switch (vd->layout) {
	case VLUN_LAYOUT_THIN: {
		r = check_thin(new_size, vd->chunk_sectors, why, whylen);
		if (r < 0)
			return r;
		add = malloc(sizeof(*add));
		if (!add)
			return -ENOMEM;
		add[0] = unallocated(old, new_size - old);
		nadd = 1;
		break;
	}
	case VLUN_LAYOUT_LINEAR: {
		uint32_t cand[VLUN_MAX_MEMBERS], nc;
		const struct vlun_extent *last = vd->nextents ? &vd->extents[vd->nextents - 1] : NULL;
		bool inplace = last && last->member != VLUN_NO_MEMBER && last->alt_member == VLUN_NO_MEMBER;

		r = candidates(pool, NULL, 0, cand, &nc, why, whylen);
		if (r < 0)
			return r;
		r = linear_place(a, cand, nc, old, new_size - old,
				 inplace ? last->member : VLUN_NO_MEMBER,
				 inplace ? last->psector + last->nsectors : 0, &tk, &add, &nadd, why, whylen);
		if (r < 0)
			goto fail;
		break;
	}
	case VLUN_LAYOUT_STRIPED: {
		uint32_t width = vd->stripe_width, mem[VLUN_MAX_MEMBERS];
		uint64_t stripe = vd->chunk_sectors, base[VLUN_MAX_MEMBERS], per[VLUN_MAX_MEMBERS];
		uint64_t u0 = old / (stripe ? stripe : 1), u1;

		if (width == 0 || width > VLUN_MAX_MEMBERS || vd->nextents == 0) {
			snprintf(why, whylen, "striped disk without a stripe width");
			return -EINVAL;
		}
		r = check_stripe(new_size, stripe, width, why, whylen);
		if (r < 0)
			return r;
		u1 = new_size / stripe;
		/* the disk's own members, in column order: unit c is on column c */
		for (uint32_t c = 0; c < width; c++) {
			uint64_t v = (uint64_t)c * stripe;
			uint32_t j = 0;

			if (v >= old) {
				snprintf(why, whylen, "striped disk smaller than one row cannot grow");
				return -EINVAL;
			}
			while (j + 1 < vd->nextents && vd->extents[j + 1].vsector <= v)
				j++;
			mem[c] = vd->extents[j].member;
			if (mem[c] >= pool->nmembers || pool->members[mem[c]].state != VLUN_MEMBER_OK) {
				snprintf(why, whylen, "member %u of the stripe set is not healthy", mem[c]);
				return -ENODEV;
			}
		}
		stripe_need(u0, u1, width, stripe, per);
		{
			uint32_t fixed[VLUN_MAX_MEMBERS];

			memcpy(fixed, mem, width * sizeof(fixed[0]));
			r = stripe_regions(a, NULL, 0, width, fixed, per, stripe, &tk, mem, base, why,
					   whylen);
		}
		if (r < 0)
			goto fail;
		/* stripe_fill counts rows from u0 / width; a column whose first
		 * new unit is in the next row starts its region one row later */
		add = malloc((u1 - u0) * sizeof(*add));
		if (!add) {
			r = -ENOMEM;
			goto fail;
		}
		for (uint64_t u = u0; u < u1; u++) {
			uint32_t col = (uint32_t)(u % width);
			uint64_t first = u0 + ((col + width - (uint32_t)(u0 % width)) % width);
			uint64_t row = (u - first) / width;

			add[u - u0] = mapped(u * stripe, stripe, mem[col], base[col] + row * stripe);
		}
		merge_inplace(add, u1 - u0, &nadd);
		break;
	}
	default:
		snprintf(why, whylen, "unknown layout %u", vd->layout);
		return -EINVAL;
	}

	if ((uint64_t)vd->nextents + nadd > VLUN_MAX_EXTENTS) {
		snprintf(why, whylen, "the disk would have more than %u extents", VLUN_MAX_EXTENTS);
		r = -E2BIG;
		goto fail;
	}
	nv = realloc(vd->extents, (vd->nextents + nadd) * sizeof(*nv));
	if (!nv) {
		r = -ENOMEM;
		goto fail;
	}
	vd->extents = nv;
	vd->extents_cap = 0;
	{
		size_t n = vd->nextents, k = 0;

		/* join with the last extent if compatible (thin tail, linear
		 * grown in place) */
		if (n > 0) {
			struct vlun_extent *l = &nv[n - 1];
			bool inval = (l->flags & VLUN_EXT_INVALID) && (add[0].flags & VLUN_EXT_INVALID) &&
				     l->flags == add[0].flags && l->member == VLUN_NO_MEMBER;
			bool contig = l->member != VLUN_NO_MEMBER && l->member == add[0].member &&
				      l->flags == add[0].flags && l->alt_member == VLUN_NO_MEMBER &&
				      l->psector + l->nsectors == add[0].psector;

			if (inval || contig) {
				l->nsectors += add[0].nsectors;
				k = 1;
			}
		}
		memcpy(&nv[n], &add[k], (nadd - k) * sizeof(*nv));
		vd->nextents = (uint32_t)(n + nadd - k);
	}
	vd->size_sectors = new_size;
	free(add);
	free(tk.v);
	return 0;
fail:
	takes_undo(a, &tk);
	free(tk.v);
	free(add);
	return r;
}

void vlun_layout_release(struct vlun_alloc *a, const struct vlun_vdisk_desc *vd)
{
	if (!a || !vd)
		return;
	for (uint32_t i = 0; i < vd->nextents; i++) {
		int r = release_range(a, &vd->extents[i]);

		if (r < 0)
			vlun_warn("vdisk '%s': releasing extent at vsector %llu failed: %s", vd->name,
				  (unsigned long long)vd->extents[i].vsector, strerror(-r));
	}
}
