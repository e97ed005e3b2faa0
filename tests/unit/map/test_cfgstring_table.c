/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_cfg_parse: the documented grammar, with and without tcmu-runner's
 * "vlun/" prefix; invalid strings are refused with a precise reason. */
#include "maptest.h"

static const struct {
	const char *in, *pool, *vdisk;
	bool ro, wce;
} good[] = {
	{ "/var/lib/vlun/pool0/thin0", "/var/lib/vlun/pool0", "thin0", false, true },
	{ "vlun//var/lib/vlun/pool0/thin0", "/var/lib/vlun/pool0", "thin0", false, true },
	{ "vlun//a/b", "/a", "b", false, true },
	{ "/dev/mapper/lun*|thin0", "/dev/mapper/lun*", "thin0", false, true },
	{ "vlun//dev/mapper/lun*/x|d-1", "/dev/mapper/lun*/x", "d-1", false, true },
	{ "/m/a,/m/b/disk.0;ro", "/m/a,/m/b", "disk.0", true, true },
	{ "/p/d;wce=0", "/p", "d", false, false },
	{ "/p/d;ro;wce=1", "/p", "d", true, true },
	{ "d_0;members=/x/a,/x/b", "/x/a,/x/b", "d_0", false, true },
	{ "vlun/d_0;wce=0;members=/x/a", "/x/a", "d_0", false, false },
	/* snapshots: read-only unless rw */
	{ "/p/src@snap1", "/p", "src@snap1", true, true },
	{ "vlun//p/src@s.2;rw", "/p", "src@s.2", false, true },
	{ "/p/src@s;ro", "/p", "src@s", true, true },
	{ "src@s;rw;wce=0;members=/x/a", "/x/a", "src@s", false, false },
	{ "/dev/mapper/lun*|src@s", "/dev/mapper/lun*", "src@s", true, true },
};

static const struct {
	const char *in, *reason;
} bad[] = {
	{ "", "is empty" },
	{ "vlun/", "is empty" },
	{ "/p/a b", "cfgstring '/p/a b': vdisk name 'a b' has invalid characters (allowed: A-Z a-z 0-9 . _ -)" },
	{ "/p/d;foo", "cfgstring '/p/d;foo': unknown option 'foo' (known: ro, rw, wce=0|1, members=)" },
	{ "/p/src@", "snapshot name after '@' is missing" },
	{ "/p/@snap", "source vdisk name before '@' is missing" },
	{ "/p/a@b@c", "more than one '@'" },
	{ "/p/src@sn ap", "snapshot name 'sn ap' has invalid characters" },
	{ "/p/sr:c@snap", "source vdisk name 'sr:c' has invalid characters" },
	{ "/p/src@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "snapshot name 'a" },
	{ "/p/d;rw", "option 'rw' applies to snapshots only" },
	{ "/p/s@n;rw;ro", "'ro' and 'rw' contradict" },
	{ "/p/s@n;rw;rw", "option 'rw' given twice" },
	{ "/p/d;wce=2", "wce must be 0 or 1" },
	{ "/p/d;ro;ro", "option 'ro' given twice" },
	{ "/p/d;", "empty option" },
	{ "/p/d;;ro", "empty option" },
	{ "/p/", "vdisk name is missing" },
	{ "thin0", "no pool given" },
	{ "p/thin0", "pool item 'p' is not an absolute path" },
	{ "/thin0", "pool is empty" },
	{ "/a,,/b/d", "has an empty item" },
	{ "/a,b/d", "pool item 'b' is not an absolute path" },
	{ "/a|b|c", "more than one '|'" },
	{ "/p/d;members=/x", "not both" },
	{ "d;members=x", "members= item 'x' is not an absolute path" },
	{ "/p/..", "invalid characters" },
	{ "/p/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "longer than 63" },
};

static void test_valid(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct vlun_cfg c = { 0 };
		char *reason = NULL;
		int r = vlun_cfg_parse(good[i].in, &c, &reason);

		if (r != 0)
			fail_msg("'%s': %d %s", good[i].in, r, reason ? reason : "");
		assert_string_equal(c.pool_spec, good[i].pool);
		assert_string_equal(c.vdisk, good[i].vdisk);
		assert_int_equal(c.read_only, good[i].ro);
		assert_int_equal(c.wce, good[i].wce);
		assert_null(reason);
		vlun_cfg_clear(&c);
		vlun_cfg_clear(&c); /* idempotent */
	}
}

static void test_invalid(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vlun_cfg c = { 0 };
		char *reason = NULL;
		int r = vlun_cfg_parse(bad[i].in, &c, &reason);

		if (r != -EINVAL || !reason || !strstr(reason, bad[i].reason))
			fail_msg("'%s': expected -EINVAL and '%s', got %d '%s'", bad[i].in,
				 bad[i].reason, r, reason ? reason : "(none)");
		assert_null(c.pool_spec);
		assert_null(c.vdisk);
		free(reason);
	}
	/* the reason is optional */
	{
		struct vlun_cfg c = { 0 };

		assert_int_equal(vlun_cfg_parse("/p/a b", &c, NULL), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
