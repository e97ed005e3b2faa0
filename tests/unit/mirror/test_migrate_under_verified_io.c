/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Online migration: everything on member 0 moves to members 1 and 2 while
 * a writer thread keeps writing and verifying against a reference model
 * (writes to a region being copied wait for it; none may be lost). At the
 * end no extent is on member 0, the data equals the model, also after a
 * reopen; the job is gone from the metadata.
 */
#include <stdatomic.h>

#include "mirror_test.h"

#define SIZE (24ull << 20)
#define BLK (64u << 10)

static uint8_t *model;
static atomic_bool stop_io;
static unsigned long writes_done;

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *writer(void *arg)
{
	struct vlun_vdisk *vd = arg;
	uint64_t x = 88172645463325252ull;
	uint8_t *b = et_alloc(BLK), *c = et_alloc(BLK);
	while (!atomic_load(&stop_io)) {
		uint64_t off = (rnd(&x) % (SIZE / BLK)) * BLK;
		uint64_t seed = rnd(&x);
		et_fill(b, BLK, seed, off);
		assert_int_equal(et_io(vd, VLUN_OP_WRITE, (seed & 1) ? VLUN_REQ_FUA : 0, off, BLK, b, NULL), VLUN_OK);
		memcpy(model + off, b, BLK);
		uint64_t roff = (rnd(&x) % (SIZE / BLK)) * BLK;
		assert_int_equal(et_io(vd, VLUN_OP_READ, 0, roff, BLK, c, NULL), VLUN_OK);
		if (memcmp(c, model + roff, BLK) != 0)
			fail_msg("read at %llu during migration differs from the model", (unsigned long long)roff);
		writes_done++;
	}
	free(b);
	free(c);
	return NULL;
}

static void check_all(struct vlun_vdisk *vd)
{
	uint8_t *b = et_alloc(SIZE);
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, 0, SIZE, b, NULL), VLUN_OK);
	assert_memory_equal(b, model, SIZE);
	free(b);
}

static uint64_t bytes_on(struct vlun_pool *p, uint32_t m)
{
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	uint64_t t = 0;
	for (uint32_t i = 0; i < d->nvdisks; i++)
		for (uint32_t k = 0; k < d->vdisks[i].nextents; k++) {
			const struct vlun_extent *e = &d->vdisks[i].extents[k];
			if (e->member == m || ((e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member == m))
				t += e->nsectors << VLUN_SECTOR_SHIFT;
		}
	vlun_pool_desc_free(d);
	return t;
}

static void test_migrate_under_verified_io(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 3, MT_MEMBER_BYTES);
	et_pool_create(&tp, "mig");
	struct vlun_pool *p = et_pool_open(&tp);
	mt_linear_on(p, "d", SIZE, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d");
	model = et_alloc(SIZE);
	et_fill(model, SIZE, 7, 0);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, 0, SIZE, model, NULL), VLUN_OK);
	assert_int_equal(bytes_on(p, 0), SIZE);

	pthread_t t;
	atomic_store(&stop_io, false);
	assert_int_equal(pthread_create(&t, NULL, writer, vd), 0);
	usleep(50000);
	struct vlun_migrate_opts o = { .vdisk = NULL, .from_member = 0, .rate = 0 };
	uint32_t id = 0;
	char *why = NULL;
	int r = vlun_migrate_start(p, &o, &id, &why);
	if (r < 0)
		fail_msg("migrate: %s (%s)", strerror(-r), why ? why : "");
	assert_true(id > 0);
	/* bad requests are refused and change nothing */
	struct vlun_migrate_opts bad = { .vdisk = "nope", .from_member = 0 };
	assert_int_equal(vlun_migrate_start(p, &bad, NULL, NULL), -ENOENT);
	struct vlun_migrate_opts bad2 = { .from_member = 7 };
	assert_int_equal(vlun_migrate_start(p, &bad2, NULL, NULL), -ENOENT);
	uint32_t to0 = 0;
	struct vlun_migrate_opts bad3 = { .from_member = 0, .to = &to0, .nto = 1 };
	assert_int_equal(vlun_migrate_start(p, &bad3, NULL, NULL), -EINVAL);

	mt_wait_idle(p, "d");
	atomic_store(&stop_io, true);
	pthread_join(t, NULL);
	assert_true(writes_done > 0);
	assert_int_equal(bytes_on(p, 0), 0);
	assert_int_equal(bytes_on(p, 1) + bytes_on(p, 2), SIZE);
	check_all(vd);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(d->njobs, 0);
	vlun_pool_desc_free(d);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);

	p = et_pool_open(&tp);
	assert_int_equal(bytes_on(p, 0), 0);
	vd = et_vdisk_open(p, "d");
	check_all(vd);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(model);
	free(why);
	et_pool_cleanup(&tp);
}

int main(void)
{
	et_skip_under_valgrind();
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_migrate_under_verified_io) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
