/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Malformed requests are refused at submit (-EINVAL: unaligned offset or
 * length, iovec shorter than the length); an out-of-range LBA completes
 * with VLUN_E_RANGE (asynchronously); an ERROR extent fails reads with
 * VLUN_E_READ and writes with VLUN_E_WRITE, err_offset naming the first
 * failing byte, while the rest of the disk keeps working; writes to a
 * read-only open complete with VLUN_E_READONLY.
 */
#include "vdisk_test.h"
#include "map.h"
#include "pool_priv.h"

static void test_range_and_errors(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 1, 8 << 20);
	et_pool_create(&tp, "err");
	struct vlun_pool *p = et_pool_open(&tp);
	const uint64_t size = 4 << 20;
	et_vdisk_create(p, "l", VLUN_LAYOUT_LINEAR, size, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "l");
	uint8_t *buf = et_alloc(1 << 20);
	memset(buf, 0x11, 1 << 20);

	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, 100, 512, buf, NULL), -EINVAL);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, 0, 700, buf, NULL), -EINVAL);
	struct vlun_req bad = { .op = VLUN_OP_READ, .offset = 0, .length = 8192, .iov = NULL, .iovcnt = 0,
				.done = et_sreq_done };
	assert_int_equal(vlun_vdisk_submit(vd, &bad), -EINVAL);

	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, size, 512, buf, NULL), VLUN_E_RANGE);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, size - 512, 1024, buf, NULL), VLUN_E_RANGE);
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, UINT64_MAX - 511, 512, buf, NULL), VLUN_E_RANGE);
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, size - 512, 512, buf, NULL), VLUN_OK);

	/* Mark sectors [2048, 2056) as ERROR (a medium defect). */
	struct vlun_extent ext[1];
	assert_int_equal(vlun_map_lookup(vdisk_map_of(vd), 2048, 8, ext, 1), 1);
	ext[0].flags |= VLUN_EXT_ERROR;
	assert_int_equal(vlun_map_set(vdisk_map_of(vd), 2048, 8, ext, 1), 0);

	uint64_t eo = 0;
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, 1 << 20, 64 << 10, buf, &eo), VLUN_E_READ);
	assert_int_equal(eo, 2048 * 512);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, (1 << 20) - 4096, 16384, buf, &eo), VLUN_E_WRITE);
	assert_int_equal(eo, 2048 * 512);
	/* Around it, fine. */
	et_write(vd, 0, 1 << 20, 3);
	et_check(vd, 0, 1 << 20, 3);
	et_write(vd, 2056 * 512, 4096, 3);
	et_check(vd, 2056 * 512, 4096, 3);
	vlun_vdisk_close(vd);

	struct vlun_vdisk *ro = NULL;
	assert_int_equal(vlun_vdisk_open(p, "l", VLUN_VDISK_OPEN_RDONLY, &ro, NULL), 0);
	assert_int_equal(et_io(ro, VLUN_OP_WRITE, 0, 0, 4096, buf, NULL), VLUN_E_READONLY);
	assert_int_equal(et_io(ro, VLUN_OP_READ, 0, 0, 4096, buf, NULL), VLUN_OK);
	vlun_vdisk_close(ro);

	free(buf);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
