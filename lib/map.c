/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * map.c — the runtime extent map of one virtual disk.
 *
 * Shape. The extents (sorted, contiguous, covering [0, size)) are cut into
 * immutable pages of at most MAP_PAGE_MAX extents. A "top" holds the size,
 * the number of pages, the first vsector of every page (slot keys, immutable)
 * and one RCU-published pointer per page (slot pages). The map points at the
 * current top through an RCU-published pointer.
 *
 *     vlun_map ──rcu──▶ top { size, npages, slots[] { key, page ──rcu──▶ page { n, ext[] } } }
 *
 * Readers (the fast path, any thread) take rcu_read_lock() (liburcu-bp: no
 * registration), search the keys, then the page, and copy the clipped
 * extents out before rcu_read_unlock(): O(log n), no lock, no allocation,
 * no waiting. Each search starts at an interpolated guess (the position v
 * would have if extents were equally long) and gallops from there: maps of
 * equal-sized extents (thin chunks, stripes) are found in one or two
 * probes, i.e. one or two cache misses at a million extents instead of
 * ~20 for a plain binary search; any other map costs at most twice the
 * binary search. Key and page pointer share one slot (one cache line).
 *
 * Writers (the controller) are serialised by a mutex that readers never
 * touch. vlun_map_set() rebuilds only the pages the range touches:
 *  - the common case (the range lies in one page and the page stays between
 *    MAP_PAGE_MIN and MAP_PAGE_MAX extents): a new copy of that page is
 *    published into its slot. The page still covers the same virtual range,
 *    so keys[] stay valid; cost O(page) + O(log n).
 *  - otherwise (several pages, a page overflows or underflows, resize): the
 *    affected pages are re-cut evenly (MAP_PAGE_TARGET per page) and a new
 *    top is built and published; untouched pages are shared by the old and
 *    new tops. Cost O(pages) + O(extents touched).
 * Replaced pages and tops are freed with call_rcu() after a grace period.
 *
 * Consistency seen by a reader: every page and every top it sees is
 * complete, so a lookup always returns a gap-free, overlap-free cover of the
 * range where each extent was in the map at some point. A set that replaced
 * a whole top is seen entirely or not at all. A lookup spanning two pages
 * that race with two separate single-page sets may see the second set but
 * not the first; any set published before the lookup started is seen.
 *
 * Adjacent compatible extents (same flags, member, alternate member and
 * dirty id, physically contiguous primary and alternate) are merged inside
 * a page when it is rebuilt; across page boundaries they are merged in the
 * output of vlun_map_lookup() and vlun_map_export().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>

#include "internal.h"
#include "map.h"

#define MAP_PAGE_MAX 256u
#define MAP_PAGE_TARGET 192u
#define MAP_PAGE_MIN 64u

struct map_page {
	struct rcu_head rcu;
	uint32_t n;
	struct vlun_extent ext[];
};

struct map_slot {
	uint64_t key;             /* first vsector of the page (immutable) */
	struct map_page *page;    /* replaced in place by single-page sets */
};

struct map_top {
	struct rcu_head rcu;
	uint64_t size;
	uint32_t npages;
	struct map_slot slots[];
};

struct vlun_map {
	struct map_top *top;     /* RCU-published */
	pthread_mutex_t lock;    /* writers only */
	uint64_t generation;     /* atomic */
	uint64_t nextents;       /* writers only: extents in all pages */
};

/* ------------------------------------------------------------ extents */

static inline uint64_t ext_end(const struct vlun_extent *e)
{
	return e->vsector + e->nsectors;
}

/* e restricted to [from, to) (which must lie inside e). */
static inline struct vlun_extent ext_clip(const struct vlun_extent *e, uint64_t from, uint64_t to)
{
	struct vlun_extent c = *e;
	uint64_t off = from - e->vsector;

	c.vsector = from;
	c.nsectors = to - from;
	if (c.member != VLUN_NO_MEMBER)
		c.psector += off;
	if (c.alt_member != VLUN_NO_MEMBER)
		c.alt_psector += off;
	return c;
}

