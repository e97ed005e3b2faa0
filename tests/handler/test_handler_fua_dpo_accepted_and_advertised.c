/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handler honours FUA, so it advertises DPOFUA in MODE SENSE (6 and 10)
 * and accepts DPO/FUA in READ/WRITE(10/16) with the data intact; the
 * caching page reports WCE=1 by default and WCE=0 with wce=0, where writes
 * still succeed (each one durable before completion).
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

static struct tcmu_device *open_dev(const char *opts)
{
	char cfg[PATH_MAX + 64];
	struct tcmu_device *dev;

	snprintf(cfg, sizeof(cfg), "vlun/%s/vd%s", dir, opts);
	dev = fr_dev_new(cfg, 16 * MIB / 512, 512);
	assert_non_null(dev);
	assert_int_equal(fr_dev_open(dev), 0);
	return dev;
}

/* Returns the device-specific parameter and the caching page WCE bit. */
static void mode_sense(struct tcmu_device *dev, bool ten, uint8_t *ret_dsp, bool *ret_wce)
{
	uint8_t cdb[10] = { 0 }, buf[255];
	struct fr_result res;
	size_t hdr = ten ? 8 : 4, i;

	memset(buf, 0xcc, sizeof(buf));
	cdb[0] = ten ? 0x5a : 0x1a;
	cdb[2] = 0x3f; /* all pages, current values */
	if (ten)
		cdb[8] = sizeof(buf);
	else
		cdb[4] = sizeof(buf);
	assert_int_equal(fr_exec(dev, cdb, ten ? 10 : 6, buf, sizeof(buf), &res), 0);
	EXPECT_GOOD(res);
	*ret_dsp = ten ? buf[3] : buf[2];
	/* walk the pages for 08h */
	*ret_wce = false;
	for (i = hdr; i + 2 < sizeof(buf) && buf[i]; i += 2 + buf[i + 1])
		if ((buf[i] & 0x3f) == 0x08)
			*ret_wce = buf[i + 2] & 0x04;
	/* bytes past the mode data must be zero, not stale */
	{
		size_t total = ten ? (size_t)(buf[0] << 8 | buf[1]) + 2 : (size_t)buf[0] + 1;

		for (i = total; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0);
	}
}

static void test_dpofua_advertised_and_wce_default(void **s)
{
	struct tcmu_device *dev = open_dev("");
	uint8_t dsp;
	bool wce;

	(void)s;
	mode_sense(dev, false, &dsp, &wce);
	assert_int_equal(dsp & 0x10, 0x10); /* DPOFUA */
	assert_int_equal(dsp & 0x80, 0);    /* not write protected */
	assert_true(wce);
	mode_sense(dev, true, &dsp, &wce);
	assert_int_equal(dsp & 0x10, 0x10);
	assert_true(wce);
	assert_true(fr_dev_wce(dev));
	fr_dev_close(dev);
	fr_dev_free(dev);
}

static void rw_flags(struct tcmu_device *dev, uint8_t byte1, uint32_t gen)
{
	uint8_t cdb[16];
	uint8_t *buf = malloc(128 * 1024);
	struct fr_result res;

	fr_fill(buf, 128 * 1024, 1 * MIB, gen);
	fr_cdb_rw10(cdb, 0x2a, MIB / 512, 256, byte1);
	assert_int_equal(fr_exec(dev, cdb, 10, buf, 128 * 1024, &res), 0);
	EXPECT_GOOD(res);
	fr_cdb_rw16(cdb, 0x8a, 2 * MIB / 512, 256, byte1);
	fr_fill(buf, 128 * 1024, 2 * MIB, gen);
	assert_int_equal(fr_exec(dev, cdb, 16, buf, 128 * 1024, &res), 0);
	EXPECT_GOOD(res);

	memset(buf, 0, 128 * 1024);
	fr_cdb_rw10(cdb, 0x28, MIB / 512, 256, byte1);
	assert_int_equal(fr_exec(dev, cdb, 10, buf, 128 * 1024, &res), 0);
	EXPECT_GOOD(res);
	assert_true(fr_check(buf, 128 * 1024, MIB, gen));
	fr_cdb_rw16(cdb, 0x88, 2 * MIB / 512, 256, byte1);
	assert_int_equal(fr_exec(dev, cdb, 16, buf, 128 * 1024, &res), 0);
	EXPECT_GOOD(res);
	assert_true(fr_check(buf, 128 * 1024, 2 * MIB, gen));
	free(buf);
}

static void test_fua_dpo_accepted(void **s)
{
	struct tcmu_device *dev = open_dev("");

	(void)s;
	rw_flags(dev, 0x08, 1);        /* FUA */
	rw_flags(dev, 0x10, 2);        /* DPO */
	rw_flags(dev, 0x18, 3);        /* DPO+FUA */
	fr_dev_close(dev);
	fr_dev_free(dev);
	assert_int_equal(fr_violations(), 0);
}

static void test_wce0_reports_write_through(void **s)
{
	struct tcmu_device *dev = open_dev(";wce=0");
	uint8_t dsp;
	bool wce;

	(void)s;
	assert_false(fr_dev_wce(dev));
	mode_sense(dev, false, &dsp, &wce);
	assert_false(wce);
	assert_int_equal(dsp & 0x10, 0x10);
	rw_flags(dev, 0, 4);
	fr_dev_close(dev);
	fr_dev_free(dev);
	assert_int_equal(fr_violations(), 0);
}

static int setup(void **s)
{
	(void)s;
	return fr_pool_make(dir, 1, 64 * MIB, "vd", VLUN_LAYOUT_THIN, 16 * MIB, MIB);
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
		cmocka_unit_test(test_dpofua_advertised_and_wce_default),
		cmocka_unit_test(test_fua_dpo_accepted),
		cmocka_unit_test(test_wce0_reports_write_through),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, setup, teardown);
}
