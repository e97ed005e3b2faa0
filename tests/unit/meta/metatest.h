/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * metatest.h — helpers for the metadata tests: a pool of labelled memory
 * disks, random pool descriptions, deep comparison, on-disk peeking.
 * Header-only (static functions) so every test stays one executable.
 */
#ifndef METATEST_H
#define METATEST_H

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

#define MT_MAX 8
#define MT_DISK_BYTES (8ull << 20)
#define MT_META_BYTES (1ull << 20)

struct mt_pool {
	size_t n;
	struct vlun_meta_member m[MT_MAX];
	uint8_t pool_uuid[VLUN_UUID_LEN];
};

/* Deterministic PRNG (xorshift64*) so failures reproduce. */
static uint64_t mt_rng_state = 0x9e3779b97f4a7c15ull;
static inline uint64_t mt_rand(void)
{
	uint64_t x = mt_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	mt_rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}
static inline uint64_t mt_rand_range(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + mt_rand() % (hi - lo + 1);
}

static inline void mt_quiet(void)
{
	if (!getenv("MT_VERBOSE"))
		vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
}

/* n memory disks of disk_bytes, labelled for one pool. */
static inline void mt_pool_create(struct mt_pool *p, size_t n, uint64_t disk_bytes, uint64_t meta_bytes)
{
	memset(p, 0, sizeof(*p));
	assert_true(n <= MT_MAX);
	p->n = n;
	vlun_uuid_generate(p->pool_uuid);
	for (size_t i = 0; i < n; i++) {
		char name[32];
		uint8_t mu[VLUN_UUID_LEN];

		snprintf(name, sizeof(name), "mem:%zu", i);
		assert_int_equal(vlun_memdisk_create(name, disk_bytes, &p->m[i].dev), 0);
		vlun_uuid_generate(mu);
		assert_int_equal(vlun_meta_label_write(p->m[i].dev, p->pool_uuid, mu, "pool0", meta_bytes, false,
						       &p->m[i].label), 0);
	}
}

static inline void mt_pool_destroy(struct mt_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		vlun_blkdev_close(p->m[i].dev);
	memset(p, 0, sizeof(*p));
}

static inline void mt_crash_all(struct mt_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		vlun_memdisk_crash(p->m[i].dev);
}

/* A pool description matching the pool's labels, no vdisks yet. */
static inline struct vlun_pool_desc *mt_desc_new(const struct mt_pool *p)
{
	struct vlun_pool_desc *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	memcpy(d->uuid, p->pool_uuid, VLUN_UUID_LEN);
	snprintf(d->name, sizeof(d->name), "pool0");
	d->created = 1700000000;
	d->next_vdisk_id = 1;
	d->nmembers = (uint32_t)p->n;
	d->members = calloc(p->n, sizeof(*d->members));
	assert_non_null(d->members);
	for (size_t i = 0; i < p->n; i++) {
		struct vlun_member_desc *m = &d->members[i];
		const struct vlun_label *l = &p->m[i].label;

		memcpy(m->uuid, l->member_uuid, VLUN_UUID_LEN);
		m->index = (uint32_t)i;
		m->size_bytes = l->member_size;
		m->data_start = l->data_start;
		m->data_sectors = l->member_size / VLUN_SECTOR_SIZE - l->data_start;
		snprintf(m->path_hint, sizeof(m->path_hint), "/dev/mem%zu", i);
	}
	return d;
}

/* Appends a vdisk of size sectors made of random extents: mapped extents
 * take the next free sectors of a random member (cursor[] per member),
 * some are INVALID/ZERO, some have an alternate. */
