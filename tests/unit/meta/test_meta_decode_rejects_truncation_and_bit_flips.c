/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The decoder is strict: every truncation and single-bit flips of the
 * structure are refused with a reason (no crash, no read past the buffer);
 * unknown optional records are skipped, unknown must-understand records
 * are refused as unsupported. */
#include "metatest.h"

static struct vlun_pool_desc *sample(struct mt_pool *p, uint8_t **buf, size_t *len)
{
	struct vlun_pool_desc *d;

	mt_pool_create(p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(p, 2, 6);
	assert_int_equal(vlun_meta_encode(d, buf, len), 0);
	return d;
}

static void every_truncation_refused(void **state)
{
	struct mt_pool p;
	uint8_t *buf;
	size_t len;
	struct vlun_pool_desc *d = sample(&p, &buf, &len);

	for (size_t l = 0; l < len; l++) {
		/* an exact-size copy so ASan catches any read past the end */
		uint8_t *t = malloc(l ? l : 1);
		struct vlun_pool_desc *out = NULL;
		char why[256] = "";

		memcpy(t, buf, l);
		assert_int_equal(vlun_meta_decode(t, l, &out, why, sizeof(why)), -EUCLEAN);
		assert_null(out);
		assert_true(strlen(why) > 0);
		free(t);
	}
	free(buf);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

static void bit_flips_never_crash_and_mostly_refused(void **state)
{
	struct mt_pool p;
	uint8_t *buf;
	size_t len, refused = 0, total = 0;
	struct vlun_pool_desc *d = sample(&p, &buf, &len);

	for (size_t byte = 0; byte < len; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			struct vlun_pool_desc *out = NULL;
			char why[256] = "";
			int r;

			buf[byte] ^= (uint8_t)(1u << bit);
			r = vlun_meta_decode(buf, len, &out, why, sizeof(why));
			buf[byte] ^= (uint8_t)(1u << bit);
			total++;
			if (r < 0) {
				assert_null(out);
				assert_true(strlen(why) > 0);
				refused++;
			} else {
				/* an accepted flip must still be a valid description */
				assert_int_equal(vlun_pool_desc_validate(out, why, sizeof(why)), 0);
				vlun_pool_desc_free(out);
			}
		}
	}
	/* Structure (magic, types, lengths, counts) is checked; flips in
	 * free-form values (uuids, names, generation) may decode. */
	assert_true(refused > 0 && refused < total);
	free(buf);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

/* Inserts a record of type t with flags f just before the END record and
 * fixes END's record count. */
static uint8_t *with_extra_record(const uint8_t *buf, size_t len, uint16_t t, uint16_t f, size_t *ret_len)
{
	size_t end = len - 16, nlen = len + 8 + 5;
	uint8_t *n = malloc(nlen);

	memcpy(n, buf, end);
	vlun_put_le16(n + end, t);
	vlun_put_le16(n + end + 2, f);
	vlun_put_le32(n + end + 4, 5);
	memcpy(n + end + 8, "hello", 5);
	memcpy(n + end + 13, buf + end, 16);
	vlun_put_le32(n + end + 13 + 8, vlun_get_le32(buf + end + 8) + 1);
	*ret_len = nlen;
	return n;
}

static void unknown_records(void **state)
{
	struct mt_pool p;
	uint8_t *buf, *x;
	size_t len, xl;
	struct vlun_pool_desc *d = sample(&p, &buf, &len), *out = NULL;
	char why[256] = "";

	assert_int_equal(vlun_get_le16(buf + len - 16), 4); /* END is last */
	x = with_extra_record(buf, len, 200, 0, &xl);
	assert_int_equal(vlun_meta_decode(x, xl, &out, why, sizeof(why)), 0);
	assert_true(mt_desc_equal(d, out, false));
	vlun_pool_desc_free(out);
	out = NULL;
	free(x);

	x = with_extra_record(buf, len, 200, 1, &xl);
	assert_int_equal(vlun_meta_decode(x, xl, &out, why, sizeof(why)), -EPROTONOSUPPORT);
	assert_null(out);
	assert_non_null(strstr(why, "type 200"));
	free(x);

	/* a newer payload major is refused as unsupported, not as corrupt */
	buf[8] = VLUN_META_FORMAT_MAJOR + 1;
	assert_int_equal(vlun_meta_decode(buf, len, &out, why, sizeof(why)), -EPROTONOSUPPORT);
	free(buf);
	vlun_pool_desc_free(d);
	mt_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_truncation_refused),
		cmocka_unit_test(bit_flips_never_crash_and_mostly_refused),
		cmocka_unit_test(unknown_records),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
