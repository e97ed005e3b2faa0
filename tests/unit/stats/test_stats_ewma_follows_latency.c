/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recent-latency average (read balancing): starts at the first sample,
 * moves 1/8 of the way to each new one, converges to a steady latency, and
 * a member that became slow is seen as slower than one that stayed fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "stats.h"

static void test_steps(void **state)
{
	(void)state;
	struct vlun_iostat s;
	vlun_iostat_init(&s);
	assert_int_equal(vlun_iostat_recent_ns(&s), 0);
	vlun_iostat_record_latency(&s, 800);
	assert_int_equal(vlun_iostat_recent_ns(&s), 800);
	vlun_iostat_record_latency(&s, 1600);
	assert_int_equal(vlun_iostat_recent_ns(&s), 900); /* 800 + 800/8 */
	vlun_iostat_record_latency(&s, 100);
	assert_int_equal(vlun_iostat_recent_ns(&s), 800); /* 900 - 800/8 */
	for (int i = 0; i < 200; i++)
		vlun_iostat_record_latency(&s, 50000);
	uint64_t r = vlun_iostat_recent_ns(&s);
	assert_true(r <= 50000 && r >= 50000 - 8);
	for (int i = 0; i < 200; i++)
		vlun_iostat_record_latency(&s, 1000);
	r = vlun_iostat_recent_ns(&s);
	assert_true(r >= 1000 && r <= 1000 + 8);
	/* never 0 once a sample was seen, even of 0 ns */
	vlun_iostat_init(&s);
	vlun_iostat_record_latency(&s, 0);
	assert_true(vlun_iostat_recent_ns(&s) > 0);
}

static void test_slow_member_loses(void **state)
{
	(void)state;
	struct vlun_iostat fast, slow;
	vlun_iostat_init(&fast);
	vlun_iostat_init(&slow);
	for (int i = 0; i < 100; i++) {
		vlun_iostat_record_latency(&fast, 100000);
		vlun_iostat_record_latency(&slow, 100000);
	}
	for (int i = 0; i < 10; i++)
		vlun_iostat_record_latency(&slow, 2000000);
	assert_true(vlun_iostat_recent_ns(&slow) > 2 * vlun_iostat_recent_ns(&fast));
}

static void test_end_measures_time(void **state)
{
	(void)state;
	struct vlun_iostat s;
	vlun_iostat_init(&s);
	uint64_t t0 = vlun_iostat_begin(&s);
	struct timespec d = { .tv_nsec = 2000000 };
	nanosleep(&d, NULL);
	vlun_iostat_end(&s, VLUN_IOSTAT_READ, 4096, t0, 0);
	assert_true(vlun_iostat_recent_ns(&s) >= 2000000);
	/* a start time in the future (clock misuse) counts as 0, not 2^64 */
	vlun_iostat_init(&s);
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, VLUN_IOSTAT_READ, 1, vlun_iostat_now_ns() + 1000000000ull, 0);
	struct vlun_iostat_snap sn;
	vlun_iostat_snapshot(&s, &sn);
	assert_int_equal(sn.lat_sum_ns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_slow_member_loses),
		cmocka_unit_test(test_end_measures_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