static inline void mt_add_random_vdisk(struct vlun_pool_desc *d, uint64_t size, uint32_t max_ext, uint64_t *cursor)
{
	struct vlun_vdisk_desc *v;
	uint64_t pos = 0;

	d->vdisks = realloc(d->vdisks, (d->nvdisks + 1) * sizeof(*d->vdisks));
	assert_non_null(d->vdisks);
	v = &d->vdisks[d->nvdisks++];
	memset(v, 0, sizeof(*v));
	v->id = d->next_vdisk_id++;
	vlun_uuid_generate(v->uuid);
	snprintf(v->name, sizeof(v->name), "vd%u", v->id);
	v->layout = (uint32_t)mt_rand_range(1, 3);
	v->size_sectors = size;
	v->chunk_sectors = 2048;
	v->generation = mt_rand_range(0, 1000);
	v->extents = calloc(max_ext, sizeof(*v->extents));
	assert_non_null(v->extents);
	while (pos < size) {
		struct vlun_extent *x = &v->extents[v->nextents];
		uint64_t left = size - pos;
		uint64_t len = v->nextents + 1 == max_ext ? left : mt_rand_range(1, VLUN_MIN(left, 64));
		uint32_t kind = (uint32_t)mt_rand_range(0, 9);
		uint32_t mi = (uint32_t)mt_rand_range(0, d->nmembers - 1);

		x->vsector = pos;
		x->nsectors = len;
		x->member = x->alt_member = VLUN_NO_MEMBER;
		if (kind < 2) {
			x->flags = VLUN_EXT_INVALID;
		} else if (kind < 3) {
			x->flags = VLUN_EXT_ZERO;
		} else if (cursor[mi] + len <= d->members[mi].data_sectors) {
			x->member = mi;
			x->psector = d->members[mi].data_start + cursor[mi];
			cursor[mi] += len;
			if (kind == 9) {
				uint32_t ai = (mi + 1) % d->nmembers;

				if (cursor[ai] + len <= d->members[ai].data_sectors) {
					x->flags |= VLUN_EXT_ALT_EXISTS | (mt_rand() & 1 ? VLUN_EXT_ALT_DIRTY : 0);
					x->alt_member = ai;
					x->alt_psector = d->members[ai].data_start + cursor[ai];
					x->dirty_id = (x->flags & VLUN_EXT_ALT_DIRTY) ? 7 : 0;
					cursor[ai] += len;
				}
			}
			if (kind == 8)
				x->flags |= VLUN_EXT_NO_WRITE;
		} else {
			x->flags = VLUN_EXT_INVALID;
		}
		pos += len;
		v->nextents++;
	}
}

static inline struct vlun_pool_desc *mt_desc_random(const struct mt_pool *p, uint32_t nvdisks, uint32_t max_ext)
{
	struct vlun_pool_desc *d = mt_desc_new(p);
	uint64_t cursor[MT_MAX] = { 0 };
	char why[256];

	for (uint32_t i = 0; i < nvdisks; i++)
		mt_add_random_vdisk(d, mt_rand_range(1, 32ull * max_ext), max_ext, cursor);
	d->generation = mt_rand_range(1, 1u << 20);
	d->map_epoch = mt_rand_range(0, 5);
	if (vlun_pool_desc_validate(d, why, sizeof(why)) < 0)
		fail_msg("generated description is invalid: %s", why);
	return d;
}

/* A random description whose encoding is at least min_bytes long. */
static inline struct vlun_pool_desc *mt_desc_random_min(const struct mt_pool *p, uint32_t nvdisks, uint32_t max_ext,
							size_t min_bytes)
{
	for (;;) {
		struct vlun_pool_desc *d = mt_desc_random(p, nvdisks, max_ext);
		uint8_t *enc;
		size_t len;

		assert_int_equal(vlun_meta_encode(d, &enc, &len), 0);
		free(enc);
		if (len >= min_bytes)
			return d;
		vlun_pool_desc_free(d);
	}
}

