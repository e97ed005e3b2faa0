/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* open/refresh/preempt/release of a handle against a model of a target's
 * PR (prtest.h): every path registered before the reservation; a second
 * node admitted or refused as the mode says; a returning path registered
 * again; a preempted node fenced and never registering again; close
 * leaves nothing behind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "prtest.h"

#define K1 UINT64_C(0x1111)
#define K2 UINT64_C(0x2222)

struct fx {
	char *root;
	struct pt_target t;
	struct prmap_transport tr;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *const slaves[] = { "sdb", "sdc", NULL };

	f->root = pt_root();
	pt_add_disk(f->root, "sdb", "2:0:0:0");
	pt_add_disk(f->root, "sdc", "3:0:0:0");
	pt_add_disk(f->root, "sdd", "4:0:0:0");    /* node 2's own path */
	pt_add_dm(f->root, "dm-0", "mpath-3600\n", slaves);
	f->tr.path_in = pt_in;
	f->tr.path_out = pt_out;
	f->tr.ctx = &f->t;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	pt_rmrf(f->root);
	free(f->root);
	free(f);
	return 0;
}

static struct prmap_opts opts(struct fx *f, enum prmap_mode mode, uint64_t key)
{
	struct prmap_opts o = { .mode = mode, .key = key, .sysfs_root = f->root, .transport = &f->tr };
	return o;
}

static void test_exclusive(void **state)
{
	struct fx *f = *state;
	struct prmap_opts o1 = opts(f, PRMAP_EXCLUSIVE, K1), o2;
	struct prmap *m = NULL, *m2 = NULL;
	char *why = NULL;

	f->t.ua_pending = 2;      /* retried */
	assert_int_equal(prmap_open("dm-0", &o1, &m, &why), 0);
	assert_int_equal(pt_count(&f->t, K1), 2);
	assert_true(f->t.resv);
	assert_int_equal(f->t.resv_type, PRMAP_TYPE_WE_RO);
	assert_true(f->t.resv_key == K1);

	/* node 2: exclusive and shared refused, nothing registered */
	o2 = opts(f, PRMAP_EXCLUSIVE, K2);
	assert_int_equal(prmap_open("sdd", &o2, &m2, &why), -EBUSY);
	assert_non_null(strstr(why, "we-ro"));
	assert_non_null(strstr(why, "0x1111"));
	free(why);
	why = NULL;
	o2.mode = PRMAP_SHARED;
	assert_int_equal(prmap_open("sdd", &o2, &m2, NULL), -EBUSY);
	assert_int_equal(pt_count(&f->t, K2), 0);
	/* read-only admitted: registers, reserves nothing */
	o2.mode = PRMAP_READONLY;
	assert_int_equal(prmap_open("sdd", &o2, &m2, NULL), 0);
	assert_int_equal(pt_count(&f->t, K2), 1);
	assert_true(f->t.resv_key == K1);
	prmap_close(m2);
	assert_int_equal(pt_count(&f->t, K2), 0);

	/* reopen by the same node after a crash: admitted, nothing new reserved */
	struct prmap *again = NULL;
	assert_int_equal(prmap_open("dm-0", &o1, &again, NULL), 0);
	prmap_free(again);

	prmap_close(m);
	assert_int_equal(f->t.nreg, 0);
	assert_false(f->t.resv);
}

static void test_shared(void **state)
{
	struct fx *f = *state;
	struct prmap_opts o1 = opts(f, PRMAP_SHARED, K1), o2 = opts(f, PRMAP_SHARED, K2);
	struct prmap *m = NULL, *m2 = NULL, *x = NULL;

	assert_int_equal(prmap_open("dm-0", &o1, &m, NULL), 0);
	assert_int_equal(f->t.resv_type, PRMAP_TYPE_WE_AR);
	assert_int_equal(prmap_open("sdd", &o2, &m2, NULL), 0);     /* joins */
	assert_int_equal(pt_count(&f->t, K2), 1);
	o2.mode = PRMAP_EXCLUSIVE;
	assert_int_equal(prmap_open("sdd", &o2, &x, NULL), -EBUSY);
	/* the first node leaves: the reservation stays for node 2 */
	prmap_close(m);
	assert_int_equal(pt_count(&f->t, K1), 0);
	assert_true(f->t.resv);
	prmap_close(m2);
	assert_false(f->t.resv);
	assert_int_equal(f->t.nreg, 0);
}

