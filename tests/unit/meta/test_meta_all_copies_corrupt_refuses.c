/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* With no valid copy anywhere, load refuses with -EUCLEAN and a reason
 * naming every member and its problem; a corrupt newest copy loses to an
 * older good one instead of failing the pool; a newer incompatible copy
 * is refused as unsupported, never silently skipped. */
#include "metatest.h"

static void refuses_naming_members(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	char why[1024] = "";

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 1, 10);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	/* member 0: payloads damaged; member 1: headers damaged */
	for (int s = 0; s < 2; s++) {
		vlun_memdisk_data(p.m[0].dev)[mt_slot_off(&p, 0, s) + 4096 + 20] ^= 1;
		vlun_memdisk_data(p.m[1].dev)[mt_slot_off(&p, 1, s) + 60] ^= 1;
	}
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), -EUCLEAN);
	assert_null(got);
	assert_non_null(strstr(why, "mem:0"));
	assert_non_null(strstr(why, "mem:1"));
	assert_non_null(strstr(why, "payload crc mismatch (seq 2)"));
	assert_non_null(strstr(why, "header crc mismatch"));
	assert_non_null(strstr(p.m[0].problem, "slot A"));
	assert_non_null(strstr(p.m[0].problem, "slot B"));
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void corrupt_newest_falls_back(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL, *st2 = NULL;
	struct vlun_pool_desc *d, *old = NULL, *got = NULL;
	char why[1024] = "";

	mt_pool_create(&p, 1, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 1, 10);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	assert_int_equal(vlun_pool_desc_dup(d, &old), 0);
	d->generation++;
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	vlun_memdisk_data(p.m[0].dev)[mt_slot_off(&p, 0, 1) + 4096 + 30] ^= 0x40; /* seq 2 in B */
	assert_int_equal(mt_load(&p, &got, &st2, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(old, got, false));
	assert_non_null(strstr(p.m[0].problem, "slot B: payload crc mismatch (seq 2)"));
	/* the next commit overwrites the bad B, never the good A */
	assert_int_equal(vlun_meta_commit(st2, p.m, p.n, got), 0);
	assert_int_equal(got->seq, 3);
	assert_int_equal(mt_slot_seq(&p, 0, 1), 3);
	assert_int_equal(mt_slot_seq(&p, 0, 0), 1);
	vlun_pool_desc_free(got);
	vlun_pool_desc_free(old);
	vlun_meta_free(st2);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void newer_format_refused(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	char why[1024] = "";
	uint8_t *h;

	mt_pool_create(&p, 1, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(&p, 1, 10);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	/* slot B (seq 2) claims an unknown incompatible feature, crc fixed up */
	h = vlun_memdisk_data(p.m[0].dev) + mt_slot_off(&p, 0, 1);
	vlun_put_le64(h + 16, 1ull << 40);
	vlun_put_le32(h + 12, 0);
	vlun_put_le32(h + 12, vlun_crc32c(0, h, 4096));
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "upgrade"));
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refuses_naming_members),
		cmocka_unit_test(corrupt_newest_falls_back),
		cmocka_unit_test(newer_format_refused),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
