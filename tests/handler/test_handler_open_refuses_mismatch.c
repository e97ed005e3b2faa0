/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * open refuses a backstore whose size differs from the virtual disk's, an
 * unsupported block size, a missing pool or vdisk — leaving no private
 * data behind, and twice in a row (a failing create calls open twice) —
 * and the same device then opens fine with the right size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fr_test.h"
#include "vlun.h"

#define MIB (1024ull * 1024ull)

static char dir[PATH_MAX];

static void expect_refused(const char *cfgstring, uint64_t num_lbas, uint32_t bs)
{
	struct tcmu_device *dev = fr_dev_new(cfgstring, num_lbas, bs);

	assert_non_null(dev);
	for (int i = 0; i < 2; i++) {
		assert_true(fr_dev_open(dev) < 0);
		assert_null(fr_dev_private(dev));
	}
	fr_dev_free(dev);
}

static void test_refusals_then_success(void **s)
{
	char cfg[PATH_MAX + 64];
	struct tcmu_device *dev;

	(void)s;
	snprintf(cfg, sizeof(cfg), "vlun/%s/vd", dir);
	expect_refused(cfg, 8 * MIB / 512 - 1, 512);   /* one block short */
	expect_refused(cfg, 8 * MIB / 512 + 8, 512);   /* larger */
	expect_refused(cfg, 8 * MIB / 1024, 1024);     /* block size */
	snprintf(cfg, sizeof(cfg), "vlun/%s/nosuchdisk", dir);
	expect_refused(cfg, 8 * MIB / 512, 512);
	snprintf(cfg, sizeof(cfg), "vlun/%s/missing-dir/vd", dir);
	expect_refused(cfg, 8 * MIB / 512, 512);
	expect_refused("vlun/", 8 * MIB / 512, 512);

	snprintf(cfg, sizeof(cfg), "vlun/%s/vd", dir);
	dev = fr_dev_new(cfg, 8 * MIB / 512, 512);
	assert_int_equal(fr_dev_open(dev), 0);
	assert_non_null(fr_dev_private(dev));
	fr_dev_close(dev);
	assert_null(fr_dev_private(dev));
	/* reopen after close works (runner recovery path) */
	assert_int_equal(fr_dev_open(dev), 0);
	fr_dev_close(dev);
	fr_dev_free(dev);

	dev = fr_dev_new(cfg, 8 * MIB / 4096, 4096);
	assert_int_equal(fr_dev_open(dev), 0);
	fr_dev_close(dev);
	fr_dev_free(dev);
}

static int setup(void **s)
{
	(void)s;
	return fr_pool_make(dir, 1, 64 * MIB, "vd", VLUN_LAYOUT_LINEAR, 8 * MIB, 0);
}

static int teardown(void **s)
{
	(void)s;
	fr_rmrf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals_then_success),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, setup, teardown);
}
