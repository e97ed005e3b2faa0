/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thin allocation keeps virtual neighbours physically adjacent: chunks
 * written one after another on a 2-member thin disk end up as ONE
 * allocated extent, both in the pool description and in the runtime map
 * (not alternating between the members), also with 16 writes in flight.
 * Unmapped chunks next to each
 * other, and next to the never-written tail, become one INVALID extent.
 * After a flush, reopening the pool (checkpoint + journal replay) yields
 * exactly the extent table the running pool had.
 *
 * Also prints (does not assert) the time of 10,000 single-chunk
 * allocations, sequential and in random order.
 */
#include <time.h>

#include "map.h"
#include "pool_priv.h" /* vdisk_map_of */
#include "vdisk_test.h"

static const uint64_t chunk = 64 << 10;
#define CS (chunk >> VLUN_SECTOR_SHIFT)

/* The extents of vdisk name in a fresh description (caller frees *ret_d). */
static const struct vlun_vdisk_desc *describe(struct vlun_pool *p, const char *name, struct vlun_pool_desc **ret_d)
{
	assert_int_equal(vlun_pool_describe(p, ret_d), 0);
	const struct vlun_vdisk_desc *v = et_find_vdisk(*ret_d, name);
	assert_non_null(v);
	return v;
}

static void expect_ext(const struct vlun_extent *e, uint64_t vchunk, uint64_t nchunks, bool allocated)
{
	if (e->vsector != vchunk * CS || e->nsectors != nchunks * CS)
		fail_msg("extent at sector %llu+%llu, want %llu+%llu", (unsigned long long)e->vsector,
			 (unsigned long long)e->nsectors, (unsigned long long)(vchunk * CS),
			 (unsigned long long)(nchunks * CS));
	if (allocated) {
		assert_int_equal(e->flags, 0);
		assert_true(e->member != VLUN_NO_MEMBER);
	} else {
		assert_int_equal(e->flags, VLUN_EXT_INVALID);
		assert_int_equal(e->member, VLUN_NO_MEMBER);
	}
}

static bool ext_equal(const struct vlun_extent *a, const struct vlun_extent *b)
{
	return a->vsector == b->vsector && a->nsectors == b->nsectors && a->psector == b->psector &&
	       a->alt_psector == b->alt_psector && a->member == b->member && a->alt_member == b->alt_member &&
	       a->flags == b->flags && a->dirty_id == b->dirty_id;
}

