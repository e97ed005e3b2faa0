/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Readers look extents up while a writer keeps replacing ranges (single
 * page in place, multi-page, page splits and merges). Every mapping the
 * writer ever installs satisfies psector == vsector + member * 2^32, so a
 * reader can check each extent it sees; it also checks that a lookup is a
 * gap-free cover of the range it asked for. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "maptest.h"

#define SIZE (1u << 18)  /* sectors */
#define UNIT 16u

static struct vlun_map *map;
static atomic_bool stop;
static atomic_ulong lookups, sets, bad;

static uint64_t ps_for(uint64_t v, uint32_t member)
{
	return v + ((uint64_t)member << 32);
}

static void *reader(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	struct vlun_extent out[16];

	while (!atomic_load(&stop)) {
		uint64_t len = 1 + (uint64_t)rand_r(&seed) % 4096;
		uint64_t v = (uint64_t)rand_r(&seed) % (SIZE - len + 1), pos = v;
		int n = vlun_map_lookup(map, v, len, out, 16);

		if (n == -ENOBUFS)
			n = 16;
		if (n <= 0) {
			atomic_fetch_add(&bad, 1);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (out[i].vsector != pos || out[i].nsectors == 0 || out[i].member >= 8 ||
			    out[i].psector != ps_for(out[i].vsector, out[i].member))
				atomic_fetch_add(&bad, 1);
			pos += out[i].nsectors;
		}
		if (n < 16 && pos != v + len)
			atomic_fetch_add(&bad, 1);
		atomic_fetch_add(&lookups, 1);
	}
	return NULL;
}

static void test_readers_see_consistent_maps(void **state)
{
	struct vlun_extent e[8];
	pthread_t th[4];
	unsigned int seed = 3;
	struct timespec t0, t;
	uint64_t maxpages = 0, minpages = UINT64_MAX;

	/* start fragmented: alternate members every unit */
	{
		struct vlun_extent *init = malloc((SIZE / UNIT) * sizeof(*init));

		assert_non_null(init);
		for (uint64_t i = 0; i < SIZE / UNIT; i++)
			init[i] = ext_mapped(i * UNIT, UNIT, (uint32_t)(i % 2), ps_for(i * UNIT, (uint32_t)(i % 2)));
		assert_int_equal(vlun_map_new(init, SIZE / UNIT, SIZE, &map), 0);
		free(init);
	}
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, (void *)(i + 1)), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		/* mostly small sets, sometimes large ones spanning many pages */
		uint64_t units = rand_r(&seed) % 20 == 0 ? 1 + (uint64_t)rand_r(&seed) % 4000
							 : 1 + (uint64_t)rand_r(&seed) % 4;
		uint64_t s = ((uint64_t)rand_r(&seed) % (SIZE / UNIT - units + 1)) * UNIT;
		uint64_t len = units * UNIT, pos = s;
		uint32_t n = 0;

		while (pos < s + len) {
			uint64_t l = n == 7 ? s + len - pos
					    : UNIT * (1 + (uint64_t)rand_r(&seed) % ((s + len - pos) / UNIT));
			uint32_t mem = (uint32_t)rand_r(&seed) % 8;

			e[n++] = ext_mapped(pos, l, mem, ps_for(pos, mem));
			pos += l;
		}
		assert_int_equal(vlun_map_set(map, s, len, e, n), 0);
		atomic_fetch_add(&sets, 1);
		if (vlun_map_page_count(map) > maxpages)
			maxpages = vlun_map_page_count(map);
		if (vlun_map_page_count(map) < minpages)
			minpages = vlun_map_page_count(map);
		clock_gettime(CLOCK_MONOTONIC, &t);
		/* 1.5 s, and under valgrind on a loaded machine (where 1.5 s
		 * may hold fewer) at least 101 map changes. */
	} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < 1.5 ||
		 atomic_load(&sets) <= 100);

	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	print_message("%lu sets, %lu lookups, pages %llu..%llu\n", atomic_load(&sets),
		      atomic_load(&lookups), (unsigned long long)minpages,
		      (unsigned long long)maxpages);
	assert_int_equal(atomic_load(&bad), 0);
	assert_true(atomic_load(&lookups) > 1000);
	assert_true(maxpages > minpages); /* pages were rebuilt, not only replaced */
	vlun_map_free(map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readers_see_consistent_maps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
