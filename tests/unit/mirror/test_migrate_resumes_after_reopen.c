/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A rate-limited migration is interrupted by closing the pool (as a
 * restart of tcmu-runner would): the job is in the metadata, part of the
 * data has moved, and after the reopen the job resumes and finishes by
 * itself; the data is intact. A cancelled job leaves the metadata.
 */
#include "mirror_test.h"

#define SIZE (16ull << 20)

static uint64_t bytes_on(struct vlun_pool *p, uint32_t m, uint32_t *ret_njobs)
{
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	uint64_t t = 0;
	for (uint32_t k = 0; k < d->vdisks[0].nextents; k++)
		if (d->vdisks[0].extents[k].member == m)
			t += d->vdisks[0].extents[k].nsectors << VLUN_SECTOR_SHIFT;
	if (ret_njobs)
		*ret_njobs = d->njobs;
	vlun_pool_desc_free(d);
	return t;
}

static void test_migrate_resumes_after_reopen(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 2, MT_MEMBER_BYTES);
	et_pool_create(&tp, "mig");
	struct vlun_pool *p = et_pool_open(&tp);
	mt_linear_on(p, "d", SIZE, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d");
	et_write(vd, 0, SIZE, 5);
	uint32_t to = 1, id = 0, nj = 0;
	struct vlun_migrate_opts o = { .vdisk = "d", .from_member = VLUN_NO_MEMBER, .to = &to, .nto = 1,
				       .rate = 8ull << 20 };
	assert_int_equal(vlun_migrate_start(p, &o, &id, NULL), 0);
	/* interrupt it once some regions have moved (it needs >= 2 s) */
	for (int i = 0; i < 60000 && bytes_on(p, 0, NULL) == SIZE; i++)
		usleep(10000);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);

	p = et_pool_open(&tp);
	uint64_t left = bytes_on(p, 0, &nj);
	assert_int_equal(nj, 1);
	assert_true(left > 0 && left < SIZE);
	vd = et_vdisk_open(p, "d"); /* the holder starts the job thread */
	mt_wait_idle(p, "d");
	assert_int_equal(bytes_on(p, 0, &nj), 0);
	assert_int_equal(nj, 0);
	et_check(vd, 0, SIZE, 5);

	/* cancel: the job leaves the metadata, what moved stays moved */
	uint32_t back = 0;
	struct vlun_migrate_opts o2 = { .vdisk = "d", .from_member = VLUN_NO_MEMBER, .to = &back, .nto = 1,
					.rate = 1ull << 20 };
	assert_int_equal(vlun_migrate_start(p, &o2, &id, NULL), 0);
	usleep(300000);
	assert_int_equal(vlun_job_cancel(p, id, NULL), 0);
	assert_int_equal(vlun_job_cancel(p, id, NULL), -ENOENT);
	bytes_on(p, 0, &nj);
	assert_int_equal(nj, 0);
	et_check(vd, 0, SIZE, 5);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	et_skip_under_valgrind();
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_migrate_resumes_after_reopen) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
