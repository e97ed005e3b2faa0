/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_map_lookup returns the extents covering a range, clipped to it,
 * with physical addresses shifted by the clip; -ERANGE past the end;
 * -ENOBUFS (first max written) when out is too small. */
#include "maptest.h"

static struct vlun_map *three(void)
{
	/* [0,100) m0@1000, [100,150) invalid, [150,300) m1@5000 alt m2@7000 */
	struct vlun_extent e[3] = {
		ext_mapped(0, 100, 0, 1000),
		ext_invalid(100, 50),
		ext_mapped(150, 150, 1, 5000),
	};
	struct vlun_map *m = NULL;

	e[2].flags = VLUN_EXT_ALT_EXISTS;
	e[2].alt_member = 2;
	e[2].alt_psector = 7000;
	assert_int_equal(vlun_map_new(e, 3, 300, &m), 0);
	return m;
}

static void test_inside_one_extent(void **state)
{
	struct vlun_map *m = three();
	struct vlun_extent out[4];

	assert_int_equal(vlun_map_lookup(m, 10, 20, out, 4), 1);
	assert_int_equal(out[0].vsector, 10);
	assert_int_equal(out[0].nsectors, 20);
	assert_int_equal(out[0].psector, 1010);
	assert_int_equal(out[0].member, 0);

	/* exactly one whole extent */
	assert_int_equal(vlun_map_lookup(m, 150, 150, out, 4), 1);
	assert_int_equal(out[0].psector, 5000);
	assert_int_equal(out[0].alt_psector, 7000);

	/* alternate shifted with the primary */
	assert_int_equal(vlun_map_lookup(m, 299, 1, out, 4), 1);
	assert_int_equal(out[0].psector, 5149);
	assert_int_equal(out[0].alt_psector, 7149);
	assert_int_equal(out[0].alt_member, 2);
	vlun_map_free(m);
}

static void test_across_boundaries(void **state)
{
	struct vlun_map *m = three();
	struct vlun_extent out[4];

	/* last sector of extent 0 to first sector of extent 2 */
	assert_int_equal(vlun_map_lookup(m, 99, 52, out, 4), 3);
	assert_int_equal(out[0].vsector, 99);
	assert_int_equal(out[0].nsectors, 1);
	assert_int_equal(out[0].psector, 1099);
	assert_int_equal(out[1].vsector, 100);
	assert_int_equal(out[1].nsectors, 50);
	assert_true(out[1].flags & VLUN_EXT_INVALID);
	assert_int_equal(out[1].member, NOM);
	assert_int_equal(out[2].vsector, 150);
	assert_int_equal(out[2].nsectors, 1);
	assert_int_equal(out[2].psector, 5000);

	/* starting exactly on a boundary */
	assert_int_equal(vlun_map_lookup(m, 100, 200, out, 4), 2);
	assert_int_equal(out[0].vsector, 100);
	assert_int_equal(out[1].nsectors, 150);
	vlun_map_free(m);
}

static void test_range_and_buffer_errors(void **state)
{
	struct vlun_map *m = three();
	struct vlun_extent out[4];

	assert_int_equal(vlun_map_lookup(m, 300, 1, out, 4), -ERANGE);
	assert_int_equal(vlun_map_lookup(m, 299, 2, out, 4), -ERANGE);
	assert_int_equal(vlun_map_lookup(m, UINT64_MAX, 2, out, 4), -ERANGE);
	assert_int_equal(vlun_map_lookup(m, 0, 0, out, 4), -EINVAL);
	assert_int_equal(vlun_map_lookup(m, 299, 1, out, 4), 1);

	memset(out, 0, sizeof(out));
	assert_int_equal(vlun_map_lookup(m, 0, 300, out, 2), -ENOBUFS);
	assert_int_equal(out[0].nsectors, 100);
	assert_int_equal(out[1].vsector, 100);
	assert_int_equal(out[1].nsectors, 50);
	assert_int_equal(vlun_map_size(m), 300);
	vlun_map_free(m);
}

static void test_new_rejects_bad_extents(void **state)
{
	struct vlun_extent gap[2] = { ext_mapped(0, 10, 0, 0), ext_mapped(11, 9, 0, 100) };
	struct vlun_extent shortcover[1] = { ext_mapped(0, 10, 0, 0) };
	struct vlun_extent badflag[1] = { ext_mapped(0, 20, 0, 0) };
	struct vlun_map *m = NULL;

	badflag[0].flags = 0x100;
	assert_int_equal(vlun_map_new(gap, 2, 20, &m), -EINVAL);
	assert_int_equal(vlun_map_new(shortcover, 1, 20, &m), -EINVAL);
	assert_int_equal(vlun_map_new(badflag, 1, 20, &m), -EINVAL);
	assert_null(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside_one_extent),
		cmocka_unit_test(test_across_boundaries),
		cmocka_unit_test(test_range_and_buffer_errors),
		cmocka_unit_test(test_new_rejects_bad_extents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
