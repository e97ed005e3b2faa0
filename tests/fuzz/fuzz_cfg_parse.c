/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_cfg_parse — the backstore cfgstring parser (vlun_cfg_parse) on
 * arbitrary strings. Never a crash or leak; a refusal always has a reason;
 * what it accepts obeys the grammar of vlun.h (a valid vdisk name, a pool
 * spec of absolute paths without ';' or '|', no empty items) and parses
 * back to the same result when written out again in canonical form.
 */
#include <string.h>

#include "fuzz.h"
#include "vlun.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	return 0;
}

static void check_spec(const char *spec)
{
	const char *p = spec;

	FUZZ_CHECK(*spec, "empty pool spec accepted");
	FUZZ_CHECK(!strpbrk(spec, ";|"), "pool spec '%s' contains ';' or '|'", spec);
	for (;;) {
		const char *comma = strchr(p, ',');

		FUZZ_CHECK(*p == '/', "pool spec item of '%s' is not an absolute path", spec);
		if (!comma)
			break;
		p = comma + 1;
	}
}

/* "<vdisk>" or "<source>@<snapshot>" (both valid names, one '@'). */
static bool disk_name_valid(const char *name)
{
	const char *at = strchr(name, '@');
	char src[VLUN_NAME_MAX + 1];

	if (!at)
		return vlun_name_valid(name);
	if ((size_t)(at - name) > VLUN_NAME_MAX)
		return false;
	memcpy(src, name, (size_t)(at - name));
	src[at - name] = '\0';
	return vlun_name_valid(src) && vlun_name_valid(at + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vlun_cfg c = { 0 }, c2 = { 0 };
	char *s, *reason = NULL, *canon = NULL;
	int r;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	r = vlun_cfg_parse(s, &c, &reason);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL || r == -ENOMEM, "unexpected error %d", r);
		FUZZ_CHECK(r == -ENOMEM || (reason && *reason), "refused without a reason");
		FUZZ_CHECK(!c.pool_spec && !c.vdisk, "output set on failure");
		goto out;
	}
	FUZZ_CHECK(reason == NULL, "a reason on success: %s", reason);
	FUZZ_CHECK(c.vdisk && disk_name_valid(c.vdisk), "accepted an invalid vdisk name");
	check_spec(c.pool_spec);

	/* a snapshot is read-only unless rw */
	FUZZ_CHECK(!strchr(c.vdisk, '@') || c.read_only || strstr(s, ";rw"), "writable snapshot without rw");
	/* canonical form: "<spec>|<vdisk>;ro;wce=N" (a writable snapshot:
	 * ";rw") must give the same */
	if (asprintf(&canon, "%s|%s%s;wce=%d", c.pool_spec, c.vdisk,
		     c.read_only ? ";ro" : strchr(c.vdisk, '@') ? ";rw" : "", c.wce) < 0)
		goto out;
	r = vlun_cfg_parse(canon, &c2, &reason);
	FUZZ_CHECK(r == 0, "canonical form '%s' of '%s' refused: %s", canon, s, reason ? reason : "?");
	FUZZ_CHECK(!strcmp(c.pool_spec, c2.pool_spec) && !strcmp(c.vdisk, c2.vdisk) &&
		   c.read_only == c2.read_only && c.wce == c2.wce,
		   "canonical form '%s' parses differently", canon);
out:
	vlun_cfg_clear(&c);
	vlun_cfg_clear(&c2);
	free(reason);
	free(canon);
	free(s);
	return 0;
}
