/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pure CDB layer (handler/scsi_cdb.c): decoders pull LBA, length and
 * flags from every CDB size; the status table maps to the right sense;
 * fixed sense carries INFORMATION only when it fits; FUA is derived from
 * the CDB; GET LBA STATUS merges adjacent runs and stops at the buffer;
 * MODE SENSE lengths are right for 6 and 10.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scsi_cdb.h"

static void test_decode_sizes(void **s)
{
	struct vscsi_rw rw;
	uint8_t c6[6] = { 0x08, 0x1f, 0xff, 0xfe, 0x00, 0 };
	uint8_t c10[10] = { 0x2a, 0x18, 0x12, 0x34, 0x56, 0x78, 0, 0x01, 0x00, 0 };
	uint8_t c12[12] = { 0xa8, 0x20, 0, 0, 0, 7, 0, 1, 0, 0, 0, 0 };
	uint8_t c16[16] = { 0x8a, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
			    0x00, 0x01, 0x00, 0x00, 0, 0 };
	uint8_t caw[16] = { 0x89, 0x08, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0 };
	uint8_t ws[16] = { 0x93, 0x19, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0 };

	(void)s;
	assert_int_equal(vscsi_decode_rw(c6, 6, &rw), VSCSI_OK);
	assert_int_equal(rw.kind, VSCSI_RW_READ);
	assert_int_equal(rw.lba, 0x1ffffe);
	assert_int_equal(rw.nblocks, 256);
	assert_int_equal(vscsi_decode_rw(c10, 10, &rw), VSCSI_OK);
	assert_int_equal(rw.kind, VSCSI_RW_WRITE);
	assert_int_equal(rw.lba, 0x12345678);
	assert_int_equal(rw.nblocks, 256);
	assert_true(rw.dpo && rw.fua);
	assert_int_equal(rw.protect, 0);
	assert_int_equal(vscsi_decode_rw(c12, 12, &rw), VSCSI_OK);
	assert_int_equal(rw.protect, 1);
	assert_int_equal(rw.lba, 7);
	assert_int_equal(rw.nblocks, 65536);
	assert_int_equal(vscsi_decode_rw(c16, 16, &rw), VSCSI_OK);
	assert_int_equal(rw.lba, 0x0102030405060708ull);
	assert_int_equal(rw.nblocks, 65536);
	assert_true(rw.fua && !rw.dpo);
	assert_int_equal(vscsi_decode_rw(caw, 16, &rw), VSCSI_OK);
	assert_int_equal(rw.kind, VSCSI_RW_COMPARE_AND_WRITE);
	assert_int_equal(rw.nblocks, 3);
	assert_true(rw.fua);
	assert_int_equal(vscsi_decode_rw(ws, 16, &rw), VSCSI_OK);
	assert_true(rw.anchor && rw.unmap && rw.ndob);
	assert_int_equal(vscsi_decode_rw(c16, 10, &rw), VSCSI_INVALID_FIELD_CDB); /* too short */
	c6[0] = 0x12;
	assert_int_equal(vscsi_decode_rw(c6, 6, &rw), VSCSI_NOT_HANDLED);
}

static void test_check_rw(void **s)
{
	struct vscsi_lu thin = { .num_lbas = 100, .block_size = 512, .thin = true };
	struct vscsi_lu ro = { .num_lbas = 100, .block_size = 512, .read_only = true };
	struct vscsi_rw rw = { .opcode = VSCSI_WRITE_SAME_16, .kind = VSCSI_RW_WRITE_SAME, .unmap = true };

	(void)s;
	assert_int_equal(vscsi_check_rw(&thin, &rw), VSCSI_OK);
	assert_int_equal(vscsi_check_rw(&ro, &rw), VSCSI_INVALID_FIELD_CDB);
	rw.unmap = false;
	assert_int_equal(vscsi_check_rw(&ro, &rw), VSCSI_WRITE_PROTECTED);
	rw.protect = 3;
	assert_int_equal(vscsi_check_rw(&thin, &rw), VSCSI_INVALID_FIELD_CDB);
	rw = (struct vscsi_rw){ .opcode = VSCSI_VERIFY_16, .kind = VSCSI_RW_VERIFY, .lba = 99, .nblocks = 1 };
	assert_int_equal(vscsi_check_rw(&thin, &rw), VSCSI_OK);
	rw.nblocks = 2;
	assert_int_equal(vscsi_check_rw(&thin, &rw), VSCSI_LBA_OUT_OF_RANGE);
	rw.lba = UINT64_MAX;
	assert_int_equal(vscsi_check_rw(&thin, &rw), VSCSI_LBA_OUT_OF_RANGE);
}

