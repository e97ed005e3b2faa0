/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Two sessions created back to back share one saved copy per chunk; a
 * write between two creations gives them separate copies; deleting a
 * session frees only the chunks no other session needs, and the last
 * delete removes the reserve vdisk (its space returns to the pool). The
 * usage figures of vlunctl snapshot list say so.
 */
#include "snap_test.h"

#define SZ (1ull << 20)
#define CB (64ull << 10)

static void test_share(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 1, 16 << 20);
	et_pool_create(&tp, "snapshare");
	struct vlun_pool *p = et_pool_open(&tp);
	uint64_t free0;
	assert_int_equal(vlun_pool_space(p, NULL, &free0), 0);
	et_vdisk_create(p, "src", VLUN_LAYOUT_LINEAR, SZ, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "src");
	uint8_t *model = et_alloc(SZ), *ia = et_alloc(SZ), *ic = et_alloc(SZ);
	st_write(vd, model, 0, SZ, 1);
	assert_int_equal(st_create(p, "src", "a", 4 << 20, CB, -1), 0);
	assert_int_equal(st_create(p, "src", "b", 0, 0, -1), 0);
	memcpy(ia, model, SZ);
	/* every chunk once: one shared copy each */
	st_write(vd, model, 0, SZ, 2);
	struct vlun_snapshot_info a = st_info(p, "src", "a"), b = st_info(p, "src", "b");
	assert_int_equal(a.saved_bytes, SZ);
	assert_int_equal(a.shared_bytes, SZ);
	assert_int_equal(b.saved_bytes, SZ);
	assert_int_equal(a.reserve_used_bytes, SZ);
	assert_int_equal(a.chunk_bytes, CB);
	/* c after a write; chunk 0 written again: c gets its own copy */
	assert_int_equal(st_create(p, "src", "c", 0, 0, -1), 0);
	memcpy(ic, model, SZ);
	st_write(vd, model, 0, 4096, 3);
	struct vlun_snapshot_info c = st_info(p, "src", "c");
	assert_int_equal(c.saved_bytes, CB);
	assert_int_equal(c.shared_bytes, 0);
	assert_int_equal(c.reserve_used_bytes, SZ + CB);
	assert_int_equal(vlun_snapshot_create(p, &(struct vlun_snapshot_create_opts){ .source = "src", .name = "c",
										 .full_policy = -1 }, NULL), -EEXIST);

	/* deleting a: b still needs every copy */
	assert_int_equal(vlun_snapshot_delete(p, "src", "a", NULL), 0);
	b = st_info(p, "src", "b");
	assert_int_equal(b.reserve_used_bytes, SZ + CB);
	assert_int_equal(b.shared_bytes, 0);
	/* deleting b: its copies go, c's stays */
	assert_int_equal(vlun_snapshot_delete(p, "src", "b", NULL), 0);
	c = st_info(p, "src", "c");
	assert_int_equal(c.reserve_used_bytes, CB);
	st_expect_snap(p, "src@c", ic, SZ);
	/* source delete refused while sessions exist, with the reason */
	char *why = NULL;
	vlun_vdisk_close(vd);
	assert_int_equal(vlun_vdisk_delete(p, "src", &why), -EBUSY);
	assert_non_null(strstr(why, "snapshot"));
	free(why);
	why = NULL;
	assert_int_equal(vlun_vdisk_delete(p, ".snap.src", &why), -EBUSY);
	assert_non_null(strstr(why, "reserve"));
	free(why);
	struct vlun_vdisk *rv = NULL;
	assert_int_equal(vlun_vdisk_open(p, ".snap.src", 0, &rv, NULL), -EPERM);
	/* the last session takes the reserve with it */
	assert_int_equal(vlun_snapshot_delete(p, "src", "c", NULL), 0);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(d->nsnaps, 0);
	assert_int_equal(d->nsnap_stores, 0);
	assert_int_equal(d->nvdisks, 1);
	vlun_pool_desc_free(d);
	assert_int_equal(vlun_vdisk_delete(p, "src", NULL), 0);
	uint64_t free1;
	assert_int_equal(vlun_pool_space(p, NULL, &free1), 0);
	assert_int_equal(free1, free0);
	vlun_pool_close(p);
	free(model);
	free(ia);
	free(ic);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_share) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
