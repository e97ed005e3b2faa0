/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A linear disk concatenated over 3 members: requests that cross member
 * boundaries are split per extent, multi-iovec requests are sliced without
 * copying, the data reads back exactly and sits in the member files at the
 * physical offsets the map states.
 */
#include "vdisk_test.h"

static void test_linear_three_members(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 3, 8 << 20);
	et_pool_create(&tp, "lin");
	struct vlun_pool *p = et_pool_open(&tp);

	uint64_t total, freeb;
	assert_int_equal(vlun_pool_space(p, &total, &freeb), 0);
	assert_int_equal(total, freeb);
	/* Use all of it: the disk must span all 3 members. */
	uint64_t size = total - total % (1 << 20);
	et_vdisk_create(p, "d", VLUN_LAYOUT_LINEAR, size, 0, 0);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	const struct vlun_vdisk_desc *v = et_find_vdisk(d, "d");
	assert_non_null(v);
	bool seen[3] = { false, false, false };
	for (uint32_t i = 0; i < v->nextents; i++)
		seen[v->extents[i].member] = true;
	assert_true(seen[0] && seen[1] && seen[2]);
	assert_true(v->nextents >= 3);

	struct vlun_vdisk *vd = et_vdisk_open(p, "d");
	assert_int_equal(vlun_vdisk_size(vd), size);

	/* Whole disk in 768 KiB requests (not a divisor of the member
	 * sizes: many cross extent boundaries), each split in 3 iovecs of
	 * odd sizes. */
	const uint64_t rq = 768 << 10;
	uint8_t *buf = et_alloc(rq);
	for (uint64_t off = 0; off < size; off += rq) {
		uint64_t len = size - off < rq ? size - off : rq;
		et_fill(buf, len, 42, off);
		struct iovec iov[3] = { { buf, 4096 }, { buf + 4096, 512 * 3 }, { buf + 4096 + 1536, len - 4096 - 1536 } };
		struct et_sreq s;
		memset(&s, 0, sizeof(s));
		et_waiter_init(&s.w);
		s.req = (struct vlun_req){ .op = VLUN_OP_WRITE, .offset = off, .length = len, .iov = iov,
					   .iovcnt = 3, .done = et_sreq_done, .priv = &s };
		assert_int_equal(vlun_vdisk_submit(vd, &s.req), 0);
		et_waiter_wait(&s.w, 1);
		assert_int_equal(s.st, VLUN_OK);
	}
	free(buf);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	/* Read back with other request boundaries. */
	for (uint64_t off = 0; off < size; off += 1 << 20)
		et_check(vd, off, size - off < (1 << 20) ? size - off : 1 << 20, 42);

	/* The raw member files hold each extent's data where the map says. */
	for (uint32_t i = 0; i < v->nextents; i++) {
		const struct vlun_extent *e = &v->extents[i];
		uint64_t n = e->nsectors << 9;
		uint8_t *raw = malloc(n);
		assert_int_equal(et_pread_all(tp.paths[e->member], raw, n, e->psector << 9), 0);
		for (uint64_t b = 0; b < n; b++)
			if (raw[b] != et_pat(42, (e->vsector << 9) + b))
				fail_msg("extent %u: member %u byte %llu wrong", i, e->member,
					 (unsigned long long)((e->psector << 9) + b));
		free(raw);
	}

	vlun_vdisk_close(vd);
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_three_members),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
