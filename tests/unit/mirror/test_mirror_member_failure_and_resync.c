/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A member of an in-sync mirror fails under I/O: the host sees no error,
 * the member is marked FAILED, only the regions written meanwhile are
 * marked behind (durably: they survive a reopen), reads keep working. When
 * the member answers again the probe restores it and the resync copies
 * just the regions behind; both copies are equal afterwards. The same
 * with the primary's member failing (reads retried on the other copy,
 * copies swapped).
 */
#include "mirror_test.h"

#define SIZE (16ull << 20)
#define REGION (1ull << 20)

static void fail_and_recover(uint32_t failing)
{
	struct et_pool tp;
	et_pool_files(&tp, 2, MT_MEMBER_BYTES);
	et_pool_create(&tp, "mir");
	struct vlun_pool *p = et_pool_open(&tp);
	mt_linear_on(p, "d", SIZE, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d");
	et_write(vd, 0, SIZE, 1);
	assert_int_equal(vlun_mirror_add(p, "d", 0, 0, NULL, 0, NULL), 0);
	mt_wait_idle(p, "d");

	assert_int_equal(vlun_pool_inject_member_fault(p, failing, true), 0);
	/* reads: served by the healthy copy (a read that hits the failing
	 * member is retried on the other) */
	for (int i = 0; i < 4; i++)
		et_check(vd, 0, SIZE, 1);
	/* writes into two regions: no error for the host */
	et_write(vd, 3 * REGION + 4096, 8192, 2);
	et_write(vd, 9 * REGION, REGION, 3);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	assert_int_equal(mt_member_state(p, failing), VLUN_MEMBER_FAILED);
	uint64_t m, b;
	mt_mirror_state(p, "d", &m, &b);
	assert_int_equal(m, SIZE);
	assert_int_equal(b, 2 * REGION);
	et_check(vd, 3 * REGION + 4096, 8192, 2);
	et_check(vd, 9 * REGION, REGION, 3);

	/* the behind regions and the member state are in the metadata */
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	p = et_pool_open(&tp);
	assert_int_equal(mt_member_state(p, failing), VLUN_MEMBER_FAILED);
	mt_mirror_state(p, "d", &m, &b);
	assert_int_equal(b, 2 * REGION);
	vd = et_vdisk_open(p, "d");
	et_check(vd, 9 * REGION, REGION, 3);

	/* the member is back (the reopen cleared the injected fault): the
	 * probe restores it and the resync copies the two regions only */
	assert_int_equal(vlun_resync_start(p, 0, NULL), 0);
	mt_wait_idle(p, "d");
	assert_int_equal(mt_member_state(p, failing), VLUN_MEMBER_OK);
	struct vlun_job_info *v = NULL;
	size_t n = 0;
	assert_int_equal(vlun_jobs_list(p, &v, &n), 0);
	bool seen = false;
	for (size_t k = 0; k < n; k++)
		if (v[k].kind == VLUN_JOB_RESYNC) {
			seen = true;
			assert_int_equal(v[k].done_bytes, 2 * REGION);
		}
	free(v);
	assert_true(seen);
	assert_int_equal(mt_copies_equal(p, &tp, "d"), SIZE);
	et_check(vd, 0, 3 * REGION + 4096, 1);
	et_check(vd, 3 * REGION + 4096, 8192, 2);
	et_check(vd, 9 * REGION, REGION, 3);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

static void test_alternate_member_fails(void **state)
{
	(void)state;
	fail_and_recover(1);
}

static void test_primary_member_fails(void **state)
{
	(void)state;
	fail_and_recover(0);
}

int main(void)
{
	et_skip_under_valgrind();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alternate_member_fails),
		cmocka_unit_test(test_primary_member_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
