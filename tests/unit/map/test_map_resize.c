/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_map_resize: growing appends an INVALID extent (merged with an
 * INVALID tail) or the given tail extents; shrinking clips; the range past
 * the new end is out of range; bad tails are refused without change. */
#include "maptest.h"

static void test_grow_and_shrink(void **state)
{
	struct vlun_extent e[2] = { ext_mapped(0, 100, 0, 0), ext_invalid(100, 100) }, out[4], t;
	struct vlun_map *m = NULL;
	uint64_t g;

	assert_int_equal(vlun_map_new(e, 2, 200, &m), 0);
	g = vlun_map_generation(m);

	assert_int_equal(vlun_map_resize(m, 300, NULL, 0), 0);
	assert_int_equal(vlun_map_size(m), 300);
	assert_true(vlun_map_generation(m) > g);
	assert_int_equal(vlun_map_lookup(m, 0, 300, out, 4), 2);
	assert_int_equal(out[1].vsector, 100);
	assert_int_equal(out[1].nsectors, 200);  /* merged with the old INVALID tail */

	t = ext_mapped(300, 50, 1, 7);
	assert_int_equal(vlun_map_resize(m, 350, &t, 1), 0);
	assert_int_equal(vlun_map_lookup(m, 290, 60, out, 4), 2);
	assert_int_equal(out[1].member, 1);
	assert_int_equal(out[1].psector, 7);

	/* bad tail: wrong start or length; nothing changes */
	t = ext_mapped(351, 50, 1, 7);
	assert_int_equal(vlun_map_resize(m, 401, &t, 1), -EINVAL);
	t = ext_mapped(350, 40, 1, 7);
	assert_int_equal(vlun_map_resize(m, 400, &t, 1), -EINVAL);
	assert_int_equal(vlun_map_size(m), 350);

	/* shrink into the mapped first extent */
	assert_int_equal(vlun_map_resize(m, 60, NULL, 0), 0);
	assert_int_equal(vlun_map_size(m), 60);
	assert_int_equal(vlun_map_lookup(m, 0, 60, out, 4), 1);
	assert_int_equal(out[0].nsectors, 60);
	assert_int_equal(vlun_map_lookup(m, 59, 2, out, 4), -ERANGE);
	assert_int_equal(vlun_map_resize(m, 0, NULL, 0), -EINVAL);
	vlun_map_free(m);
}

static void test_shrink_many_pages(void **state)
{
	enum { N = 5000 };
	struct vlun_extent *e = malloc(N * sizeof(*e)), out[4], *x = NULL;
	struct vlun_map *m = NULL;
	uint32_t n = 0;

	assert_non_null(e);
	for (uint32_t i = 0; i < N; i++)
		e[i] = ext_mapped(i * 8ull, 8, i % 2, i * 16ull);
	assert_int_equal(vlun_map_new(e, N, N * 8ull, &m), 0);
	assert_true(vlun_map_page_count(m) > 10);
	assert_int_equal(vlun_map_resize(m, 8 * 100 + 3, NULL, 0), 0);
	assert_true(vlun_map_page_count(m) == 1);
	assert_int_equal(vlun_map_export(m, &x, &n), 0);
	assert_int_equal(n, 101);
	assert_cover(x, n, 803);
	assert_int_equal(x[100].nsectors, 3);
	assert_int_equal(x[100].psector, 1600);
	free(x);
	assert_int_equal(vlun_map_resize(m, N * 8ull, NULL, 0), 0);
	assert_int_equal(vlun_map_lookup(m, 800, 16, out, 4), 2);
	assert_true(out[1].flags & VLUN_EXT_INVALID);
	assert_int_equal(out[1].nsectors, 13);
	vlun_map_free(m);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_and_shrink),
		cmocka_unit_test(test_shrink_many_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