static void test_sense_table(void **s)
{
	static const struct { enum vscsi_status st; uint8_t k, a, q; } t[] = {
		{ VSCSI_INVALID_OPCODE, 5, 0x20, 0 }, { VSCSI_LBA_OUT_OF_RANGE, 5, 0x21, 0 },
		{ VSCSI_INVALID_FIELD_CDB, 5, 0x24, 0 }, { VSCSI_INVALID_FIELD_PARAM, 5, 0x26, 0 },
		{ VSCSI_PARAM_LIST_LENGTH, 5, 0x1a, 0 }, { VSCSI_SAVING_PARAMS_UNSUP, 5, 0x39, 0 },
		{ VSCSI_WRITE_PROTECTED, 7, 0x27, 0 }, { VSCSI_SPACE_ALLOC_FAILED, 7, 0x27, 7 },
		{ VSCSI_UNRECOVERED_READ, 3, 0x11, 0 }, { VSCSI_WRITE_ERROR, 3, 0x0c, 0 },
		{ VSCSI_MISCOMPARE, 0xe, 0x1d, 0 }, { VSCSI_INTERNAL_FAILURE, 4, 0x44, 0 },
	};
	struct vscsi_sense_code sc;
	uint8_t b[96];

	(void)s;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_true(vscsi_sense_code(t[i].st, &sc));
		assert_int_equal(sc.key, t[i].k);
		assert_int_equal(sc.asc, t[i].a);
		assert_int_equal(sc.ascq, t[i].q);
	}
	assert_false(vscsi_sense_code(VSCSI_OK, &sc));
	assert_false(vscsi_sense_code(VSCSI_NOT_HANDLED, &sc));
	assert_false(vscsi_sense_code((enum vscsi_status)1000, &sc));

	memset(b, 0xff, sizeof(b));
	assert_int_equal(vscsi_sense_build(b, sizeof(b), VSCSI_UNRECOVERED_READ, true, 0x12345), 18);
	assert_int_equal(b[0], 0xf0);
	assert_int_equal(b[2], 3);
	assert_int_equal(vscsi_get_be32(&b[3]), 0x12345);
	assert_int_equal(b[7], 10);
	assert_int_equal(b[12], 0x11);
	assert_int_equal(b[20], 0);
	vscsi_sense_build(b, sizeof(b), VSCSI_UNRECOVERED_READ, true, 1ull << 40);
	assert_int_equal(b[0], 0x70); /* does not fit: VALID clear */
	assert_int_equal(vscsi_get_be32(&b[3]), 0);
}

static void test_fua_from_cdb(void **s)
{
	uint8_t c[16] = { 0 };

	(void)s;
	c[0] = VSCSI_WRITE_10; c[1] = 0x08;
	assert_true(vscsi_cdb_write_fua(c, 10));
	c[1] = 0x10;
	assert_false(vscsi_cdb_write_fua(c, 10));
	c[0] = VSCSI_WRITE_6; c[1] = 0x08;
	assert_false(vscsi_cdb_write_fua(c, 6));
	c[0] = VSCSI_WRITE_VERIFY_16; c[1] = 0;
	assert_true(vscsi_cdb_write_fua(c, 16));
	c[0] = VSCSI_WRITE_SAME_16; c[1] = 0x08; /* that bit is UNMAP there */
	assert_false(vscsi_cdb_write_fua(c, 16));
	c[0] = VSCSI_COMPARE_AND_WRITE; c[1] = 0x08;
	assert_true(vscsi_cdb_write_fua(c, 16));
}

