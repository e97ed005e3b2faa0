/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_ctl_request — the control channel's request parser and checks
 * (lib/ctl.c through vlun_ctl_check_request: length, NUL bytes, syntax,
 * %XX decoding, verbs, keys, numbers, member lists) on arbitrary bytes,
 * without a pool, so nothing is executed. Never a crash or leak; the
 * answer is 0 or one of the errnos ctl.h promises (EINVAL, EOPNOTSUPP,
 * E2BIG, ERANGE for numbers too large), always with a one-line reason.
 */
#include <string.h>

#include "ctl.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	int r;

	memset(why, 0x5a, sizeof(why));
	r = vlun_ctl_check_request((const char *)data, size, why, sizeof(why));
	FUZZ_CHECK(memchr(why, '\0', sizeof(why)), "reason not terminated");
	if (r == 0)
		return 0;
	FUZZ_CHECK(r == -EINVAL || r == -EOPNOTSUPP || r == -E2BIG || r == -ERANGE,
		   "unexpected answer %d (%s)", r, why);
	FUZZ_CHECK(why[0] != '\0', "refused (%d) without a reason", r);
	FUZZ_CHECK(!strchr(why, '\n'), "reason is not one line: %s", why);
	if (size > VLUN_CTL_REQ_MAX)
		FUZZ_CHECK(r == -E2BIG, "over-long request answered %d", r);
	return 0;
}