/* Deep equality; seq is compared too unless ignore_seq. */
static inline bool mt_desc_equal(const struct vlun_pool_desc *a, const struct vlun_pool_desc *b, bool ignore_seq)
{
	if (memcmp(a->uuid, b->uuid, VLUN_UUID_LEN) || strcmp(a->name, b->name) ||
	    (!ignore_seq && a->seq != b->seq) || a->generation != b->generation || a->map_epoch != b->map_epoch ||
	    a->created != b->created || a->next_vdisk_id != b->next_vdisk_id || a->nmembers != b->nmembers ||
	    a->nvdisks != b->nvdisks)
		return false;
	for (uint32_t i = 0; i < a->nmembers; i++) {
		const struct vlun_member_desc *x = &a->members[i], *y = &b->members[i];

		if (memcmp(x->uuid, y->uuid, VLUN_UUID_LEN) || x->index != y->index || x->state != y->state ||
		    x->size_bytes != y->size_bytes || x->data_start != y->data_start ||
		    x->data_sectors != y->data_sectors || strcmp(x->path_hint, y->path_hint))
			return false;
	}
	for (uint32_t i = 0; i < a->nvdisks; i++) {
		const struct vlun_vdisk_desc *x = &a->vdisks[i], *y = &b->vdisks[i];

		if (x->id != y->id || memcmp(x->uuid, y->uuid, VLUN_UUID_LEN) || strcmp(x->name, y->name) ||
		    x->layout != y->layout || x->size_sectors != y->size_sectors ||
		    x->chunk_sectors != y->chunk_sectors || x->stripe_width != y->stripe_width ||
		    x->flags != y->flags || x->generation != y->generation || x->nextents != y->nextents)
			return false;
		for (uint32_t e = 0; e < x->nextents; e++) {
			const struct vlun_extent *p = &x->extents[e], *q = &y->extents[e];

			if (p->vsector != q->vsector || p->nsectors != q->nsectors || p->psector != q->psector ||
			    p->alt_psector != q->alt_psector || p->member != q->member ||
			    p->alt_member != q->alt_member || p->flags != q->flags || p->dirty_id != q->dirty_id)
				return false;
		}
	}
	return true;
}

/* On-disk peeking (offsets documented at the top of lib/meta.c). */
static inline uint64_t mt_slot_off(const struct mt_pool *p, size_t i, int slot)
{
	return p->m[i].label.meta_offset + (uint64_t)slot * p->m[i].label.slot_bytes;
}
static inline uint64_t mt_slot_seq(const struct mt_pool *p, size_t i, int slot)
{
	const uint8_t *h = vlun_memdisk_data(p->m[i].dev) + mt_slot_off(p, i, slot);

	return memcmp(h, "VLUNCKPT", 8) ? 0 : vlun_get_le64(h + 56);
}

static inline int mt_load(struct mt_pool *p, struct vlun_pool_desc **ret, struct vlun_meta **ret_st, char *why, size_t wl)
{
	return vlun_meta_load(p->m, p->n, ret, ret_st, why, wl);
}

/* A description with one thin disk "thin0" of size sectors, 1-sector
 * chunks, all of it one INVALID extent (the journal tests' subject). */
static inline struct vlun_pool_desc *mt_desc_thin(const struct mt_pool *p, uint64_t size)
{
	struct vlun_pool_desc *d = mt_desc_new(p);
	struct vlun_vdisk_desc *v;

	d->vdisks = calloc(1, sizeof(*v));
	d->nvdisks = 1;
	v = &d->vdisks[0];
	v->id = d->next_vdisk_id++;
	snprintf(v->name, sizeof(v->name), "thin0");
	v->layout = VLUN_LAYOUT_THIN;
	v->size_sectors = size;
	v->chunk_sectors = 1;
	v->nextents = 1;
	v->extents = calloc(1, sizeof(*v->extents));
	v->extents[0] = (struct vlun_extent){ .nsectors = size, .member = VLUN_NO_MEMBER,
					      .alt_member = VLUN_NO_MEMBER, .flags = VLUN_EXT_INVALID };
	return d;
}

/* One delta: replaces [vs, vs+ns) of vdisk v by a single extent. */
static inline struct vlun_meta_delta mt_delta_one(const struct vlun_vdisk_desc *v, uint64_t vs, uint64_t ns,
						  struct vlun_extent *x, uint32_t member, uint64_t psector)
{
	memset(x, 0, sizeof(*x));
	x->vsector = vs;
	x->nsectors = ns;
	x->member = member;
	x->alt_member = VLUN_NO_MEMBER;
	x->psector = psector;
	x->flags = member == VLUN_NO_MEMBER ? VLUN_EXT_INVALID : 0;
	return (struct vlun_meta_delta){ .vdisk_id = v->id, .vsector = vs, .nsectors = ns, .nextents = 1,
					 .extents = x, .generation = v->generation + 1 };
}

#endif
