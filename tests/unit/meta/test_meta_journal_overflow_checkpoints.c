/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When the journal is full, a commit writes a checkpoint instead, which
 * resets the journal; the state loads correctly all along. */
#include "metatest.h"

static void overflow(void **state)
{
	struct mt_pool p;
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	uint64_t jslots, ckpts = 0, last_a, last_b;
	char why[512];

	mt_pool_create(&p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_thin(&p, 4096); /* one INVALID extent */
	assert_int_equal(vlun_meta_init(p.m, p.n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p.m, p.n, d), 0);
	jslots = p.m[0].label.journal_bytes / 4096; /* one-extent records take one block */
	last_a = mt_slot_seq(&p, 0, 0);
	last_b = mt_slot_seq(&p, 0, 1);
	for (uint64_t k = 0; k < 2 * jslots + 10; k++) {
		struct vlun_extent x;
		struct vlun_meta_delta dl = mt_delta_one(&d->vdisks[0], k, 1, &x, k % 2, d->members[k % 2].data_start + k);

		assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
		d->generation++;
		assert_int_equal(vlun_meta_commit_delta(st, p.m, p.n, d, &dl, 1), 0);
		assert_int_equal(d->seq, k + 2);
		if (mt_slot_seq(&p, 0, 0) != last_a || mt_slot_seq(&p, 0, 1) != last_b) {
			/* this commit was a checkpoint: exactly when the journal was full */
			ckpts++;
			assert_int_equal((k + 1) % (jslots + 1), 0);
			last_a = mt_slot_seq(&p, 0, 0);
			last_b = mt_slot_seq(&p, 0, 1);
		}
		if (k % 37 == 0 || k + 1 == 2 * jslots + 10) {
			assert_int_equal(mt_load(&p, &got, NULL, why, sizeof(why)), 0);
			assert_true(mt_desc_equal(d, got, false));
			vlun_pool_desc_free(got);
		}
	}
	assert_int_equal(ckpts, 2);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(overflow),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