/* runs of 10 blocks alternating mapped/unmapped, but reported in pieces of 3 */
static int runs_cb(void *u, uint64_t lba, uint64_t max, bool *mapped, uint64_t *n)
{
	uint64_t end = (lba / 10 + 1) * 10, piece = end - lba < 3 ? end - lba : 3;

	(void)u;
	*mapped = (lba / 10) % 2 == 0;
	*n = piece < max ? piece : max;
	return 0;
}

static void test_lba_status_merges(void **s)
{
	struct vscsi_lu lu = { .num_lbas = 35, .block_size = 512, .thin = true };
	struct vscsi_get_lba_status g = { .lba = 5, .alloc_len = 0 };
	uint8_t buf[8 + 16 * 8];
	size_t used;

	(void)s;
	assert_int_equal(vscsi_build_lba_status(&g, &lu, runs_cb, NULL, buf, sizeof(buf), &used), VSCSI_OK);
	assert_int_equal(used, 8 + 4 * 16);
	assert_int_equal(vscsi_get_be32(buf), 4 + 4 * 16);
	assert_int_equal(vscsi_get_be64(&buf[8]), 5);
	assert_int_equal(vscsi_get_be32(&buf[16]), 5);
	assert_int_equal(buf[20], 0);
	assert_int_equal(vscsi_get_be64(&buf[24]), 10);
	assert_int_equal(vscsi_get_be32(&buf[32]), 10);
	assert_int_equal(buf[36], 1);
	assert_int_equal(vscsi_get_be64(&buf[56]), 30);
	assert_int_equal(vscsi_get_be32(&buf[64]), 5); /* clipped at the end */
	/* room for two descriptors only */
	assert_int_equal(vscsi_build_lba_status(&g, &lu, runs_cb, NULL, buf, 8 + 32 + 8, &used), VSCSI_OK);
	assert_int_equal(used, 8 + 32);
	assert_int_equal(vscsi_get_be32(buf), 4 + 32);
}

static void test_mode_sense_lengths(void **s)
{
	struct vscsi_lu lu = { .num_lbas = 8, .block_size = 512, .wce = true, .read_only = true };
	struct vscsi_mode_sense ms;
	uint8_t c6[6] = { 0x1a, 0, 0x3f, 0, 255, 0 }, c10[10] = { 0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0 };
	uint8_t buf[128], small[6];
	size_t full;

	(void)s;
	assert_int_equal(vscsi_decode_mode_sense(c6, 6, &ms), VSCSI_OK);
	assert_int_equal(vscsi_build_mode_sense(&ms, &lu, buf, sizeof(buf), &full), VSCSI_OK);
	assert_int_equal(full, 4 + 12 + 20 + 12);
	assert_int_equal(buf[0], full - 1);
	assert_int_equal(buf[2], 0x90); /* WP | DPOFUA */
	assert_int_equal(buf[4 + 12], 0x08);
	assert_int_equal(buf[4 + 12 + 2] & 0x04, 0x04);
	memset(small, 0xee, sizeof(small));
	assert_int_equal(vscsi_build_mode_sense(&ms, &lu, small, 5, &full), VSCSI_OK);
	assert_int_equal(small[5], 0xee); /* truncated to the allocation */

	assert_int_equal(vscsi_decode_mode_sense(c10, 10, &ms), VSCSI_OK);
	assert_true(ms.ten);
	assert_int_equal(vscsi_build_mode_sense(&ms, &lu, buf, sizeof(buf), &full), VSCSI_OK);
	assert_int_equal(full, 8 + 20);
	assert_int_equal(vscsi_get_be16(buf), full - 2);
	assert_int_equal(buf[3], 0x90);
	c10[2] = 0x48; /* changeable values: nothing changeable */
	assert_int_equal(vscsi_decode_mode_sense(c10, 10, &ms), VSCSI_OK);
	assert_int_equal(vscsi_build_mode_sense(&ms, &lu, buf, sizeof(buf), &full), VSCSI_OK);
	assert_int_equal(buf[8 + 2], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_sizes),
		cmocka_unit_test(test_check_rw),
		cmocka_unit_test(test_sense_table),
		cmocka_unit_test(test_fua_from_cdb),
		cmocka_unit_test(test_lba_status_merges),
		cmocka_unit_test(test_mode_sense_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
