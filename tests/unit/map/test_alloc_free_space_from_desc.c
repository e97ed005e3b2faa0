/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The allocator derives free space from a description: data areas minus
 * every extent's primary and alternate ranges. Overlapping extents, ranges
 * outside a data area or unknown members make the description unclean. */
#include "maptest.h"

static void test_free_is_area_minus_extents(void **state)
{
	struct vlun_pool_desc *d = make_pool(2, 10000);
	struct vlun_extent e[3] = {
		ext_mapped(0, 1000, 0, 2048),
		ext_invalid(1000, 500),
		ext_mapped(1500, 500, 1, 5000),
	};
	struct vlun_alloc *a = NULL;
	struct vlun_alloc_run *runs = NULL;
	size_t nruns = 0;

	e[2].flags = VLUN_EXT_ALT_EXISTS;
	e[2].alt_member = 0;
	e[2].alt_psector = 9000;
	pool_add_vdisk(d, "v0", e, 3);
	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_alloc_total_sectors(a, 0), 10000);
	assert_int_equal(vlun_alloc_free_sectors(a, 0), 10000 - 1000 - 500);
	assert_int_equal(vlun_alloc_free_sectors(a, 1), 10000 - 500);
	assert_int_equal(vlun_alloc_free_sectors(a, VLUN_NO_MEMBER), 20000 - 2000);
	assert_int_equal(vlun_alloc_runs(a, 0, &runs, &nruns), 0);
	assert_int_equal(nruns, 2);
	assert_int_equal(runs[0].start, 3048);
	assert_int_equal(runs[0].len, 9000 - 3048);
	assert_int_equal(runs[1].start, 9500);
	assert_int_equal(runs[1].len, 12048 - 9500);
	free(runs);
	/* the used ranges cannot be taken */
	assert_int_equal(vlun_alloc_take(a, 1, 5100, 10), -EBUSY);
	assert_int_equal(vlun_alloc_take(a, 0, 9400, 10), -EBUSY);
	assert_int_equal(vlun_alloc_take(a, 0, 3048, 10), 0);
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_overlaps_are_unclean(void **state)
{
	struct vlun_pool_desc *d = make_pool(2, 10000);
	struct vlun_extent a1 = ext_mapped(0, 100, 1, 3000);
	struct vlun_extent b1 = ext_mapped(0, 100, 1, 3099); /* overlaps a1 by one sector */
	struct vlun_alloc *a = NULL;

	pool_add_vdisk(d, "a", &a1, 1);
	pool_add_vdisk(d, "b", &b1, 1);
	assert_int_equal(vlun_alloc_new(d, &a), -EUCLEAN);
	assert_null(a);
	/* adjacent is fine */
	d->vdisks[1].extents[0].psector = 3100;
	assert_int_equal(vlun_alloc_new(d, &a), 0);
	vlun_alloc_free_all(a);
	a = NULL;
	/* an alternate overlapping another disk's primary */
	d->vdisks[1].extents[0].flags = VLUN_EXT_ALT_EXISTS;
	d->vdisks[1].extents[0].alt_member = 1;
	d->vdisks[1].extents[0].alt_psector = 2950;
	assert_int_equal(vlun_alloc_new(d, &a), -EUCLEAN);
	free_pool(d);
}

static void test_outside_area_is_unclean(void **state)
{
	struct vlun_pool_desc *d = make_pool(1, 10000);
	struct vlun_extent e = ext_mapped(0, 100, 0, 100); /* in the metadata area */
	struct vlun_alloc *a = NULL;

	pool_add_vdisk(d, "a", &e, 1);
	assert_int_equal(vlun_alloc_new(d, &a), -EUCLEAN);
	d->vdisks[0].extents[0].psector = 12000; /* runs past the end */
	assert_int_equal(vlun_alloc_new(d, &a), -EUCLEAN);
	d->vdisks[0].extents[0].psector = 2048;
	d->vdisks[0].extents[0].member = 3;      /* no such member */
	assert_int_equal(vlun_alloc_new(d, &a), -EUCLEAN);
	assert_null(a);
	free_pool(d);
}

static void test_add_member(void **state)
{
	struct vlun_pool_desc *d = make_pool(1, 10000);
	struct vlun_member_desc md = { .index = 1, .data_start = 4096, .data_sectors = 500 };
	struct vlun_alloc *a = NULL;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_alloc_add_member(a, &md), 0);
	assert_int_equal(vlun_alloc_add_member(a, &md), -EEXIST);
	assert_int_equal(vlun_alloc_free_sectors(a, 1), 500);
	assert_int_equal(vlun_alloc_free_sectors(a, VLUN_NO_MEMBER), 10500);
	vlun_alloc_free_all(a);
	free_pool(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_is_area_minus_extents),
		cmocka_unit_test(test_overlaps_are_unclean),
		cmocka_unit_test(test_outside_area_is_unclean),
		cmocka_unit_test(test_add_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
