/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_config (what targetcli shows as "cfgstring invalid: <reason>")
 * accepts a good cfgstring with and without the "vlun/" prefix, and for a
 * bad one returns false with a reason naming what is wrong: bad grammar,
 * a pool directory without members, a missing virtual disk (listing the
 * ones that exist), and a comma (the kernel would cut the cfgstring there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fr_test.h"
#include "vlun.h"

#define MIB (1024ull * 1024ull)

static char dir[PATH_MAX];

/* cfgstring = pre + mid + post */
static char *check(const char *pre, const char *mid, const char *post, bool want)
{
	char cfg[PATH_MAX + 128];
	char *reason = NULL;
	bool ok;

	snprintf(cfg, sizeof(cfg), "%s%s%s", pre, mid, post);
	ok = fr_handler()->check_config(cfg, &reason);
	if (ok != want)
		print_error("check_config(%s) = %d, reason %s\n", cfg, ok, reason ? reason : "(none)");
	assert_int_equal(ok, want);
	if (!want) {
		assert_non_null(reason);
		assert_true(strlen(reason) > 10);
	}
	return reason;
}

static void test_reasons(void **s)
{
	char empty[PATH_MAX + 16], *r;

	(void)s;
	free(check("vlun/", dir, "/vd", true));
	free(check("", dir, "/vd", true));
	free(check("vlun/", dir, "/vd;wce=0;ro", true));

	r = check("vlun/", dir, "/vd;wce=7", false);            /* grammar */
	assert_non_null(strstr(r, "wce"));
	free(r);
	r = check("vlun/", dir, "/vd;bogus", false);
	assert_non_null(strstr(r, "bogus"));
	free(r);
	r = check("vlun/", "", "", false);
	free(r);

	r = check("vlun/", dir, "/nosuch", false);               /* missing vdisk */
	assert_non_null(strstr(r, "nosuch"));
	assert_non_null(strstr(r, "vd"));                       /* lists what exists */
	free(r);

	snprintf(empty, sizeof(empty), "%s/empty", dir);       /* no pool there */
	assert_int_equal(mkdir(empty, 0700), 0);
	r = check("vlun/", empty, "/vd", false);
	assert_non_null(strstr(r, empty));
	free(r);
	rmdir(empty);
	r = check("vlun/", dir, "/does-not-exist/vd", false);
	assert_non_null(strstr(r, "does-not-exist"));
	free(r);

	/* a comma list, valid for vlunctl, cannot pass through the kernel's
	 * TCMU dev_config (split at ','); the same members as a glob can */
	char list[2 * PATH_MAX + 64];
	snprintf(list, sizeof(list), "%s/member0.img,%s/member1.img", dir, dir);
	r = check("vlun/", list, "/vd", false);
	assert_non_null(strstr(r, "','"));
	assert_non_null(strstr(r, "glob"));
	free(r);
	r = check("", dir, "/vd;members=/a,/b", false);
	assert_non_null(strstr(r, "','"));
	free(r);
	free(check("vlun/", dir, "/member[01].img/vd", true));
}

static int setup(void **s)
{
	(void)s;
	return fr_pool_make(dir, 2, 64 * MIB, "vd", VLUN_LAYOUT_THIN, 8 * MIB, MIB);
}

static int teardown(void **s)
{
	(void)s;
	fr_rmrf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, setup, teardown);
}
