/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Allocation: alignment, exhaustion (-ENOSPC), member hint, allowed list,
 * unhealthy members skipped; frees are pending (not reusable) until
 * vlun_alloc_commit_done(); double frees and conflicting takes refused. */
#include "maptest.h"

static void test_pending_until_commit(void **state)
{
	struct vlun_pool_desc *d = make_pool(1, 4096);
	struct vlun_alloc *a = NULL;
	uint32_t mem;
	uint64_t ps, ps2;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_alloc_get(a, 4096, 1, NOM, NULL, 0, &mem, &ps), 0);
	assert_int_equal(mem, 0);
	assert_int_equal(ps, 2048);
	assert_int_equal(vlun_alloc_free_sectors(a, 0), 0);
	assert_int_equal(vlun_alloc_get(a, 1, 1, NOM, NULL, 0, &mem, &ps2), -ENOSPC);

	assert_int_equal(vlun_alloc_free(a, 0, 2048 + 100, 100), 0);
	assert_int_equal(vlun_alloc_pending_sectors(a, 0), 100);
	/* pending: not allocatable, not takeable, not freeable again */
	assert_int_equal(vlun_alloc_get(a, 1, 1, NOM, NULL, 0, &mem, &ps2), -ENOSPC);
	assert_int_equal(vlun_alloc_take(a, 0, 2148, 10), -EBUSY);
	assert_int_equal(vlun_alloc_free(a, 0, 2148 + 50, 100), -EINVAL);

	vlun_alloc_commit_done(a);
	assert_int_equal(vlun_alloc_pending_sectors(a, 0), 0);
	assert_int_equal(vlun_alloc_free_sectors(a, 0), 100);
	assert_int_equal(vlun_alloc_free(a, 0, 2148, 1), -EINVAL); /* already free */
	assert_int_equal(vlun_alloc_get(a, 100, 1, NOM, NULL, 0, &mem, &ps2), 0);
	assert_int_equal(ps2, 2148);

	/* frees of neighbours coalesce once committed */
	assert_int_equal(vlun_alloc_free(a, 0, 2048, 100), 0);
	assert_int_equal(vlun_alloc_free(a, 0, 2248, 100), 0);
	assert_int_equal(vlun_alloc_free(a, 0, 2148, 100), 0);
	vlun_alloc_commit_done(a);
	assert_int_equal(vlun_alloc_get(a, 300, 1, NOM, NULL, 0, &mem, &ps2), 0);
	assert_int_equal(ps2, 2048);
	/* out of the data area */
	assert_int_equal(vlun_alloc_free(a, 0, 100, 10), -ERANGE);
	assert_int_equal(vlun_alloc_free(a, 5, 2048, 10), -ENOENT);
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_alignment(void **state)
{
	struct vlun_pool_desc *d = make_pool(1, 100000);
	struct vlun_alloc *a = NULL;
	uint32_t mem;
	uint64_t ps;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_alloc_take(a, 0, 2048, 3), 0);
	assert_int_equal(vlun_alloc_get(a, 8, 8, NOM, NULL, 0, &mem, &ps), 0);
	assert_int_equal(ps, 2056);
	assert_int_equal(vlun_alloc_get(a, 2048, 2048, NOM, NULL, 0, &mem, &ps), 0);
	assert_int_equal(ps, 4096);
	/* the gaps left by alignment stay free */
	assert_int_equal(vlun_alloc_free_sectors(a, 0), 100000 - 3 - 8 - 2048);
	assert_int_equal(vlun_alloc_get(a, 5, 1, NOM, NULL, 0, &mem, &ps), 0);
	assert_int_equal(ps, 2051);
	/* an aligned run that only fits unaligned: no */
	assert_int_equal(vlun_alloc_get(a, 100000, 1, NOM, NULL, 0, &mem, &ps), -ENOSPC);
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_member_choice(void **state)
{
	struct vlun_pool_desc *d = make_pool(3, 10000);
	struct vlun_alloc *a = NULL;
	uint32_t mem, allowed[2] = { 0, 2 };
	uint64_t ps;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	assert_int_equal(vlun_alloc_take(a, 0, 2048, 5000), 0);
	/* most free space first (1 and 2 tie: round robin) */
	assert_int_equal(vlun_alloc_get(a, 100, 1, NOM, NULL, 0, &mem, &ps), 0);
	assert_true(mem == 1 || mem == 2);
	{
		uint32_t first = mem;

		assert_int_equal(vlun_alloc_get(a, 100, 1, NOM, NULL, 0, &mem, &ps), 0);
		assert_int_equal(mem, first == 1 ? 2 : 1);
	}
	/* the hint wins while it has room */
	assert_int_equal(vlun_alloc_get(a, 100, 1, 0, NULL, 0, &mem, &ps), 0);
	assert_int_equal(mem, 0);
	/* and falls back when it does not */
	assert_int_equal(vlun_alloc_get(a, 6000, 1, 0, NULL, 0, &mem, &ps), 0);
	assert_int_not_equal(mem, 0);
	/* allowed list */
	assert_int_equal(vlun_alloc_get(a, 100, 1, NOM, allowed, 2, &mem, &ps), 0);
	assert_true(mem == 0 || mem == 2);
	/* failed members are skipped, even when allowed or hinted */
	assert_int_equal(vlun_alloc_set_member_state(a, 2, VLUN_MEMBER_FAILED), 0);
	assert_int_equal(vlun_alloc_set_member_state(a, 9, VLUN_MEMBER_FAILED), -ENOENT);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(vlun_alloc_get(a, 10, 1, 2, allowed, 2, &mem, &ps), 0);
		assert_int_equal(mem, 0);
	}
	allowed[0] = 2;
	assert_int_equal(vlun_alloc_get(a, 10, 1, NOM, allowed, 1, &mem, &ps), -ENOSPC);
	vlun_alloc_free_all(a);
	free_pool(d);
}

static void test_exhaustion_and_put_back(void **state)
{
	struct vlun_pool_desc *d = make_pool(2, 1000);
	struct vlun_alloc *a = NULL;
	uint32_t mem;
	uint64_t ps;
	int n = 0;

	assert_int_equal(vlun_alloc_new(d, &a), 0);
	while (vlun_alloc_get(a, 100, 1, NOM, NULL, 0, &mem, &ps) == 0)
		n++;
	assert_int_equal(n, 20);
	assert_int_equal(vlun_alloc_free_sectors(a, NOM), 0);
	assert_int_equal(vlun_alloc_put_back(a, 1, 2048, 100), 0); /* immediate */
	assert_int_equal(vlun_alloc_get(a, 100, 1, NOM, NULL, 0, &mem, &ps), 0);
	assert_int_equal(mem, 1);
	assert_int_equal(ps, 2048);
	vlun_alloc_free_all(a);
	free_pool(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_until_commit),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_member_choice),
		cmocka_unit_test(test_exhaustion_and_put_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
