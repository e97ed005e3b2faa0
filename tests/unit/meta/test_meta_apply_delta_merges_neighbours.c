/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlun_meta_apply_delta merges the replaced run with its left and right
 * neighbours (and within itself) when they are compatible — contiguous
 * virtually and physically, same flags/member/alt/dirty_id; INVALID/ZERO
 * runs without a member merge whatever their psector — exactly like the
 * runtime map. Checked case by case (left, right, both, none, INVALID
 * runs) and against a naive reference (rebuild the whole table, then merge
 * every adjacent compatible pair) over thousands of random deltas, also
 * on a copy whose array has no spare capacity. Also
 * prints (does not assert) the time of 10,000 single-chunk deltas.
 */
#include <time.h>

#include "metatest.h"

#define M0 2048ull /* data start of both members */

static struct vlun_pool_desc *desc_new(uint64_t size)
{
	struct vlun_pool_desc *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	snprintf(d->name, sizeof(d->name), "p");
	d->next_vdisk_id = 2;
	d->nmembers = 2;
	d->members = calloc(2, sizeof(*d->members));
	assert_non_null(d->members);
	for (uint32_t i = 0; i < 2; i++) {
		d->members[i].index = i;
		d->members[i].data_start = M0;
		d->members[i].data_sectors = 1ull << 40;
	}
	d->nvdisks = 1;
	d->vdisks = calloc(1, sizeof(*d->vdisks));
	assert_non_null(d->vdisks);
	struct vlun_vdisk_desc *v = &d->vdisks[0];
	v->id = 1;
	snprintf(v->name, sizeof(v->name), "t");
	v->layout = VLUN_LAYOUT_THIN;
	v->size_sectors = size;
	v->chunk_sectors = 8;
	v->nextents = 1;
	v->extents = calloc(1, sizeof(*v->extents));
	assert_non_null(v->extents);
	v->extents[0] = (struct vlun_extent){ .nsectors = size, .member = VLUN_NO_MEMBER,
					      .alt_member = VLUN_NO_MEMBER, .flags = VLUN_EXT_INVALID };
	return d;
}

static struct vlun_extent ext_at(uint64_t vs, uint64_t ns, uint32_t member, uint64_t ps)
{
	return (struct vlun_extent){ .vsector = vs, .nsectors = ns, .member = member,
				     .psector = member == VLUN_NO_MEMBER ? 0 : ps,
				     .alt_member = VLUN_NO_MEMBER,
				     .flags = member == VLUN_NO_MEMBER ? VLUN_EXT_INVALID : 0 };
}

static void apply(struct vlun_pool_desc *d, const struct vlun_extent *x, uint32_t n)
{
	uint64_t ns = 0;

	for (uint32_t i = 0; i < n; i++)
		ns += x[i].nsectors;
	struct vlun_meta_delta dl = { .vdisk_id = 1, .vsector = x[0].vsector, .nsectors = ns, .nextents = n,
				      .extents = x, .generation = d->vdisks[0].generation + 1 };
	assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
	assert_int_equal(d->vdisks[0].generation, dl.generation);
}

static void alloc1(struct vlun_pool_desc *d, uint64_t vs, uint64_t ns, uint32_t member, uint64_t ps)
{
	struct vlun_extent x = ext_at(vs, ns, member, ps);

	apply(d, &x, 1);
}

/* Expects the table to be exactly the n given extents. */
static void expect(const struct vlun_pool_desc *d, const struct vlun_extent *want, uint32_t n)
{
	const struct vlun_vdisk_desc *v = &d->vdisks[0];

	if (v->nextents != n)
		fail_msg("%u extents, want %u", v->nextents, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct vlun_extent *a = &v->extents[i], *b = &want[i];

		if (a->vsector != b->vsector || a->nsectors != b->nsectors || a->member != b->member ||
		    a->psector != b->psector || a->flags != b->flags || a->alt_member != b->alt_member ||
		    a->alt_psector != b->alt_psector || a->dirty_id != b->dirty_id)
			fail_msg("extent %u: %llu+%llu m%u p%llu f%#x, want %llu+%llu m%u p%llu f%#x", i,
				 (unsigned long long)a->vsector, (unsigned long long)a->nsectors, a->member,
				 (unsigned long long)a->psector, a->flags, (unsigned long long)b->vsector,
				 (unsigned long long)b->nsectors, b->member, (unsigned long long)b->psector, b->flags);
	}
}

