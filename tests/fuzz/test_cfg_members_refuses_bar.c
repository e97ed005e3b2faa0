/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_cfg_parse: '|' cannot appear in a member path, also not in
 * members= (found by fuzz_cfg_parse: "x;members=/a|b" gave a pool spec
 * "/a|b" that no cfgstring can express again). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vlun.h"

static void refuses_bar(void **state)
{
	struct vlun_cfg c = { 0 };
	char *why = NULL;

	(void)state;
	assert_int_equal(vlun_cfg_parse("....;members=/.*v|un.", &c, &why), -EINVAL);
	assert_non_null(why);
	assert_non_null(strstr(why, "'|'"));
	assert_null(c.pool_spec);
	free(why);
	why = NULL;
	assert_int_equal(vlun_cfg_parse("d0;members=/a,/b|c", &c, &why), -EINVAL);
	free(why);
	why = NULL;
	/* still fine: '|' between a glob and the name, members= without it */
	assert_int_equal(vlun_cfg_parse("/dev/mapper/lun*|d0", &c, &why), 0);
	assert_string_equal(c.pool_spec, "/dev/mapper/lun*");
	vlun_cfg_clear(&c);
	assert_int_equal(vlun_cfg_parse("d0;members=/a,/b", &c, &why), 0);
	assert_string_equal(c.pool_spec, "/a,/b");
	vlun_cfg_clear(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(refuses_bar) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
