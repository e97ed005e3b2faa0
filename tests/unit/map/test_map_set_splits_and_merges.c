/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_map_set replaces exactly the given range: neighbours are split,
 * adjacent compatible extents merged, the generation bumps; a rejected set
 * changes nothing. A randomized run against a per-sector model checks the
 * paths that split, merge and rebalance pages. */
#include "maptest.h"

static uint32_t export_n(struct vlun_map *m, struct vlun_extent **ret)
{
	struct vlun_extent *e = NULL;
	uint32_t n = 0;

	assert_int_equal(vlun_map_export(m, &e, &n), 0);
	assert_cover(e, n, vlun_map_size(m));
	if (ret)
		*ret = e;
	else
		free(e);
	return n;
}

static void test_split_and_merge(void **state)
{
	struct vlun_extent e = ext_invalid(0, 10000), s[2], *x;
	struct vlun_map *m = NULL;
	uint64_t g;

	assert_int_equal(vlun_map_new(&e, 1, 10000, &m), 0);
	g = vlun_map_generation(m);

	s[0] = ext_mapped(100, 100, 0, 5000);
	assert_int_equal(vlun_map_set(m, 100, 100, s, 1), 0);
	assert_int_equal(vlun_map_generation(m), g + 1);
	assert_int_equal(export_n(m, &x), 3);
	assert_int_equal(x[0].nsectors, 100);
	assert_true(x[0].flags & VLUN_EXT_INVALID);
	assert_int_equal(x[1].psector, 5000);
	assert_int_equal(x[2].vsector, 200);
	assert_int_equal(x[2].nsectors, 9800);
	free(x);

	/* physically contiguous on the right: merges */
	s[0] = ext_mapped(200, 100, 0, 5100);
	assert_int_equal(vlun_map_set(m, 200, 100, s, 1), 0);
	assert_int_equal(export_n(m, NULL), 3);
	/* and on the left */
	s[0] = ext_mapped(0, 100, 0, 4900);
	assert_int_equal(vlun_map_set(m, 0, 100, s, 1), 0);
	assert_int_equal(export_n(m, &x), 2);
	assert_int_equal(x[0].nsectors, 300);
	assert_int_equal(x[0].psector, 4900);
	free(x);

	/* not contiguous physically, other member or other flags: no merge */
	s[0] = ext_mapped(300, 10, 0, 9999);
	assert_int_equal(vlun_map_set(m, 300, 10, s, 1), 0);
	s[0] = ext_mapped(310, 10, 1, 9999 + 10);
	assert_int_equal(vlun_map_set(m, 310, 10, s, 1), 0);
	s[0] = ext_mapped(320, 10, 1, 10019);
	s[0].flags = VLUN_EXT_NO_WRITE;
	assert_int_equal(vlun_map_set(m, 320, 10, s, 1), 0);
	assert_int_equal(export_n(m, NULL), 5);

	/* punching a hole into the middle splits into three */
	s[0] = ext_invalid(150, 10);
	assert_int_equal(vlun_map_set(m, 150, 10, s, 1), 0);
	assert_int_equal(export_n(m, &x), 7);
	assert_int_equal(x[0].nsectors, 150);
	assert_int_equal(x[2].vsector, 160);
	assert_int_equal(x[2].psector, 4900 + 160);
	free(x);

	/* one set over several extents, given as two extents */
	s[0] = ext_mapped(50, 250, 2, 0);
	s[1] = ext_invalid(300, 9700);
	assert_int_equal(vlun_map_set(m, 50, 9950, s, 2), 0);
	assert_int_equal(export_n(m, &x), 3);
	assert_int_equal(x[1].member, 2);
	free(x);
	vlun_map_free(m);
}

