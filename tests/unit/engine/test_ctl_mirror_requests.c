/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control channel's mirror, migration and job verbs (lib/ctl.h):
 * well-formed requests pass the server's checks; a missing required key,
 * an unknown key, a value that is not a number, an unaligned range, a
 * range without a vdisk, a target that is also the source, a member index
 * out of range, a bad name and fail= other than 0/1 are refused with
 * EINVAL (ERANGE for numbers too large) and a reason naming the key.
 * Checked with vlun_ctl_check_request(), which runs the server's parsing
 * and checks without a pool.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctl.h"

static int check(const char *req, char *why, size_t len)
{
	return vlun_ctl_check_request(req, strlen(req), why, len);
}

static void accepted(void **state)
{
	static const char *const ok[] = {
		"mirror-add name=a",
		"mirror-add name=a start=1048576 length=2097152 members=1,2",
		"mirror-remove name=a",
		"mirror-remove name=a start=0 length=512 member=0",
		"mirror-split name=a new=b",
		"migrate from=0",
		"migrate name=a to=1,2 rate=52428800",
		"migrate name=a start=4096 length=0 from=1 to=2",
		"resync",
		"resync rate=0",
		"jobs",
		"job-cancel id=7",
		"member-fault idx=3 fail=1",
		"member-fault idx=3 fail=0",
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int r = check(ok[i], why, sizeof(why));

		if (r != 0)
			fail_msg("'%s' refused: %d %s", ok[i], r, why);
	}
}

static void refused(void **state)
{
	static const struct {
		const char *req;
		int err;
		const char *why; /* part of the reason */
	} bad[] = {
		{ "mirror-add", -EINVAL, "needs name=" },
		{ "mirror-add name=a member=1", -EINVAL, "does not take key 'member'" },
		{ "mirror-add name=a start=1000", -EINVAL, "start=1000 is not a multiple of 512" },
		{ "mirror-add name=a length=x", -EINVAL, "length=x is not a decimal number" },
		{ "mirror-add name=a members=1,1", -EINVAL, "members: index 1 is given twice" },
		{ "mirror-add name=a members=256", -ERANGE, "members=256 is too large" },
		{ "mirror-remove name=a member=1,2", -EINVAL, "member=1,2 is not a decimal number" },
		{ "mirror-remove name=a members=1", -EINVAL, "does not take key 'members'" },
		{ "mirror-split name=a", -EINVAL, "needs new=" },
		{ "mirror-split name=a new=b%2Fc", -EINVAL, "new=b/c is not a valid name" },
		{ "migrate start=0 length=512", -EINVAL, "start= and length= need name=" },
		{ "migrate from=1 to=2,1", -EINVAL, "to= lists member 1, the member given as from=" },
		{ "migrate from=256", -ERANGE, "from=256 is too large" },
		{ "migrate to=a", -EINVAL, "to=a is not a decimal number" },
		{ "migrate to=1,,2", -EINVAL, "to=1,,2 is not a comma-separated list" },
		{ "migrate rate=-1", -EINVAL, "rate=-1 is not a decimal number" },
		{ "migrate name=a size=1", -EINVAL, "does not take key 'size'" },
		{ "resync rate=1M", -EINVAL, "rate=1M is not a decimal number" },
		{ "jobs id=1", -EINVAL, "does not take key 'id'" },
		{ "job-cancel", -EINVAL, "needs id=" },
		{ "job-cancel id=4294967296", -ERANGE, "id=4294967296 is too large" },
		{ "member-fault idx=1", -EINVAL, "needs fail=" },
		{ "member-fault idx=1 fail=yes", -EINVAL, "fail=yes: use fail=0 or fail=1" },
		{ "member-fault idx=999 fail=1", -ERANGE, "idx=999 is too large" },
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = check(bad[i].req, why, sizeof(why));

		if (r != bad[i].err || !strstr(why, bad[i].why))
			fail_msg("'%s': got %d '%s', want %d '...%s...'", bad[i].req, r, why, bad[i].err, bad[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepted),
		cmocka_unit_test(refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
