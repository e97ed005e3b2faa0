/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A linear disk on member 0 gets a mirror on member 1: the new copy is
 * behind, the resync fills it while the disk is open, and afterwards
 * every write lands on both copies (checked on the member files) and
 * reads return the data from either copy.
 */
#include "mirror_test.h"

#define SIZE (8ull << 20)

static void test_mirror_add_resync_writes_both(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 2, MT_MEMBER_BYTES);
	et_pool_create(&tp, "mir");
	struct vlun_pool *p = et_pool_open(&tp);
	mt_linear_on(p, "d", SIZE, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d");
	et_write(vd, 0, SIZE, 1);

	char *why = NULL;
	int r = vlun_mirror_add(p, "d", 0, 0, NULL, 0, &why);
	if (r < 0)
		fail_msg("mirror add: %s (%s)", strerror(-r), why ? why : "");
	uint64_t m, b;
	mt_mirror_state(p, "d", &m, &b);
	assert_int_equal(m, SIZE);
	/* a second add of the same range changes nothing */
	assert_int_equal(vlun_mirror_add(p, "d", 0, 0, NULL, 0, NULL), -EEXIST);

	mt_wait_idle(p, "d");
	mt_mirror_state(p, "d", &m, &b);
	assert_int_equal(m, SIZE);
	assert_int_equal(b, 0);
	assert_int_equal(mt_copies_equal(p, &tp, "d"), SIZE);

	/* new writes go to both copies; many reads (either copy) see them */
	et_write(vd, 4096, 1 << 20, 2);
	et_write(vd, 5 << 20, 64 << 10, 3);
	assert_int_equal(mt_copies_equal(p, &tp, "d"), SIZE);
	for (int i = 0; i < 8; i++)
		et_check(vd, 4096, 1 << 20, 2);
	et_check(vd, 5 << 20, 64 << 10, 3);
	et_check(vd, 0, 4096, 1);

	/* remove the alternates: one copy again, space given back */
	uint64_t t0, f0, f1;
	assert_int_equal(vlun_pool_space(p, &t0, &f0), 0);
	assert_int_equal(vlun_mirror_remove(p, "d", 0, 0, VLUN_NO_MEMBER, NULL), 0);
	mt_mirror_state(p, "d", &m, &b);
	assert_int_equal(m, 0);
	et_check(vd, 4096, 1 << 20, 2);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	/* after the commit the freed copy is free space */
	p = et_pool_open(&tp);
	assert_int_equal(vlun_pool_space(p, &t0, &f1), 0);
	assert_true(f1 >= f0 + SIZE);
	vlun_pool_close(p);
	free(why);
	et_pool_cleanup(&tp);
}

int main(void)
{
	et_skip_under_valgrind();
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_mirror_add_resync_writes_both) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
