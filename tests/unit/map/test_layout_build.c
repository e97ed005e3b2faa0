/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Initial layouts: linear spans members (largest runs first), striped
 * places unit u on member u mod W at region + (u div W) * stripe, thin is
 * one INVALID extent; invalid parameters and lack of space fail with a
 * reason and take nothing from the allocator. */
#include "maptest.h"

static struct vlun_vdisk_desc vdisk(uint32_t layout, uint64_t size, uint64_t chunk, uint32_t width)
{
	struct vlun_vdisk_desc v = { .layout = layout, .size_sectors = size,
				     .chunk_sectors = chunk, .stripe_width = width };
	strcpy(v.name, "vd");
	return v;
}

static void test_linear_spans_members(void **state)
{
	struct vlun_pool_desc *d = make_pool(3, 40960);  /* 20 MiB each */
	struct vlun_alloc *a = NULL;
	struct vlun_vdisk_desc v = vdisk(VLUN_LAYOUT_LINEAR, 40960 + 20480, 0, 0);
	char why[256];
	uint64_t before;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_alloc_take(a, 1, 2048, 2048), 0); /* member 1 smaller */
	before = vlun_alloc_free_sectors(a, NOM);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 2);
	assert_cover(v.extents, v.nextents, 61440);
	/* the largest runs (members 0 and 2, whole) first */
	assert_int_equal(v.extents[0].member, 0);
	assert_int_equal(v.extents[0].psector, 2048);
	assert_int_equal(v.extents[0].nsectors, 40960);
	assert_int_equal(v.extents[1].member, 2);
	assert_int_equal(v.extents[1].nsectors, 20480);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before - 61440);
	assert_int_equal(v.chunk_sectors, 0);
	free(v.extents);

	/* restricted to one member */
	{
		uint32_t only = 1;
		struct vlun_vdisk_desc w = vdisk(VLUN_LAYOUT_LINEAR, 4096, 0, 0);

		assert_int_equal(vlun_layout_build(a, d, &w, &only, 1, why, sizeof(why)), 0);
		assert_int_equal(w.nextents, 1);
		assert_int_equal(w.extents[0].member, 1);
		assert_int_equal(w.extents[0].psector % 2048, 0);
		free(w.extents);
	}
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_striped_placement(void **state)
{
	struct vlun_pool_desc *d = make_pool(4, 40960);
	struct vlun_alloc *a = NULL;
	/* 10 units of 128 sectors (64 KiB) over 3 members: rows 4,3,3 */
	struct vlun_vdisk_desc v = vdisk(VLUN_LAYOUT_STRIPED, 10 * 128, 0, 3);
	char why[256];
	uint64_t base[8];
	uint32_t mem[8];

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(v.chunk_sectors, 128);
	assert_int_equal(v.stripe_width, 3);
	assert_int_equal(v.nextents, 10);
	assert_cover(v.extents, v.nextents, 1280);
	for (uint32_t c = 0; c < 3; c++) {
		mem[c] = v.extents[c].member;
		base[c] = v.extents[c].psector;
		assert_int_equal(base[c] % 128, 0);
		for (uint32_t k = 0; k < c; k++)
			assert_int_not_equal(mem[c], mem[k]);
	}
	for (uint32_t u = 0; u < 10; u++) {
		assert_int_equal(v.extents[u].nsectors, 128);
		assert_int_equal(v.extents[u].member, mem[u % 3]);
		assert_int_equal(v.extents[u].psector, base[u % 3] + (u / 3) * 128);
	}
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), 4 * 40960 - 1280);
	free(v.extents);

	/* default width: all healthy members */
	d->members[3].state = VLUN_MEMBER_FAILED;
	v = vdisk(VLUN_LAYOUT_STRIPED, 6 * 256, 256, 0);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(v.stripe_width, 3);
	for (uint32_t u = 0; u < v.nextents; u++)
		assert_int_not_equal(v.extents[u].member, 3);
	free(v.extents);
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_thin(void **state)
{
	struct vlun_pool_desc *d = make_pool(1, 4096);
	struct vlun_alloc *a = NULL;
	struct vlun_vdisk_desc v = vdisk(VLUN_LAYOUT_THIN, 1ull << 34, 0, 0); /* 8 TiB on 2 MiB */
	char why[256];

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(v.nextents, 1);
	assert_true(v.extents[0].flags & VLUN_EXT_INVALID);
	assert_int_equal(v.extents[0].member, NOM);
	assert_int_equal(v.extents[0].nsectors, 1ull << 34);
	assert_int_equal(v.chunk_sectors, 2048);
	assert_int_equal(vlun_alloc_free_sectors(a, 0), 4096);
	free(v.extents);

	v = vdisk(VLUN_LAYOUT_THIN, 1000, 3000, 0);  /* not a power of two */
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "power of two"));
	v = vdisk(VLUN_LAYOUT_THIN, 1000, 4, 0);     /* 2 KiB < 4 KiB */
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -EINVAL);
	assert_null(v.extents);
	v = vdisk(VLUN_LAYOUT_THIN, 1ull << 40, 8, 0); /* 2^37 chunks > limit */
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -E2BIG);
	assert_non_null(strstr(why, "larger chunk"));
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_failure_takes_nothing(void **state)
{
	struct vlun_pool_desc *d = make_pool(3, 4096 * 1024); /* 2 GiB each */
	struct vlun_alloc *a = NULL;
	struct vlun_vdisk_desc v;
	char why[256];
	uint64_t before;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	/* member 2 fragmented: striped over 3 cannot find a 1 GiB+ run there */
	assert_int_equal(vlun_alloc_take(a, 2, 2048 + 700 * 2048, 2048), 0);
	assert_int_equal(vlun_alloc_take(a, 2, 2048 + 1400 * 2048, 2048), 0);
	before = vlun_alloc_free_sectors(a, NOM);

	v = vdisk(VLUN_LAYOUT_LINEAR, 10ull << 21, 0, 0); /* 10 GiB */
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -ENOSPC);
	print_message("linear: %s\n", why);
	assert_non_null(strstr(why, "not enough free space: need 10 GiB, 5.9 GiB free"));
	assert_null(v.extents);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before);

	v = vdisk(VLUN_LAYOUT_STRIPED, 3ull << 21, 128, 3);  /* 1 GiB per member */
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -ENOSPC);
	print_message("striped: %s\n", why);
	assert_non_null(strstr(why, "only 2 members"));
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before);

	v = vdisk(VLUN_LAYOUT_STRIPED, 1000, 128, 2);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a multiple of the stripe size"));
	v = vdisk(VLUN_LAYOUT_STRIPED, 1024, 128, 4);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "stripe width 4"));
	v = vdisk(VLUN_LAYOUT_STRIPED, 128ull << 24 << 1, 128, 2); /* 2^25 units */
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -E2BIG);
	assert_non_null(strstr(why, "larger stripe size"));
	{
		uint32_t bad = 7;

		v = vdisk(VLUN_LAYOUT_LINEAR, 100, 0, 0);
		assert_int_equal(vlun_layout_build(a, d, &v, &bad, 1, why, sizeof(why)), -ENOENT);
		d->members[1].state = VLUN_MEMBER_MISSING;
		bad = 1;
		assert_int_equal(vlun_layout_build(a, d, &v, &bad, 1, why, sizeof(why)), -ENODEV);
		assert_non_null(strstr(why, "missing"));
	}
	v = vdisk(VLUN_LAYOUT_LINEAR, 0, 0, 0);
	assert_int_equal(vlun_layout_build(a, d, &v, NULL, 0, why, sizeof(why)), -EINVAL);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), before);
	vlun_alloc_free_all(a);
	free_pool(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_spans_members),
		cmocka_unit_test(test_striped_placement),
		cmocka_unit_test(test_thin),
		cmocka_unit_test(test_failure_takes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
