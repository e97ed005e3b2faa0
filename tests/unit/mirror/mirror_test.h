/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mirror_test.h — helpers for the mirror / migration tests: a pool of
 * member files, a linear disk placed on one member, waiting for jobs, and
 * reading a copy straight from a member file. */
#ifndef MIRROR_TEST_H
#define MIRROR_TEST_H

#include <time.h>

#include "../engine/vdisk_test.h"

#define MT_MEMBER_BYTES (64ull << 20)

static inline void mt_linear_on(struct vlun_pool *p, const char *name, uint64_t size, uint32_t member)
{
	struct vlun_vdisk_create_opts o = { .name = name, .layout = VLUN_LAYOUT_LINEAR, .size_bytes = size,
					    .members = &member, .nmembers = 1 };
	char *why = NULL;
	int r = vlun_vdisk_create(p, &o, &why);
	if (r < 0)
		fail_msg("vdisk create %s: %s (%s)", name, strerror(-r), why ? why : "");
	free(why);
}

static inline const struct vlun_vdisk_desc *mt_vdesc(const struct vlun_pool_desc *d, const char *name)
{
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (!strcmp(d->vdisks[i].name, name))
			return &d->vdisks[i];
	fail_msg("no vdisk %s", name);
	return NULL;
}

/* Bytes of the disk whose alternate is behind / that are mirrored. */
static inline void mt_mirror_state(struct vlun_pool *p, const char *name, uint64_t *ret_mirrored,
				   uint64_t *ret_behind)
{
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	const struct vlun_vdisk_desc *v = mt_vdesc(d, name);
	uint64_t m = 0, b = 0;
	for (uint32_t k = 0; k < v->nextents; k++) {
		const struct vlun_extent *e = &v->extents[k];
		if (e->flags & VLUN_EXT_ALT_EXISTS)
			m += e->nsectors << VLUN_SECTOR_SHIFT;
		if (e->flags & VLUN_EXT_ALT_DIRTY)
			b += e->nsectors << VLUN_SECTOR_SHIFT;
	}
	vlun_pool_desc_free(d);
	*ret_mirrored = m;
	*ret_behind = b;
}

/* Waits (up to 60 s, 10 min under valgrind) until nothing of the disk is
 * behind and no job runs. */
static inline void mt_wait_idle(struct vlun_pool *p, const char *name)
{
	const char *vg = getenv("VLUN_UNDER_VALGRIND");
	int limit = vg && !strcmp(vg, "1") ? 60000 : 6000;
	for (int i = 0; i < limit; i++) {
		uint64_t m, b;
		mt_mirror_state(p, name, &m, &b);
		struct vlun_job_info *v = NULL;
		size_t n = 0;
		assert_int_equal(vlun_jobs_list(p, &v, &n), 0);
		bool busy = false;
		for (size_t k = 0; k < n; k++)
			busy |= v[k].state == VLUN_JOB_RUNNING || v[k].state == VLUN_JOB_QUEUED ||
				(v[k].kind == VLUN_JOB_MIGRATE && v[k].state != VLUN_JOB_DONE &&
				 v[k].state != VLUN_JOB_CANCELLED);
		free(v);
		if (b == 0 && !busy)
			return;
		usleep(10000);
	}
	fail_msg("jobs of '%s' did not finish in %d s", name, limit / 100);
}

/* Compares copy 0 (primary) and copy 1 (alternate) of every mirrored
 * extent of the disk, reading the member files directly. Returns the
 * number of bytes compared. */
static inline uint64_t mt_copies_equal(struct vlun_pool *p, struct et_pool *tp, const char *name)
{
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	const struct vlun_vdisk_desc *v = mt_vdesc(d, name);
	uint64_t total = 0;
	for (uint32_t k = 0; k < v->nextents; k++) {
		const struct vlun_extent *e = &v->extents[k];
		if (!(e->flags & VLUN_EXT_ALT_EXISTS))
			continue;
		assert_false(e->flags & VLUN_EXT_ALT_DIRTY);
		uint64_t len = e->nsectors << VLUN_SECTOR_SHIFT;
		uint8_t *a = et_alloc(len), *b = et_alloc(len);
		assert_int_equal(et_pread_all(tp->paths[e->member], a, len, e->psector << VLUN_SECTOR_SHIFT), 0);
		assert_int_equal(et_pread_all(tp->paths[e->alt_member], b, len, e->alt_psector << VLUN_SECTOR_SHIFT), 0);
		if (memcmp(a, b, len) != 0)
			fail_msg("copies of '%s' sectors %llu+%llu differ (members %u and %u)", name,
				 (unsigned long long)e->vsector, (unsigned long long)e->nsectors, e->member, e->alt_member);
		free(a);
		free(b);
		total += len;
	}
	vlun_pool_desc_free(d);
	return total;
}

static inline uint32_t mt_member_state(struct vlun_pool *p, uint32_t m)
{
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	uint32_t st = d->members[m].state;
	vlun_pool_desc_free(d);
	return st;
}

#endif
