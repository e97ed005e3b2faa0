/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_crc32c gives the standard CRC-32C values and chains like zlib's crc32. */
#include "metatest.h"

static void standard_vectors(void **state)
{
	static const uint8_t zeros[32];
	uint8_t ones[32];

	memset(ones, 0xff, sizeof(ones));
	assert_int_equal(vlun_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(vlun_crc32c(0, "", 0), 0);
	/* RFC 3720 B.4 test vectors */
	assert_int_equal(vlun_crc32c(0, zeros, 32), 0x8a9136aau);
	assert_int_equal(vlun_crc32c(0, ones, 32), 0x62a8ab43u);
}

static void chaining_equals_one_pass(void **state)
{
	uint8_t buf[10000];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	uint32_t whole = vlun_crc32c(0, buf, sizeof(buf));

	for (size_t cut = 0; cut <= sizeof(buf); cut += 997) {
		uint32_t c = vlun_crc32c(0, buf, cut);

		assert_int_equal(vlun_crc32c(c, buf + cut, sizeof(buf) - cut), whole);
	}
	assert_int_equal(vlun_crc32c(vlun_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(standard_vectors),
		cmocka_unit_test(chaining_equals_one_pass),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
