/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reads of unallocated thin space return zeros without I/O: every member's
 * data area is filled with junk first, so any physical read would show it;
 * nothing gets allocated by reading, and GET LBA STATUS says deallocated.
 */
#include "vdisk_test.h"

static void test_unallocated_reads_zero(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 2, 8 << 20);
	et_pool_create(&tp, "thin");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, 64 << 20, 1 << 20, 0); /* overcommitted */
	et_junk_members(&tp, p);
	uint64_t free0;
	assert_int_equal(vlun_pool_space(p, NULL, &free0), 0);

	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	assert_int_equal(vlun_vdisk_layout(vd), VLUN_LAYOUT_THIN);
	assert_int_equal(vlun_vdisk_chunk_bytes(vd), 1 << 20);
	et_check_zero(vd, 0, 1 << 20);
	et_check_zero(vd, (5 << 20) + 4096, 3 << 20);
	et_check_zero(vd, (64 << 20) - 512, 512);

	uint64_t free1;
	assert_int_equal(vlun_pool_space(p, NULL, &free1), 0);
	assert_int_equal(free0, free1);
	bool mapped = true;
	uint64_t len = 0;
	assert_int_equal(vlun_vdisk_lba_status(vd, 0, 0, &mapped, &len), 0);
	assert_false(mapped);
	assert_int_equal(len, 64 << 20);

	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unallocated_reads_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