static void test_rejected_set_changes_nothing(void **state)
{
	struct vlun_extent e = ext_mapped(0, 1000, 0, 0), s[2];
	struct vlun_map *m = NULL;
	struct vlun_extent out[2];
	uint64_t g;

	assert_int_equal(vlun_map_new(&e, 1, 1000, &m), 0);
	g = vlun_map_generation(m);
	s[0] = ext_mapped(10, 5, 1, 0);
	assert_int_equal(vlun_map_set(m, 10, 6, s, 1), -EINVAL);     /* short */
	s[1] = ext_mapped(16, 4, 1, 0);
	assert_int_equal(vlun_map_set(m, 10, 10, s, 2), -EINVAL);    /* gap */
	s[0] = ext_mapped(995, 10, 1, 0);
	assert_int_equal(vlun_map_set(m, 995, 10, s, 1), -ERANGE);   /* past the end */
	s[0] = ext_mapped(10, 0, 1, 0);
	assert_int_equal(vlun_map_set(m, 10, 0, s, 1), -EINVAL);
	assert_int_equal(vlun_map_generation(m), g);
	assert_int_equal(vlun_map_lookup(m, 0, 1000, out, 2), 1);
	assert_int_equal(out[0].member, 0);
	assert_int_equal(out[0].nsectors, 1000);
	vlun_map_free(m);
}

/* Per-sector model: member (NOM = invalid) and psector. */
#define MSIZE 40000u
static uint32_t mod_member[MSIZE];
static uint64_t mod_ps[MSIZE];

static void check_against_model(struct vlun_map *m)
{
	struct vlun_extent *x = NULL;
	uint32_t n = 0;

	assert_int_equal(vlun_map_export(m, &x, &n), 0);
	assert_cover(x, n, MSIZE);
	for (uint32_t i = 0; i < n; i++) {
		for (uint64_t v = x[i].vsector; v < x[i].vsector + x[i].nsectors; v++) {
			assert_int_equal(x[i].member, mod_member[v]);
			if (x[i].member != NOM)
				assert_int_equal(x[i].psector + (v - x[i].vsector), mod_ps[v]);
		}
		/* fully merged: neighbours are never compatible */
		if (i > 0 && x[i].member == x[i - 1].member && x[i].flags == x[i - 1].flags)
			assert_true(x[i].member != NOM &&
				    x[i - 1].psector + x[i - 1].nsectors != x[i].psector);
	}
	free(x);
}

static void test_randomized_against_model(void **state)
{
	struct vlun_extent e[64];
	struct vlun_map *m = NULL;
	uint64_t maxpages = 0;

	srandom(7);
	for (uint32_t i = 0; i < MSIZE; i++)
		mod_member[i] = NOM;
	e[0] = ext_invalid(0, MSIZE);
	assert_int_equal(vlun_map_new(e, 1, MSIZE, &m), 0);

	for (int it = 0; it < 3000; it++) {
		uint64_t len = it % 50 == 0 ? 1 + (uint64_t)random() % 20000 : 1 + (uint64_t)random() % 40;
		uint64_t s = (uint64_t)random() % (MSIZE - len + 1), pos = s;
		uint32_t n = 0;

		while (pos < s + len) {
			uint64_t l = n == 63 ? s + len - pos : 1 + (uint64_t)random() % (s + len - pos);
			uint32_t mem = (uint32_t)random() % 4;

			/* member 3 = invalid; psector chosen so that neighbours
			 * sometimes are contiguous (vsector-based) */
			if (mem == 3)
				e[n] = ext_invalid(pos, l);
			else
				e[n] = ext_mapped(pos, l, mem, random() % 2 ? pos * 2 : pos * 2 + 7);
			for (uint64_t v = pos; v < pos + l; v++) {
				mod_member[v] = e[n].member;
				mod_ps[v] = e[n].psector + (v - pos);
			}
			pos += l;
			n++;
		}
		assert_int_equal(vlun_map_set(m, s, len, e, n), 0);
		if (vlun_map_page_count(m) > maxpages)
			maxpages = vlun_map_page_count(m);
		if (it % 100 == 0)
			check_against_model(m);
	}
	check_against_model(m);
	assert_true(maxpages > 3); /* the page split/merge paths ran */
	vlun_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_and_merge),
		cmocka_unit_test(test_rejected_set_changes_nothing),
		cmocka_unit_test(test_randomized_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
