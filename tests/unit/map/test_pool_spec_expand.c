/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool specs expand to member paths: a directory (its regular files, not
 * subdirectories nor dot files), a glob, or a comma list; sorted and
 * deduplicated. Relative paths and empty results are refused with a
 * reason. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maptest.h"

static char dir[64];

static void touch(const char *name)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static int setup(void **state)
{
	char p[256];

	strcpy(dir, "/tmp/vlun-spec-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	touch("m2");
	touch("m1");
	touch("m10");
	touch(".hidden");
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/empty", dir);
	mkdir(p, 0700);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void expect(const char *spec, const char *const *names, size_t n)
{
	char **paths = NULL, *reason = NULL;
	size_t np = 0;

	if (vlun_pool_spec_expand(spec, &paths, &np, &reason) != 0)
		fail_msg("'%s': %s", spec, reason ? reason : "");
	assert_int_equal(np, n);
	for (size_t i = 0; i < n; i++) {
		char want[256];

		snprintf(want, sizeof(want), "%s/%s", dir, names[i]);
		assert_string_equal(paths[i], want);
	}
	vlun_strv_free(paths, np);
}

static void test_directory_glob_list(void **state)
{
	static const char *const all[] = { "m1", "m10", "m2" };
	static const char *const two[] = { "m1", "m2" };
	char spec[512];

	expect(dir, all, 3);
	snprintf(spec, sizeof(spec), "%s/", dir);
	expect(spec, all, 3);
	snprintf(spec, sizeof(spec), "%s/m?", dir);
	expect(spec, two, 2);
	snprintf(spec, sizeof(spec), "%s/m2,%s/m1,%s/m2", dir, dir, dir);
	expect(spec, two, 2);
	snprintf(spec, sizeof(spec), "%s/m1*,%s", dir, dir);
	expect(spec, all, 3);
}

static void test_refusals(void **state)
{
	char **paths = NULL, *reason = NULL, spec[512];
	size_t np = 0;

	assert_int_equal(vlun_pool_spec_expand("rel/dir", &paths, &np, &reason), -EINVAL);
	assert_non_null(strstr(reason, "is not absolute"));
	free(reason);

	snprintf(spec, sizeof(spec), "%s/empty", dir);
	assert_int_equal(vlun_pool_spec_expand(spec, &paths, &np, &reason), -ENOENT);
	assert_non_null(strstr(reason, "no regular files or block devices found"));
	free(reason);

	snprintf(spec, sizeof(spec), "%s/nomatch*", dir);
	assert_int_equal(vlun_pool_spec_expand(spec, &paths, &np, &reason), -ENOENT);
	free(reason);

	snprintf(spec, sizeof(spec), "%s/missing", dir);
	assert_int_equal(vlun_pool_spec_expand(spec, &paths, &np, &reason), -ENOENT);
	assert_non_null(strstr(reason, "No such file"));
	free(reason);

	snprintf(spec, sizeof(spec), "%s/m1,,%s/m2", dir, dir);
	assert_int_equal(vlun_pool_spec_expand(spec, &paths, &np, &reason), -EINVAL);
	assert_non_null(strstr(reason, "empty item"));
	free(reason);

	assert_int_equal(vlun_pool_spec_expand("/dev/null", &paths, &np, &reason), -EINVAL);
	assert_non_null(strstr(reason, "neither a regular file"));
	free(reason);
	assert_null(paths);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directory_glob_list),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
