/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys: derived from a node id deterministically, never 0, distinct for
 * distinct ids; key parsing is strict. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <cmocka.h>

#include "prmap.h"

static void test_derivation(void **state)
{
	uint64_t a, b, c;
	char id[64];

	assert_int_equal(prmap_key_from_node_id("5f0c9a52-3c1e-4d7e-9a0e-0a1b2c3d4e5f", &a), 0);
	assert_int_equal(prmap_key_from_node_id("5f0c9a52-3c1e-4d7e-9a0e-0a1b2c3d4e5f", &b), 0);
	assert_true(a == b);
	assert_true(a != 0);
	/* FNV-1a 64 of "a" (the published test vector) */
	assert_int_equal(prmap_key_from_node_id("a", &c), 0);
	assert_true(c == UINT64_C(0xaf63dc4c8601ec8c));
	assert_int_equal(prmap_key_from_node_id("", &c), -EINVAL);
	assert_int_equal(prmap_key_from_node_id(NULL, &c), -EINVAL);
	/* 10k ids: no 0, no collision among neighbours */
	uint64_t prev = 0;
	for (int i = 0; i < 10000; i++) {
		snprintf(id, sizeof(id), "node-%d", i);
		assert_int_equal(prmap_key_from_node_id(id, &c), 0);
		assert_true(c != 0);
		assert_true(c != prev);
		prev = c;
	}
}

static void test_parse(void **state)
{
	uint64_t k = 42;

	assert_int_equal(prmap_parse_key("0x1111aaaa1111aaaa", &k), 0);
	assert_true(k == UINT64_C(0x1111aaaa1111aaaa));
	assert_int_equal(prmap_parse_key("ABCdef", &k), 0);
	assert_true(k == 0xabcdef);
	k = 42;
	assert_int_equal(prmap_parse_key("0", &k), -EINVAL);
	assert_int_equal(prmap_parse_key("0x0", &k), -EINVAL);
	assert_int_equal(prmap_parse_key("", &k), -EINVAL);
	assert_int_equal(prmap_parse_key("0x", &k), -EINVAL);
	assert_int_equal(prmap_parse_key("12g", &k), -EINVAL);
	assert_int_equal(prmap_parse_key(" 12", &k), -EINVAL);
	assert_int_equal(prmap_parse_key("-1", &k), -EINVAL);
	assert_int_equal(prmap_parse_key("0x11112222333344445", &k), -EINVAL);
	assert_true(k == 42);   /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derivation),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
