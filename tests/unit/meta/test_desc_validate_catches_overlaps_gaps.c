/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_pool_desc_validate refuses, with a reason, every broken invariant:
 * gaps, overlaps, empty extents, unknown flags, bad member refs, extents
 * outside the data area, physical double use (primary or alternate),
 * duplicate names/ids, invalid names. */
#include "metatest.h"

struct fixture {
	struct mt_pool p;
	struct vlun_pool_desc *d;
};

/* Two linear disks of 100 sectors: vd1 = m0[0,50) + m1[0,50), vd2 = m0[50,150). */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vlun_pool_desc *d;

	mt_pool_create(&f->p, 2, MT_DISK_BYTES, MT_META_BYTES);
	d = f->d = mt_desc_new(&f->p);
	d->nvdisks = 2;
	d->vdisks = calloc(2, sizeof(*d->vdisks));
	for (uint32_t i = 0; i < 2; i++) {
		struct vlun_vdisk_desc *v = &d->vdisks[i];

		v->id = d->next_vdisk_id++;
		snprintf(v->name, sizeof(v->name), "vd%u", i + 1);
		v->layout = VLUN_LAYOUT_LINEAR;
		v->size_sectors = 100;
		v->nextents = 2;
		v->extents = calloc(2, sizeof(*v->extents));
		for (int e = 0; e < 2; e++) {
			struct vlun_extent *x = &v->extents[e];

			x->vsector = (uint64_t)e * 50;
			x->nsectors = 50;
			x->alt_member = VLUN_NO_MEMBER;
			x->member = i == 0 ? (uint32_t)e : 0;
			x->psector = d->members[x->member].data_start + (i == 0 ? 0 : 50 + (uint64_t)e * 50);
		}
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vlun_pool_desc_free(f->d);
	mt_pool_destroy(&f->p);
	free(f);
	return 0;
}

static void expect_bad(struct vlun_pool_desc *d, const char *needle)
{
	char why[256] = "";

	assert_int_equal(vlun_pool_desc_validate(d, why, sizeof(why)), -EUCLEAN);
	if (!strstr(why, needle))
		fail_msg("reason \"%s\" does not mention \"%s\"", why, needle);
}

static void baseline_valid(void **state)
{
	struct fixture *f = *state;
	char why[256] = "";

	assert_int_equal(vlun_pool_desc_validate(f->d, why, sizeof(why)), 0);
}

static void gap(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[0].extents[1].vsector = 51;
	f->d->vdisks[0].extents[1].nsectors = 49;
	expect_bad(f->d, "gap");
}

static void virtual_overlap(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[0].extents[1].vsector = 49;
	expect_bad(f->d, "overlap");
}

static void short_coverage(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[0].size_sectors = 120;
	expect_bad(f->d, "cover");
}

static void empty_extent(void **state)
{
	struct fixture *f = *state;
	struct vlun_vdisk_desc *v = &f->d->vdisks[0];

	v->extents[0].nsectors = 0;
	v->extents[1].vsector = 0;
	v->extents[1].nsectors = 100;
	expect_bad(f->d, "empty");
}

static void unknown_flags(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[0].extents[0].flags = 1u << 20;
	expect_bad(f->d, "unknown flags");
}

static void bad_member(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[0].extents[0].member = 7;
	expect_bad(f->d, "member 7 does not exist");
}

static void outside_data_area(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[0].extents[0].psector = 8; /* inside the metadata area */
	expect_bad(f->d, "outside");
	f->d->vdisks[0].extents[0].psector = f->d->members[0].data_start + f->d->members[0].data_sectors - 10;
	expect_bad(f->d, "outside");
}

static void physical_overlap_between_disks(void **state)
{
	struct fixture *f = *state;

	f->d->vdisks[1].extents[0].psector -= 1; /* vd2 now reuses vd1's last sector on m0 */
	expect_bad(f->d, "used twice");
}

static void alternate_overlaps_primary(void **state)
{
	struct fixture *f = *state;
	struct vlun_extent *x = &f->d->vdisks[0].extents[1];

	x->flags |= VLUN_EXT_ALT_EXISTS;
	x->alt_member = 0;
	x->alt_psector = f->d->members[0].data_start + 120; /* inside vd2's m0 range */
	expect_bad(f->d, "(alternate)");
	x->alt_psector = f->d->members[0].data_start + 1000; /* free space: fine */
	assert_int_equal(vlun_pool_desc_validate(f->d, NULL, 0), 0);
	x->flags &= ~VLUN_EXT_ALT_EXISTS; /* alt member without the flag */
	expect_bad(f->d, "without ALT_EXISTS");
}

static void unmapped_extents_need_no_member(void **state)
{
	struct fixture *f = *state;
	struct vlun_extent *x = &f->d->vdisks[0].extents[0];

	x->flags = VLUN_EXT_INVALID;
	x->member = VLUN_NO_MEMBER;
	x->psector = 0;
	assert_int_equal(vlun_pool_desc_validate(f->d, NULL, 0), 0);
	x->flags = 0;
	expect_bad(f->d, "no member");
}

static void names_and_ids(void **state)
{
	struct fixture *f = *state;

	snprintf(f->d->vdisks[1].name, sizeof(f->d->vdisks[1].name), "vd1");
	expect_bad(f->d, "two vdisks are named 'vd1'");
	snprintf(f->d->vdisks[1].name, sizeof(f->d->vdisks[1].name), "bad name!");
	expect_bad(f->d, "name is not valid");
	snprintf(f->d->vdisks[1].name, sizeof(f->d->vdisks[1].name), "vd2");
	f->d->vdisks[1].id = f->d->vdisks[0].id;
	expect_bad(f->d, "same id");
	f->d->vdisks[1].id = f->d->next_vdisk_id;
	expect_bad(f->d, "next_vdisk_id");
}

static void limits(void **state)
{
	struct fixture *f = *state;

	f->d->nmembers = 0;
	expect_bad(f->d, "members");
	f->d->nmembers = 2;
	f->d->members[1].index = 0;
	expect_bad(f->d, "index");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(baseline_valid), T(gap), T(virtual_overlap), T(short_coverage), T(empty_extent),
		T(unknown_flags), T(bad_member), T(outside_data_area), T(physical_overlap_between_disks),
		T(alternate_overlaps_primary), T(unmapped_extents_need_no_member), T(names_and_ids), T(limits),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
