/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every row of the mode → PR table (prmap.h): what each mode registers and
 * reserves, and whether it is admitted under each existing reservation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <cmocka.h>

#include "prmap.h"

#define ME UINT64_C(0x1111)
#define OTHER UINT64_C(0x2222)

static void test_plan_rows(void **state)
{
	struct prmap_plan p;

	assert_int_equal(prmap_plan(PRMAP_EXCLUSIVE, false, PRMAP_TYPE_NONE, &p), 0);
	assert_true(p.register_paths);
	assert_int_equal(p.reserve_type, PRMAP_TYPE_WE_RO);
	assert_int_equal(prmap_plan(PRMAP_EXCLUSIVE, true, PRMAP_TYPE_NONE, &p), 0);
	assert_int_equal(p.reserve_type, PRMAP_TYPE_EA_RO);
	assert_int_equal(prmap_plan(PRMAP_SHARED, false, PRMAP_TYPE_NONE, &p), 0);
	assert_true(p.register_paths);
	assert_int_equal(p.reserve_type, PRMAP_TYPE_WE_AR);
	assert_int_equal(prmap_plan(PRMAP_SHARED, true, PRMAP_TYPE_NONE, &p), 0);
	assert_int_equal(p.reserve_type, PRMAP_TYPE_EA_AR);
	assert_int_equal(prmap_plan(PRMAP_READONLY, false, PRMAP_TYPE_NONE, &p), 0);
	assert_true(p.register_paths);
	assert_int_equal(p.reserve_type, PRMAP_TYPE_NONE);
	assert_int_equal(prmap_plan(PRMAP_NONE, false, PRMAP_TYPE_NONE, &p), 0);
	assert_false(p.register_paths);
	/* overrides */
	assert_int_equal(prmap_plan(PRMAP_EXCLUSIVE, false, PRMAP_TYPE_WE, &p), 0);
	assert_int_equal(p.reserve_type, PRMAP_TYPE_WE);
	assert_int_equal(prmap_plan(PRMAP_EXCLUSIVE, false, (enum prmap_type)2, &p), -EINVAL);
	assert_int_equal(prmap_plan(PRMAP_READONLY, false, PRMAP_TYPE_WE, &p), -EINVAL);
	assert_int_equal(prmap_plan((enum prmap_mode)17, false, PRMAP_TYPE_NONE, &p), -EINVAL);
}

static enum prmap_action decide(enum prmap_mode mode, bool present, uint64_t key, enum prmap_type type)
{
	struct prmap_plan p;
	struct prmap_resv r = { .present = present, .key = key, .type = type };

	assert_int_equal(prmap_plan(mode, false, PRMAP_TYPE_NONE, &p), 0);
	return prmap_decide(&p, ME, &r);
}

static const enum prmap_type all_types[] = {
	PRMAP_TYPE_WE, PRMAP_TYPE_EA, PRMAP_TYPE_WE_RO, PRMAP_TYPE_EA_RO, PRMAP_TYPE_WE_AR, PRMAP_TYPE_EA_AR,
};

static void test_exclusive_row(void **state)
{
	assert_int_equal(decide(PRMAP_EXCLUSIVE, false, 0, 0), PRMAP_ACT_RESERVE);
	assert_int_equal(decide(PRMAP_EXCLUSIVE, true, ME, PRMAP_TYPE_WE_RO), PRMAP_ACT_NOTHING);
	for (size_t i = 0; i < 6; i++) {
		enum prmap_type t = all_types[i];
		uint64_t holder = (t == PRMAP_TYPE_WE_AR || t == PRMAP_TYPE_EA_AR) ? 0 : OTHER;
		assert_int_equal(decide(PRMAP_EXCLUSIVE, true, holder, t), PRMAP_ACT_CONFLICT);
		if (t != PRMAP_TYPE_WE_RO)   /* ours, but not the type asked for */
			assert_int_equal(decide(PRMAP_EXCLUSIVE, true, ME, t), PRMAP_ACT_CONFLICT);
	}
}

static void test_shared_row(void **state)
{
	assert_int_equal(decide(PRMAP_SHARED, false, 0, 0), PRMAP_ACT_RESERVE);
	assert_int_equal(decide(PRMAP_SHARED, true, 0, PRMAP_TYPE_WE_AR), PRMAP_ACT_JOIN);
	assert_int_equal(decide(PRMAP_SHARED, true, 0, PRMAP_TYPE_EA_AR), PRMAP_ACT_JOIN);
	assert_int_equal(decide(PRMAP_SHARED, true, OTHER, PRMAP_TYPE_WE), PRMAP_ACT_CONFLICT);
	assert_int_equal(decide(PRMAP_SHARED, true, OTHER, PRMAP_TYPE_EA), PRMAP_ACT_CONFLICT);
	assert_int_equal(decide(PRMAP_SHARED, true, OTHER, PRMAP_TYPE_WE_RO), PRMAP_ACT_CONFLICT);
	assert_int_equal(decide(PRMAP_SHARED, true, OTHER, PRMAP_TYPE_EA_RO), PRMAP_ACT_CONFLICT);
	assert_int_equal(decide(PRMAP_SHARED, true, ME, PRMAP_TYPE_WE_RO), PRMAP_ACT_CONFLICT);
}

static void test_readonly_row(void **state)
{
	assert_int_equal(decide(PRMAP_READONLY, false, 0, 0), PRMAP_ACT_NOTHING);
	assert_int_equal(decide(PRMAP_READONLY, true, OTHER, PRMAP_TYPE_EA), PRMAP_ACT_CONFLICT);
	assert_int_equal(decide(PRMAP_READONLY, true, ME, PRMAP_TYPE_EA), PRMAP_ACT_NOTHING);
	for (size_t i = 0; i < 6; i++)
		if (all_types[i] != PRMAP_TYPE_EA)
			assert_int_equal(decide(PRMAP_READONLY, true, OTHER, all_types[i]), PRMAP_ACT_NOTHING);
}

static void test_names(void **state)
{
	enum prmap_mode m;
	enum prmap_type t;

	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(prmap_parse_type(prmap_type_short(all_types[i]), &t), 0);
		assert_int_equal(t, all_types[i]);
	}
	assert_int_equal(prmap_parse_type("we_ro", &t), -EINVAL);
	assert_int_equal(prmap_parse_mode("shared", &m), 0);
	assert_int_equal(m, PRMAP_SHARED);
	assert_int_equal(prmap_parse_mode("none", &m), -EINVAL);
	assert_string_equal(prmap_type_name(PRMAP_TYPE_WE_AR), "Write Exclusive - All Registrants");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_rows),
		cmocka_unit_test(test_exclusive_row),
		cmocka_unit_test(test_shared_row),
		cmocka_unit_test(test_readonly_row),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
