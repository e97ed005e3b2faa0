/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every session of a source reads exactly the source's content at its
 * creation (a recorded image), after random writes of any size and
 * alignment to the source between and after the creations, and again
 * after the pool is closed and reopened (the table, the chunk index and
 * the done bitmap are rebuilt from the reserve); the source holds every
 * write. Linear and thin sources.
 */
#include "snap_test.h"

#define SZ (4ull << 20)
#define NS 4

static void random_writes(struct vlun_vdisk *vd, uint8_t *model, unsigned n, uint64_t *seed)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t off = ((uint64_t)rand() % (SZ / 512)) * 512;
		uint64_t len = (1 + (uint64_t)rand() % 512) * 512;
		if (len > SZ - off)
			len = SZ - off;
		st_write(vd, model, off, len, ++*seed);
	}
}

static void run(uint32_t layout)
{
	struct et_pool tp;
	et_pool_files(&tp, 2, 24 << 20);
	et_pool_create(&tp, "snapimg");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "src", layout, SZ, layout == VLUN_LAYOUT_THIN ? 256 << 10 : 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "src");
	uint8_t *model = et_alloc(SZ), *img[NS];
	memset(model, 0, SZ);
	uint64_t seed = 100;
	srand(layout * 7 + 1);
	if (layout != VLUN_LAYOUT_THIN)
		st_write(vd, model, 0, SZ, ++seed);
	else
		random_writes(vd, model, 10, &seed);
	const char *names[NS] = { "s0", "s1", "s2", "s3" };
	for (int k = 0; k < NS; k++) {
		assert_int_equal(st_create(p, "src", names[k], k ? 0 : 20 << 20, 0, -1), 0);
		img[k] = et_alloc(SZ);
		memcpy(img[k], model, SZ);
		random_writes(vd, model, 25, &seed);
		if (k == 1) /* back to back with s2: they share */
			continue;
	}
	st_expect(vd, model, SZ, "source");
	for (int k = 0; k < NS; k++) {
		char n[80];
		snprintf(n, sizeof(n), "src@%s", names[k]);
		st_expect_snap(p, n, img[k], SZ);
	}
	vlun_vdisk_close(vd);
	vlun_pool_close(p);

	p = et_pool_open(&tp);
	for (int k = 0; k < NS; k++) {
		char n[80];
		snprintf(n, sizeof(n), "src@%s", names[k]);
		st_expect_snap(p, n, img[k], SZ);
	}
	vd = et_vdisk_open(p, "src");
	st_expect(vd, model, SZ, "source after reopen");
	/* copies keep working after the reopen */
	random_writes(vd, model, 25, &seed);
	st_expect(vd, model, SZ, "source");
	for (int k = 0; k < NS; k++) {
		char n[80];
		snprintf(n, sizeof(n), "src@%s", names[k]);
		st_expect_snap(p, n, img[k], SZ);
		free(img[k]);
	}
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(model);
	et_pool_cleanup(&tp);
}

static void test_linear(void **state)
{
	(void)state;
	run(VLUN_LAYOUT_LINEAR);
}

static void test_thin(void **state)
{
	(void)state;
	run(VLUN_LAYOUT_THIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear),
		cmocka_unit_test(test_thin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
