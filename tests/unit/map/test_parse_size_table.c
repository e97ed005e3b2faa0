/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_parse_size accepts exactly the documented grammar; sizes format
 * back readably; names and UUIDs are checked strictly. */
#include "maptest.h"

static const struct { const char *s; uint64_t bytes; } good[] = {
	{ "0", 0 }, { "4096", 4096 }, { "4096b", 4096 }, { "4096B", 4096 },
	{ "2048s", 1048576 }, { "2048S", 1048576 },
	{ "64k", 65536 }, { "64K", 65536 }, { "64KiB", 65536 }, { "64kib", 65536 }, { "64Ki", 65536 },
	{ "64KB", 65536 }, { "512M", 512ull << 20 }, { "10G", 10ull << 30 }, { "10GiB", 10ull << 30 },
	{ "1.5G", 3ull << 29 }, { "1.5T", 3ull << 39 }, { "0.5k", 512 }, { "2P", 2ull << 50 },
	{ "1.25M", 1310720 }, { "15E", 15ull << 60 }, { "007M", 7ull << 20 },
	{ "18446744073709551615", UINT64_MAX },
};

static const struct { const char *s; int err; } bad[] = {
	{ "", -EINVAL }, { "G", -EINVAL }, { "-1", -EINVAL }, { "+1", -EINVAL }, { " 1", -EINVAL },
	{ "1 ", -EINVAL }, { "1 G", -EINVAL }, { "1x", -EINVAL }, { "1GG", -EINVAL },
	{ "1Gb2", -EINVAL }, { "1.", -EINVAL }, { ".5G", -EINVAL }, { "1.1K", -EINVAL },
	{ "1.5", -EINVAL }, { "1.5s", -EINVAL }, { "1.5B", -EINVAL }, { "1iB", -EINVAL },
	{ "1bi", -EINVAL }, { "0x10", -EINVAL }, { "1e3", -EINVAL }, { "1,5G", -EINVAL },
	{ "16E", -ERANGE }, { "18446744073709551616", -ERANGE }, { "36028797018963968s", -ERANGE },
	{ "1.0000000000000000001K", -EINVAL },
};

static void test_valid(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t b = 12345;

		if (vlun_parse_size(good[i].s, &b) != 0 || b != good[i].bytes)
			fail_msg("'%s': expected %llu, got %llu", good[i].s,
				 (unsigned long long)good[i].bytes, (unsigned long long)b);
	}
}

static void test_invalid(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t b = 12345;
		int r = vlun_parse_size(bad[i].s, &b);

		if (r != bad[i].err || b != 12345)
			fail_msg("'%s': expected %d and untouched output, got %d (%llu)", bad[i].s,
				 bad[i].err, r, (unsigned long long)b);
	}
	assert_int_equal(vlun_parse_size(NULL, NULL), -EINVAL);
}

static void test_format(void **state)
{
	char buf[32];

	assert_string_equal(vlun_format_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(vlun_format_size(512, buf, sizeof(buf)), "512 B");
	assert_string_equal(vlun_format_size(1024, buf, sizeof(buf)), "1 KiB");
	assert_string_equal(vlun_format_size(3ull << 29, buf, sizeof(buf)), "1.5 GiB");
	assert_string_equal(vlun_format_size(10ull << 30, buf, sizeof(buf)), "10 GiB");
	assert_string_equal(vlun_format_size((10ull << 30) - 512, buf, sizeof(buf)), "9.9 GiB");
	assert_string_equal(vlun_format_size(UINT64_MAX, buf, sizeof(buf)), "15.9 EiB");
	assert_string_equal(vlun_format_size(10ull << 30, buf, 4), "10 ");
}

static void test_names(void **state)
{
	char longname[VLUN_NAME_MAX + 2];

	assert_true(vlun_name_valid("thin0"));
	assert_true(vlun_name_valid("A-z_0.9"));
	assert_false(vlun_name_valid(""));
	assert_false(vlun_name_valid(NULL));
	assert_false(vlun_name_valid("a b"));
	assert_false(vlun_name_valid("a/b"));
	assert_false(vlun_name_valid("ä"));
	assert_false(vlun_name_valid("."));
	assert_false(vlun_name_valid(".."));
	memset(longname, 'a', sizeof(longname));
	longname[VLUN_NAME_MAX] = '\0';
	assert_true(vlun_name_valid(longname));
	longname[VLUN_NAME_MAX] = 'a';
	longname[VLUN_NAME_MAX + 1] = '\0';
	assert_false(vlun_name_valid(longname));
}

static void test_uuid(void **state)
{
	uint8_t u[16], v[16], w[16];
	char s[37];

	vlun_uuid_generate(u);
	vlun_uuid_generate(v);
	assert_memory_not_equal(u, v, 16);
	assert_int_equal(u[6] >> 4, 4);
	assert_int_equal(u[8] & 0xc0, 0x80);
	vlun_uuid_format(u, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(vlun_uuid_parse(s, w), 0);
	assert_memory_equal(u, w, 16);

	assert_int_equal(vlun_uuid_parse("00112233-4455-6677-8899-AABBCCDDEEFF", w), 0);
	vlun_uuid_format(w, s);
	assert_string_equal(s, "00112233-4455-6677-8899-aabbccddeeff");
	assert_int_equal(vlun_uuid_parse("00112233-4455-6677-8899-aabbccddeeff0", w), -EINVAL);
	assert_int_equal(vlun_uuid_parse("001122334455-6677-8899-aabbccddeeff", w), -EINVAL);
	assert_int_equal(vlun_uuid_parse("00112233-4455-6677-8899-aabbccddeefg", w), -EINVAL);
	assert_int_equal(vlun_uuid_parse("00112233x4455-6677-8899-aabbccddeeff", w), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_uuid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