static void test_refresh_and_fencing(void **state)
{
	struct fx *f = *state;
	struct prmap_opts o1 = opts(f, PRMAP_EXCLUSIVE, K1), o2 = opts(f, PRMAP_EXCLUSIVE, K2);
	struct prmap *m = NULL, *m2 = NULL;
	const char *const back[] = { "sde", NULL };
	unsigned n = 99;

	/* a path down at open is registered when it answers again */
	snprintf(f->t.offline[0], sizeof(f->t.offline[0]), "/dev/sdc");
	assert_int_equal(prmap_open("dm-0", &o1, &m, NULL), 0);
	assert_int_equal(pt_count(&f->t, K1), 1);
	assert_int_equal(prmap_refresh(m, &n), -ENODEV);
	assert_int_equal(n, 0);
	assert_non_null(strstr(prmap_last_error(m), "/dev/sdc"));
	f->t.offline[0][0] = 0;
	assert_int_equal(prmap_refresh(m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pt_count(&f->t, K1), 2);
	assert_int_equal(prmap_refresh(m, &n), 0);
	assert_int_equal(n, 0);       /* nothing twice */

	/* logout of sdc, login as sde (a new H:C:T:L) */
	pt_del_slave(f->root, "dm-0", "sdc");
	pt_add_disk(f->root, "sde", "5:0:0:0");
	pt_add_dm(f->root, "dm-0", "mpath-3600\n", back);
	assert_int_equal(prmap_refresh(m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pt_count(&f->t, K1), 3);   /* sdc's registration stays on the target */

	/* node 2 takes over with PREEMPT AND ABORT */
	assert_int_equal(prmap_attach("sdd", &o2, &m2, NULL), 0);
	assert_int_equal(prmap_preempt(m2, UINT64_C(0x9999), true), -ENOENT);
	assert_int_equal(prmap_preempt(m2, K1, true), 0);
	assert_int_equal(pt_count(&f->t, K1), 0);
	assert_true(f->t.resv_key == K2);
	assert_int_equal(f->t.resv_type, PRMAP_TYPE_WE_RO);

	/* node 1 is fenced: refresh says so and registers nothing, even for a
	 * path that comes back */
	unsigned before = f->t.n_register;
	pt_add_disk(f->root, "sdf", "6:0:0:0");
	const char *const more[] = { "sdf", NULL };
	pt_add_dm(f->root, "dm-0", "mpath-3600\n", more);
	assert_int_equal(prmap_refresh(m, &n), -EPERM);
	assert_true(prmap_fenced(m));
	assert_int_equal(prmap_refresh(m, &n), -EPERM);
	assert_int_equal(f->t.n_register, before);
	assert_int_equal(pt_count(&f->t, K1), 0);
	prmap_close(m);               /* a fenced close sends nothing */
	assert_int_equal(f->t.n_register, before);
	assert_true(f->t.resv_key == K2);

	/* node 2 leaves everything clean */
	assert_int_equal(prmap_release(m2), 0);
	assert_int_equal(f->t.nreg, 0);
	assert_false(f->t.resv);
	prmap_free(m2);
}

static void test_state(void **state)
{
	struct fx *f = *state;
	struct prmap_opts o1 = opts(f, PRMAP_SHARED, K1);
	struct prmap *m = NULL;
	struct prmap_state *s = NULL;

	assert_int_equal(prmap_open("dm-0", &o1, &m, NULL), 0);
	assert_int_equal(prmap_get_state(m, &s), 0);
	assert_true(s->is_mpath);
	assert_int_equal(s->n_paths, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(s->paths[i].err, 0);
		assert_true(s->paths[i].registered);
		assert_int_equal(s->paths[i].keys.n, 2);
		assert_true(s->paths[i].keys.keys[0] == K1);
		assert_true(s->paths[i].resv.present);
		assert_int_equal(s->paths[i].resv.type, PRMAP_TYPE_WE_AR);
	}
	assert_string_equal(s->paths[0].hctl, "2:0:0:0");
	prmap_state_free(s);
	prmap_close(m);
	assert_int_equal(f->t.nreg, 0);
}

static void test_bad_opts(void **state)
{
	struct fx *f = *state;
	struct prmap_opts o = opts(f, PRMAP_EXCLUSIVE, 0);
	struct prmap *m = NULL;
	char *why = NULL;

	assert_int_equal(prmap_open("dm-0", &o, &m, &why), -EINVAL);
	assert_non_null(strstr(why, "key"));
	free(why);
	o.key = K1;
	assert_int_equal(prmap_open("sdz", &o, &m, &why), -ENOENT);
	assert_non_null(strstr(why, "sdz"));
	free(why);
	assert_null(m);
	assert_int_equal(f->t.nreg, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_and_fencing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
