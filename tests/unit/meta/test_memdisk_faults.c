/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The memory disk's faults do what the crash tests rely on: the Nth write
 * fails, the Nth write tears and the disk dies until crash(), writes after
 * N are dropped silently, and crash() undoes unflushed writes under a
 * volatile cache. */
#include "metatest.h"

static void faults(void **state)
{
	struct vlun_blkdev *d;
	uint8_t a[512], b[512], *m;

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	assert_int_equal(vlun_memdisk_create("mem:f", 1 << 20, &d), 0);
	m = vlun_memdisk_data(d);

	/* fail the 2nd write */
	vlun_memdisk_set_faults(d, &(struct vlun_memdisk_faults){ .fail_write_n = 2 });
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, 0), 0);
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, 512), -EIO);
	assert_int_equal(m[512], 0);
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, 1024), 0);
	assert_int_equal(vlun_memdisk_writes(d), 3);

	/* tear the 1st write after 100 bytes; the disk is dead until crash */
	vlun_memdisk_set_faults(d, &(struct vlun_memdisk_faults){ .tear_write_n = 1, .tear_bytes = 100 });
	assert_int_equal(vlun_blkdev_pwrite(d, b, 512, 0), -EIO);
	assert_int_equal(m[99], 0xbb);
	assert_int_equal(m[100], 0xaa);
	assert_int_equal(vlun_blkdev_pwrite(d, b, 512, 4096), -EIO);
	assert_int_equal(vlun_blkdev_flush(d), -EIO);
	vlun_memdisk_crash(d);
	assert_int_equal(vlun_blkdev_pwrite(d, b, 512, 4096), 0);
	assert_int_equal(m[4096], 0xbb);

	/* drop everything after 1 more write */
	vlun_memdisk_set_faults(d, &(struct vlun_memdisk_faults){ .drop_after_n = 1 });
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, 8192), 0);
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, 8192 + 512), 0);
	assert_int_equal(m[8192], 0xaa);
	assert_int_equal(m[8192 + 512], 0);

	/* volatile cache: flushed writes survive a crash, later ones do not */
	vlun_memdisk_set_faults(d, &(struct vlun_memdisk_faults){ .volatile_cache = true });
	assert_int_equal(vlun_blkdev_pwrite(d, b, 512, 0), 0);
	assert_int_equal(vlun_blkdev_flush(d), 0);
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, 0), 0);
	assert_int_equal(vlun_blkdev_pwrite(d, b, 512, 0), 0);
	assert_int_equal(vlun_blkdev_pwrite(d, b, 512, 65536), 0);
	vlun_memdisk_crash(d);
	assert_int_equal(m[0], 0xbb);
	assert_int_equal(m[65536], 0);
	/* out of range */
	assert_int_equal(vlun_blkdev_pwrite(d, a, 512, (1 << 20) - 256), -EINVAL);
	vlun_blkdev_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(faults),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
