/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A full commit that includes a member added since the last commit (the
 * add-member path) keeps the slot bookkeeping of the old members: the next
 * commits still alternate slots on every member, so the previous copy is
 * never overwritten. (vlun_meta_commit once kept pointers into the member
 * state array across the call that grows it for the new member: the old
 * members' slot updates went to freed memory — ASan/valgrind report it,
 * and in a plain build the next commit overwrote the newest valid copy.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blkdev.h"
#include "internal.h"
#include "meta.h"
#include "vlun.h"

#define NMAX 6
#define DISK_BYTES (8ull << 20)
#define META_BYTES (1ull << 20)

static uint8_t pool_uuid[VLUN_UUID_LEN];
static struct vlun_meta_member mm[NMAX];

static void label(size_t i)
{
	char name[32];
	uint8_t mu[VLUN_UUID_LEN];

	snprintf(name, sizeof(name), "mem:%zu", i);
	assert_int_equal(vlun_memdisk_create(name, DISK_BYTES, &mm[i].dev), 0);
	vlun_uuid_generate(mu);
	assert_int_equal(vlun_meta_label_write(mm[i].dev, pool_uuid, mu, "pool0", META_BYTES, false,
					       &mm[i].label), 0);
}

static void describe(struct vlun_pool_desc *d, size_t n)
{
	d->members = realloc(d->members, n * sizeof(*d->members));
	assert_non_null(d->members);
	for (size_t i = d->nmembers; i < n; i++) {
		struct vlun_member_desc *m = &d->members[i];
		const struct vlun_label *l = &mm[i].label;

		memset(m, 0, sizeof(*m));
		memcpy(m->uuid, l->member_uuid, VLUN_UUID_LEN);
		m->index = (uint32_t)i;
		m->size_bytes = l->member_size;
		m->data_start = l->data_start;
		m->data_sectors = l->member_size / VLUN_SECTOR_SIZE - l->data_start;
		snprintf(m->path_hint, sizeof(m->path_hint), "/dev/mem%zu", i);
	}
	d->nmembers = (uint32_t)n;
}

/* seq of the checkpoint in slot s of member i, 0 when the slot is empty
 * (header layout documented at the top of lib/meta.c) */
static uint64_t slot_seq(size_t i, int s)
{
	const uint8_t *h = vlun_memdisk_data(mm[i].dev) + mm[i].label.meta_offset +
			   (uint64_t)s * mm[i].label.slot_bytes;

	return memcmp(h, "VLUNCKPT", 8) ? 0 : vlun_get_le64(h + 56);
}

static void commit_after_add_member(void **state)
{
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d = calloc(1, sizeof(*d)), *got = NULL;
	size_t n = 2;
	uint64_t seq = 0;
	char why[256];

	(void)state;
	assert_non_null(d);
	vlun_uuid_generate(pool_uuid);
	memcpy(d->uuid, pool_uuid, VLUN_UUID_LEN);
	snprintf(d->name, sizeof(d->name), "pool0");
	d->created = 1700000000;
	d->next_vdisk_id = 1;
	for (size_t i = 0; i < n; i++)
		label(i);
	describe(d, n);
	assert_int_equal(vlun_meta_init(mm, n, &st), 0);

	/* two commits: both slots of the old members hold a copy */
	for (int k = 0; k < 2; k++) {
		d->generation++;
		assert_int_equal(vlun_meta_commit(st, mm, n, d), 0);
		seq = d->seq;
	}

	/* add members one commit at a time, then keep committing */
	while (n < NMAX) {
		label(n);
		describe(d, n + 1);
		n++;
		for (int k = 0; k < 3; k++) {
			d->generation++;
			assert_int_equal(vlun_meta_commit(st, mm, n, d), 0);
			assert_int_equal(d->seq, seq + 1);
			seq = d->seq;
			for (size_t i = 0; i < n; i++) {
				uint64_t a = slot_seq(i, 0), b = slot_seq(i, 1);

				/* the newest copy is this commit's ... */
				assert_int_equal(a > b ? a : b, seq);
				/* ... and the other slot still holds the previous one
				 * (a member added by this commit has none yet) */
				if (i + 1 < n || k > 0)
					assert_int_equal(a > b ? b : a, seq - 1);
			}
		}
	}
	assert_int_equal(vlun_meta_load(mm, n, &got, NULL, why, sizeof(why)), 0);
	assert_int_equal(got->seq, seq);
	assert_int_equal(got->nmembers, n);

	vlun_pool_desc_free(got);
	vlun_pool_desc_free(d);
	vlun_meta_free(st);
	for (size_t i = 0; i < n; i++)
		vlun_blkdev_close(mm[i].dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(commit_after_add_member),
	};

	if (!getenv("MT_VERBOSE"))
		vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
