/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * On a thin disk: READ CAPACITY(16) says LBPME/LBPRZ, VPD B2 says LBPU,
 * LBPWS, LBPWS10, LBPRZ and provisioning type thin; GET LBA STATUS starts
 * all deallocated, shows exactly the chunks a write allocated, and shows
 * them deallocated again after UNMAP or WRITE SAME with UNMAP — after
 * which they read as zeros. On a linear disk none of that is advertised.
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
#define VSIZE (16 * MIB)
#define MB(x) ((uint64_t)(x) * MIB / BS) /* MiB -> blocks */

static char dir[PATH_MAX];
static struct tcmu_device *dev;

struct run { uint64_t lba, n; int status; };

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void expect_status(uint64_t start, const struct run *want, size_t nwant)
{
	uint8_t cdb[16], buf[8 + 16 * 32];
	struct fr_result res;
	size_t n;

	memset(buf, 0xee, sizeof(buf));
	fr_cdb_get_lba_status(cdb, start, sizeof(buf));
	assert_int_equal(fr_exec(dev, cdb, 16, buf, sizeof(buf), &res), 0);
	EXPECT_GOOD(res);
	n = (be(buf, 4) - 4) / 16;
	if (n != nwant) {
		for (size_t i = 0; i < n && i < 32; i++)
			print_error("got desc %zu: lba %llu n %llu status %d\n", i,
				    (unsigned long long)be(&buf[8 + 16 * i], 8),
				    (unsigned long long)be(&buf[8 + 16 * i + 8], 4), buf[8 + 16 * i + 12]);
	}
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *d = &buf[8 + 16 * i];

		assert_int_equal(be(d, 8), want[i].lba);
		assert_int_equal(be(d + 8, 4), want[i].n);
		assert_int_equal(d[12] & 0x0f, want[i].status);
	}
	for (size_t i = 8 + 16 * n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0); /* no stale bytes after the data */
}

static void write_at(uint64_t off, size_t len)
{
	uint8_t cdb[16], *buf = malloc(len);
	struct fr_result res;

	fr_fill(buf, len, off, 7);
	fr_cdb_rw16(cdb, 0x8a, off / BS, (uint32_t)(len / BS), 0);
	assert_int_equal(fr_exec(dev, cdb, 16, buf, len, &res), 0);
	EXPECT_GOOD(res);
	free(buf);
}

static void expect_zeros(uint64_t off, size_t len)
{
	uint8_t cdb[16], *buf = malloc(len);
	struct fr_result res;

	memset(buf, 0x77, len);
	fr_cdb_rw16(cdb, 0x88, off / BS, (uint32_t)(len / BS), 0);
	assert_int_equal(fr_exec(dev, cdb, 16, buf, len, &res), 0);
	EXPECT_GOOD(res);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
}

static void test_provisioning_is_advertised(void **s)
{
	uint8_t cdb[16], buf[64];
	struct fr_result res;

	(void)s;
	memset(buf, 0xaa, sizeof(buf));
	fr_cdb_inquiry(cdb, true, 0xb2, sizeof(buf));
	assert_int_equal(fr_exec(dev, cdb, 6, buf, sizeof(buf), &res), 0);
	EXPECT_GOOD(res);
	assert_int_equal(buf[1], 0xb2);
	assert_int_equal(be(&buf[2], 2), 4);
	assert_int_equal(buf[5], 0xe4); /* LBPU LBPWS LBPWS10, LBPRZ=001b */
	assert_int_equal(buf[6] & 0x07, 0x02); /* thin */
	for (size_t i = 8; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);

	memset(buf, 0xaa, sizeof(buf));
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x9e;
	cdb[1] = 0x10;
	cdb[13] = 32;
	assert_int_equal(fr_exec(dev, cdb, 16, buf, 32, &res), 0);
	EXPECT_GOOD(res);
	assert_int_equal(be(buf, 8), MB(16) - 1);
	assert_int_equal(be(&buf[8], 4), BS);
	assert_int_equal(buf[14] & 0xc0, 0xc0); /* LBPME, LBPRZ */

	assert_true(fr_dev_unmap_enabled(dev));
	assert_int_equal(fr_dev_opt_unmap_gran(dev), MB(1));
	assert_true(fr_dev_max_unmap_len(dev) > 0 && fr_dev_max_unmap_len(dev) <= 1024 * 1024);
}

