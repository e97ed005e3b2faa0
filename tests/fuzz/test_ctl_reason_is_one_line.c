/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control channel's refusal reasons quote request values, which may
 * hold any byte once %XX is decoded: they stay one printable line (found
 * by fuzz_ctl_request: "size=d%0a..." put a newline into the reason, and
 * so into the holder's log). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctl.h"

static void one_line(void **state)
{
	static const char *const reqs[] = {
		"vdisk-resize name=a size=d%0a\"ie=1",
		"vdisk-create name=a layout=th%0din size=1",
		"vdisk-create name=a layout=thin size=1 members=0,%1b[2J",
		"member-add path=/a force=%07",
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		assert_int_equal(vlun_ctl_check_request(reqs[i], strlen(reqs[i]), why, sizeof(why)), -EINVAL);
		assert_true(why[0] != '\0');
		for (const char *p = why; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	}
	/* and what is well-formed passes the checks */
	assert_int_equal(vlun_ctl_check_request("vdisk-delete name=a", 19, why, sizeof(why)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(one_line) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
