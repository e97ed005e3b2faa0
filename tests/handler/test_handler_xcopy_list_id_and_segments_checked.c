/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * EXTENDED COPY(LID1) parameter lists with LIST ID USAGE 00b or 10b (what
 * libiscsi and most copy clients send) reach tcmu-runner's copy manager in
 * the 11b form it implements, with the descriptors untouched; the reserved
 * 01b gets INVALID FIELD IN PARAMETER LIST from the handler; 11b, short
 * lists and the LID4 service action pass through unchanged. Segment
 * descriptors other than block -> block get UNSUPPORTED SEGMENT DESCRIPTOR
 * TYPE CODE, block -> block segments past the last LBA COPY ABORTED.
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
#define BS 512u
#define PLEN (16u + 32u + 28u) /* header, one target, one block->block segment */

static char dir[PATH_MAX];
static struct tcmu_device *dev;

static void xcopy_cdb(uint8_t cdb[16], uint8_t sa, uint32_t param_len)
{
	memset(cdb, 0, 16);
	cdb[0] = 0x83;
	cdb[1] = sa;
	cdb[10] = param_len >> 24;
	cdb[11] = param_len >> 16;
	cdb[12] = param_len >> 8;
	cdb[13] = param_len;
}

/* header with LIST IDENTIFIER id and LIST ID USAGE usage, plus a
 * recognisable descriptor area */
static void param(uint8_t *p, uint8_t id, uint8_t usage)
{
	memset(p, 0, PLEN);
	p[0] = id;
	p[1] = (uint8_t)(usage << 3) | 0x20 /* STR */ | 0x01 /* PRIORITY */;
	p[3] = 32;  /* CSCD DESCRIPTOR LIST LENGTH */
	p[11] = 28; /* SEGMENT DESCRIPTOR LIST LENGTH */
	for (unsigned i = 16; i < 48; i++) /* a target descriptor's worth */
		p[i] = (uint8_t)(0xa0 + i);
	p[48] = 0x02;      /* block -> block segment */
	p[51] = 0x18;      /* DESCRIPTOR LENGTH */
	p[48 + 11] = 8;    /* NUMBER OF BLOCKS */
	p[48 + 19] = 16;   /* SOURCE LBA */
	p[48 + 27] = 64;   /* DESTINATION LBA */
}

static struct fr_result exec(const uint8_t *cdb, uint8_t *p, size_t len)
{
	struct fr_result r;

	assert_int_equal(fr_exec(dev, cdb, 16, p, len, &r), 0);
	return r;
}

static void test_usage_00_and_10_become_11(void **s)
{
	uint8_t cdb[16], p[PLEN], want[PLEN];

	(void)s;
	for (uint8_t usage = 0; usage <= 2; usage += 2) {
		xcopy_cdb(cdb, 0x00, PLEN);
		param(p, 0x5a, usage);
		memcpy(want, p, PLEN);
		want[0] = 0;
		want[1] = 0x18 | 0x20 | 0x01; /* 11b; STR and PRIORITY kept */
		(void)exec(cdb, p, PLEN);
		assert_memory_equal(p, want, PLEN);
	}
}

static void test_usage_01_is_invalid_field_in_param_list(void **s)
{
	uint8_t cdb[16], p[PLEN], want[PLEN];
	struct fr_result r;

	(void)s;
	xcopy_cdb(cdb, 0x00, PLEN);
	param(p, 7, 1);
	memcpy(want, p, PLEN);
	r = exec(cdb, p, PLEN);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x26, 0x00);
	assert_memory_equal(p, want, PLEN);
}

static void test_other_lists_pass_unchanged(void **s)
{
	uint8_t cdb[16], p[PLEN], want[PLEN];

	(void)s;
	/* 11b already */
	xcopy_cdb(cdb, 0x00, PLEN);
	param(p, 0, 3);
	memcpy(want, p, PLEN);
	(void)exec(cdb, p, PLEN);
	assert_memory_equal(p, want, PLEN);
	/* PARAMETER LIST LENGTH shorter than the header: the runner's error */
	xcopy_cdb(cdb, 0x00, 8);
	param(p, 9, 0);
	memcpy(want, p, PLEN);
	(void)exec(cdb, p, 8);
	assert_memory_equal(p, want, PLEN);
	/* EXTENDED COPY(LID4) has another header layout */
	xcopy_cdb(cdb, 0x01, PLEN);
	param(p, 9, 0);
	memcpy(want, p, PLEN);
	(void)exec(cdb, p, PLEN);
	assert_memory_equal(p, want, PLEN);
}

static void test_segment_checks(void **s)
{
	uint8_t cdb[16], p[PLEN], want[PLEN];
	struct fr_result r;
	const uint64_t last = 8 * MIB / BS - 1;

	(void)s;
	/* a type other than block -> block */
	xcopy_cdb(cdb, 0x00, PLEN);
	param(p, 0, 3);
	p[48] = 0x01;
	memcpy(want, p, PLEN);
	r = exec(cdb, p, PLEN);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x26, 0x09);
	assert_memory_equal(p, want, PLEN);
	/* ... also with a length no block -> block descriptor has */
	param(p, 0, 0);
	p[48] = 0x03;
	p[51] = 0x10;
	r = exec(cdb, p, PLEN);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x26, 0x09);
	/* destination past the last LBA: the copy is aborted */
	param(p, 0, 0);
	for (int i = 0; i < 8; i++)
		p[48 + 20 + i] = (uint8_t)(last >> (56 - 8 * i));
	r = exec(cdb, p, PLEN);
	EXPECT_SENSE(r, 0x0a, 0x00, 0x00);
	/* source past the last LBA */
	param(p, 0, 0);
	for (int i = 0; i < 8; i++)
		p[48 + 12 + i] = (uint8_t)((last - 6) >> (56 - 8 * i));
	r = exec(cdb, p, PLEN);
	EXPECT_SENSE(r, 0x0a, 0x00, 0x00);
	/* ending exactly at the last LBA is fine: on to the runner */
	param(p, 0, 0);
	for (int i = 0; i < 8; i++)
		p[48 + 12 + i] = (uint8_t)((last - 7) >> (56 - 8 * i));
	r = exec(cdb, p, PLEN);
	assert_false(r.check && (r.key == 0x0a || r.asc == 0x26));
}

static int setup(void **s)
{
	char cfg[PATH_MAX + 64];

	(void)s;
	if (fr_pool_make(dir, 1, 64 * MIB, "x", VLUN_LAYOUT_THIN, 8 * MIB, MIB) < 0)
		return -1;
	snprintf(cfg, sizeof(cfg), "vlun/%s/x", dir);
	dev = fr_dev_new(cfg, 8 * MIB / BS, BS);
	return dev && fr_dev_open(dev) == 0 ? 0 : -1;
}

static int teardown(void **s)
{
	(void)s;
	fr_dev_close(dev);
	fr_dev_free(dev);
	fr_rmrf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_00_and_10_become_11),
		cmocka_unit_test(test_usage_01_is_invalid_field_in_param_list),
		cmocka_unit_test(test_other_lists_pass_unchanged),
		cmocka_unit_test(test_segment_checks),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, setup, teardown);
}
