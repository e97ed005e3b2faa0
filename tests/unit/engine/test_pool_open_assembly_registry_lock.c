/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pool assembly: unrelated files among the paths are ignored; a missing
 * member is refused with a reason naming its uuid and last path; members of
 * two pools mixed are refused unless pool=<name> picks one; opening the
 * same pool twice in a process returns the same object (registry), and
 * the advisory lock makes vlun_pool_paths_in_use() report it held until
 * the last close; vdisk delete/shrink of an open disk is refused.
 */
#include "vdisk_test.h"

static void test_assembly(void **state)
{
	struct et_pool a, b;
	et_pool_files(&a, 3, 8 << 20);
	et_pool_create(&a, "pa");
	et_pool_files(&b, 1, 8 << 20);
	et_pool_create(&b, "pb");
	char *junk = et_tmpfile(NULL, "junk", 1 << 20);

	/* Missing member 1. */
	char *two[3] = { a.paths[0], a.paths[2], junk };
	struct vlun_pool *p = NULL;
	char *why = NULL;
	int r = vlun_pool_open(two, 3, 0, &p, &why);
	assert_int_equal(r, -ENODEV);
	assert_non_null(why);
	assert_non_null(strstr(why, a.paths[1]));
	assert_non_null(strstr(why, "uuid"));
	free(why);
	why = NULL;
	/* Nothing held after the refusal. */
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 3, NULL), 0);

	/* Mixed pools. */
	char *mixed[6] = { a.paths[0], a.paths[1], a.paths[2], b.paths[0], junk, NULL };
	r = vlun_pool_open(mixed, 5, 0, &p, &why);
	assert_int_equal(r, -ENOTUNIQ);
	assert_non_null(strstr(why, "pa"));
	assert_non_null(strstr(why, "pb"));
	free(why);
	why = NULL;
	mixed[5] = "pool=pa";
	r = vlun_pool_open(mixed, 6, 0, &p, &why);
	assert_int_equal(r, 0);

	/* Registry: same object. */
	struct vlun_pool *p2 = NULL;
	assert_int_equal(vlun_pool_open(a.paths, 3, 0, &p2, NULL), 0);
	assert_ptr_equal(p, p2);
	assert_int_equal(vlun_pool_paths_in_use(&a.paths[1], 1, NULL), 1);
	assert_int_equal(vlun_pool_paths_in_use(b.paths, 1, NULL), 0);

	et_vdisk_create(p, "v", VLUN_LAYOUT_LINEAR, 4 << 20, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p2, "v");
	struct vlun_vdisk *vd2 = NULL;
	assert_int_equal(vlun_vdisk_open(p, "v", 0, &vd2, NULL), -EBUSY);
	assert_int_equal(vlun_vdisk_delete(p, "v", NULL), -EBUSY);
	assert_int_equal(vlun_vdisk_resize(p, "v", 2 << 20, true, NULL), -EBUSY);
	/* Online grow is allowed and visible. */
	assert_int_equal(vlun_vdisk_resize(p, "v", 6 << 20, false, NULL), 0);
	assert_int_equal(vlun_vdisk_size(vd), 6 << 20);
	et_write(vd, (6 << 20) - 4096, 4096, 4);
	et_check(vd, (6 << 20) - 4096, 4096, 4);
	vlun_vdisk_close(vd);
	assert_int_equal(vlun_vdisk_delete(p, "v", NULL), 0);

	vlun_pool_close(p);
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 3, NULL), 1); /* p2 still holds it */
	vlun_pool_close(p2);
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 3, NULL), 0);

	/* Read-only and no-lock opens do not lock. */
	assert_int_equal(vlun_pool_open(a.paths, 3, VLUN_OPEN_RDONLY, &p, NULL), 0);
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 3, NULL), 0);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(d->nmembers, 3);
	assert_int_equal(d->nvdisks, 0);
	vlun_pool_desc_free(d);
	vlun_pool_close(p);

	unlink(junk);
	free(junk);
	et_pool_cleanup(&a);
	et_pool_cleanup(&b);
}

static void test_add_member(void **state)
{
	struct et_pool a;
	et_pool_files(&a, 2, 8 << 20);
	char *saved = a.paths[1];
	a.n = 1;
	et_pool_create(&a, "grow");
	struct vlun_pool *p = et_pool_open(&a);
	uint64_t t0, t1;
	assert_int_equal(vlun_pool_space(p, &t0, NULL), 0);
	char *why = NULL;
	assert_int_equal(vlun_pool_add_member(p, saved, false, &why), 0);
	assert_int_equal(vlun_pool_space(p, &t1, NULL), 0);
	assert_true(t1 > t0);
	/* A disk larger than the first member needs the new one. */
	et_vdisk_create(p, "big", VLUN_LAYOUT_LINEAR, t0 + (1 << 20), 0, 0);
	vlun_pool_close(p);
	a.n = 2;
	p = et_pool_open(&a);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(d->nmembers, 2);
	assert_int_equal(d->nvdisks, 1);
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	et_pool_cleanup(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assembly),
		cmocka_unit_test(test_add_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
