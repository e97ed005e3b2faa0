/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A member carrying an older copy (it missed commits) does not win over
 * the newest one, whatever its position in the member list, and it is
 * named as stale. */
#include "metatest.h"

static void newest_wins(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	struct vlun_meta_member one[1];
	char why[512];

	mt_pool_create(&p, 3, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 2, 40);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	/* members 1 and 2 get three more commits, member 0 does not */
	for (int k = 0; k < 3; k++) {
		d->generation++;
		d->map_epoch++;
		assert_int_equal(vlun_meta_commit(st, p.m + 1, 2, d), 0);
	}
	assert_int_equal(d->seq, 4);
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	assert_int_equal(p.m[0].newest_seq, 1);
	assert_int_equal(p.m[1].newest_seq, 4);
	assert_non_null(strstr(p.m[0].problem, "stale"));
	assert_non_null(strstr(p.m[0].problem, "seq 1"));
	assert_string_equal(p.m[1].problem, "");
	assert_string_equal(p.m[2].problem, "");
	vlun_pool_desc_free(got);

	/* the stale member alone still loads its own (older) state */
	one[0] = p.m[0];
	assert_int_equal(vlun_meta_load(one, 1, &got, NULL, why, sizeof(why)), 0);
	assert_int_equal(got->seq, 1);
	vlun_pool_desc_free(got);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(newest_wins),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
