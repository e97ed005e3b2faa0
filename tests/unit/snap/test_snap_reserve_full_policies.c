/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A full reserve: with FAIL_SNAPSHOT (default) the sessions needing the
 * copy become FAILED with the reason (list shows it, their I/O fails with
 * VLUN_E_HW, the state survives a reopen) and the source write succeeds;
 * with FAIL_WRITE the source write fails with VLUN_E_NOSPACE and the
 * session stays intact. Growing the reserve (vlun_snapshot_reserve_set)
 * makes room and switches the policy.
 */
#include "snap_test.h"

#define SZ (2ull << 20)
#define CB (64ull << 10)

static void test_full(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 1, 16 << 20);
	et_pool_create(&tp, "snapfull");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "src", VLUN_LAYOUT_LINEAR, SZ, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "src");
	uint8_t *model = et_alloc(SZ), *img = et_alloc(SZ), *buf = et_alloc(CB);
	st_write(vd, model, 0, SZ, 1);
	/* room for 4 chunks: 8 KiB headers + 4 KiB table + 4 chunks */
	uint64_t rbytes = 8192 + 4096 + 4 * CB;
	assert_int_equal(st_create(p, "src", "keep", rbytes, CB, VLUN_SNAP_FULL_FAIL_WRITE), 0);
	memcpy(img, model, SZ);
	for (int c = 0; c < 4; c++)
		st_write(vd, model, c * CB, 512, 10 + c);
	et_fill(buf, 512, 99, 4 * CB);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, 4 * CB, 512, buf, NULL), VLUN_E_NOSPACE);
	st_expect(vd, model, SZ, "source after refused write");
	st_expect_snap(p, "src@keep", img, SZ);
	assert_int_equal(st_info(p, "src", "keep").d.state, VLUN_SNAP_ACTIVE);

	/* grow by 2 chunks, switch to fail-snapshot */
	char *why = NULL;
	int r = vlun_snapshot_reserve_set(p, "src", rbytes + 2 * CB, VLUN_SNAP_FULL_FAIL_SNAPSHOT, &why);
	if (r < 0)
		fail_msg("reserve_set: %s", why);
	struct vlun_snapshot_info inf = st_info(p, "src", "keep");
	assert_int_equal(inf.reserve_total_bytes, 6 * CB);
	assert_int_equal(inf.full_policy, VLUN_SNAP_FULL_FAIL_SNAPSHOT);
	st_write(vd, model, 4 * CB, 512, 20);
	st_write(vd, model, 5 * CB, 512, 21);
	st_expect_snap(p, "src@keep", img, SZ);
	/* now full: the session fails, the write goes on */
	st_write(vd, model, 6 * CB, 512, 22);
	st_expect(vd, model, SZ, "source");
	inf = st_info(p, "src", "keep");
	assert_int_equal(inf.d.state, VLUN_SNAP_FAILED);
	assert_non_null(strstr(inf.d.why, "full"));
	assert_int_equal(inf.reserve_used_bytes, 0); /* its copies are freed */
	struct vlun_vdisk *v = NULL;
	assert_true(vlun_vdisk_open(p, "src@keep", 0, &v, NULL) < 0);
	/* further writes need no copy */
	st_write(vd, model, 7 * CB, 512, 23);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	p = et_pool_open(&tp);
	inf = st_info(p, "src", "keep");
	assert_int_equal(inf.d.state, VLUN_SNAP_FAILED);
	assert_int_equal(vlun_snapshot_delete(p, "src", "keep", NULL), 0);
	vlun_pool_close(p);
	free(model);
	free(img);
	free(buf);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_full) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
