/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A label reads back as written, leaves the first 4 KiB alone, refuses to
 * overwrite a label without force, and a damaged/newer/absent label is
 * reported as such. */
#include "metatest.h"

static void round_trip_and_layout(void **state)
{
	struct vlun_blkdev *d;
	struct vlun_label w, r;
	uint8_t pu[16], mu[16], *data;
	char why[256];

	assert_int_equal(vlun_memdisk_create("mem:l", 80ull << 20, &d), 0);
	data = vlun_memdisk_data(d);
	memset(data, 0xa5, 4096); /* a "partition table" */
	vlun_uuid_generate(pu);
	vlun_uuid_generate(mu);
	assert_int_equal(vlun_meta_label_write(d, pu, mu, "tank", 0, false, &w), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(data[i], 0xa5);
	assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), 0);
	assert_memory_equal(r.pool_uuid, pu, 16);
	assert_memory_equal(r.member_uuid, mu, 16);
	assert_string_equal(r.pool_name, "tank");
	assert_int_equal(r.major, VLUN_META_FORMAT_MAJOR);
	assert_int_equal(r.minor, VLUN_META_FORMAT_MINOR);
	assert_int_equal(r.member_size, 80ull << 20);
	assert_int_equal(r.label_offset, 4096);
	assert_true(r.meta_bytes >= VLUN_META_DEFAULT_BYTES);
	assert_int_equal(r.meta_offset, w.meta_offset);
	assert_int_equal(r.slot_bytes, w.slot_bytes);
	assert_int_equal(r.journal_offset, r.meta_offset + 2 * r.slot_bytes);
	assert_int_equal(r.journal_offset + r.journal_bytes, r.meta_offset + r.meta_bytes);
	assert_int_equal(r.data_start * 512 % (1 << 20), 0);
	assert_true(r.data_start * 512 >= r.meta_offset + r.meta_bytes);
	assert_int_equal(r.data_start, w.data_start);
	assert_int_equal(r.created, w.created);

	/* a second label needs force */
	assert_int_equal(vlun_meta_label_write(d, pu, mu, "tank", 0, false, NULL), -EEXIST);
	assert_int_equal(vlun_meta_label_write(d, pu, mu, "tank2", VLUN_META_MIN_BYTES, true, &w), 0);
	assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), 0);
	assert_string_equal(r.pool_name, "tank2");
	assert_int_equal(r.data_start * 512, 2 << 20);
	/* too small a metadata area is refused */
	assert_int_equal(vlun_meta_label_write(d, pu, mu, "tank", VLUN_META_MIN_BYTES - 4096, true, NULL), -EINVAL);
	vlun_blkdev_close(d);
}

static void bad_labels(void **state)
{
	struct vlun_blkdev *d;
	struct vlun_label r;
	uint8_t pu[16], mu[16], *data;
	char why[256];

	assert_int_equal(vlun_memdisk_create("mem:l", MT_DISK_BYTES, &d), 0);
	data = vlun_memdisk_data(d);
	assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), -ENOENT);
	vlun_uuid_generate(pu);
	vlun_uuid_generate(mu);
	assert_int_equal(vlun_meta_label_write(d, pu, mu, "tank", MT_META_BYTES, false, NULL), 0);

	/* any flipped bit in the block, even reserved space, is corruption */
	for (size_t off = 4096 + 8; off < 8192; off += 173) {
		data[off] ^= 0x10;
		why[0] = 0;
		assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), -EUCLEAN);
		assert_non_null(strstr(why, "crc"));
		data[off] ^= 0x10;
	}
	assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), 0);

	/* a newer major with a valid crc is unsupported, not corrupt */
	{
		uint8_t save[4096];
		uint32_t c;

		memcpy(save, data + 4096, 4096);
		vlun_put_le16(data + 4096 + 8, VLUN_META_FORMAT_MAJOR + 1);
		vlun_put_le32(data + 4096 + 12, 0);
		c = vlun_crc32c(0, data + 4096, 4096);
		vlun_put_le32(data + 4096 + 12, c);
		assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), -EPROTONOSUPPORT);
		assert_non_null(strstr(why, "upgrade"));
		memcpy(data + 4096, save, 4096);
	}
	/* wrong magic: not a vlun member */
	data[4096] = 'X';
	assert_int_equal(vlun_meta_label_read(d, &r, why, sizeof(why)), -ENOENT);
	vlun_blkdev_close(d);
}

static void too_small_device(void **state)
{
	struct vlun_blkdev *d;
	uint8_t pu[16], mu[16];

	assert_int_equal(vlun_memdisk_create("mem:s", 2ull << 20, &d), 0);
	vlun_uuid_generate(pu);
	vlun_uuid_generate(mu);
	assert_int_equal(vlun_meta_label_write(d, pu, mu, "tank", MT_META_BYTES, false, NULL), -ENOSPC);
	vlun_blkdev_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_and_layout),
		cmocka_unit_test(bad_labels),
		cmocka_unit_test(too_small_device),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