static void merge_cases(void **state)
{
	(void)state;
	struct vlun_pool_desc *d = desc_new(80);
	const uint32_t N = VLUN_NO_MEMBER;

	/* none: a lone chunk in the middle splits INVALID into three */
	alloc1(d, 16, 8, 0, M0 + 16);
	expect(d, (struct vlun_extent[]){ ext_at(0, 16, N, 0), ext_at(16, 8, 0, M0 + 16), ext_at(24, 56, N, 0) }, 3);
	/* left: right after it, physically contiguous */
	alloc1(d, 24, 8, 0, M0 + 24);
	expect(d, (struct vlun_extent[]){ ext_at(0, 16, N, 0), ext_at(16, 16, 0, M0 + 16), ext_at(32, 48, N, 0) }, 3);
	/* right: right before it */
	alloc1(d, 8, 8, 0, M0 + 8);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0 + 8), ext_at(32, 48, N, 0) }, 3);
	/* not physically contiguous, other member: no merge */
	alloc1(d, 32, 8, 1, M0);
	alloc1(d, 48, 8, 0, M0 + 100);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0 + 8), ext_at(32, 8, 1, M0),
					  ext_at(40, 8, N, 0), ext_at(48, 8, 0, M0 + 100), ext_at(56, 24, N, 0) }, 6);
	/* both: fills the hole between two extents it continues */
	alloc1(d, 40, 8, 1, M0 + 8);
	alloc1(d, 56, 8, 1, M0 + 16);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0 + 8), ext_at(32, 16, 1, M0),
					  ext_at(48, 8, 0, M0 + 100), ext_at(56, 8, 1, M0 + 16), ext_at(64, 16, N, 0) }, 6);
	/* both: move 56 to M0+24, then 48 at M0+16 continues 32..48 (which
	 * ends at M0+16) and precedes 56 */
	alloc1(d, 56, 8, 1, M0 + 24);
	alloc1(d, 48, 8, 1, M0 + 16);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0 + 8), ext_at(32, 32, 1, M0),
					  ext_at(64, 16, N, 0) }, 4);

	/* INVALID runs: unmapping merges with INVALID neighbours, whatever
	 * their psector; unmapping in the middle splits */
	alloc1(d, 40, 8, N, 0);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0 + 8), ext_at(32, 8, 1, M0),
					  ext_at(40, 8, N, 0), ext_at(48, 16, 1, M0 + 16), ext_at(64, 16, N, 0) }, 6);
	struct vlun_extent inv = ext_at(48, 16, N, 0);
	inv.psector = 12345; /* ignored for merging; the leftmost's stays */
	apply(d, &inv, 1);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0 + 8), ext_at(32, 8, 1, M0),
					  ext_at(40, 40, N, 0) }, 4);
	alloc1(d, 32, 8, N, 0);
	alloc1(d, 8, 24, N, 0);
	expect(d, (struct vlun_extent[]){ ext_at(0, 80, N, 0) }, 1);

	/* within the run: a delta of several compatible extents becomes one */
	apply(d, (struct vlun_extent[]){ ext_at(8, 8, 0, M0), ext_at(16, 8, 0, M0 + 8), ext_at(24, 8, 0, M0 + 16) }, 3);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0), ext_at(32, 48, N, 0) }, 3);

	/* replacing part of an extent with the same mapping keeps one extent */
	alloc1(d, 16, 4, 0, M0 + 8);
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0), ext_at(32, 48, N, 0) }, 3);

	/* different flags (ZERO vs INVALID) never merge; ZERO with ZERO does */
	struct vlun_extent z = ext_at(32, 8, N, 0);
	z.flags = VLUN_EXT_ZERO;
	apply(d, &z, 1);
	z.vsector = 40;
	apply(d, &z, 1);
	struct vlun_extent zw = ext_at(32, 16, N, 0);
	zw.flags = VLUN_EXT_ZERO;
	expect(d, (struct vlun_extent[]){ ext_at(0, 8, N, 0), ext_at(8, 24, 0, M0), zw, ext_at(48, 32, N, 0) }, 4);

	/* alternates must be contiguous too, dirty_id equal */
	struct vlun_extent a1 = ext_at(48, 8, 1, M0 + 500), a2 = ext_at(56, 8, 1, M0 + 508);
	a1.flags = a2.flags = VLUN_EXT_ALT_EXISTS;
	a1.alt_member = a2.alt_member = 0;
	a1.alt_psector = M0 + 900;
	a2.alt_psector = M0 + 909; /* not contiguous */
	apply(d, &a1, 1);
	apply(d, &a2, 1);
	assert_int_equal(d->vdisks[0].nextents, 6);
	a2.alt_psector = M0 + 908;
	a2.dirty_id = 3;
	apply(d, &a2, 1);
	assert_int_equal(d->vdisks[0].nextents, 6);
	a2.dirty_id = 0;
	apply(d, &a2, 1);
	assert_int_equal(d->vdisks[0].nextents, 5);
	assert_int_equal(d->vdisks[0].extents[3].nsectors, 16);
	assert_int_equal(d->vdisks[0].extents[3].alt_psector, M0 + 900);

	vlun_pool_desc_free(d);
}

