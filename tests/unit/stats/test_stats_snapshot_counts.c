/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A snapshot reports what was counted: ops per direction (errors included),
 * bytes of successful I/Os only, errors, faults, an unknown direction as
 * "other", latency count and sum; a fresh object reports zeros and the
 * time counting began.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

static void test_fresh(void **state)
{
	(void)state;
	struct vlun_iostat s;
	struct vlun_iostat_snap sn, zero;
	memset(&s, 0xa5, sizeof(s));
	uint64_t before = vlun_iostat_now_ns();
	vlun_iostat_init(&s);
	vlun_iostat_snapshot(&s, &sn);
	assert_true(sn.init_ns >= before && sn.init_ns <= vlun_iostat_now_ns());
	memset(&zero, 0, sizeof(zero));
	zero.init_ns = sn.init_ns;
	assert_memory_equal(&sn, &zero, sizeof(sn));
}

static void test_counts(void **state)
{
	(void)state;
	struct vlun_iostat s;
	struct vlun_iostat_snap sn;
	vlun_iostat_init(&s);

	uint64_t now = vlun_iostat_now_ns();
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, VLUN_IOSTAT_READ, 4096, now, 0);
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, VLUN_IOSTAT_READ, 8192, now, 0);
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, VLUN_IOSTAT_WRITE, 65536, now, 0);
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, VLUN_IOSTAT_WRITE, 65536, now, -5); /* failed: no bytes */
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, VLUN_IOSTAT_OTHER, 0, now, 0);
	vlun_iostat_begin(&s);
	vlun_iostat_end(&s, 17, 1 << 20, now, 0); /* unknown direction: other */
	vlun_iostat_fault(&s);
	vlun_iostat_fault(&s);
	uint64_t t = vlun_iostat_begin(&s); /* still outstanding */
	(void)t;

	vlun_iostat_snapshot(&s, &sn);
	assert_int_equal(sn.ops[VLUN_IOSTAT_READ], 2);
	assert_int_equal(sn.ops[VLUN_IOSTAT_WRITE], 2);
	assert_int_equal(sn.ops[VLUN_IOSTAT_OTHER], 2);
	assert_int_equal(sn.bytes[VLUN_IOSTAT_READ], 12288);
	assert_int_equal(sn.bytes[VLUN_IOSTAT_WRITE], 65536);
	assert_int_equal(sn.bytes[VLUN_IOSTAT_OTHER], 1 << 20);
	assert_int_equal(sn.errors, 1);
	assert_int_equal(sn.faults, 2);
	assert_int_equal(sn.outstanding, 1);
	assert_int_equal(sn.max_outstanding, 1);
	assert_int_equal(sn.lat_count, 6);
	assert_true(sn.lat_sum_ns > 0);
	assert_true(sn.p50_ns <= sn.p90_ns && sn.p90_ns <= sn.p99_ns && sn.p99_ns <= sn.p999_ns);
	assert_true(sn.p999_ns <= sn.max_ns);
	assert_true(sn.recent_ns > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