static void test_sequential_first_touch_is_one_extent(void **state)
{
	(void)state;
	const uint64_t n = 24;
	struct et_pool tp;
	et_pool_files(&tp, 2, 8 << 20);
	et_pool_create(&tp, "seq");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, 32 * chunk, chunk, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");

	/* Partial first writes (the rest of each chunk is zeroed) in order. */
	for (uint64_t i = 0; i < n; i++)
		et_write(vd, i * chunk + 4096, 8192, 7);

	struct vlun_pool_desc *d = NULL;
	const struct vlun_vdisk_desc *v = describe(p, "t", &d);
	assert_int_equal(v->nextents, 2);
	expect_ext(&v->extents[0], 0, n, true);
	expect_ext(&v->extents[1], n, 32 - n, false);
	vlun_pool_desc_free(d);

	/* The map agrees: one extent covers all n chunks. */
	struct vlun_extent out[4];
	int k = vlun_map_lookup(vdisk_map_of(vd), 0, n * CS, out, 4);
	assert_int_equal(k, 1);
	expect_ext(&out[0], 0, n, true);

	for (uint64_t i = 0; i < n; i++) {
		et_check_zero(vd, i * chunk, 4096);
		et_check(vd, i * chunk + 4096, 8192, 7);
		et_check_zero(vd, i * chunk + 4096 + 8192, chunk - 4096 - 8192);
	}
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

struct areq {
	struct vlun_req req;
	struct iovec iov;
	struct et_waiter *w;
	int st;
};

static void areq_done(struct vlun_req *req, enum vlun_status st)
{
	struct areq *a = req->priv;
	a->st = (int)st;
	et_waiter_signal(a->w);
}

/* Sequential first writes with 16 in flight: consecutive chunks fault
 * before their left neighbour is installed; each still goes right after
 * the neighbour being prepared. */
static void test_sequential_queue_depth_16_is_one_extent(void **state)
{
	(void)state;
	enum { QD = 16, ROUNDS = 4 };
	struct et_pool tp;
	et_pool_files(&tp, 2, 8 << 20);
	et_pool_create(&tp, "qd");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, QD * ROUNDS * chunk, chunk, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	uint8_t *buf = et_alloc(QD * chunk);
	for (int round = 0; round < ROUNDS; round++) {
		struct areq a[QD];
		struct et_waiter w;
		et_waiter_init(&w);
		for (int i = 0; i < QD; i++) {
			uint64_t off = ((uint64_t)round * QD + (uint64_t)i) * chunk;
			et_fill(buf + (uint64_t)i * chunk, chunk, 4, off);
			memset(&a[i], 0, sizeof(a[i]));
			a[i].w = &w;
			a[i].iov = (struct iovec){ buf + (uint64_t)i * chunk, chunk };
			a[i].req = (struct vlun_req){ .op = VLUN_OP_WRITE, .offset = off, .length = chunk,
						      .iov = &a[i].iov, .iovcnt = 1, .done = areq_done,
						      .priv = &a[i] };
			assert_int_equal(vlun_vdisk_submit(vd, &a[i].req), 0);
		}
		et_waiter_wait(&w, QD);
		for (int i = 0; i < QD; i++)
			assert_int_equal(a[i].st, VLUN_OK);
	}
	free(buf);
	struct vlun_pool_desc *d = NULL;
	const struct vlun_vdisk_desc *v = describe(p, "t", &d);
	assert_int_equal(v->nextents, 1);
	expect_ext(&v->extents[0], 0, QD * ROUNDS, true);
	vlun_pool_desc_free(d);
	et_check(vd, 0, QD * ROUNDS * chunk, 4);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

/* Writes chunks right-to-left: each new chunk goes right before its right
 * neighbour when that space is free, so the disk still ends as one extent
 * when the member has room below. Here the first chunk written (the last
 * one) lands at the start of a member, so the second one cannot go before
 * it: that is the fallback (same member, first fit). The test only checks
 * that the chunks stay on one member. */
static void test_backward_first_touch_stays_on_one_member(void **state)
{
	(void)state;
	const uint64_t n = 8;
	struct et_pool tp;
	et_pool_files(&tp, 2, 8 << 20);
	et_pool_create(&tp, "back");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, 16 * chunk, chunk, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	for (uint64_t i = n; i-- > 0;)
		et_write(vd, i * chunk, chunk, 3);
	struct vlun_pool_desc *d = NULL;
	const struct vlun_vdisk_desc *v = describe(p, "t", &d);
	uint32_t member = v->extents[0].member;
	assert_true(member != VLUN_NO_MEMBER);
	for (uint32_t i = 0; i < v->nextents && v->extents[i].vsector < n * CS; i++)
		assert_int_equal(v->extents[i].member, member);
	vlun_pool_desc_free(d);
	et_check(vd, 0, n * chunk, 3);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

static void test_unmapped_runs_merge_and_reopen_is_identical(void **state)
{
	(void)state;
	const uint64_t n = 16;
	struct et_pool tp;
	et_pool_files(&tp, 2, 8 << 20);
	et_pool_create(&tp, "unmap");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, n * chunk, chunk, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	for (uint64_t i = 0; i < n; i++)
		et_write(vd, i * chunk, chunk, 5);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);

	struct vlun_pool_desc *d = NULL;
	const struct vlun_vdisk_desc *v = describe(p, "t", &d);
	assert_int_equal(v->nextents, 1);
	expect_ext(&v->extents[0], 0, n, true);
	vlun_pool_desc_free(d);

	/* A chunk in the middle, then its neighbours one at a time. */
	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, 7 * chunk, chunk, NULL, NULL), VLUN_OK);
	v = describe(p, "t", &d);
	assert_int_equal(v->nextents, 3);
	expect_ext(&v->extents[0], 0, 7, true);
	expect_ext(&v->extents[1], 7, 1, false);
	expect_ext(&v->extents[2], 8, n - 8, true);
	vlun_pool_desc_free(d);

	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, 6 * chunk, chunk, NULL, NULL), VLUN_OK);
	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, 8 * chunk, chunk, NULL, NULL), VLUN_OK);
	/* and the last chunk, then the one before it: a second INVALID run */
	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, (n - 1) * chunk, chunk, NULL, NULL), VLUN_OK);
	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, (n - 2) * chunk, chunk, NULL, NULL), VLUN_OK);
	v = describe(p, "t", &d);
	assert_int_equal(v->nextents, 4);
	expect_ext(&v->extents[0], 0, 6, true);
	expect_ext(&v->extents[1], 6, 3, false);
	expect_ext(&v->extents[2], 9, n - 2 - 9, true);
	expect_ext(&v->extents[3], n - 2, 2, false);
	/* the map says the same */
	struct vlun_extent out[8];
	int k = vlun_map_lookup(vdisk_map_of(vd), 0, n * CS, out, 8);
	assert_int_equal(k, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(out[i].vsector, v->extents[i].vsector);
		assert_int_equal(out[i].nsectors, v->extents[i].nsectors);
		assert_int_equal(out[i].flags, v->extents[i].flags);
		assert_int_equal(out[i].member, v->extents[i].member);
		if (out[i].member != VLUN_NO_MEMBER)
			assert_int_equal(out[i].psector, v->extents[i].psector);
	}

	/* Once the frees are durable, writing chunk 6 then 7 puts each right
	 * after its left neighbour (their old places): [0, 8) is one extent
	 * again; chunk 9 starts elsewhere physically, so it stays separate. */
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	et_write(vd, 6 * chunk, chunk, 9);
	et_write(vd, 7 * chunk, chunk, 9);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	vlun_pool_desc_free(d);
	v = describe(p, "t", &d);
	assert_int_equal(v->nextents, 4);
	expect_ext(&v->extents[0], 0, 8, true);
	expect_ext(&v->extents[1], 8, 1, false);
	expect_ext(&v->extents[2], 9, n - 2 - 9, true);
	expect_ext(&v->extents[3], n - 2, 2, false);

	/* Reopen: the checkpoint plus the replayed journal give the same table. */
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	p = et_pool_open(&tp);
	struct vlun_pool_desc *d2 = NULL;
	const struct vlun_vdisk_desc *v2 = describe(p, "t", &d2);
	assert_int_equal(v2->nextents, v->nextents);
	for (uint32_t i = 0; i < v->nextents; i++)
		assert_true(ext_equal(&v2->extents[i], &v->extents[i]));
	vlun_pool_desc_free(d2);
	vlun_pool_desc_free(d);

	vd = et_vdisk_open(p, "t");
	et_check(vd, 0, 6 * chunk, 5);
	et_check(vd, 6 * chunk, 2 * chunk, 9);
	et_check_zero(vd, 8 * chunk, chunk);
	et_check(vd, 9 * chunk, (n - 2 - 9) * chunk, 5);
	et_check_zero(vd, (n - 2) * chunk, 2 * chunk);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