/* ---------------------------------------------------- naive reference */

struct table {
	struct vlun_extent *v;
	uint32_t n;
};

static bool mergeable(const struct vlun_extent *a, const struct vlun_extent *b)
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

/* Rebuilds the whole table: the part of every old extent outside
 * [vs, vs+ns), the new extents inside; then merges everything. */
static void ref_apply(struct table *t, const struct vlun_extent *x, uint32_t nx, uint64_t vs, uint64_t ns)
{
	struct vlun_extent *out = malloc(((size_t)t->n + nx + 2) * sizeof(*out));
	uint32_t k = 0;
	bool placed = false;

	assert_non_null(out);
	for (uint32_t i = 0; i < t->n; i++) {
		struct vlun_extent e = t->v[i];
		uint64_t es = e.vsector, ee = es + e.nsectors;

		if (ee <= vs || es >= vs + ns) {
			if (es >= vs + ns && !placed) {
				memcpy(out + k, x, nx * sizeof(*x));
				k += nx;
				placed = true;
			}
			out[k++] = e;
			continue;
		}
		if (es < vs) {
			struct vlun_extent l = e;
			l.nsectors = vs - es;
			out[k++] = l;
		}
		if (!placed) {
			memcpy(out + k, x, nx * sizeof(*x));
			k += nx;
			placed = true;
		}
		if (ee > vs + ns) {
			struct vlun_extent r = e;
			uint64_t by = vs + ns - es;
			r.vsector += by;
			r.nsectors -= by;
			if (r.member != VLUN_NO_MEMBER)
				r.psector += by;
			if (r.flags & VLUN_EXT_ALT_EXISTS)
				r.alt_psector += by;
			out[k++] = r;
		}
	}
	assert_true(placed);
	/* merge every adjacent compatible pair */
	uint32_t m = 0;
	for (uint32_t i = 0; i < k; i++) {
		if (m > 0 && mergeable(&out[m - 1], &out[i]))
			out[m - 1].nsectors += out[i].nsectors;
		else
			out[m++] = out[i];
	}
	free(t->v);
	t->v = out;
	t->n = m;
}

