/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CDB fields the generic tcmu-runner path accepts but LIO fileio rejects
 * (libiscsi iscsi-test-cu) get the exact sense from the handler:
 * RD/WR/VRPROTECT without protection information, ANCHOR, WRITE SAME UNMAP
 * and UNMAP on a fully provisioned disk, EVPD=0 with a page code, saved
 * mode pages, out-of-range LBAs (also when they reach the engine), writes
 * to a read-only export; VERIFY compares and reports the miscompare
 * offset; standard INQUIRY claims SBC-3 and leaks no stale bytes.
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
#define NLBAS (8 * MIB / BS)

static char dir_thin[PATH_MAX], dir_lin[PATH_MAX], dir_ro[PATH_MAX];
static struct tcmu_device *thin, *lin, *ro;
static uint8_t buf[1024 * 1024];

static struct fr_result run(struct tcmu_device *dev, const uint8_t *cdb, size_t cdb_len, size_t len)
{
	struct fr_result res;

	assert_int_equal(fr_exec(dev, cdb, cdb_len, len ? buf : NULL, len, &res), 0);
	return res;
}

static void cdb12(uint8_t cdb[12], uint8_t op, uint32_t lba, uint32_t n, uint8_t b1)
{
	memset(cdb, 0, 12);
	cdb[0] = op;
	cdb[1] = b1;
	cdb[2] = lba >> 24; cdb[3] = lba >> 16; cdb[4] = lba >> 8; cdb[5] = lba;
	cdb[6] = n >> 24; cdb[7] = n >> 16; cdb[8] = n >> 8; cdb[9] = n;
}