static double now_s(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 10,000 single-chunk first writes (4 KiB chunks, whole-chunk writes: no
 * zeroing), timed. Prints the figures; asserts only that every write
 * succeeds and the data reads back. */
static void timed_fill(bool random_order)
{
	const uint64_t n = 10000, c = 4096;
	struct et_pool tp;
	et_pool_files(&tp, 2, 32 << 20);
	et_pool_create(&tp, random_order ? "rnd" : "seq");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, n * c, c, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	uint64_t *order = malloc(n * sizeof(*order));
	assert_non_null(order);
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	if (random_order) {
		uint64_t x = 0x243f6a8885a308d3ull;
		for (uint64_t i = n - 1; i > 0; i--) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			uint64_t j = x % (i + 1), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
	}
	uint8_t *b = et_alloc(c);
	double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	for (uint64_t i = 0; i < n; i++) {
		et_fill(b, c, 13, order[i] * c);
		assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, order[i] * c, c, b, NULL), VLUN_OK);
	}
	double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	double t2 = now_s(CLOCK_MONOTONIC);
	free(b);
	struct vlun_pool_desc *d = NULL;
	const struct vlun_vdisk_desc *v = describe(p, "t", &d);
	printf("thin %s first touch: %llu single-chunk allocations in %.3f s (%.1f us each, %.3f s CPU), "
	       "flush %.3f s, %u extents in the description\n",
	       random_order ? "random" : "sequential", (unsigned long long)n, t1 - t0, (t1 - t0) * 1e6 / (double)n,
	       c1 - c0, t2 - t1, v->nextents);
	fflush(stdout);
	vlun_pool_desc_free(d);
	et_check(vd, 0, n * c, 13);
	free(order);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

static void test_timed_sequential(void **state)
{
	(void)state;
	timed_fill(false);
}

static void test_timed_random(void **state)
{
	(void)state;
	timed_fill(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequential_first_touch_is_one_extent),
		cmocka_unit_test(test_sequential_queue_depth_16_is_one_extent),
		cmocka_unit_test(test_backward_first_touch_stays_on_one_member),
		cmocka_unit_test(test_unmapped_runs_merge_and_reopen_is_identical),
		cmocka_unit_test(test_timed_sequential),
		cmocka_unit_test(test_timed_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
