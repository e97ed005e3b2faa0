/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A 1 TiB thin disk with 1 MiB chunks has 2^20 extents. Setting one chunk
 * must cost O(page), not O(extents): 20000 single-chunk sets finish in a
 * bounded time (copying the whole map each time would take minutes), and
 * every lookup still agrees with the model afterwards. */
#include <time.h>

#include "maptest.h"

#define CHUNK 2048ull          /* 1 MiB in sectors */
#define NCHUNKS (1ull << 20)   /* 1 TiB */

static uint8_t *owner; /* per chunk: member (0/1 initially, 2/3 after sets) */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* chunk i on member owner[i] at psector 2*i*CHUNK (+ 1<<40 when reset) */
static uint64_t ps_of(uint64_t i)
{
	return 2 * i * CHUNK + (owner[i] >= 2 ? (1ull << 40) : 0); /* gaps: never merge */
}

static void check_lookups(struct vlun_map *m, int count)
{
	struct vlun_extent out[8];

	for (int k = 0; k < count; k++) {
		uint64_t c = (uint64_t)random() % (NCHUNKS - 4);
		uint64_t off = (uint64_t)random() % CHUNK;
		int n = vlun_map_lookup(m, c * CHUNK + off, 3 * CHUNK, out, 8);

		assert_true(n >= 3 && n <= 4);
		for (int j = 0; j < n; j++) {
			uint64_t ch = out[j].vsector / CHUNK;

			assert_int_equal(out[j].member, owner[ch]);
			assert_int_equal(out[j].psector, ps_of(ch) + out[j].vsector % CHUNK);
		}
	}
}

/* The time bounds hold for plain builds; under valgrind or TSan (10-50x
 * slower) only the results are checked. */
static bool timing_holds(void)
{
#if defined(__SANITIZE_THREAD__)
	return false;
#else
	const char *v = getenv("VLUN_UNDER_VALGRIND");

	return !(v && strcmp(v, "1") == 0);
#endif
}

static void test_million_extents(void **state)
{
	struct vlun_extent *e = malloc(NCHUNKS * sizeof(*e)), s;
	struct vlun_map *m = NULL;
	uint64_t pages;
	double t0, dt;

	owner = malloc(NCHUNKS);
	assert_non_null(e);
	assert_non_null(owner);
	for (uint64_t i = 0; i < NCHUNKS; i++) {
		owner[i] = (uint8_t)(i % 2);
		e[i] = ext_mapped(i * CHUNK, CHUNK, owner[i], ps_of(i));
	}
	assert_int_equal(vlun_map_new(e, NCHUNKS, NCHUNKS * CHUNK, &m), 0);
	free(e);
	pages = vlun_map_page_count(m);
	assert_true(pages > NCHUNKS / 256);
	srandom(11);
	check_lookups(m, 2000);

	t0 = now();
	for (int k = 0; k < 20000; k++) {
		uint64_t c = (uint64_t)random() % NCHUNKS;

		owner[c] = (uint8_t)(2 + k % 2);
		s = ext_mapped(c * CHUNK, CHUNK, owner[c], ps_of(c));
		assert_int_equal(vlun_map_set(m, c * CHUNK, CHUNK, &s, 1), 0);
	}
	dt = now() - t0;
	print_message("20000 single-chunk sets on 2^20 extents: %.3f s (%.1f us each)\n", dt,
		      dt / 20000 * 1e6);
	if (timing_holds())
		assert_true(dt < 15.0);
	/* replacing one chunk by one chunk never changes the page count */
	assert_int_equal(vlun_map_page_count(m), pages);
	check_lookups(m, 20000);

	{
		struct vlun_extent *x = NULL;
		uint32_t n = 0;

		assert_int_equal(vlun_map_export(m, &x, &n), 0);
		assert_int_equal(n, NCHUNKS);
		for (uint64_t i = 0; i < NCHUNKS; i++) {
			assert_int_equal(x[i].member, owner[i]);
			assert_int_equal(x[i].psector, ps_of(i));
		}
		free(x);
	}
	vlun_map_free(m);
	free(owner);
}

/* Thin allocation order: one INVALID extent, chunks allocated at random
 * positions; pages split as they fill. */
static void test_thin_fill(void **state)
{
	struct vlun_extent e = ext_invalid(0, NCHUNKS * CHUNK), s, out[4];
	struct vlun_map *m = NULL;
	uint64_t *at = calloc(NCHUNKS, sizeof(*at)); /* psector+1, 0 = invalid */
	double t0, dt;

	assert_non_null(at);
	assert_int_equal(vlun_map_new(&e, 1, NCHUNKS * CHUNK, &m), 0);
	srandom(5);
	t0 = now();
	for (uint64_t k = 0; k < 100000; k++) {
		uint64_t c = (uint64_t)random() % NCHUNKS;

		if (at[c])
			continue;
		at[c] = k * CHUNK + 1 + 4096;
		s = ext_mapped(c * CHUNK, CHUNK, 0, at[c] - 1);
		assert_int_equal(vlun_map_set(m, c * CHUNK, CHUNK, &s, 1), 0);
	}
	dt = now() - t0;
	print_message("100000 thin allocations: %.3f s, %llu pages\n", dt,
		      (unsigned long long)vlun_map_page_count(m));
	if (timing_holds())
		assert_true(dt < 30.0);
	assert_true(vlun_map_page_count(m) > 100000 * 2 / 256);
	for (int k = 0; k < 50000; k++) {
		uint64_t c = (uint64_t)random() % NCHUNKS;
		int n = vlun_map_lookup(m, c * CHUNK, CHUNK, out, 4);

		assert_int_equal(n, 1);
		if (at[c]) {
			assert_int_equal(out[0].member, 0);
			assert_int_equal(out[0].psector, at[c] - 1);
		} else {
			assert_true(out[0].flags & VLUN_EXT_INVALID);
		}
	}
	vlun_map_free(m);
	free(at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_million_extents),
		cmocka_unit_test(test_thin_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
