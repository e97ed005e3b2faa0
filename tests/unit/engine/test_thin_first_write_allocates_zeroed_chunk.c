/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The first write into a thin chunk allocates exactly one chunk and the
 * rest of that chunk reads as zeros even though the physical space held
 * junk (a new chunk never exposes old data); concurrent writes into the
 * same new chunk share one allocation; GET LBA STATUS reports the chunk
 * mapped and its neighbours not.
 */
#include "vdisk_test.h"

struct cw {
	struct vlun_req req;
	struct iovec iov;
	struct et_waiter *w;
	int st;
};

static void cw_done(struct vlun_req *req, enum vlun_status st)
{
	struct cw *c = req->priv;
	c->st = (int)st;
	et_waiter_signal(c->w);
}

static void test_first_write(void **state)
{
	const uint64_t chunk = 1 << 20;
	struct et_pool tp;
	et_pool_files(&tp, 2, 8 << 20);
	et_pool_create(&tp, "thin");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, 32 << 20, chunk, 0);
	et_junk_members(&tp, p);
	uint64_t free0, free1;
	assert_int_equal(vlun_pool_space(p, NULL, &free0), 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");

	/* 4 KiB in the middle of chunk 3. */
	const uint64_t off = 3 * chunk + 300 * 512;
	et_write(vd, off, 4096, 1);
	assert_int_equal(vlun_pool_space(p, NULL, &free1), 0);
	assert_int_equal(free0 - free1, chunk);
	et_check(vd, off, 4096, 1);
	et_check_zero(vd, 3 * chunk, off - 3 * chunk);
	et_check_zero(vd, off + 4096, 4 * chunk - off - 4096);

	bool mapped;
	uint64_t len;
	assert_int_equal(vlun_vdisk_lba_status(vd, 0, 0, &mapped, &len), 0);
	assert_false(mapped);
	assert_int_equal(len, 3 * chunk);
	assert_int_equal(vlun_vdisk_lba_status(vd, 3 * chunk, 0, &mapped, &len), 0);
	assert_true(mapped);
	assert_int_equal(len, chunk);

	/* 16 concurrent 4 KiB writes into fresh chunk 7 (and one spanning
	 * chunks 9..10): one chunk each, all data there. */
	struct et_waiter w;
	et_waiter_init(&w);
	struct cw c[17];
	uint8_t *buf = et_alloc(17 * 8192);
	for (int i = 0; i < 17; i++) {
		uint64_t o = i < 16 ? 7 * chunk + (uint64_t)i * 8192 : 10 * chunk - 4096;
		uint64_t l = i < 16 ? 4096 : 8192;
		et_fill(buf + i * 8192, l, 2, o);
		c[i] = (struct cw){ .iov = { buf + i * 8192, l }, .w = &w };
		c[i].req = (struct vlun_req){ .op = VLUN_OP_WRITE, .offset = o, .length = l, .iov = &c[i].iov,
					      .iovcnt = 1, .done = cw_done, .priv = &c[i] };
		assert_int_equal(vlun_vdisk_submit(vd, &c[i].req), 0);
	}
	et_waiter_wait(&w, 17);
	for (int i = 0; i < 17; i++)
		assert_int_equal(c[i].st, VLUN_OK);
	uint64_t free2;
	assert_int_equal(vlun_pool_space(p, NULL, &free2), 0);
	assert_int_equal(free1 - free2, 3 * chunk);
	for (int i = 0; i < 16; i++) {
		et_check(vd, 7 * chunk + (uint64_t)i * 8192, 4096, 2);
		et_check_zero(vd, 7 * chunk + (uint64_t)i * 8192 + 4096, 4096);
	}
	et_check(vd, 10 * chunk - 4096, 8192, 2);
	et_check_zero(vd, 9 * chunk, chunk - 4096);
	et_check_zero(vd, 10 * chunk + 4096, chunk - 4096);
	free(buf);

	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