static void random_against_reference(void **state)
{
	(void)state;
	const uint64_t size = 4096; /* 512 chunks of 8 */
	struct vlun_pool_desc *d = desc_new(size);
	struct table t = { .v = malloc(sizeof(struct vlun_extent)), .n = 1 };
	uint64_t cursor[2] = { M0, M0 };

	assert_non_null(t.v);
	t.v[0] = d->vdisks[0].extents[0];
	for (int round = 0; round < 20000; round++) {
		struct vlun_extent x[4];
		uint32_t nx = (uint32_t)mt_rand_range(1, 4);
		uint64_t vs = mt_rand_range(0, size - 1), pos = vs;
		uint32_t mode = (uint32_t)mt_rand_range(0, 9);

		if (mode < 6) /* chunk aligned, like thin */
			vs = pos = vs - vs % 8;
		for (uint32_t i = 0; i < nx && pos < size; i++) {
			uint64_t len = mode < 6 ? 8 * mt_rand_range(1, 3) : mt_rand_range(1, 40);
			uint32_t kind = (uint32_t)mt_rand_range(0, 9);
			uint32_t mem = (uint32_t)mt_rand_range(0, 1);

			len = VLUN_MIN(len, size - pos);
			memset(&x[i], 0, sizeof(x[i]));
			x[i].vsector = pos;
			x[i].nsectors = len;
			x[i].alt_member = VLUN_NO_MEMBER;
			if (kind < 3) {
				x[i].member = VLUN_NO_MEMBER;
				x[i].flags = kind == 2 ? VLUN_EXT_ZERO : VLUN_EXT_INVALID;
				x[i].psector = mt_rand_range(0, 3); /* must not matter */
			} else {
				x[i].member = mem;
				/* often contiguous with what is around (a left neighbour's
				 * end, or the physical mirror of the virtual position) */
				if (kind < 6)
					x[i].psector = M0 + pos;
				else if (kind < 8)
					x[i].psector = cursor[mem];
				else
					x[i].psector = M0 + mt_rand_range(0, 8192);
				cursor[mem] = x[i].psector + len;
				if (kind == 9) {
					x[i].flags = VLUN_EXT_ALT_EXISTS;
					x[i].alt_member = 1 - mem;
					x[i].alt_psector = M0 + 100000 + pos;
					x[i].dirty_id = (uint32_t)mt_rand_range(0, 1);
				}
			}
			pos += len;
			nx = i + 1;
		}
		struct vlun_meta_delta dl = { .vdisk_id = 1, .vsector = vs, .nsectors = pos - vs, .nextents = nx,
					      .extents = x, .generation = (uint64_t)round + 1 };
		assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
		ref_apply(&t, x, nx, vs, pos - vs);

		const struct vlun_vdisk_desc *v = &d->vdisks[0];
		if (v->nextents != t.n)
			fail_msg("round %d: %u extents, reference has %u", round, v->nextents, t.n);
		for (uint32_t i = 0; i < t.n; i++)
			if (memcmp(&v->extents[i], &t.v[i], sizeof(t.v[i])))
				fail_msg("round %d: extent %u differs from the reference (vsector %llu vs %llu)", round,
					 i, (unsigned long long)v->extents[i].vsector,
					 (unsigned long long)t.v[i].vsector);
		if (round % 4000 == 3999) {
			/* a copy (its array exactly nextents long, extents_cap 0)
			 * takes the same deltas to the same table */
			struct vlun_pool_desc *back = NULL;

			assert_int_equal(vlun_pool_desc_dup(d, &back), 0);
			assert_int_equal(back->vdisks[0].extents_cap, 0);
			for (int j = 0; j < 50; j++) {
				struct vlun_extent y = ext_at(8 * (uint64_t)j * 3, 8, (uint32_t)(j % 2),
							      M0 + 77777 + 8 * (uint64_t)j);
				struct vlun_meta_delta dy = { .vdisk_id = 1, .vsector = y.vsector, .nsectors = 8,
							      .nextents = 1, .extents = &y,
							      .generation = (uint64_t)round + 1 };
				assert_int_equal(vlun_meta_apply_delta(back, &dy), 0);
				assert_int_equal(vlun_meta_apply_delta(d, &dy), 0);
				ref_apply(&t, &y, 1, y.vsector, 8);
			}
			assert_true(mt_desc_equal(d, back, true));
			vlun_pool_desc_free(back);
		}
	}
	printf("random deltas: final table %u extents\n", t.n);
	free(t.v);
	vlun_pool_desc_free(d);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 10,000 single-chunk deltas in random chunk order, members alternating
 * (nothing merges: the worst case for the table size) and on one member
 * in virtual order (everything merges). Printed, not asserted. */
static void timing(void **state)
{
	(void)state;
	const uint64_t n = 10000;

	for (int pass = 0; pass < 2; pass++) {
		struct vlun_pool_desc *d = desc_new(n * 8);
		uint64_t *order = malloc(n * sizeof(*order));

		assert_non_null(order);
		for (uint64_t i = 0; i < n; i++)
			order[i] = i;
		if (pass == 0)
			for (uint64_t i = n - 1; i > 0; i--) {
				uint64_t j = mt_rand() % (i + 1), tmp = order[i];
				order[i] = order[j];
				order[j] = tmp;
			}
		double t0 = now_s();
		for (uint64_t i = 0; i < n; i++) {
			uint64_t c = order[i];
			uint32_t mem = pass == 0 ? (uint32_t)(i % 2) : 0;
			alloc1(d, c * 8, 8, mem, M0 + (pass == 0 ? i * 8 : c * 8));
		}
		double t1 = now_s();
		printf("apply_delta: %llu single-chunk deltas (%s) in %.3f s (%.2f us each), %u extents\n",
		       (unsigned long long)n, pass == 0 ? "random order, alternating members" : "in order, one member",
		       t1 - t0, (t1 - t0) * 1e6 / (double)n, d->vdisks[0].nextents);
		assert_int_equal(d->vdisks[0].nextents, pass == 0 ? n : 1);
		free(order);
		vlun_pool_desc_free(d);
	}
	fflush(stdout);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(merge_cases),
		cmocka_unit_test(random_against_reference),
		cmocka_unit_test(timing),
	};

	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
