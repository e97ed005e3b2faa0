/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checkpoints alternate between slot A and B on every member, seq grows by
 * one per commit, and load returns the last commit. */
#include "metatest.h"

static void alternates(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL, *st2 = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	char why[512];

	mt_pool_create(&p, 3, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 2, 20);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	/* before the first commit there is nothing to load */
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), -EUCLEAN);

	for (uint64_t k = 1; k <= 5; k++) {
		d->generation++;
		assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
		assert_int_equal(d->seq, k);
		for (size_t i = 0; i < p.n; i++) {
			assert_int_equal(mt_slot_seq(&p, i, (k - 1) % 2), k);      /* new copy */
			assert_int_equal(mt_slot_seq(&p, i, k % 2), k - 1);        /* previous one kept */
		}
		assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
		assert_true(mt_desc_equal(d, got, false));
		for (size_t i = 0; i < p.n; i++) {
			assert_string_equal(p.m[i].problem, "");
			assert_int_equal(p.m[i].newest_seq, k);
		}
		vlun_pool_desc_free(got);
	}
	/* a state from load continues the sequence into the right slot */
	assert_int_equal(mt_load(&p, &got, &st2, why, sizeof(why)), 0);
	assert_int_equal(vlun_meta_commit(st2, p.m, p.n, got), 0);
	assert_int_equal(got->seq, 6);
	assert_int_equal(mt_slot_seq(&p, 0, 1), 6);
	assert_int_equal(mt_slot_seq(&p, 0, 0), 5);
	vlun_pool_desc_free(got);
	vlun_meta_free(st2);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void refuses_invalid_description(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d;

	mt_pool_create(&p, 1, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 1, 4);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	d->vdisks[0].extents[0].nsectors++; /* no longer contiguous */
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), -EINVAL);
	assert_int_equal(mt_slot_seq(&p, 0, 0), 0);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alternates),
		cmocka_unit_test(refuses_invalid_description),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
