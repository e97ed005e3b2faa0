/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pool assembly: unrelated files among the paths are ignored; a missing
 * member is refused with a reason naming its uuid and last path; members of
 * two pools mixed are refused unless pool=<name> picks one; opening the
 * same pool twice in a process returns the same object (registry), and
 * the advisory lock makes vlun_pool_paths_in_use() report it held until
 * the last close; vdisk delete/shrink of an open disk is refused. A lock
 * that another open file holds refuses a plain open at once; with
 * VLUN_OPEN_WAIT_LOCK (the handler's open after a restart) the open waits
 * for a holder that lets go within the grace, and still refuses one that
 * does not.
 */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

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

/* An OFD lock on the label block of a member, as a live holder has it. */
static int hold_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 4096 };
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	return fd;
}

static void *let_go_later(void *arg)
{
	usleep(300 * 1000);
	close(*(int *)arg);
	return NULL;
}

static void test_wait_lock(void **state)
{
	(void)state;
	struct et_pool a;
	et_pool_files(&a, 2, 8 << 20);
	et_pool_create(&a, "busy");
	struct vlun_pool *p = NULL;
	char *why = NULL;

	/* held: a plain open is refused, naming the member */
	int fd = hold_lock(a.paths[1]);
	assert_int_equal(vlun_pool_open(a.paths, 2, 0, &p, &why), -EBUSY);
	assert_non_null(why);
	assert_non_null(strstr(why, "held by another process"));
	assert_non_null(strstr(why, a.paths[1]));
	free(why);
	why = NULL;
	assert_null(p);

	/* the holder lets go 0.3 s later: the waiting open gets the pool */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, let_go_later, &fd), 0);
	assert_int_equal(vlun_pool_open(a.paths, 2, VLUN_OPEN_WAIT_LOCK, &p, &why), 0);
	pthread_join(t, NULL);
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 2, NULL), 1);
	vlun_pool_close(p);
	p = NULL;
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 2, NULL), 0);

	/* a holder that stays: refused after the grace, nothing left held */
	fd = hold_lock(a.paths[0]);
	assert_int_equal(vlun_pool_open(a.paths, 2, VLUN_OPEN_WAIT_LOCK, &p, &why), -EBUSY);
	assert_non_null(why);
	assert_non_null(strstr(why, a.paths[0]));
	free(why);
	close(fd);
	assert_int_equal(vlun_pool_paths_in_use(a.paths, 2, NULL), 0);
	et_pool_cleanup(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assembly),
		cmocka_unit_test(test_add_member),
		cmocka_unit_test(test_wait_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
