/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A writable snapshot writes private copies: its own content changes,
 * the source and the other sessions (sharing the same saved chunk) do
 * not; a read-only open refuses writes (VLUN_E_READONLY). Rollback is
 * refused while the source is open, then restores the source to the
 * session's content while another session keeps its own image.
 */
#include "snap_test.h"

#define SZ (1ull << 20)
#define CB (64ull << 10)

static void test_rw_rollback(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 1, 16 << 20);
	et_pool_create(&tp, "snaprb");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "src", VLUN_LAYOUT_LINEAR, SZ, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "src");
	uint8_t *model = et_alloc(SZ), *ia = et_alloc(SZ), *ib = et_alloc(SZ);
	st_write(vd, model, 0, SZ, 1);
	assert_int_equal(st_create(p, "src", "a", 4 << 20, CB, -1), 0);
	assert_int_equal(st_create(p, "src", "b", 0, 0, -1), 0);
	memcpy(ia, model, SZ);
	memcpy(ib, model, SZ);
	st_write(vd, model, 0, 3 * CB, 2); /* shared copies of chunks 0..2 */

	struct vlun_vdisk *ro = st_open(p, "src@a", 0);
	assert_int_equal(et_io(ro, VLUN_OP_WRITE, 0, 0, 4096, ia, NULL), VLUN_E_READONLY);
	vlun_vdisk_close(ro);
	struct vlun_vdisk *w = st_open(p, "src@a", VLUN_VDISK_OPEN_WRITABLE);
	st_write(w, ia, 4096, 8192, 3);          /* chunk 0: shared copy -> private */
	st_write(w, ia, 5 * CB + 512, 1024, 4);  /* chunk 5: from the source */
	st_write(w, ia, 5 * CB + 4096, 512, 5);  /* again: into its private copy */
	st_expect(w, ia, SZ, "writable a");
	vlun_vdisk_close(w);
	assert_true(st_info(p, "src", "a").d.flags & VLUN_SNAP_WRITTEN);
	st_expect_snap(p, "src@b", ib, SZ);
	st_expect(vd, model, SZ, "source");
	st_write(vd, model, 5 * CB, CB, 6); /* b needs a copy, a has its own */
	st_expect_snap(p, "src@a", ia, SZ);
	st_expect_snap(p, "src@b", ib, SZ);

	char *why = NULL;
	assert_int_equal(vlun_snapshot_rollback(p, "src", "a", &why), -EBUSY);
	assert_non_null(strstr(why, "open"));
	free(why);
	vlun_vdisk_close(vd);
	assert_int_equal(vlun_snapshot_rollback(p, "src", "a", NULL), 0);
	vd = et_vdisk_open(p, "src");
	st_expect(vd, ia, SZ, "source after rollback to a");
	vlun_vdisk_close(vd);
	st_expect_snap(p, "src@b", ib, SZ);
	st_expect_snap(p, "src@a", ia, SZ);
	vlun_pool_close(p);
	p = et_pool_open(&tp);
	st_expect_snap(p, "src@b", ib, SZ);
	st_expect_snap(p, "src@a", ia, SZ);
	vlun_pool_close(p);
	free(model);
	free(ia);
	free(ib);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_rw_rollback) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
