/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The latency histogram: every value falls in exactly one bucket whose
 * bounds hold it, buckets are at most 1/8 wide relative to their values,
 * and percentiles are the upper bound of the right bucket — never below the
 * true quantile, at most 12.5 % above it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "stats.h"

static struct vlun_iostat st;

static void test_bucket_geometry(void **state)
{
	(void)state;
	assert_int_equal(vlun_iostat_bucket(0), 0);
	assert_int_equal(vlun_iostat_bucket(7), 7);
	assert_int_equal(vlun_iostat_bucket(8), 8);
	assert_int_equal(vlun_iostat_bucket(UINT64_MAX), VLUN_IOSTAT_NBUCKETS - 1);
	assert_true(vlun_iostat_bucket_upper(VLUN_IOSTAT_NBUCKETS - 1) == UINT64_MAX);
	uint64_t lower = 0;
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++) {
		uint64_t up = vlun_iostat_bucket_upper(i);
		/* contiguous: [lower, up] is bucket i, up + 1 starts the next */
		assert_true(up >= lower);
		assert_int_equal(vlun_iostat_bucket(lower), i);
		assert_int_equal(vlun_iostat_bucket(up), i);
		assert_int_equal(vlun_iostat_bucket(lower + (up - lower) / 2), i);
		if (i + 1 < VLUN_IOSTAT_NBUCKETS)
			assert_int_equal(vlun_iostat_bucket(up + 1), i + 1);
		/* width at most 1/8 of the lower bound (exact below 8) */
		if (lower >= VLUN_IOSTAT_SUB)
			assert_true(up - lower + 1 <= lower / VLUN_IOSTAT_SUB);
		else
			assert_true(up == lower);
		lower = up + 1;
	}
}

static uint64_t snap_q(unsigned which)
{
	struct vlun_iostat_snap s;
	vlun_iostat_snapshot(&st, &s);
	switch (which) {
	case 50: return s.p50_ns;
	case 90: return s.p90_ns;
	case 99: return s.p99_ns;
	default: return s.p999_ns;
	}
}

static void assert_close_above(uint64_t got, uint64_t truth)
{
	assert_true(got >= truth);
	assert_true(got <= truth + truth / 8);
}

static void test_uniform_quantiles(void **state)
{
	(void)state;
	vlun_iostat_init(&st);
	assert_int_equal(snap_q(50), 0); /* empty */
	/* 1..100000 µs, each once: the q-quantile is q * 100000 µs */
	for (uint64_t us = 1; us <= 100000; us++)
		vlun_iostat_record_latency(&st, us * 1000);
	assert_close_above(snap_q(50), 50000ull * 1000);
	assert_close_above(snap_q(90), 90000ull * 1000);
	assert_close_above(snap_q(99), 99000ull * 1000);
	assert_close_above(snap_q(999), 99900ull * 1000);
	struct vlun_iostat_snap s;
	vlun_iostat_snapshot(&st, &s);
	assert_int_equal(s.lat_count, 100000);
	assert_true(s.lat_sum_ns == 100000ull * 100001 / 2 * 1000);
	assert_close_above(s.max_ns, 100000ull * 1000);
}

static void test_tail_is_seen(void **state)
{
	(void)state;
	vlun_iostat_init(&st);
	/* 998 fast I/Os, 2 slow ones: p99 fast, p99.9 slow */
	for (int i = 0; i < 998; i++)
		vlun_iostat_record_latency(&st, 20000);
	vlun_iostat_record_latency(&st, 5000000);
	vlun_iostat_record_latency(&st, 5000000);
	assert_close_above(snap_q(50), 20000);
	assert_close_above(snap_q(99), 20000);
	assert_close_above(snap_q(999), 5000000);
}

static void test_single_sample(void **state)
{
	(void)state;
	vlun_iostat_init(&st);
	vlun_iostat_record_latency(&st, 3);
	assert_int_equal(snap_q(50), 3);
	assert_int_equal(snap_q(999), 3);
	uint64_t h[VLUN_IOSTAT_NBUCKETS] = { 0 };
	assert_int_equal(vlun_iostat_percentile(h, 50000), 0);
	h[vlun_iostat_bucket(1000)] = 1;
	assert_close_above(vlun_iostat_percentile(h, 100000), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_geometry),
		cmocka_unit_test(test_uniform_quantiles),
		cmocka_unit_test(test_tail_is_seen),
		cmocka_unit_test(test_single_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
