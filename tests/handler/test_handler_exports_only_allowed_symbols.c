/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * handler_vlun.so must load in tcmu-runner: every undefined dynamic symbol
 * must be provided by a library it links (libtcmu.so.2, libc, liburing,
 * ...) or by the runner executable, which exports only main-syms.txt.
 * (tcmu_emulate_*, alua and other tcmur_* symbols link but fail at load.)
 * And it must export handler_init and nothing else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_runner.h"

/* tcmu-runner 1.5.4 main-syms.txt */
static const char *const runner_syms[] = {
	"tcmur_register_handler", "tcmur_handle_caw", "tcmur_handle_writesame",
	"tcmu_notify_lock_lost", "tcmu_notify_conn_lost", "tcmu_notify_cmd_timed_out",
	"tcmu_event_name", "tcmur_dev_update_size", "tcmur_dev_set_private",
	"tcmur_dev_get_private", "tcmur_cmd_complete",
};

struct strset {
	char **v;
	size_t n, cap;
};

static void set_add(struct strset *s, const char *x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->v = realloc(s->v, s->cap * sizeof(char *));
		assert_non_null(s->v);
	}
	s->v[s->n++] = strdup(x);
}

static void set_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strset){ 0 };
}

static bool set_has(const struct strset *s, const char *x)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], x) == 0)
			return true;
	return false;
}

/* Runs a command, calls fn for every output line. */
static int each_line(const char *cmd, void (*fn)(const char *line, void *u), void *u)
{
	char line[4096];
	FILE *f = popen(cmd, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		fn(line, u);
	}
	return pclose(f);
}

/* "libx.so.1 => /path (0x...)" from ldd */
static void ldd_line(const char *line, void *u)
{
	const char *a = strstr(line, "=> /");
	char path[1024];

	if (a && sscanf(a + 3, "%1023s", path) == 1)
		set_add(u, path);
}

/* "0000000000001234 T name@VER" or "  U name@VER" */
static void nm_defined(const char *line, void *u)
{
	char addr[64], type[8], name[1024];

	if (sscanf(line, "%63s %7s %1023s", addr, type, name) == 3 && strcmp(type, "U") != 0) {
		name[strcspn(name, "@")] = '\0';
		set_add(u, name);
	}
}

static void nm_undefined(const char *line, void *u)
{
	char type[8], name[1024];

	if (sscanf(line, "%7s %1023s", type, name) == 2 && strcmp(type, "U") == 0) {
		name[strcspn(name, "@")] = '\0';
		set_add(u, name);
	}
}

static void test_undefined_symbols_are_provided(void **state)
{
	struct strset libs = { 0 }, defined = { 0 }, undef = { 0 };
	const char *so = fr_handler_path();
	char cmd[2048];
	unsigned bad = 0;

	(void)state;
	snprintf(cmd, sizeof(cmd), "ldd '%s'", so);
	assert_int_equal(each_line(cmd, ldd_line, &libs), 0);
	assert_true(libs.n > 0);
	for (size_t i = 0; i < libs.n; i++) {
		snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", libs.v[i]);
		assert_int_equal(each_line(cmd, nm_defined, &defined), 0);
	}
	for (size_t i = 0; i < sizeof(runner_syms) / sizeof(runner_syms[0]); i++)
		set_add(&defined, runner_syms[i]);

	snprintf(cmd, sizeof(cmd), "nm -D --undefined-only '%s'", so);
	assert_int_equal(each_line(cmd, nm_undefined, &undef), 0);
	assert_true(undef.n > 0);
	for (size_t i = 0; i < undef.n; i++) {
		if (!set_has(&defined, undef.v[i])) {
			print_error("undefined symbol %s is provided neither by a linked library nor by tcmu-runner's main-syms.txt\n",
				    undef.v[i]);
			bad++;
		}
	}
	set_free(&libs);
	set_free(&defined);
	set_free(&undef);
	assert_int_equal(bad, 0);
}

static void export_line(const char *line, void *u)
{
	char addr[64], type[8], name[1024];

	if (sscanf(line, "%63s %7s %1023s", addr, type, name) == 3 && (type[0] == 'T' || type[0] == 'D' ||
	    type[0] == 'B' || type[0] == 'W' || type[0] == 'V' || type[0] == 'R'))
		set_add(u, name);
}

static void test_only_handler_init_is_exported(void **state)
{
	struct strset exp = { 0 };
	char cmd[2048];

	(void)state;
	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", fr_handler_path());
	assert_int_equal(each_line(cmd, export_line, &exp), 0);
	for (size_t i = 0; i < exp.n; i++)
		if (strcmp(exp.v[i], "handler_init") != 0)
			print_error("unexpected export %s\n", exp.v[i]);
	assert_int_equal(exp.n, 1);
	assert_string_equal(exp.v[0], "handler_init");
	set_free(&exp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_undefined_symbols_are_provided),
		cmocka_unit_test(test_only_handler_init_is_exported),
	};

	if (access(fr_handler_path(), R_OK) < 0)
		return 77;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