static void test_status_follows_writes_and_unmaps(void **s)
{
	uint8_t cdb[16], param[64];
	size_t plen;
	struct fr_result res;

	(void)s;
	{
		const struct run r[] = { { 0, MB(16), 1 } };

		expect_status(0, r, 1);
	}
	write_at(2 * MIB, MIB);             /* exactly chunk 2 */
	write_at(5 * MIB + 4096, 4096);     /* inside chunk 5 */
	{
		const struct run r[] = {
			{ 0, MB(2), 1 }, { MB(2), MB(1), 0 }, { MB(3), MB(2), 1 },
			{ MB(5), MB(1), 0 }, { MB(6), MB(10), 1 },
		};

		expect_status(0, r, 5);
	}
	{
		/* starting inside a run: the first descriptor starts there */
		const struct run r[] = { { MB(5) + 8, MB(1) - 8, 0 }, { MB(6), MB(10), 1 } };

		expect_status(MB(5) + 8, r, 2);
	}
	{
		const uint64_t lbas[] = { MB(2) };
		const uint32_t counts[] = { (uint32_t)MB(1) };

		fr_cdb_unmap(cdb, param, &plen, lbas, counts, 1);
		assert_int_equal(fr_exec(dev, cdb, 10, param, plen, &res), 0);
		EXPECT_GOOD(res);
	}
	{
		const struct run r[] = { { 0, MB(5), 1 }, { MB(5), MB(1), 0 }, { MB(6), MB(10), 1 } };

		expect_status(0, r, 3);
	}
	expect_zeros(2 * MIB, MIB);

	/* WRITE SAME(16) with UNMAP over chunk 5 */
	{
		uint8_t blk[BS] = { 0 };

		fr_cdb_rw16(cdb, 0x93, MB(5), (uint32_t)MB(1), 0x08);
		assert_int_equal(fr_exec(dev, cdb, 16, blk, BS, &res), 0);
		EXPECT_GOOD(res);
	}
	{
		const struct run r[] = { { 0, MB(16), 1 } };

		expect_status(0, r, 1);
	}
	expect_zeros(5 * MIB, MIB);
	assert_int_equal(fr_violations(), 0);
}

static void test_short_allocation_length(void **s)
{
	uint8_t cdb[16], buf[24];
	struct fr_result res;

	(void)s;
	write_at(8 * MIB, MIB);
	memset(buf, 0xee, sizeof(buf));
	fr_cdb_get_lba_status(cdb, 0, sizeof(buf));
	assert_int_equal(fr_exec(dev, cdb, 16, buf, sizeof(buf), &res), 0);
	EXPECT_GOOD(res);
	assert_int_equal(be(buf, 4), 20); /* one descriptor fits */
	assert_int_equal(be(&buf[8], 8), 0);
	assert_int_equal(be(&buf[16], 4), MB(8));
	assert_int_equal(buf[20], 1);
}

static void test_linear_disk_is_fully_provisioned(void **s)
{
	char cfg[PATH_MAX + 32], dir2[PATH_MAX];
	struct tcmu_device *lin;
	uint8_t cdb[16], buf[64];
	struct fr_result res;

	(void)s;
	assert_int_equal(fr_pool_make(dir2, 1, 64 * MIB, "lin", VLUN_LAYOUT_LINEAR, 4 * MIB, 0), 0);
	snprintf(cfg, sizeof(cfg), "vlun/%s/lin", dir2);
	lin = fr_dev_new(cfg, MB(4), BS);
	assert_int_equal(fr_dev_open(lin), 0);
	assert_false(fr_dev_unmap_enabled(lin));

	fr_cdb_inquiry(cdb, true, 0xb2, sizeof(buf));
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(fr_exec(lin, cdb, 6, buf, sizeof(buf), &res), 0);
	EXPECT_GOOD(res);
	assert_int_equal(buf[1], 0xb2);
	assert_int_equal(buf[5], 0);
	assert_int_equal(buf[6] & 0x07, 0);

	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x9e;
	cdb[1] = 0x10;
	cdb[13] = 32;
	assert_int_equal(fr_exec(lin, cdb, 16, buf, 32, &res), 0);
	EXPECT_GOOD(res);
	assert_int_equal(buf[14] & 0xc0, 0);

	/* everything is mapped */
	fr_cdb_get_lba_status(cdb, 0, 64);
	assert_int_equal(fr_exec(lin, cdb, 16, buf, 64, &res), 0);
	EXPECT_GOOD(res);
	assert_int_equal(be(buf, 4), 20);
	assert_int_equal(be(&buf[16], 4), MB(4));
	assert_int_equal(buf[20], 0);
	fr_dev_close(lin);
	fr_dev_free(lin);
	fr_rmrf(dir2);
}

static int setup(void **s)
{
	char cfg[PATH_MAX + 32];

	(void)s;
	if (fr_pool_make(dir, 1, 64 * MIB, "thin", VLUN_LAYOUT_THIN, VSIZE, MIB) < 0)
		return -1;
	snprintf(cfg, sizeof(cfg), "vlun/%s/thin", dir);
	dev = fr_dev_new(cfg, VSIZE / BS, BS);
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
		cmocka_unit_test(test_provisioning_is_advertised),
		cmocka_unit_test(test_status_follows_writes_and_unmaps),
		cmocka_unit_test(test_short_allocation_length),
		cmocka_unit_test(test_linear_disk_is_fully_provisioned),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, setup, teardown);
}
