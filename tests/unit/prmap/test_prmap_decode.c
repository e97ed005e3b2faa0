/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding of READ KEYS and READ RESERVATION parameter data (SPC-4). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "prmap.h"

static void test_read_keys(void **state)
{
	const uint8_t buf[] = {
		0, 0, 0, 9,   0, 0, 0, 24,
		0x11, 0x11, 0xaa, 0xaa, 0x11, 0x11, 0xaa, 0xaa,
		0x11, 0x11, 0xaa, 0xaa, 0x11, 0x11, 0xaa, 0xaa,
		0, 0, 0, 0, 0x22, 0x22, 0xbb, 0xbb,
	};
	struct prmap_keys k;

	assert_int_equal(prmap_decode_keys(buf, sizeof(buf), &k), 0);
	assert_int_equal(k.generation, 9);
	assert_int_equal(k.n, 3);
	assert_int_equal(k.n_stored, 3);
	assert_true(k.keys[0] == UINT64_C(0x1111aaaa1111aaaa));
	assert_true(k.keys[2] == UINT64_C(0x2222bbbb));
	/* truncated: the header says 3, the buffer holds 1 */
	assert_int_equal(prmap_decode_keys(buf, 16, &k), 0);
	assert_int_equal(k.n, 3);
	assert_int_equal(k.n_stored, 1);
	/* empty */
	const uint8_t none[8] = { 0, 0, 0, 1, 0, 0, 0, 0 };
	assert_int_equal(prmap_decode_keys(none, sizeof(none), &k), 0);
	assert_int_equal(k.n, 0);
	/* malformed */
	assert_int_equal(prmap_decode_keys(buf, 7, &k), -EBADMSG);
	uint8_t odd[16];
	memcpy(odd, buf, 16);
	odd[7] = 12;
	assert_int_equal(prmap_decode_keys(odd, sizeof(odd), &k), -EBADMSG);
}

static void test_read_reservation(void **state)
{
	uint8_t buf[24] = { 0, 0, 0, 5, 0, 0, 0, 16, 0x11, 0x11, 0xaa, 0xaa, 0x11, 0x11, 0xaa, 0xaa };
	struct prmap_resv r;
	uint32_t gen = 0;

	buf[8 + 13] = 0x05;   /* scope 0 (LU), type 5 */
	assert_int_equal(prmap_decode_reservation(buf, sizeof(buf), &gen, &r), 0);
	assert_int_equal(gen, 5);
	assert_true(r.present);
	assert_true(r.key == UINT64_C(0x1111aaaa1111aaaa));
	assert_int_equal(r.type, PRMAP_TYPE_WE_RO);
	buf[8 + 13] = 0x07;
	assert_int_equal(prmap_decode_reservation(buf, sizeof(buf), NULL, &r), 0);
	assert_int_equal(r.type, PRMAP_TYPE_WE_AR);
	/* none */
	const uint8_t none[8] = { 0, 0, 0, 5, 0, 0, 0, 0 };
	assert_int_equal(prmap_decode_reservation(none, sizeof(none), NULL, &r), 0);
	assert_false(r.present);
	/* additional length 16 but only the header present */
	r.present = true;
	assert_int_equal(prmap_decode_reservation(buf, 8, NULL, &r), -EBADMSG);
	buf[7] = 8;
	assert_int_equal(prmap_decode_reservation(buf, sizeof(buf), NULL, &r), -EBADMSG);
	assert_true(r.present);   /* untouched */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_keys),
		cmocka_unit_test(test_read_reservation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
