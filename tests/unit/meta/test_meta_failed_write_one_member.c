/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When writing one member fails, the commit still succeeds on the others,
 * the new state loads from them, the failing member is named; when every
 * member fails the commit reports -EIO and the old state stays. */
#include "metatest.h"

static void one_member_fails(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	struct vlun_memdisk_faults f = { .fail_write_n = 1 };
	char why[512];

	mt_pool_create(&p, 3, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 2, 40);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	vlun_memdisk_set_faults(p.m[1].dev, &f);
	d->generation++;
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	assert_int_equal(d->seq, 2);
	assert_non_null(strstr(p.m[1].problem, "write failed"));
	assert_int_equal(mt_slot_seq(&p, 0, 1), 2);
	assert_int_equal(mt_slot_seq(&p, 1, 1), 0);
	assert_int_equal(mt_slot_seq(&p, 2, 1), 2);

	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	assert_non_null(strstr(p.m[1].problem, "stale"));
	vlun_pool_desc_free(got);

	/* a journal commit after a failure is promoted to a checkpoint, which
	 * brings member 1 back in line (its slot B again, never slot A) */
	{
		struct vlun_extent x;
		struct vlun_meta_delta dl = mt_delta_one(&d->vdisks[0], 0, 1, &x, VLUN_NO_MEMBER, 0);

		assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
		assert_int_equal(vlun_meta_commit_delta(st, p.m, p.n, d, &dl, 1), 0);
	}
	assert_int_equal(mt_slot_seq(&p, 1, 1), 3);
	assert_int_equal(mt_slot_seq(&p, 1, 0), 1);
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	for (size_t i = 0; i < p.n; i++)
		assert_string_equal(p.m[i].problem, "");
	vlun_pool_desc_free(got);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void all_members_fail(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *old = NULL, *got = NULL;
	struct vlun_memdisk_faults f = { .fail_write_n = 1 };
	char why[512];

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 1, 10);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	assert_int_equal(vlun_pool_desc_dup(d, &old), 0);
	for (size_t i = 0; i < p.n; i++)
		vlun_memdisk_set_faults(p.m[i].dev, &f);
	d->generation++;
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), -EIO);
	assert_int_equal(d->seq, 1);
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(old, got, false));
	vlun_pool_desc_free(got);
	/* retry works; seqs keep growing (the failed attempt used 2) */
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	assert_int_equal(d->seq, 3);
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	vlun_pool_desc_free(got);
	vlun_pool_desc_free(old);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_member_fails),
		cmocka_unit_test(all_members_fail),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
