/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A checkpoint write torn after any number of bytes leaves the previous
 * state loadable (never the torn one), the member names the damaged slot,
 * and the next commit works and does not overwrite the good copy. */
#include "metatest.h"

static void torn_at_many_points(void **state)
{
	/* every tear point is inside the write (header block + payload) */
	static const uint32_t tears[] = { 0, 1, 511, 512, 4095, 4096, 4097, 8192, 12000, 20000 };

	for (size_t t = 0; t < VLUN_ARRAY_SIZE(tears); t++) {
		for (size_t victim = 0; victim < 2; victim++) {
			struct mt_pool p;
			struct vlun_meta *st = NULL;
			struct vlun_pool_desc *d, *old = NULL, *got = NULL;
			struct vlun_memdisk_faults f = { .tear_write_n = 1, .tear_bytes = tears[t] };
			char why[512];
			int r;

			mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
			d = mt_desc_random_min(&p, 3, 300, 20000);
			assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
			assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
			assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0); /* seq 2 in slot B */
			assert_int_equal(vlun_pool_desc_dup(d, &old), 0);

			/* every member tears the next write: the crash hits all of them */
			for (size_t i = 0; i < p.n; i++)
				vlun_memdisk_set_faults(p.m[i].dev, &f);
			/* change both ends of the payload so no tear can complete it by luck */
			d->generation += 100;
			d->vdisks[d->nvdisks - 1].extents[d->vdisks[d->nvdisks - 1].nextents - 1].dirty_id ^= 0x55;
			r = vlun_meta_commit(st, p.m, p.n, d);
			assert_int_equal(r, -EIO);
			assert_int_equal(d->seq, 2); /* untouched on failure */
			mt_crash_all(&p);

			assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
			if (!mt_desc_equal(old, got, false))
				fail_msg("tear %u victim %zu: loaded seq %llu gen %llu, expected seq %llu gen %llu", tears[t],
					 victim, (unsigned long long)got->seq, (unsigned long long)got->generation,
					 (unsigned long long)old->seq, (unsigned long long)old->generation);
			vlun_pool_desc_free(got);
			got = NULL;
			if (tears[t] >= 16) /* past the header's crc field: the copy is damaged */
				assert_non_null(strstr(p.m[victim].problem, "slot A"));
			else /* too short to change anything that matters: seq 1 still valid */
				assert_int_equal(mt_slot_seq(&p, victim, 0), 1);
			assert_int_equal(mt_slot_seq(&p, victim, 1), 2); /* the good copy is intact */

			/* the next commit (from the old in-memory state, and from a
			 * fresh load) works and goes to the damaged slot again */
			assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
			assert_int_equal(mt_slot_seq(&p, victim, 0), d->seq);
			assert_int_equal(mt_slot_seq(&p, victim, 1), 2);
			assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
			assert_true(mt_desc_equal(d, got, false));
			assert_string_equal(p.m[victim].problem, "");
			vlun_pool_desc_free(got);

			vlun_pool_desc_free(old);
			vlun_pool_desc_free(d);
			vlun_meta_free(st);
			mt_pool_destroy(&p);
		}
	}
}

static void torn_on_one_member_other_has_new(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL, *st2 = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	struct vlun_memdisk_faults f = { .tear_write_n = 1, .tear_bytes = 6000 };
	char why[512];

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random_min(&p, 2, 300, 6000);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	vlun_memdisk_set_faults(p.m[1].dev, &f);
	d->generation++;
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0); /* member 0 carries it */
	mt_crash_all(&p);
	assert_int_equal(mt_load(&p, &got, &st2, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	assert_string_equal(p.m[0].problem, "");
	assert_non_null(strstr(p.m[1].problem, "slot B"));
	assert_non_null(strstr(p.m[1].problem, "stale"));
	/* the next commit repairs member 1 in its damaged slot B */
	assert_int_equal(vlun_meta_commit(st2, p.m, p.n, got), 0);
	assert_int_equal(mt_slot_seq(&p, 1, 1), got->seq);
	assert_int_equal(mt_slot_seq(&p, 1, 0), 1);
	vlun_pool_desc_free(got);
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_string_equal(p.m[1].problem, "");
	vlun_pool_desc_free(got);
	vlun_meta_free(st2);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(torn_at_many_points),
		cmocka_unit_test(torn_on_one_member_other_has_new),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
