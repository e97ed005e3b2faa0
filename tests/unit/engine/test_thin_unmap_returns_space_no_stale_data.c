/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UNMAP and WRITE_ZEROES on a thin disk give whole chunks back to the pool
 * (vlun_pool_space grows once the change is committed), zero partial
 * chunks, and the range reads as zeros. A chunk freed by one disk and
 * allocated to another never shows the first disk's data. UNMAP on a
 * linear disk is a no-op success; WRITE_ZEROES there writes zeros.
 */
#include "vdisk_test.h"

static const uint64_t chunk = 1 << 20;

static void test_unmap_thin(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 1, 12 << 20); /* small: reallocation must reuse chunks */
	et_pool_create(&tp, "thin");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "a", VLUN_LAYOUT_THIN, 32 << 20, chunk, 0);
	et_vdisk_create(p, "b", VLUN_LAYOUT_THIN, 32 << 20, chunk, 0);
	uint64_t total, free0, f;
	assert_int_equal(vlun_pool_space(p, &total, &free0), 0);
	uint64_t nchunks = free0 / chunk;
	assert_true(nchunks >= 4);

	struct vlun_vdisk *a = et_vdisk_open(p, "a");
	struct vlun_vdisk *b = et_vdisk_open(p, "b");
	/* Fill the whole pool through disk a. */
	for (uint64_t i = 0; i < nchunks; i++)
		et_write(a, i * chunk, chunk, 11);
	assert_int_equal(vlun_pool_space(p, NULL, &f), 0);
	assert_true(f < chunk);

	/* UNMAP chunk 1 whole and half of chunk 2. */
	assert_int_equal(et_io(a, VLUN_OP_UNMAP, 0, chunk, chunk + chunk / 2, NULL, NULL), VLUN_OK);
	et_check_zero(a, chunk, chunk + chunk / 2);
	et_check(a, 2 * chunk + chunk / 2, chunk / 2, 11);
	et_check(a, 0, chunk, 11);
	/* WRITE_ZEROES of chunk 3 whole. */
	assert_int_equal(et_io(a, VLUN_OP_WRITE_ZEROES, 0, 3 * chunk, chunk, NULL, NULL), VLUN_OK);
	et_check_zero(a, 3 * chunk, chunk);
	bool mapped;
	uint64_t len;
	assert_int_equal(vlun_vdisk_lba_status(a, chunk, 0, &mapped, &len), 0);
	assert_false(mapped);
	assert_int_equal(len, chunk);

	/* After the flush the two chunks are free again. */
	assert_int_equal(et_io(a, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	assert_int_equal(vlun_pool_space(p, NULL, &f), 0);
	assert_true(f >= 2 * chunk);

	/* Disk b writes 4 KiB into two chunks: they can only be a's old
	 * ones; the rest of them must read zeros, never a's pattern. */
	et_write(b, 0, 4096, 22);
	et_write(b, 5 * chunk + 8192, 4096, 22);
	et_check(b, 0, 4096, 22);
	et_check_zero(b, 4096, chunk - 4096);
	et_check_zero(b, 5 * chunk, 8192);
	et_check_zero(b, 5 * chunk + 8192 + 4096, chunk - 8192 - 4096);
	/* Pool full again: the next new chunk fails with NOSPACE. */
	uint8_t *buf = et_alloc(4096);
	memset(buf, 1, 4096);
	assert_int_equal(et_io(b, VLUN_OP_WRITE, 0, 9 * chunk, 4096, buf, NULL), VLUN_E_NOSPACE);
	/* ...but writes into allocated chunks still work. */
	assert_int_equal(et_io(b, VLUN_OP_WRITE, 0, 0, 4096, buf, NULL), VLUN_OK);
	free(buf);

	vlun_vdisk_close(a);
	vlun_vdisk_close(b);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

static void test_unmap_linear(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 1, 8 << 20);
	et_pool_create(&tp, "lin");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "l", VLUN_LAYOUT_LINEAR, 4 << 20, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "l");
	et_write(vd, 0, 2 << 20, 5);
	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, 0, 1 << 20, NULL, NULL), VLUN_OK);
	et_check(vd, 0, 2 << 20, 5); /* no-op */
	assert_int_equal(et_io(vd, VLUN_OP_WRITE_ZEROES, 0, 4096, 8192, NULL, NULL), VLUN_OK);
	et_check(vd, 0, 4096, 5);
	et_check_zero(vd, 4096, 8192);
	et_check(vd, 4096 + 8192, (2 << 20) - 4096 - 8192, 5);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unmap_thin),
		cmocka_unit_test(test_unmap_linear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
