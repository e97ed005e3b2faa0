/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A striped disk over 3 members with 64 KiB stripes: stripe unit k lands on
 * the (k mod 3)-th member of the stripe set at row k / 3 of that member's
 * range, checked by reading the raw member files; reads through the disk
 * return the data.
 */
#include "vdisk_test.h"

static void test_striped_placement(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 3, 8 << 20);
	et_pool_create(&tp, "str");
	struct vlun_pool *p = et_pool_open(&tp);
	const uint64_t stripe = 64 << 10, size = 12 << 20;
	et_vdisk_create(p, "s", VLUN_LAYOUT_STRIPED, size, stripe, 3);

	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	const struct vlun_vdisk_desc *v = et_find_vdisk(d, "s");
	assert_non_null(v);
	assert_int_equal(v->layout, VLUN_LAYOUT_STRIPED);
	assert_int_equal(v->stripe_width, 3);
	assert_true(v->nextents >= 3);
	/* The first 3 units name the member order and each member's base. */
	uint32_t mem[3];
	uint64_t base[3];
	for (int i = 0; i < 3; i++) {
		mem[i] = v->extents[i].member;
		base[i] = v->extents[i].psector;
		assert_int_equal(v->extents[i].vsector, (uint64_t)i * (stripe >> 9));
	}
	assert_true(mem[0] != mem[1] && mem[1] != mem[2] && mem[0] != mem[2]);

	struct vlun_vdisk *vd = et_vdisk_open(p, "s");
	/* One 1 MiB write spanning 16 units, starting mid-unit. */
	et_write(vd, 32 << 10, 1 << 20, 7);
	et_write(vd, size - (1 << 20), 1 << 20, 7);
	et_check(vd, 32 << 10, 1 << 20, 7);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);

	/* Math: unit k at member mem[k%3], sector base + (k/3)*stripe. */
	uint8_t *raw = malloc(stripe);
	uint64_t ranges[2][2] = { { 32 << 10, (32 << 10) + (1 << 20) }, { size - (1 << 20), size } };
	for (int rg = 0; rg < 2; rg++) {
		for (uint64_t vo = ranges[rg][0]; vo < ranges[rg][1]; vo += 4096) {
			uint64_t k = vo / stripe, in = vo % stripe;
			uint64_t po = ((base[k % 3]) << 9) + (k / 3) * stripe + in;
			assert_int_equal(et_pread_all(tp.paths[mem[k % 3]], raw, 4096, po), 0);
			for (int b = 0; b < 4096; b++)
				if (raw[b] != et_pat(7, vo + (uint64_t)b))
					fail_msg("virtual %llu (unit %llu) not at member %u offset %llu",
						 (unsigned long long)(vo + (uint64_t)b), (unsigned long long)k,
						 mem[k % 3], (unsigned long long)po);
		}
	}
	free(raw);
	vlun_vdisk_close(vd);
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_striped_placement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