/* The extents must be sorted, contiguous, non-empty, cover exactly
 * [start, start+len) and stay addressable. */
static int ext_validate(const struct vlun_extent *ext, uint64_t n, uint64_t start, uint64_t len)
{
	uint64_t pos = start;

	for (uint64_t i = 0; i < n; i++) {
		const struct vlun_extent *e = &ext[i];
		uint64_t x;

		if (e->vsector != pos || e->nsectors == 0 || (e->flags & ~VLUN_EXT_KNOWN_FLAGS))
			return -EINVAL;
		if (__builtin_add_overflow(pos, e->nsectors, &pos))
			return -EINVAL;
		if (e->member != VLUN_NO_MEMBER && __builtin_add_overflow(e->psector, e->nsectors, &x))
			return -EINVAL;
		if (e->alt_member != VLUN_NO_MEMBER &&
		    __builtin_add_overflow(e->alt_psector, e->nsectors, &x))
			return -EINVAL;
		if ((e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member == VLUN_NO_MEMBER)
			return -EINVAL;
	}
	return pos == start + len ? 0 : -EINVAL;
}

/* A growable extent list that merges on append. */
struct xbuf {
	struct vlun_extent *v;
	size_t n, cap;
};

static int xbuf_push(struct xbuf *b, const struct vlun_extent *e)
{
	if (b->n > 0 && vlun_extent_mergeable(&b->v[b->n - 1], e)) {
		b->v[b->n - 1].nsectors += e->nsectors;
		return 0;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct vlun_extent *nv = realloc(b->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		b->v = nv;
		b->cap = cap;
	}
	b->v[b->n++] = *e;
	return 0;
}

static int xbuf_push_all(struct xbuf *b, const struct vlun_extent *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = xbuf_push(b, &e[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Puts e[0..n) in front of b's extents (merging where they meet); on
 * failure b is unchanged. */
static int xbuf_prepend(struct xbuf *b, const struct vlun_extent *e, size_t n)
{
	struct xbuf nb = { 0 };
	int r;

	if ((r = xbuf_push_all(&nb, e, n)) < 0 || (r = xbuf_push_all(&nb, b->v, b->n)) < 0) {
		free(nb.v);
		return r;
	}
	free(b->v);
	*b = nb;
	return 0;
}

/* -------------------------------------------------------- pages, tops */

static struct map_page *page_new(const struct vlun_extent *ext, uint32_t n)
{
	struct map_page *p = malloc(sizeof(*p) + (size_t)n * sizeof(p->ext[0]));

	if (!p)
		return NULL;
	p->n = n;
	memcpy(p->ext, ext, (size_t)n * sizeof(p->ext[0]));
	return p;
}

static struct map_top *top_new(uint32_t npages, uint64_t size)
{
	struct map_top *t = malloc(sizeof(*t) + (size_t)npages * sizeof(t->slots[0]));

	if (!t)
		return NULL;
	t->size = size;
	t->npages = npages;
	return t;
}

static void page_free_cb(struct rcu_head *h)
{
	free(caa_container_of(h, struct map_page, rcu));
}

static void top_free_cb(struct rcu_head *h)
{
	free(caa_container_of(h, struct map_top, rcu));
}

/* The searches below find i in [0, n) with key(i) <= v < key(i+1), where
 * key(0) <= v and keys increase. They start at guess g (interpolated),
 * gallop away from it in doubling steps until the answer is bracketed and
 * finish with a binary search inside the bracket. */
#define GALLOP_SEARCH(n, g, KEY, v)                                            \
	({                                                                     \
		uint32_t lo_, hi_, step_ = 1;                                  \
		if (KEY(g) <= (v)) {                                           \
			lo_ = (g);                                             \
			while (lo_ + step_ < (n) && KEY(lo_ + step_) <= (v)) { \
				lo_ += step_;                                  \
				step_ <<= 1;                                   \
			}                                                      \
			hi_ = lo_ + step_ < (n) ? lo_ + step_ : (n);           \
		} else {                                                       \
			hi_ = (g);                                             \
			while (hi_ >= step_ && KEY(hi_ - step_) > (v)) {       \
				hi_ -= step_;                                  \
				step_ <<= 1;                                   \
			}                                                      \
			lo_ = hi_ >= step_ ? hi_ - step_ : 0;                  \
		}                                                              \
		while (hi_ - lo_ > 1) {                                        \
			uint32_t mid_ = lo_ + (hi_ - lo_) / 2;                 \
			if (KEY(mid_) <= (v))                                  \
				lo_ = mid_;                                    \
			else                                                   \
				hi_ = mid_;                                    \
		}                                                              \
		lo_;                                                           \
	})

/* where v would be among n equal parts of [first, end) */
static inline uint32_t interpolate(uint64_t v, uint64_t first, uint64_t end, uint32_t n)
{
	uint64_t span = end - first;
	uint64_t g;

	if (span == 0 || v <= first)
		return 0;
	g = (uint64_t)((unsigned __int128)(v - first) * n / span);
	return g < n ? (uint32_t)g : n - 1;
}

/* Index of the page holding v (top has pages; v < size). */
static uint32_t page_index(const struct map_top *t, uint64_t v)
{
	uint32_t n = t->npages;

#define PAGE_KEY(i) (t->slots[(i)].key)
	if (n <= 1)
		return 0;
	return GALLOP_SEARCH(n, interpolate(v, 0, t->size, n), PAGE_KEY, v);
#undef PAGE_KEY
}

/* Index of the extent of p holding v (v inside the page). */
static uint32_t ext_index(const struct map_page *p, uint64_t v)
{
	uint32_t n = p->n;

#define EXT_KEY(i) (p->ext[(i)].vsector)
	if (n <= 1)
		return 0;
	return GALLOP_SEARCH(n, interpolate(v, p->ext[0].vsector, ext_end(&p->ext[n - 1]), n), EXT_KEY, v);
#undef EXT_KEY
}

/* Cuts ext[0..n) into pages of about MAP_PAGE_TARGET extents. */
static int make_pages(const struct vlun_extent *ext, size_t n, struct map_page ***ret, uint32_t *ret_n)
{
	size_t npg = VLUN_DIV_ROUND_UP(n, MAP_PAGE_TARGET), pos = 0;
	struct map_page **pages;

	pages = calloc(npg ? npg : 1, sizeof(*pages));
	if (!pages)
		return -ENOMEM;
	for (size_t i = 0; i < npg; i++) {
		size_t cnt = n / npg + (i < n % npg ? 1 : 0);

		pages[i] = page_new(ext + pos, (uint32_t)cnt);
		if (!pages[i]) {
			for (size_t j = 0; j < i; j++)
				free(pages[j]);
			free(pages);
			return -ENOMEM;
		}
		pos += cnt;
	}
	*ret = pages;
	*ret_n = (uint32_t)npg;
	return 0;
}

/* Replaces pages [pi, pe) of the current top by ext[0..n) (already merged,
 * covering the same range, or up to new_size for the last pages) and
 * publishes a new top of size new_size. Writer lock held. */
static int map_rebuild(struct vlun_map *m, uint32_t pi, uint32_t pe, const struct vlun_extent *ext,
		       size_t n, uint64_t new_size)
{
	struct map_top *old = m->top, *t;
	struct map_page **np = NULL;
	uint64_t old_count = 0, total;
	uint32_t nnew = 0, k = 0;
	int r;

	for (uint32_t i = pi; i < pe; i++)
		old_count += old->slots[i].page->n;
	total = m->nextents - old_count + n;
	if (total > VLUN_MAX_EXTENTS)
		return -E2BIG;

	r = make_pages(ext, n, &np, &nnew);
	if (r < 0)
		return r;
	t = top_new(pi + nnew + (old->npages - pe), new_size);
	if (!t) {
		for (uint32_t i = 0; i < nnew; i++)
			free(np[i]);
		free(np);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < pi; i++, k++) {
		t->slots[k] = old->slots[i];
	}
	for (uint32_t i = 0; i < nnew; i++, k++) {
		t->slots[k].page = np[i];
		t->slots[k].key = np[i]->ext[0].vsector;
	}
	for (uint32_t i = pe; i < old->npages; i++, k++) {
		t->slots[k] = old->slots[i];
	}
	free(np);

	vlun_tsan_release(t);
	rcu_assign_pointer(m->top, t);
	for (uint32_t i = pi; i < pe; i++)
		call_rcu(&old->slots[i].page->rcu, page_free_cb);
	call_rcu(&old->rcu, top_free_cb);
	m->nextents = total;
	return 0;
}

/* ---------------------------------------------------------------- API */

int vlun_map_new(const struct vlun_extent *ext, uint32_t n, uint64_t size_sectors,
		 struct vlun_map **ret)
{
	struct xbuf b = { 0 };
	struct map_page **pages = NULL;
	struct vlun_map *m = NULL;
	struct map_top *t = NULL;
	uint32_t npg = 0;
	int r;

	if (!ret || (n > 0 && !ext) || n > VLUN_MAX_EXTENTS)
		return -EINVAL;
	r = ext_validate(ext, n, 0, size_sectors);
	if (r < 0)
		return r;
	r = xbuf_push_all(&b, ext, n);
	if (r < 0)
		goto fail;
	r = make_pages(b.v, b.n, &pages, &npg);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	t = top_new(npg, size_sectors);
	m = calloc(1, sizeof(*m));
	if (!t || !m)
		goto fail;
	for (uint32_t i = 0; i < npg; i++) {
		t->slots[i].page = pages[i];
		t->slots[i].key = pages[i]->ext[0].vsector;
	}
	free(pages);
	pthread_mutex_init(&m->lock, NULL);
	m->nextents = b.n;
	m->generation = 1;
	vlun_tsan_release(t);
	rcu_assign_pointer(m->top, t);
	free(b.v);
	*ret = m;
	return 0;
fail:
	if (pages)
		for (uint32_t i = 0; i < npg; i++)
			free(pages[i]);
	free(pages);
	free(t);
	free(m);
	free(b.v);
	return r;
}

/* No reader may use m any more. */
void vlun_map_free(struct vlun_map *m)
{
	struct map_top *t;

	if (!m)
		return;
	t = m->top;
	for (uint32_t i = 0; i < t->npages; i++)
		free(t->slots[i].page);
	free(t);
	pthread_mutex_destroy(&m->lock);
	free(m);
	/* Old versions queued with call_rcu() do not reference m; wait for
	 * them so that nothing is left behind (leak checkers, dlclose). */
	rcu_barrier();
}

int vlun_map_lookup(struct vlun_map *m, uint64_t vsector, uint64_t nsectors,
		    struct vlun_extent *out, uint32_t max)
{
	const struct map_top *t;
	const struct map_page *p;
	uint64_t pos = vsector, end;
	uint32_t pi, j, count = 0;
	int r = 0;

	if (!m || !out || max == 0 || nsectors == 0)
		return -EINVAL;
	if (__builtin_add_overflow(vsector, nsectors, &end))
		return -ERANGE;

	rcu_read_lock();
	t = rcu_dereference(m->top);
	vlun_tsan_acquire(t);
	if (end > t->size) {
		r = -ERANGE;
		goto out;
	}
	pi = page_index(t, pos);
	p = rcu_dereference(t->slots[pi].page);
	vlun_tsan_acquire(p);
	j = ext_index(p, pos);
	while (pos < end) {
		struct vlun_extent c;

		if (j == p->n) {
			p = rcu_dereference(t->slots[++pi].page);
			vlun_tsan_acquire(p);
			j = 0;
		}
		c = ext_clip(&p->ext[j], pos, VLUN_MIN(ext_end(&p->ext[j]), end));
		if (count > 0 && vlun_extent_mergeable(&out[count - 1], &c)) {
			out[count - 1].nsectors += c.nsectors;
		} else if (count == max) {
			r = -ENOBUFS;
			break;
		} else
			out[count++] = c;
		pos += c.nsectors;
		j++;
	}
out:
	rcu_read_unlock();
	return r < 0 ? r : (int)count;
}

static int map_set_locked(struct vlun_map *m, uint64_t s, uint64_t len,
			  const struct vlun_extent *ext, uint32_t n)
{
	struct map_top *t = m->top;
	struct xbuf b = { 0 };
	const struct map_page *p;
	uint64_t e = s + len;
	uint32_t pi, pl, pe;
	int r;

	if (e > t->size)
		return -ERANGE;
	pi = page_index(t, s);
	pl = page_index(t, e - 1);

	/* head of page pi before s, the new extents, tail of page pl after e */
	p = t->slots[pi].page;
	for (uint32_t j = 0; j < p->n && p->ext[j].vsector < s; j++) {
		struct vlun_extent c = ext_clip(&p->ext[j], p->ext[j].vsector,
						VLUN_MIN(ext_end(&p->ext[j]), s));
		if ((r = xbuf_push(&b, &c)) < 0)
			goto out;
	}
	if ((r = xbuf_push_all(&b, ext, n)) < 0)
		goto out;
	p = t->slots[pl].page;
	for (uint32_t j = ext_index(p, e - 1); j < p->n; j++) {
		if (ext_end(&p->ext[j]) <= e)
			continue;
		struct vlun_extent c = ext_clip(&p->ext[j], VLUN_MAX(p->ext[j].vsector, e),
						ext_end(&p->ext[j]));
		if ((r = xbuf_push(&b, &c)) < 0)
			goto out;
	}

	if (pi == pl && b.n <= MAP_PAGE_MAX && (b.n >= MAP_PAGE_MIN || t->npages == 1)) {
		struct map_page *old = t->slots[pi].page, *np;

		if (m->nextents - old->n + b.n > VLUN_MAX_EXTENTS) {
			r = -E2BIG;
			goto out;
		}
		np = page_new(b.v, (uint32_t)b.n);
		if (!np) {
			r = -ENOMEM;
			goto out;
		}
		/* old may be freed as soon as call_rcu() returns: count first */
		m->nextents = m->nextents - old->n + b.n;
		vlun_tsan_release(np);
		rcu_assign_pointer(t->slots[pi].page, np);
		call_rcu(&old->rcu, page_free_cb);
		r = 0;
		goto out;
	}

	/* Too small: take in a neighbour so that pages stay reasonably full. */
	pe = pl + 1;
	while (b.n < MAP_PAGE_MIN && (pi > 0 || pe < t->npages)) {
		if (pe < t->npages) {
			p = t->slots[pe++].page;
			if ((r = xbuf_push_all(&b, p->ext, p->n)) < 0)
				goto out;
		} else {
			p = t->slots[--pi].page;
			if ((r = xbuf_prepend(&b, p->ext, p->n)) < 0)
				goto out;
		}
	}
	r = map_rebuild(m, pi, pe, b.v, b.n, t->size);
out:
	free(b.v);
	return r;
}

int vlun_map_set(struct vlun_map *m, uint64_t vsector, uint64_t nsectors,
		 const struct vlun_extent *ext, uint32_t n)
{
	uint64_t end;
	int r;

	if (!m || !ext || n == 0 || nsectors == 0)
		return -EINVAL;
	if (__builtin_add_overflow(vsector, nsectors, &end))
		return -ERANGE;
	r = ext_validate(ext, n, vsector, nsectors);
	if (r < 0)
		return r;

	pthread_mutex_lock(&m->lock);
	r = map_set_locked(m, vsector, nsectors, ext, n);
	if (r == 0)
		__atomic_add_fetch(&m->generation, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&m->lock);
	return r;
}

int vlun_map_resize(struct vlun_map *m, uint64_t new_size, const struct vlun_extent *tail,
		    uint32_t ntail)
{
	struct vlun_extent inval = {
		.member = VLUN_NO_MEMBER, .alt_member = VLUN_NO_MEMBER, .flags = VLUN_EXT_INVALID,
	};
	struct xbuf b = { 0 };
	struct map_top *t;
	uint32_t pi, pe;
	int r;

	if (!m || new_size == 0 || (ntail > 0 && !tail))
		return -EINVAL;

	pthread_mutex_lock(&m->lock);
	t = m->top;
	pe = t->npages;
	if (new_size > t->size) {
		if (ntail > 0) {
			r = ext_validate(tail, ntail, t->size, new_size - t->size);
			if (r < 0)
				goto out;
		} else {
			inval.vsector = t->size;
			inval.nsectors = new_size - t->size;
			tail = &inval;
			ntail = 1;
		}
		pi = pe > 0 ? pe - 1 : 0;
		if (pe > 0 && (r = xbuf_push_all(&b, t->slots[pi].page->ext, t->slots[pi].page->n)) < 0)
			goto out;
		if ((r = xbuf_push_all(&b, tail, ntail)) < 0)
			goto out;
	} else if (new_size < t->size) {
		const struct map_page *p;

		if (ntail > 0) {
			r = -EINVAL;
			goto out;
		}
		pi = page_index(t, new_size - 1);
		p = t->slots[pi].page;
		for (uint32_t j = 0; j < p->n && p->ext[j].vsector < new_size; j++) {
			struct vlun_extent c = ext_clip(&p->ext[j], p->ext[j].vsector,
							VLUN_MIN(ext_end(&p->ext[j]), new_size));
			if ((r = xbuf_push(&b, &c)) < 0)
				goto out;
		}
		if (b.n < MAP_PAGE_MIN && pi > 0) {
			p = t->slots[--pi].page;
			if ((r = xbuf_prepend(&b, p->ext, p->n)) < 0)
				goto out;
		}
	} else {
		r = ntail > 0 ? -EINVAL : 0;
		goto out;
	}
	r = map_rebuild(m, pi, pe, b.v, b.n, new_size);
out:
	if (r == 0)
		__atomic_add_fetch(&m->generation, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&m->lock);
	free(b.v);
	return r;
}

uint64_t vlun_map_generation(struct vlun_map *m)
{
	return m ? __atomic_load_n(&m->generation, __ATOMIC_ACQUIRE) : 0;
}

uint64_t vlun_map_size(struct vlun_map *m)
{
	const struct map_top *t;
	uint64_t s;

	if (!m)
		return 0;
	rcu_read_lock();
	t = rcu_dereference(m->top);
	vlun_tsan_acquire(t);
	s = t->size;
	rcu_read_unlock();
	return s;
}

int vlun_map_export(struct vlun_map *m, struct vlun_extent **ret, uint32_t *ret_n)
{
	struct xbuf b = { 0 };
	const struct map_top *t;
	int r = 0;

	if (!m || !ret || !ret_n)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	t = m->top;
	for (uint32_t i = 0; i < t->npages && r == 0; i++)
		r = xbuf_push_all(&b, t->slots[i].page->ext, t->slots[i].page->n);
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		free(b.v);
		return r;
	}
	*ret = b.v;
	*ret_n = (uint32_t)b.n;
	return 0;
}

uint64_t vlun_map_page_count(struct vlun_map *m)
{
	const struct map_top *t;
	uint64_t n;

	if (!m)
		return 0;
	rcu_read_lock();
	t = rcu_dereference(m->top);
	vlun_tsan_acquire(t);
	n = t->npages;
	rcu_read_unlock();
	return n;
}
