/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Journal records are replayed in order after the newest checkpoint;
 * records from before that checkpoint are never replayed; a torn record
 * ends the replay (its predecessors survive); a record missing on one
 * member is taken from another. */
#include "metatest.h"

/* Allocates vdisk 0's sectors [vs, vs+1) at member 0 sector ps. */
static void do_delta(struct mt_pool *p, struct vlun_meta *st, struct vlun_pool_desc *d, uint64_t vs,
		     uint64_t ps)
{
	struct vlun_extent x;
	struct vlun_meta_delta dl = mt_delta_one(&d->vdisks[0], vs, 1, &x, 0, ps);

	assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
	d->generation++;
	assert_int_equal(vlun_meta_commit_delta(st, p->m, p->n, d, &dl, 1), 0);
}

static uint64_t jrec_seq(struct mt_pool *p, size_t i, uint64_t pos)
{
	const uint8_t *b = vlun_memdisk_data(p->m[i].dev) + p->m[i].label.journal_offset + pos;

	return memcmp(b, "VLUNJRNL", 8) ? 0 : vlun_get_le64(b + 40);
}

static void replay_in_order(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	char why[512];

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_thin(&p, 64); /* all INVALID */
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	/* overlapping deltas: order matters (10 is mapped twice, last wins) */
	do_delta(&p, st, d, 10, d->members[0].data_start + 0);
	do_delta(&p, st, d, 11, d->members[0].data_start + 1);
	do_delta(&p, st, d, 63, d->members[0].data_start + 2);
	do_delta(&p, st, d, 0, d->members[0].data_start + 3);
	{
		/* a multi-extent delta remapping 9..12 */
		struct vlun_extent x[2] = {
			{ .vsector = 9, .nsectors = 2, .member = 0, .alt_member = VLUN_NO_MEMBER,
			  .psector = d->members[0].data_start + 10 },
			{ .vsector = 11, .nsectors = 2, .member = VLUN_NO_MEMBER, .alt_member = VLUN_NO_MEMBER,
			  .flags = VLUN_EXT_ZERO },
		};
		struct vlun_meta_delta dl = { .vdisk_id = d->vdisks[0].id, .vsector = 9, .nsectors = 4,
					      .nextents = 2, .extents = x, .generation = 77 };

		assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
		assert_int_equal(vlun_meta_commit_delta(st, p.m, p.n, d, &dl, 1), 0);
	}
	assert_int_equal(d->seq, 6);
	assert_int_equal(jrec_seq(&p, 0, 0), 2); /* journal, not a checkpoint */
	assert_int_equal(mt_slot_seq(&p, 0, 1), 0);
	assert_int_equal(vlun_pool_desc_validate(d, why, sizeof(why)), 0);

	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	assert_int_equal(got->vdisks[0].generation, 77);
	assert_int_equal(p.m[0].newest_seq, 6);
	assert_string_equal(p.m[0].problem, "");
	vlun_pool_desc_free(got);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void stale_records_before_checkpoint_ignored(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *ck = NULL, *got = NULL;
	char why[512];

	mt_pool_create(&p, 1, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_thin(&p, 64);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);             /* seq 1 */
	for (uint64_t k = 0; k < 5; k++)
		do_delta(&p, st, d, k, d->members[0].data_start + k);      /* seq 2..6 */
	/* a checkpoint of a state WITHOUT those deltas (e.g. they were undone):
	 * the old records 2..6 still sit in the journal */
	vlun_pool_desc_free(d);
	d = mt_desc_thin(&p, 64);
	d->generation = 1000;
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);             /* seq 7 */
	assert_int_equal(jrec_seq(&p, 0, 4096), 3);
	assert_int_equal(vlun_pool_desc_dup(d, &ck), 0);
	do_delta(&p, st, d, 40, d->members[0].data_start + 40);            /* seq 8 at pos 0 */
	assert_int_equal(jrec_seq(&p, 0, 0), 8);
	assert_int_equal(jrec_seq(&p, 0, 4096), 3);                         /* stale, after it */

	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	assert_int_equal(got->seq, 8);
	/* none of the stale allocations of sectors 0..4 came back */
	assert_int_equal(got->vdisks[0].nextents, 3);
	assert_int_equal(got->vdisks[0].extents[0].nsectors, 40);
	assert_true(got->vdisks[0].extents[0].flags & VLUN_EXT_INVALID);
	vlun_pool_desc_free(got);
	vlun_pool_desc_free(ck);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void torn_record_ends_replay(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL, *st2 = NULL;
	struct vlun_pool_desc *d, *before = NULL, *got = NULL;
	struct vlun_memdisk_faults f = { .tear_write_n = 1, .tear_bytes = 100 };
	char why[512];

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_thin(&p, 64);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	do_delta(&p, st, d, 1, d->members[0].data_start + 1);
	do_delta(&p, st, d, 2, d->members[0].data_start + 2);
	assert_int_equal(vlun_pool_desc_dup(d, &before), 0);
	for (size_t i = 0; i < p.n; i++)
		vlun_memdisk_set_faults(p.m[i].dev, &f);
	{
		struct vlun_extent x;
		struct vlun_meta_delta dl = mt_delta_one(&d->vdisks[0], 3, 1, &x, 0, d->members[0].data_start + 3);

		assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
		assert_int_equal(vlun_meta_commit_delta(st, p.m, p.n, d, &dl, 1), -EIO);
	}
	mt_crash_all(&p);
	assert_int_equal(mt_load(&p, &got, &st2, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(before, got, false));
	assert_non_null(strstr(p.m[0].problem, "journal seq 4"));
	/* the next commit continues without trouble */
	do_delta(&p, st2, got, 5, got->members[0].data_start + 5);
	vlun_pool_desc_free(d);
	assert_int_equal(mt_load(&p, &d, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(got, d, false));
	assert_string_equal(p.m[0].problem, "");
	vlun_pool_desc_free(got);
	vlun_pool_desc_free(before);
	vlun_meta_free(st2);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void record_taken_from_other_member(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	char why[512];

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_thin(&p, 64);
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	for (uint64_t k = 0; k < 4; k++)
		do_delta(&p, st, d, k, d->members[0].data_start + k);
	/* damage record 3 (pos 4096) on member 0 and record 4 on member 1 */
	vlun_memdisk_data(p.m[0].dev)[p.m[0].label.journal_offset + 4096 + 200] ^= 1;
	vlun_memdisk_data(p.m[1].dev)[p.m[1].label.journal_offset + 8192 + 200] ^= 1;
	assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, got, false));
	assert_non_null(strstr(p.m[0].problem, "journal seq 3"));
	assert_non_null(strstr(p.m[1].problem, "journal seq 4"));
	vlun_pool_desc_free(got);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void apply_delta_rejects_bad_ranges(void **state)
{
	struct mt_pool p;
	struct vlun_pool_desc *d;
	struct vlun_extent x;
	struct vlun_meta_delta dl;

	mt_pool_create(&p, 1, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_thin(&p, 64);
	dl = mt_delta_one(&d->vdisks[0], 60, 8, &x, VLUN_NO_MEMBER, 0);
	assert_int_equal(vlun_meta_apply_delta(d, &dl), -EINVAL); /* past the end */
	dl = mt_delta_one(&d->vdisks[0], 0, 4, &x, VLUN_NO_MEMBER, 0);
	x.nsectors = 3;                                            /* does not cover the range */
	assert_int_equal(vlun_meta_apply_delta(d, &dl), -EINVAL);
	dl = mt_delta_one(&d->vdisks[0], 0, 4, &x, VLUN_NO_MEMBER, 0);
	dl.vdisk_id = 999;
	assert_int_equal(vlun_meta_apply_delta(d, &dl), -ENOENT);
	assert_int_equal(d->vdisks[0].nextents, 1);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replay_in_order),
		cmocka_unit_test(stale_records_before_checkpoint_ignored),
		cmocka_unit_test(torn_record_ends_replay),
		cmocka_unit_test(record_taken_from_other_member),
		cmocka_unit_test(apply_delta_rejects_bad_ranges),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
