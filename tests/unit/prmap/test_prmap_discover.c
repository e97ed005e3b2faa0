/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Path discovery from a fake sysfs tree: a multipath map gives its slaves
 * (sorted), a SCSI disk itself; partitions, other dm targets, non-SCSI and
 * missing devices are refused with distinct errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "prtest.h"

static void test_discover(void **state)
{
	char *root = pt_root();
	const char *const slaves[] = { "sdc", "sdb", NULL };
	const char *const lin[] = { "sdb", NULL };
	char **v = NULL;
	size_t n = 99;
	bool mp = false;

	pt_add_disk(root, "sdb", "2:0:0:0");
	pt_add_disk(root, "sdc", "3:0:0:0");
	pt_add_dm(root, "dm-0", "mpath-36001405abcdef\n", slaves);
	pt_add_dm(root, "dm-1", "LVM-xyz\n", lin);
	pt_mkdirs(root, "block/nvme0n1/device");
	pt_mkdirs(root, "class/block/sdb1");
	pt_write(root, "class/block/sdb1/partition", "1\n");

	assert_int_equal(prmap_discover(root, "/dev", "dm-0", &v, &n, &mp), 0);
	assert_true(mp);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "/dev/sdb");
	assert_string_equal(v[1], "/dev/sdc");
	prmap_strv_free(v, n);

	assert_int_equal(prmap_discover(root, "/xdev", "sdc", &v, &n, &mp), 0);
	assert_false(mp);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "/xdev/sdc");
	prmap_strv_free(v, n);

	v = NULL;
	n = 99;
	assert_int_equal(prmap_discover(root, NULL, "dm-1", &v, &n, &mp), -EINVAL);
	assert_int_equal(prmap_discover(root, NULL, "sdb1", &v, &n, &mp), -EINVAL);
	assert_int_equal(prmap_discover(root, NULL, "nvme0n1", &v, &n, &mp), -EOPNOTSUPP);
	assert_int_equal(prmap_discover(root, NULL, "sdz", &v, &n, &mp), -ENOENT);
	assert_int_equal(prmap_discover(root, NULL, "../etc", &v, &n, &mp), -EINVAL);
	assert_null(v);
	assert_int_equal(n, 99);

	/* a path logged out leaves the slaves */
	pt_del_slave(root, "dm-0", "sdb");
	assert_int_equal(prmap_discover(root, "/dev", "dm-0", &v, &n, &mp), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "/dev/sdc");
	prmap_strv_free(v, n);
	pt_rmrf(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
