/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_parse_size: malformed input is -EINVAL even when its digits alone
 * overflow uint64_t (found by fuzz_parse_size: "444...440.;" was -ERANGE);
 * a well-formed size too large is still -ERANGE. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vlun.h"

static void junk_wins(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(vlun_parse_size("444444444444444444444444440.;", &v), -EINVAL);
	assert_int_equal(vlun_parse_size("88882211111111111110#8", &v), -EINVAL);
	assert_int_equal(vlun_parse_size("99999999999999999999x", &v), -EINVAL);
	assert_int_equal(vlun_parse_size("99999999999999999999.5", &v), -EINVAL); /* fraction of bytes */
	assert_int_equal(v, 7);
	assert_int_equal(vlun_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(vlun_parse_size("99999999999999999999KiB", &v), -ERANGE);
	assert_int_equal(vlun_parse_size("16E", &v), -ERANGE);
	assert_int_equal(vlun_parse_size("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(junk_wins) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
