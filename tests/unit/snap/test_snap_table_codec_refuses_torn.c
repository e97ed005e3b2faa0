/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The reserve's on-disk codec: a table block round-trips; an all-zero
 * sector is empty; a sector with a flipped bit, a torn block (a sector of
 * another write), a sector of another group or index is refused with a
 * reason; the header round-trips and refuses a bad crc or a swapped copy;
 * slot placement keeps slots and tables apart.
 */
#include "snap_test.h"
#include "snap.h"

static void test_codec(void **state)
{
	(void)state;
	struct snap_entry e[SNAP_GROUP_ENTRIES], d[SNAP_SECTOR_ENTRIES];
	memset(e, 0, sizeof(e));
	for (unsigned i = 0; i < SNAP_GROUP_ENTRIES; i += 3)
		e[i] = (struct snap_entry){ .chunk = i * 7 | (i % 2 ? SNAP_ENTRY_WRITTEN : 0), .mask = 1ull << (i % 64) };
	uint8_t blk[SNAP_BLOCK], old[SNAP_BLOCK];
	char why[200] = "";
	snap_tblock_encode(e, 5, blk);
	for (unsigned s = 0; s < 8; s++) {
		assert_int_equal(snap_tsector_decode(blk + s * 512, 5, s, d, why, sizeof(why)), 0);
		assert_memory_equal(d, &e[s * SNAP_SECTOR_ENTRIES], sizeof(d));
	}
	uint8_t zero[512] = { 0 };
	assert_int_equal(snap_tsector_decode(zero, 5, 0, d, why, sizeof(why)), 0);
	assert_int_equal(d[0].mask, 0);
	/* bit flip */
	blk[512 * 2 + 100] ^= 0x10;
	assert_int_equal(snap_tsector_decode(blk + 1024, 5, 2, d, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "checksum"));
	blk[512 * 2 + 100] ^= 0x10;
	/* torn: sector 3 half of one write, half of another */
	e[3 * SNAP_SECTOR_ENTRIES].mask = 0x55;
	snap_tblock_encode(e, 5, old);
	memcpy(blk + 3 * 512 + 16, old + 3 * 512 + 16, 240); /* entries of the other write, crc of this one */
	assert_int_equal(snap_tsector_decode(blk + 3 * 512, 5, 3, d, why, sizeof(why)), -EUCLEAN);
	/* misplaced */
	assert_int_equal(snap_tsector_decode(blk, 6, 0, d, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "misplaced"));
	assert_int_equal(snap_tsector_decode(blk + 512, 5, 0, d, why, sizeof(why)), -EUCLEAN);
	/* garbage */
	memset(old, 0xa5, 512);
	assert_int_equal(snap_tsector_decode(old, 5, 0, d, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "magic"));

	struct snap_hdr h = { .seq = 9, .source_id = 3, .reserve_id = 4, .chunk_sectors = 128, .nslots = 1000,
			      .created = 77 }, g;
	snap_hdr_encode(&h, 1, blk);
	assert_int_equal(snap_hdr_decode(blk, 1, &g, why, sizeof(why)), 0);
	assert_memory_equal(&g, &h, sizeof(h));
	assert_int_equal(snap_hdr_decode(blk, 0, &g, why, sizeof(why)), -EUCLEAN);
	blk[40] ^= 1;
	assert_int_equal(snap_hdr_decode(blk, 1, &g, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "checksum"));

	/* geometry */
	uint64_t cb = 65536;
	assert_int_equal(snap_slots_for(cb, 8192 + 4096 + cb - 1), 0);
	assert_int_equal(snap_slots_for(cb, 8192 + 4096 + 3 * cb), 3);
	assert_int_equal(snap_slots_for(cb, 8192 + 2 * (4096 + 248 * cb) + 4096 + cb), 2 * 248 + 1);
	assert_int_equal(snap_slot_off(cb, 0), 8192 + 4096);
	assert_int_equal(snap_slot_off(cb, 248), snap_group_off(cb, 1) + 4096);
	assert_true(snap_slot_off(cb, 247) + cb == snap_group_off(cb, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_codec) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
