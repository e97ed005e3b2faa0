/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* encode then decode gives back exactly the description, for random pools
 * with many extents of every kind. */
#include "metatest.h"

static void random_round_trips(void **state)
{
	struct mt_pool p;

	mt_pool_create(&p, 3, 64ull << 20, MT_META_BYTES);
	for (int round = 0; round < 40; round++) {
		struct vlun_pool_desc *d = mt_desc_random(&p, (uint32_t)mt_rand_range(0, 6),
							  (uint32_t)mt_rand_range(1, 3000));
		struct vlun_pool_desc *back = NULL;
		uint8_t *buf = NULL;
		size_t len = 0;
		char why[256] = "";

		d->seq = mt_rand();
		assert_int_equal(vlun_meta_encode(d, &buf, &len), 0);
		assert_int_equal(vlun_meta_decode(buf, len, &back, why, sizeof(why)), 0);
		assert_true(mt_desc_equal(d, back, false));
		free(buf);
		vlun_pool_desc_free(back);
		vlun_pool_desc_free(d);
	}
	mt_pool_destroy(&p);
}

static void dup_is_deep_and_equal(void **state)
{
	struct mt_pool p;
	struct vlun_pool_desc *d, *c = NULL;

	mt_pool_create(&p, 2, 16ull << 20, MT_META_BYTES);
	d = mt_desc_random(&p, 3, 100);
	assert_int_equal(vlun_pool_desc_dup(d, &c), 0);
	assert_true(mt_desc_equal(d, c, false));
	assert_ptr_not_equal(d->vdisks[0].extents, c->vdisks[0].extents);
	c->vdisks[0].extents[0].flags ^= VLUN_EXT_NO_WRITE;
	assert_false(mt_desc_equal(d, c, false));
	vlun_pool_desc_free(c);
	vlun_pool_desc_free(d);
	vlun_pool_desc_free(NULL);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_round_trips),
		cmocka_unit_test(dup_is_deep_and_equal),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
