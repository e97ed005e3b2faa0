/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Outstanding and maximum outstanding under concurrent threads: with every
 * thread holding one I/O at the same moment the maximum is exactly the
 * number of threads, no count is lost, and all return to zero.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "stats.h"

#define NTHREADS 4
#define LOOPS 20000

static struct vlun_iostat st;
static pthread_barrier_t together;

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t t0 = vlun_iostat_begin(&st);
	pthread_barrier_wait(&together); /* all NTHREADS outstanding now */
	pthread_barrier_wait(&together);
	vlun_iostat_end(&st, id % VLUN_IOSTAT_NDIR, 4096, t0, 0);
	for (unsigned i = 0; i < LOOPS; i++) {
		t0 = vlun_iostat_begin(&st);
		if (i % 1000 == 0)
			vlun_iostat_fault(&st);
		vlun_iostat_end(&st, i % VLUN_IOSTAT_NDIR, 512, t0, i % 100 == 0 ? -5 : 0);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	pthread_t th[NTHREADS];

	vlun_iostat_init(&st);
	pthread_barrier_init(&together, NULL, NTHREADS + 1);
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i), 0);
	pthread_barrier_wait(&together);
	assert_int_equal(vlun_iostat_outstanding(&st), NTHREADS);
	pthread_barrier_wait(&together);
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&together);

	struct vlun_iostat_snap s;
	vlun_iostat_snapshot(&st, &s);
	assert_int_equal(s.outstanding, 0);
	assert_int_equal(vlun_iostat_outstanding(&st), 0);
	assert_int_equal(s.max_outstanding, NTHREADS); /* each thread holds at most one */
	uint64_t ops = s.ops[0] + s.ops[1] + s.ops[2];
	assert_int_equal(ops, NTHREADS * (LOOPS + 1));
	assert_int_equal(s.lat_count, ops);
	assert_int_equal(s.errors, NTHREADS * (LOOPS / 100));
	assert_int_equal(s.faults, NTHREADS * (LOOPS / 1000));
	uint64_t bytes = s.bytes[0] + s.bytes[1] + s.bytes[2];
	assert_int_equal(bytes, NTHREADS * 4096ull + NTHREADS * (uint64_t)(LOOPS - LOOPS / 100) * 512);
}

static void test_max_tracks_peak(void **state)
{
	(void)state;
	uint64_t t[10];
	vlun_iostat_init(&st);
	for (int i = 0; i < 10; i++)
		t[i] = vlun_iostat_begin(&st);
	for (int i = 0; i < 7; i++)
		vlun_iostat_end(&st, VLUN_IOSTAT_READ, 1, t[i], 0);
	assert_int_equal(vlun_iostat_outstanding(&st), 3);
	uint64_t t2 = vlun_iostat_begin(&st);
	struct vlun_iostat_snap s;
	vlun_iostat_snapshot(&st, &s);
	assert_int_equal(s.outstanding, 4);
	assert_int_equal(s.max_outstanding, 10);
	vlun_iostat_end(&st, VLUN_IOSTAT_READ, 1, t2, 0);
	for (int i = 7; i < 10; i++)
		vlun_iostat_end(&st, VLUN_IOSTAT_READ, 1, t[i], 0);
	assert_int_equal(vlun_iostat_outstanding(&st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_max_tracks_peak),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
