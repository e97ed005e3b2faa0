/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Data written through the handler at queue depth 32 (some commands with
 * scattered iovecs, some crossing thin chunk boundaries) reads back
 * identical, never-written ranges read as zeros, SYNCHRONIZE CACHE
 * succeeds, and every command completes exactly once — for thin, linear
 * and striped disks, with 512 and 4096-byte blocks.
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
#define QD 32

static void run_qd32(uint32_t layout, uint32_t bs)
{
	char dir[PATH_MAX], cfg[PATH_MAX + 32];
	const uint64_t vsize = 48 * MIB;
	struct tcmu_device *dev;
	struct fr_cmd *cmds[QD];
	uint8_t *bufs[QD];
	uint8_t cdb[16];
	struct fr_result res;
	const size_t io = 64 * 1024;

	assert_int_equal(fr_pool_make(dir, 2, 64 * MIB, "vd", layout, vsize, layout == VLUN_LAYOUT_THIN ? MIB : 0), 0);
	snprintf(cfg, sizeof(cfg), "vlun/%s/vd", dir);
	dev = fr_dev_new(cfg, vsize / bs, bs);
	assert_non_null(dev);
	assert_int_equal(fr_dev_open(dev), 0);

	/* QD32 writes: 64 KiB each, at i MiB + i*4 KiB + 512 KiB so most
	 * of them cross nothing and the last ones straddle chunk borders. */
	for (int i = 0; i < QD; i++) {
		uint64_t off = (uint64_t)i * MIB + (uint64_t)i * 4096 + (i >= QD - 8 ? MIB - 32 * 1024 : 0);

		off -= off % bs;
		bufs[i] = malloc(io);
		assert_non_null(bufs[i]);
		fr_fill(bufs[i], io, off, 1);
		fr_cdb_rw16(cdb, 0x8a, off / bs, io / bs, 0);
		cmds[i] = fr_cmd_new(cdb, 16, bufs[i], io);
		if (i % 2)
			fr_cmd_set_iov_max(cmds[i], 4096);
	}
	for (int i = 0; i < QD; i++)
		fr_cmd_start(dev, cmds[i]);
	for (int i = 0; i < QD; i++) {
		assert_int_equal(fr_cmd_wait(cmds[i], &res), 0);
		EXPECT_GOOD(res);
		fr_cmd_free(cmds[i]);
	}

	fr_cdb_sync16(cdb);
	assert_int_equal(fr_exec(dev, cdb, 16, NULL, 0, &res), 0);
	EXPECT_GOOD(res);

	/* QD32 reads, verified */
	for (int i = 0; i < QD; i++) {
		uint64_t off = (uint64_t)i * MIB + (uint64_t)i * 4096 + (i >= QD - 8 ? MIB - 32 * 1024 : 0);

		off -= off % bs;
		memset(bufs[i], 0xa5, io);
		fr_cdb_rw16(cdb, 0x88, off / bs, io / bs, 0);
		cmds[i] = fr_cmd_new(cdb, 16, bufs[i], io);
		if (i % 3 == 0)
			fr_cmd_set_iov_max(cmds[i], 512);
		fr_cmd_start(dev, cmds[i]);
	}
	for (int i = 0; i < QD; i++) {
		uint64_t off = (uint64_t)i * MIB + (uint64_t)i * 4096 + (i >= QD - 8 ? MIB - 32 * 1024 : 0);

		off -= off % bs;
		assert_int_equal(fr_cmd_wait(cmds[i], &res), 0);
		EXPECT_GOOD(res);
		if (!fr_check(bufs[i], io, off, 1))
			print_error("data mismatch at command %d (offset %llu)\n", i, (unsigned long long)off);
		assert_true(fr_check(bufs[i], io, off, 1));
		fr_cmd_free(cmds[i]);
		free(bufs[i]);
	}

	/* A 1 MiB read of a never-written range gives zeros. */
	{
		uint8_t *z = malloc(MIB);
		uint64_t off = 40 * MIB;

		memset(z, 0x5a, MIB);
		fr_cdb_rw16(cdb, 0x88, off / bs, MIB / bs, 0);
		assert_int_equal(fr_exec(dev, cdb, 16, z, MIB, &res), 0);
		EXPECT_GOOD(res);
		for (size_t i = 0; i < MIB; i++)
			if (z[i]) {
				print_error("byte %zu of an unwritten range is %02x\n", i, z[i]);
				fail();
			}
		free(z);
	}

	fr_dev_close(dev);
	fr_dev_free(dev);
	assert_int_equal(fr_violations(), 0);
	fr_rmrf(dir);
}

static void test_thin_512(void **s) { (void)s; run_qd32(VLUN_LAYOUT_THIN, 512); }
static void test_thin_4096(void **s) { (void)s; run_qd32(VLUN_LAYOUT_THIN, 4096); }
static void test_linear_512(void **s) { (void)s; run_qd32(VLUN_LAYOUT_LINEAR, 512); }
static void test_striped_4096(void **s) { (void)s; run_qd32(VLUN_LAYOUT_STRIPED, 4096); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thin_512),
		cmocka_unit_test(test_thin_4096),
		cmocka_unit_test(test_linear_512),
		cmocka_unit_test(test_striped_4096),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
