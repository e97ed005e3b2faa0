/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Resizing: thin grows by an INVALID tail; linear grows in place when the
 * space after its last extent is free, elsewhere otherwise; striped grows
 * on its own members keeping the placement rule; shrinking frees the tail
 * as pending (reusable after commit); a failed grow takes nothing. */
#include "maptest.h"

static void check_striped(const struct vlun_vdisk_desc *v)
{
	/* unit u on column u mod W; within a column consecutive units of one
	 * region are one stripe apart */
	uint64_t stripe = v->chunk_sectors;

	assert_cover(v->extents, v->nextents, v->size_sectors);
	for (uint32_t u = 0; u < v->nextents; u++) {
		assert_int_equal(v->extents[u].nsectors, stripe);
		assert_int_equal(v->extents[u].member, v->extents[u % v->stripe_width].member);
	}
}

static void test_thin_and_linear(void **state)
{
	struct vlun_pool_desc *d = make_pool(2, 40960);
	struct vlun_alloc *a = NULL;
	struct vlun_vdisk_desc v = { .layout = VLUN_LAYOUT_THIN, .size_sectors = 1000 };
	char why[256];
	uint64_t before;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(vlun_layout_resize(a, d, &v, 5000, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 1);
	assert_int_equal(v.extents[0].nsectors, 5000);
	assert_int_equal(v.size_sectors, 5000);
	assert_int_equal(vlun_layout_resize(a, d, &v, 100, why, sizeof(why)), 0);
	assert_int_equal(v.extents[0].nsectors, 100);
	free(v.extents);

	v = (struct vlun_vdisk_desc){ .layout = VLUN_LAYOUT_LINEAR, .size_sectors = 4096 };
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 1);
	before = vlun_alloc_free_sectors(a, NOM);
	assert_int_equal(vlun_layout_resize(a, d, &v, 8192 + 7, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 1); /* grown in place */
	assert_int_equal(v.extents[0].nsectors, 8199);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before - 4103);

	/* block the space after it: the next grow goes elsewhere */
	assert_int_equal(vlun_alloc_take(a, v.extents[0].member, v.extents[0].psector + 8199, 1), 0);
	assert_int_equal(vlun_layout_resize(a, d, &v, 8199 + 4096, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 2);
	assert_cover(v.extents, v.nextents, 8199 + 4096);
	assert_int_equal(v.extents[1].psector % 2048, 0);

	/* a grow that cannot fit takes nothing and keeps the disk */
	before = vlun_alloc_free_sectors(a, NOM);
	assert_int_equal(vlun_layout_resize(a, d, &v, 200000, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "not enough free space"));
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before);
	assert_int_equal(v.size_sectors, 8199 + 4096);
	assert_int_equal(v.nextents, 2);

	/* shrink into the first extent: the tail is pending until commit */
	assert_int_equal(vlun_layout_resize(a, d, &v, 1000, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 1);
	assert_int_equal(v.extents[0].nsectors, 1000);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before);
	assert_int_equal(vlun_alloc_pending_sectors(a, NOM), 8199 + 4096 - 1000);
	vlun_alloc_commit_done(a);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before + 8199 + 4096 - 1000);

	vlun_layout_release(a, &v);
	vlun_alloc_commit_done(a);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), 2 * 40960 - 1);
	free(v.extents);
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_striped(void **state)
{
	struct vlun_pool_desc *d = make_pool(3, 40960);
	struct vlun_alloc *a = NULL;
	struct vlun_vdisk_desc v = { .layout = VLUN_LAYOUT_STRIPED, .size_sectors = 7 * 128,
				     .chunk_sectors = 128, .stripe_width = 3 };
	char why[256];
	uint64_t before;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	check_striped(&v);
	before = vlun_alloc_free_sectors(a, NOM);
	assert_int_equal(vlun_layout_resize(a, d, &v, 12 * 128, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 12);
	check_striped(&v);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before - 5 * 128);
	/* physical ranges never overlap: a fresh allocator accepts them */
	{
		struct vlun_pool_desc *d2 = make_pool(3, 40960);
		struct vlun_alloc *a2 = NULL;

		pool_add_vdisk(d2, "s", v.extents, v.nextents);
		assert_int_equal(vlun_alloc_new(d2, &a2), 0);
		assert_int_equal(vlun_alloc_free_sectors(a2, NOM), 3 * 40960 - 12 * 128);
		vlun_alloc_free_all(a2);
		free_pool(d2);
	}
	assert_int_equal(vlun_layout_resize(a, d, &v, 12 * 128 + 5, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "multiple of the stripe size"));
	assert_int_equal(vlun_layout_resize(a, d, &v, 4 * 128, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 4);
	assert_int_equal(vlun_alloc_pending_sectors(a, NOM), 8 * 128);
	free(v.extents);
	vlun_alloc_free_all(a);
	free_pool(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thin_and_linear),
		cmocka_unit_test(test_striped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