static void test_protect_fields_rejected(void **s)
{
	uint8_t cdb[16];
	struct fr_result r;

	(void)s;
	for (uint8_t prot = 1; prot < 8; prot++) {
		uint8_t b1 = (uint8_t)(prot << 5);

		fr_cdb_rw10(cdb, 0x28, 0, 1, b1);      /* READ(10) RDPROTECT */
		r = run(thin, cdb, 10, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		cdb12(cdb, 0xa8, 0, 1, b1);            /* READ(12) */
		r = run(thin, cdb, 12, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw16(cdb, 0x88, 0, 1, b1);      /* READ(16) */
		r = run(thin, cdb, 16, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw10(cdb, 0x2a, 0, 1, b1);      /* WRITE(10) WRPROTECT */
		r = run(thin, cdb, 10, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		cdb12(cdb, 0xaa, 0, 1, b1);            /* WRITE(12) */
		r = run(thin, cdb, 12, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw16(cdb, 0x8a, 0, 1, b1);      /* WRITE(16) */
		r = run(thin, cdb, 16, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw10(cdb, 0x2e, 0, 1, b1);      /* WRITE AND VERIFY(10) */
		r = run(thin, cdb, 10, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw16(cdb, 0x8e, 0, 1, b1);      /* WRITE AND VERIFY(16) */
		r = run(thin, cdb, 16, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw10(cdb, 0x41, 0, 1, b1);      /* WRITE SAME(10) */
		r = run(thin, cdb, 10, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw16(cdb, 0x93, 0, 1, b1);      /* WRITE SAME(16) */
		r = run(thin, cdb, 16, BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		fr_cdb_rw16(cdb, 0x8f, 0, 1, b1);      /* VERIFY(16) VRPROTECT */
		r = run(thin, cdb, 16, 0);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
		memset(cdb, 0, 16);                    /* COMPARE AND WRITE */
		cdb[0] = 0x89;
		cdb[1] = b1;
		cdb[13] = 1;
		r = run(thin, cdb, 16, 2 * BS);
		EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
	}
}

static void test_provisioning_fields(void **s)
{
	uint8_t cdb[16], param[64];
	size_t plen;
	struct fr_result r;
	const uint64_t lbas[] = { 0 };
	const uint32_t counts[] = { 8 };

	(void)s;
	fr_cdb_rw16(cdb, 0x93, 0, 8, 0x18);       /* WRITE SAME(16) ANCHOR+UNMAP */
	r = run(thin, cdb, 16, BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
	fr_cdb_unmap(cdb, param, &plen, lbas, counts, 1);
	cdb[1] = 0x01;                            /* UNMAP ANCHOR */
	memcpy(buf, param, plen);
	r = run(thin, cdb, 10, plen);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);

	/* fully provisioned: no UNMAP at all, no WRITE SAME with UNMAP */
	fr_cdb_unmap(cdb, param, &plen, lbas, counts, 1);
	memcpy(buf, param, plen);
	r = run(lin, cdb, 10, plen);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x20, 0x00);
	fr_cdb_rw10(cdb, 0x41, 0, 8, 0x08);
	r = run(lin, cdb, 10, BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
	fr_cdb_rw16(cdb, 0x93, 0, 8, 0x08);
	r = run(lin, cdb, 16, BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
}

static void test_inquiry_and_mode_sense_fields(void **s)
{
	uint8_t cdb[16];
	struct fr_result r;

	(void)s;
	fr_cdb_inquiry(cdb, false, 0x80, 255);    /* page code without EVPD */
	r = run(thin, cdb, 6, 255);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);

	memset(cdb, 0, 16);
	cdb[0] = 0x1a;
	cdb[2] = 0xc0 | 0x08;                     /* saved values of the caching page */
	cdb[4] = 255;
	r = run(thin, cdb, 6, 255);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x39, 0x00);
	cdb[2] = 0x1c;                            /* a page we do not have */
	r = run(thin, cdb, 6, 255);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
	cdb[2] = 0x08;
	cdb[3] = 0x01;                            /* a subpage we do not have */
	r = run(thin, cdb, 6, 255);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
}

static void test_standard_inquiry(void **s)
{
	uint8_t cdb[16];
	struct fr_result r;
	bool sbc3 = false;

	(void)s;
	memset(buf, 0xaa, 260);
	fr_cdb_inquiry(cdb, false, 0, 260);
	r = run(thin, cdb, 6, 260);
	EXPECT_GOOD(r);
	assert_int_equal(buf[0], 0x00);
	assert_int_equal(buf[2], 0x06);
	assert_int_equal(buf[3] & 0x0f, 2);
	assert_int_equal(buf[4], 91);
	for (int i = 58; i < 74; i += 2)
		if ((buf[i] << 8 | buf[i + 1]) == 0x04c0)
			sbc3 = true;
	assert_true(sbc3);
	for (int i = 8; i < 36; i++)
		assert_true(buf[i] >= 0x20 && buf[i] <= 0x7e);
	for (int i = 96; i < 260; i++)
		assert_int_equal(buf[i], 0);

	memset(buf, 0xaa, 8);
	fr_cdb_inquiry(cdb, false, 0, 5);         /* short allocation length */
	r = run(thin, cdb, 6, 5);
	EXPECT_GOOD(r);
	assert_int_equal(buf[4], 91);
	assert_int_equal(buf[5], 0xaa);           /* nothing past the buffer */
}

static void test_out_of_range(void **s)
{
	uint8_t cdb[16];
	struct fr_result r;

	(void)s;
	fr_cdb_rw16(cdb, 0x88, NLBAS - 1, 2, 0);
	r = run(thin, cdb, 16, 2 * BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);

	/* and when the runner's own check is bypassed, the handler's path */
	fr_set_runner_range_check(false);
	r = run(thin, cdb, 16, 2 * BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);
	fr_cdb_rw16(cdb, 0x8a, NLBAS, 1, 0);
	r = run(lin, cdb, 16, BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);
	fr_set_runner_range_check(true);

	fr_cdb_get_lba_status(cdb, NLBAS, 24);
	r = run(thin, cdb, 16, 24);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);
	fr_cdb_get_lba_status(cdb, 0x8000000000000000ull, 24);
	r = run(thin, cdb, 16, 24);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);
	fr_cdb_get_lba_status(cdb, UINT64_MAX, 24);
	r = run(thin, cdb, 16, 24);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);

	fr_cdb_rw16(cdb, 0x8f, NLBAS - 4, 5, 0);  /* VERIFY(16) past the end */
	r = run(thin, cdb, 16, 0);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x21, 0x00);
	assert_int_equal(fr_violations(), 0);
}

static void test_verify_compares(void **s)
{
	uint8_t cdb[16];
	struct fr_result r;
	const size_t len = 64 * 1024;

	(void)s;
	fr_fill(buf, len, 3 * MIB, 9);
	fr_cdb_rw16(cdb, 0x8a, 3 * MIB / BS, len / BS, 0);
	r = run(lin, cdb, 16, len);
	EXPECT_GOOD(r);

	fr_cdb_rw16(cdb, 0x8f, 3 * MIB / BS, len / BS, 0x00); /* BYTCHK=0: medium check */
	r = run(lin, cdb, 16, 0);
	EXPECT_GOOD(r);
	fr_cdb_rw16(cdb, 0x8f, 3 * MIB / BS, len / BS, 0x02); /* BYTCHK=1, same data */
	r = run(lin, cdb, 16, len);
	EXPECT_GOOD(r);
	buf[1000] ^= 0xff;
	r = run(lin, cdb, 16, len);
	EXPECT_SENSE(r, KEY_MISCOMPARE, 0x1d, 0x00);
	assert_true(r.info_valid);
	assert_int_equal(r.info, 1000);
	fr_cdb_rw10(cdb, 0x2f, 3 * MIB / BS, 1, 0x04);        /* BYTCHK=10b reserved */
	r = run(lin, cdb, 10, BS);
	EXPECT_SENSE(r, KEY_ILLEGAL_REQUEST, 0x24, 0x00);
	assert_int_equal(fr_violations(), 0);
}

static void test_read_only_export(void **s)
{
	uint8_t cdb[16], param[64];
	size_t plen;
	struct fr_result r;
	const uint64_t lbas[] = { 0 };
	const uint32_t counts[] = { 2048 };

	(void)s;
	fr_cdb_rw10(cdb, 0x2a, 0, 8, 0);
	r = run(ro, cdb, 10, 8 * BS);
	EXPECT_SENSE(r, KEY_DATA_PROTECT, 0x27, 0x00);
	fr_cdb_rw16(cdb, 0x93, 0, 8, 0);
	r = run(ro, cdb, 16, BS);
	EXPECT_SENSE(r, KEY_DATA_PROTECT, 0x27, 0x00);
	fr_cdb_unmap(cdb, param, &plen, lbas, counts, 1);
	memcpy(buf, param, plen);
	r = run(ro, cdb, 10, plen);
	EXPECT_SENSE(r, KEY_DATA_PROTECT, 0x27, 0x00);
	fr_cdb_rw10(cdb, 0x28, 0, 8, 0);
	r = run(ro, cdb, 10, 8 * BS);
	EXPECT_GOOD(r);

	memset(cdb, 0, 16);
	cdb[0] = 0x1a;
	cdb[2] = 0x3f;
	cdb[4] = 255;
	r = run(ro, cdb, 6, 255);
	EXPECT_GOOD(r);
	assert_int_equal(buf[2] & 0x80, 0x80);    /* WP */
}

static struct tcmu_device *open_dev(const char *dir, const char *vd, const char *opts, uint64_t bytes)
{
	char cfg[PATH_MAX + 64];
	struct tcmu_device *dev;

	snprintf(cfg, sizeof(cfg), "vlun/%s/%s%s", dir, vd, opts);
	dev = fr_dev_new(cfg, bytes / BS, BS);
	if (!dev || fr_dev_open(dev) != 0)
		return NULL;
	return dev;
}

static int setup(void **s)
{
	(void)s;
	if (fr_pool_make(dir_thin, 1, 64 * MIB, "t", VLUN_LAYOUT_THIN, 8 * MIB, MIB) < 0 ||
	    fr_pool_make(dir_lin, 1, 64 * MIB, "l", VLUN_LAYOUT_LINEAR, 8 * MIB, 0) < 0 ||
	    fr_pool_make(dir_ro, 1, 64 * MIB, "r", VLUN_LAYOUT_THIN, 8 * MIB, MIB) < 0)
		return -1;
	thin = open_dev(dir_thin, "t", "", 8 * MIB);
	lin = open_dev(dir_lin, "l", "", 8 * MIB);
	ro = open_dev(dir_ro, "r", ";ro", 8 * MIB);
	return thin && lin && ro ? 0 : -1;
}

static int teardown(void **s)
{
	(void)s;
	fr_dev_close(thin);
	fr_dev_close(lin);
	fr_dev_close(ro);
	fr_dev_free(thin);
	fr_dev_free(lin);
	fr_dev_free(ro);
	fr_rmrf(dir_thin);
	fr_rmrf(dir_lin);
	fr_rmrf(dir_ro);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protect_fields_rejected),
		cmocka_unit_test(test_provisioning_fields),
		cmocka_unit_test(test_inquiry_and_mode_sense_fields),
		cmocka_unit_test(test_standard_inquiry),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_verify_compares),
		cmocka_unit_test(test_read_only_export),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, setup, teardown);
}
