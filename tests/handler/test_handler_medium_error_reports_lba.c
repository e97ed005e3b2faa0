/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A read that fails on the physical LUN (here: the member file was cut
 * short under the virtual disk) ends in MEDIUM ERROR / UNRECOVERED READ
 * ERROR whose INFORMATION field is an LBA of the command no later than the
 * first one that could not be read, never in GOOD with wrong data; reads
 * before the damage still work.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fr_test.h"
#include "vlun.h"

#define MIB (1024ull * 1024ull)
#define BS 512u

static void test_medium_error_lba(void **s)
{
	char dir[PATH_MAX], cfg[PATH_MAX + 32], member[PATH_MAX + 32];
	char **paths = NULL, *why = NULL;
	size_t n = 0;
	struct vlun_pool *p = NULL;
	struct vlun_pool_desc *d = NULL;
	uint64_t phys0, cut_v = 16 * MIB;
	struct tcmu_device *dev;
	struct fr_result r;
	uint8_t cdb[16];
	uint8_t *buf = malloc(MIB);

	(void)s;
	assert_int_equal(fr_pool_make(dir, 1, 64 * MIB, "vd", VLUN_LAYOUT_LINEAR, 32 * MIB, 0), 0);
	/* where virtual byte 0 lives on the member */
	assert_int_equal(vlun_pool_spec_expand(dir, &paths, &n, &why), 0);
	assert_int_equal(vlun_pool_open(paths, n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK, &p, &why), 0);
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(d->nvdisks, 1);
	assert_int_equal(d->vdisks[0].extents[0].vsector, 0);
	assert_true(d->vdisks[0].extents[0].nsectors * VLUN_SECTOR_SIZE > cut_v + MIB);
	phys0 = d->vdisks[0].extents[0].psector * VLUN_SECTOR_SIZE;
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	vlun_strv_free(paths, n);

	snprintf(cfg, sizeof(cfg), "vlun/%s/vd", dir);
	dev = fr_dev_new(cfg, 32 * MIB / BS, BS);
	assert_int_equal(fr_dev_open(dev), 0);

	/* the member ends at virtual offset 16 MiB from now on */
	snprintf(member, sizeof(member), "%s/member0.img", dir);
	assert_int_equal(truncate(member, (off_t)(phys0 + cut_v)), 0);

	fr_cdb_rw16(cdb, 0x88, (cut_v - MIB) / BS, MIB / BS, 0);  /* before the cut */
	assert_int_equal(fr_exec(dev, cdb, 16, buf, MIB, &r), 0);
	EXPECT_GOOD(r);

	fr_cdb_rw16(cdb, 0x88, (cut_v - MIB / 2) / BS, MIB / BS, 0); /* across it */
	assert_int_equal(fr_exec(dev, cdb, 16, buf, MIB, &r), 0);
	EXPECT_SENSE(r, KEY_MEDIUM_ERROR, 0x11, 0x00);
	/* INFORMATION: an LBA inside the command and not after the damage —
	 * a host treats the blocks before it as transferred, so it must never
	 * point past the first unreadable block. (The engine reports the start
	 * of the failing physical piece; exactly cut_v / BS would be ideal.) */
	assert_true(r.info_valid);
	if (r.info != cut_v / BS)
		print_message("note: INFORMATION is LBA %u, the first unreadable LBA is %llu\n", r.info,
			      (unsigned long long)(cut_v / BS));
	assert_true(r.info >= (cut_v - MIB / 2) / BS);
	assert_true(r.info <= cut_v / BS);

	fr_dev_close(dev);
	fr_dev_free(dev);
	assert_int_equal(fr_violations(), 0);
	fr_rmrf(dir);
	free(buf);
	free(why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_medium_error_lba),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
