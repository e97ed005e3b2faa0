/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * alloc.c — free space of the members.
 *
 * Per member two sorted, coalesced arrays of runs: "free" (allocatable) and
 * "pending" (freed, but the commit recording the free is not yet durable).
 * Lookups are binary searches; insertions and removals move the tail of the
 * array. Allocation is first fit by address (keeps a member's used space
 * compact and sequential: thin chunks allocated one after another come out
 * of the front of one big run in O(1)).
 *
 * Building from a description collects every extent's primary and alternate
 * range, sorts them per member and takes the complement of the data area in
 * one pass: O(n log n) even for millions of extents, and any overlap or
 * range outside a data area is found there (-EUCLEAN).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

struct run {
	uint64_t start, len;
};

struct runset {
	struct run *v;
	size_t n, cap;
	uint64_t total;
};

struct amember {
	bool present;
	uint32_t state;
	uint64_t data_start, data_sectors;
	struct runset free, pending;
};

struct vlun_alloc {
	struct amember *m;
	uint32_t nm;
	uint32_t rr; /* round robin among members with equal free space */
};

/* ------------------------------------------------------------- runsets */

static inline uint64_t run_end(const struct run *r)
{
	return r->start + r->len;
}

/* First run whose end is > x. */
static size_t rs_first_after(const struct runset *rs, uint64_t x)
{
	size_t lo = 0, hi = rs->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (run_end(&rs->v[mid]) > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static bool rs_overlaps(const struct runset *rs, uint64_t s, uint64_t len)
{
	size_t i = rs_first_after(rs, s);

	return i < rs->n && rs->v[i].start < s + len;
}

static bool rs_contains(const struct runset *rs, uint64_t s, uint64_t len)
{
	size_t i = rs_first_after(rs, s);

	return i < rs->n && rs->v[i].start <= s && run_end(&rs->v[i]) >= s + len;
}

static int rs_reserve(struct runset *rs, size_t want)
{
	struct run *nv;
	size_t cap;

	if (want <= rs->cap)
		return 0;
	cap = rs->cap ? rs->cap : 16;
	while (cap < want)
		cap *= 2;
	nv = realloc(rs->v, cap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	rs->v = nv;
	rs->cap = cap;
	return 0;
}

/* Inserts [s, s+len), which must not overlap; coalesces with neighbours. */
static int rs_insert(struct runset *rs, uint64_t s, uint64_t len)
{
	size_t i = rs_first_after(rs, s); /* first run after the new one */
	bool join_prev = i > 0 && run_end(&rs->v[i - 1]) == s;
	bool join_next = i < rs->n && rs->v[i].start == s + len;

	if (join_prev && join_next) {
		rs->v[i - 1].len += len + rs->v[i].len;
		memmove(&rs->v[i], &rs->v[i + 1], (rs->n - i - 1) * sizeof(rs->v[0]));
		rs->n--;
	} else if (join_prev) {
		rs->v[i - 1].len += len;
	} else if (join_next) {
		rs->v[i].start = s;
		rs->v[i].len += len;
	} else {
		if (rs_reserve(rs, rs->n + 1) < 0)
			return -ENOMEM;
		memmove(&rs->v[i + 1], &rs->v[i], (rs->n - i) * sizeof(rs->v[0]));
		rs->v[i] = (struct run){ s, len };
		rs->n++;
	}
	rs->total += len;
	return 0;
}

/* Removes [s, s+len), which must lie inside one run. */
static int rs_remove(struct runset *rs, uint64_t s, uint64_t len)
{
	size_t i = rs_first_after(rs, s);
	struct run *r = &rs->v[i];
	uint64_t end = run_end(r);

	if (r->start == s && r->len == len) {
		memmove(&rs->v[i], &rs->v[i + 1], (rs->n - i - 1) * sizeof(rs->v[0]));
		rs->n--;
	} else if (r->start == s) {
		r->start += len;
		r->len -= len;
	} else if (end == s + len) {
		r->len -= len;
	} else {
		if (rs_reserve(rs, rs->n + 1) < 0)
			return -ENOMEM;
		r = &rs->v[i];
		memmove(&rs->v[i + 1], &rs->v[i], (rs->n - i) * sizeof(rs->v[0]));
		rs->v[i].len = s - r->start;
		rs->v[i + 1] = (struct run){ s + len, end - (s + len) };
		rs->n++;
	}
	rs->total -= len;
	return 0;
}

/* dst := dst ∪ src (disjoint), in one pass. */
static int rs_merge(struct runset *dst, const struct runset *src)
{
	struct run *nv;
	size_t i = 0, j = 0, k = 0;

	if (src->n == 0)
		return 0;
	nv = malloc((dst->n + src->n) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	while (i < dst->n || j < src->n) {
		struct run r;

		if (j == src->n || (i < dst->n && dst->v[i].start < src->v[j].start))
			r = dst->v[i++];
		else
			r = src->v[j++];
		if (k > 0 && run_end(&nv[k - 1]) == r.start)
			nv[k - 1].len += r.len;
		else
			nv[k++] = r;
	}
	free(dst->v);
	dst->v = nv;
	dst->cap = dst->n + src->n;
	dst->n = k;
	dst->total += src->total;
	return 0;
}

static void rs_clear(struct runset *rs)
{
	free(rs->v);
	*rs = (struct runset){ 0 };
}

/* ----------------------------------------------------------- members */

static struct amember *get_member(const struct vlun_alloc *a, uint32_t member)
{
	if (!a || member >= a->nm || !a->m[member].present)
		return NULL;
	return &a->m[member];
}

static bool in_area(const struct amember *m, uint64_t s, uint64_t len)
{
	uint64_t e;

	return len > 0 && !__builtin_add_overflow(s, len, &e) && s >= m->data_start &&
	       e <= m->data_start + m->data_sectors;
}

static int ensure_members(struct vlun_alloc *a, uint32_t nm)
{
	struct amember *nv;

	if (nm <= a->nm)
		return 0;
	nv = realloc(a->m, nm * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	memset(nv + a->nm, 0, (nm - a->nm) * sizeof(*nv));
	a->m = nv;
	a->nm = nm;
	return 0;
}

struct used {
	uint32_t member;
	uint32_t vdisk;
	uint64_t start, len, vsector;
};

static int cmp_used(const void *x, const void *y)
{
	const struct used *a = x, *b = y;

	if (a->member != b->member)
		return a->member < b->member ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return 0;
}

int vlun_alloc_new(const struct vlun_pool_desc *d, struct vlun_alloc **ret)
{
	struct vlun_alloc *a = NULL;
	struct used *u = NULL;
	size_t nu = 0, k = 0;
	int r;

	if (!d || !ret || d->nmembers > VLUN_MAX_MEMBERS)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	r = ensure_members(a, d->nmembers);
	if (r < 0)
		goto fail;
	for (uint32_t i = 0; i < d->nmembers; i++) {
		const struct vlun_member_desc *md = &d->members[i];
		uint64_t e;

		if (md->index != i || __builtin_add_overflow(md->data_start, md->data_sectors, &e)) {
			vlun_warn("pool '%s': member at position %u has index %u or a bad data area",
				  d->name, i, md->index);
			r = -EUCLEAN;
			goto fail;
		}
		a->m[i].present = true;
		a->m[i].state = md->state;
		a->m[i].data_start = md->data_start;
		a->m[i].data_sectors = md->data_sectors;
	}

	for (uint32_t v = 0; v < d->nvdisks; v++)
		for (uint32_t i = 0; i < d->vdisks[v].nextents; i++) {
			const struct vlun_extent *e = &d->vdisks[v].extents[i];

			nu += (e->member != VLUN_NO_MEMBER) + (e->alt_member != VLUN_NO_MEMBER);
		}
	u = malloc((nu ? nu : 1) * sizeof(*u));
	if (!u) {
		r = -ENOMEM;
		goto fail;
	}
	for (uint32_t v = 0; v < d->nvdisks; v++)
		for (uint32_t i = 0; i < d->vdisks[v].nextents; i++) {
			const struct vlun_extent *e = &d->vdisks[v].extents[i];

			if (e->member != VLUN_NO_MEMBER)
				u[k++] = (struct used){ e->member, v, e->psector, e->nsectors, e->vsector };
			if (e->alt_member != VLUN_NO_MEMBER)
				u[k++] = (struct used){ e->alt_member, v, e->alt_psector, e->nsectors,
							e->vsector };
		}
	qsort(u, nu, sizeof(*u), cmp_used);

	/* free = data area minus the sorted used ranges */
	k = 0;
	for (uint32_t mi = 0; mi < a->nm; mi++) {
		struct amember *m = &a->m[mi];
		uint64_t pos = m->data_start, end = m->data_start + m->data_sectors;

		for (; k < nu && u[k].member == mi; k++) {
			if (!in_area(m, u[k].start, u[k].len)) {
				vlun_warn("pool '%s': vdisk '%s' extent at vsector %llu lies outside the data area of member %u (sectors %llu+%llu)",
					  d->name, d->vdisks[u[k].vdisk].name,
					  (unsigned long long)u[k].vsector, mi,
					  (unsigned long long)u[k].start, (unsigned long long)u[k].len);
				r = -EUCLEAN;
				goto fail;
			}
			if (u[k].start < pos) {
				vlun_warn("pool '%s': vdisk '%s' extent at vsector %llu overlaps vdisk '%s' extent at vsector %llu on member %u near sector %llu",
					  d->name, d->vdisks[u[k].vdisk].name,
					  (unsigned long long)u[k].vsector, d->vdisks[u[k - 1].vdisk].name,
					  (unsigned long long)u[k - 1].vsector, mi,
					  (unsigned long long)u[k].start);
				r = -EUCLEAN;
				goto fail;
			}
			if (u[k].start > pos && (r = rs_insert(&m->free, pos, u[k].start - pos)) < 0)
				goto fail;
			pos = u[k].start + u[k].len;
		}
		if (end > pos && (r = rs_insert(&m->free, pos, end - pos)) < 0)
			goto fail;
	}
	if (k < nu) {
		vlun_warn("pool '%s': vdisk '%s' extent at vsector %llu refers to member %u, the pool has %u",
			  d->name, d->vdisks[u[k].vdisk].name, (unsigned long long)u[k].vsector,
			  u[k].member, a->nm);
		r = -EUCLEAN;
		goto fail;
	}
	free(u);
	*ret = a;
	return 0;
fail:
	free(u);
	vlun_alloc_free_all(a);
	return r;
}

void vlun_alloc_free_all(struct vlun_alloc *a)
{
	if (!a)
		return;
	for (uint32_t i = 0; i < a->nm; i++) {
		rs_clear(&a->m[i].free);
		rs_clear(&a->m[i].pending);
	}
	free(a->m);
	free(a);
}

int vlun_alloc_add_member(struct vlun_alloc *a, const struct vlun_member_desc *md)
{
	struct amember *m;
	uint64_t e;
	int r;

	if (!a || !md || md->index >= VLUN_MAX_MEMBERS ||
	    __builtin_add_overflow(md->data_start, md->data_sectors, &e))
		return -EINVAL;
	if (get_member(a, md->index))
		return -EEXIST;
	r = ensure_members(a, md->index + 1);
	if (r < 0)
		return r;
	m = &a->m[md->index];
	*m = (struct amember){
		.present = true,
		.state = md->state,
		.data_start = md->data_start,
		.data_sectors = md->data_sectors,
	};
	if (md->data_sectors > 0)
		return rs_insert(&m->free, md->data_start, md->data_sectors);
	return 0;
}

int vlun_alloc_set_member_state(struct vlun_alloc *a, uint32_t member, uint32_t state)
{
	struct amember *m = get_member(a, member);

	if (!m)
		return -ENOENT;
	m->state = state;
	return 0;
}

/* First fit of an aligned run of n sectors. */
static bool member_find(const struct amember *m, uint64_t n, uint64_t align, uint64_t *ret_start)
{
	for (size_t i = 0; i < m->free.n; i++) {
		const struct run *r = &m->free.v[i];
		uint64_t s = r->start, rem;

		if (r->len < n)
			continue;
		rem = s % align;
		if (rem && __builtin_add_overflow(s, align - rem, &s))
			continue;
		if (s < run_end(r) && run_end(r) - s >= n) {
			*ret_start = s;
			return true;
		}
	}
	return false;
}

static bool member_usable(const struct vlun_alloc *a, uint32_t i)
{
	return i < a->nm && a->m[i].present && a->m[i].state == VLUN_MEMBER_OK;
}

int vlun_alloc_get(struct vlun_alloc *a, uint64_t nsectors, uint64_t align, uint32_t member_hint,
		   const uint32_t *allowed, size_t nallowed, uint32_t *ret_member,
		   uint64_t *ret_psector)
{
	uint32_t cand[VLUN_MAX_MEMBERS], nc = 0;
	uint64_t start;
	int r;

	if (!a || nsectors == 0 || !ret_member || !ret_psector)
		return -EINVAL;
	if (align == 0)
		align = 1;

	if (allowed) {
		for (size_t i = 0; i < nallowed; i++) {
			bool dup = false;

			for (uint32_t j = 0; j < nc; j++)
				dup = dup || cand[j] == allowed[i];
			if (!dup && member_usable(a, allowed[i]) && nc < VLUN_MAX_MEMBERS)
				cand[nc++] = allowed[i];
		}
	} else {
		for (uint32_t i = 0; i < a->nm && nc < VLUN_MAX_MEMBERS; i++)
			if (member_usable(a, i))
				cand[nc++] = i;
	}

	/* Order: the hint (if a candidate), then most free space first, ties
	 * in round-robin order starting at a->rr. Insertion sort: nc <= 256. */
	for (uint32_t i = 1; i < nc; i++) {
		uint32_t x = cand[i], j = i;

		while (j > 0) {
			uint32_t y = cand[j - 1];
			uint64_t fx = a->m[x].free.total, fy = a->m[y].free.total;
			uint32_t ox = (x + a->nm - a->rr % (a->nm ? a->nm : 1)) % a->nm;
			uint32_t oy = (y + a->nm - a->rr % (a->nm ? a->nm : 1)) % a->nm;
			bool before = x == member_hint ? y != member_hint
				    : y == member_hint ? false
				    : fx != fy ? fx > fy : ox < oy;

			if (!before)
				break;
			cand[j] = y;
			j--;
		}
		cand[j] = x;
	}

	for (uint32_t i = 0; i < nc; i++) {
		struct amember *m = &a->m[cand[i]];

		if (m->free.total < nsectors || !member_find(m, nsectors, align, &start))
			continue;
		r = rs_remove(&m->free, start, nsectors);
		if (r < 0)
			return r;
		if (member_hint == VLUN_NO_MEMBER)
			a->rr = cand[i] + 1;
		*ret_member = cand[i];
		*ret_psector = start;
		return 0;
	}
	return -ENOSPC;
}

int vlun_alloc_take(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors)
{
	struct amember *m = get_member(a, member);

	if (!m)
		return -ENOENT;
	if (!in_area(m, psector, nsectors))
		return -ERANGE;
	if (!rs_contains(&m->free, psector, nsectors))
		return -EBUSY;
	return rs_remove(&m->free, psector, nsectors);
}

int vlun_alloc_unfree(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors)
{
	struct amember *m = get_member(a, member);

	if (!m)
		return -ENOENT;
	if (!in_area(m, psector, nsectors))
		return -ERANGE;
	if (rs_contains(&m->pending, psector, nsectors))
		return rs_remove(&m->pending, psector, nsectors);
	if (rs_contains(&m->free, psector, nsectors))
		return rs_remove(&m->free, psector, nsectors);
	return -EBUSY;
}

int vlun_alloc_get_at(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors)
{
	struct amember *m = get_member(a, member);

	if (!m)
		return -ENOENT;
	if (!member_usable(a, member))
		return -ENODEV;
	if (!in_area(m, psector, nsectors))
		return -ERANGE;
	if (!rs_contains(&m->free, psector, nsectors))
		return -EBUSY;
	return rs_remove(&m->free, psector, nsectors);
}

static int check_release(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors,
			 struct amember **ret)
{
	struct amember *m = get_member(a, member);

	if (!m)
		return -ENOENT;
	if (!in_area(m, psector, nsectors))
		return -ERANGE;
	if (rs_overlaps(&m->free, psector, nsectors) || rs_overlaps(&m->pending, psector, nsectors)) {
		vlun_warn("allocator: member %u sectors %llu+%llu freed twice", member,
			  (unsigned long long)psector, (unsigned long long)nsectors);
		return -EINVAL;
	}
	*ret = m;
	return 0;
}

int vlun_alloc_free(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors)
{
	struct amember *m;
	int r = check_release(a, member, psector, nsectors, &m);

	return r < 0 ? r : rs_insert(&m->pending, psector, nsectors);
}

int vlun_alloc_put_back(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors)
{
	struct amember *m;
	int r = check_release(a, member, psector, nsectors, &m);

	return r < 0 ? r : rs_insert(&m->free, psector, nsectors);
}

void vlun_alloc_commit_done(struct vlun_alloc *a)
{
	if (!a)
		return;
	for (uint32_t i = 0; i < a->nm; i++) {
		struct amember *m = &a->m[i];

		if (!m->present || m->pending.n == 0)
			continue;
		if (rs_merge(&m->free, &m->pending) < 0) {
			/* Out of memory: keep them pending; the next commit retries. */
			vlun_warn("allocator: out of memory releasing freed space of member %u; retried after the next commit",
				  i);
			continue;
		}
		rs_clear(&m->pending);
	}
}

uint64_t vlun_alloc_free_sectors(const struct vlun_alloc *a, uint32_t member)
{
	uint64_t sum = 0;

	if (!a)
		return 0;
	if (member != VLUN_NO_MEMBER) {
		const struct amember *m = get_member(a, member);

		return m ? m->free.total : 0;
	}
	for (uint32_t i = 0; i < a->nm; i++)
		if (a->m[i].present)
			sum += a->m[i].free.total;
	return sum;
}

uint64_t vlun_alloc_pending_sectors(const struct vlun_alloc *a, uint32_t member)
{
	uint64_t sum = 0;

	if (!a)
		return 0;
	for (uint32_t i = 0; i < a->nm; i++)
		if (a->m[i].present && (member == VLUN_NO_MEMBER || member == i))
			sum += a->m[i].pending.total;
	return sum;
}

uint64_t vlun_alloc_total_sectors(const struct vlun_alloc *a, uint32_t member)
{
	uint64_t sum = 0;

	if (!a)
		return 0;
	for (uint32_t i = 0; i < a->nm; i++)
		if (a->m[i].present && (member == VLUN_NO_MEMBER || member == i))
			sum += a->m[i].data_sectors;
	return sum;
}

int vlun_alloc_runs(const struct vlun_alloc *a, uint32_t member, struct vlun_alloc_run **ret,
		    size_t *ret_n)
{
	const struct amember *m = get_member(a, member);
	struct vlun_alloc_run *v;

	if (!m)
		return -ENOENT;
	if (!ret || !ret_n)
		return -EINVAL;
	v = malloc((m->free.n ? m->free.n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->free.n; i++)
		v[i] = (struct vlun_alloc_run){ m->free.v[i].start, m->free.v[i].len };
	*ret = v;
	*ret_n = m->free.n;
	return 0;
}
