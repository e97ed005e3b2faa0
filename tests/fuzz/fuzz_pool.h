/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_pool.h — a small valid pool on memory disks, for the metadata
 * targets and the seed generator: two members labelled for one pool, a
 * checkpoint holding a linear and a thin vdisk, then two journal records
 * that map chunks of the thin vdisk. Header-only.
 */
#ifndef VLUN_FUZZ_POOL_H
#define VLUN_FUZZ_POOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkdev.h"
#include "meta.h"
#include "vlun.h"

#define FP_MEMBERS 2
#define FP_DISK_BYTES (3ull << 20)  /* 1 MiB metadata area: data starts at 2 MiB */
#define FP_META_BYTES (1ull << 20)
#define FP_THIN_SECTORS 1024u
#define FP_CHUNK 256u

struct fp_pool {
	struct vlun_meta_member m[FP_MEMBERS];
	uint8_t pool_uuid[VLUN_UUID_LEN];
};

/* The description of fp's pool: members from the labels; vdisk 1 linear
 * over both members, vdisk 2 thin (unallocated). NULL on failure. */
static inline struct vlun_pool_desc *fp_desc(const struct fp_pool *fp)
{
	struct vlun_pool_desc *d = calloc(1, sizeof(*d));
	struct vlun_vdisk_desc *v;

	if (!d)
		return NULL;
	memcpy(d->uuid, fp->pool_uuid, VLUN_UUID_LEN);
	snprintf(d->name, sizeof(d->name), "fuzzpool");
	d->created = 1700000000;
	d->generation = 3;
	d->next_vdisk_id = 3;
	d->nmembers = FP_MEMBERS;
	d->members = calloc(FP_MEMBERS, sizeof(*d->members));
	d->nvdisks = 2;
	d->vdisks = calloc(2, sizeof(*d->vdisks));
	if (!d->members || !d->vdisks)
		goto fail;
	for (uint32_t i = 0; i < FP_MEMBERS; i++) {
		const struct vlun_label *l = &fp->m[i].label;
		struct vlun_member_desc *m = &d->members[i];

		memcpy(m->uuid, l->member_uuid, VLUN_UUID_LEN);
		m->index = i;
		m->size_bytes = l->member_size;
		m->data_start = l->data_start;
		m->data_sectors = l->member_size / VLUN_SECTOR_SIZE - l->data_start;
		snprintf(m->path_hint, sizeof(m->path_hint), "/dev/fuzz%u", i);
	}
	/* linear: 128 sectors on member 0, then 128 on member 1 */
	v = &d->vdisks[0];
	v->id = 1;
	memset(v->uuid, 0x11, VLUN_UUID_LEN);
	snprintf(v->name, sizeof(v->name), "lin0");
	v->layout = VLUN_LAYOUT_LINEAR;
	v->size_sectors = 256;
	v->generation = 1;
	v->nextents = 2;
	v->extents = calloc(2, sizeof(*v->extents));
	if (!v->extents)
		goto fail;
	for (uint32_t e = 0; e < 2; e++) {
		v->extents[e] = (struct vlun_extent){
			.vsector = 128 * e, .nsectors = 128, .member = e,
			.psector = d->members[e].data_start, .alt_member = VLUN_NO_MEMBER,
		};
	}
	/* thin: one unallocated extent */
	v = &d->vdisks[1];
	v->id = 2;
	memset(v->uuid, 0x22, VLUN_UUID_LEN);
	snprintf(v->name, sizeof(v->name), "thin0");
	v->layout = VLUN_LAYOUT_THIN;
	v->size_sectors = FP_THIN_SECTORS;
	v->chunk_sectors = FP_CHUNK;
	v->generation = 1;
	v->nextents = 1;
	v->extents = calloc(1, sizeof(*v->extents));
	if (!v->extents)
		goto fail;
	v->extents[0] = (struct vlun_extent){
		.nsectors = FP_THIN_SECTORS, .member = VLUN_NO_MEMBER, .alt_member = VLUN_NO_MEMBER,
		.flags = VLUN_EXT_INVALID,
	};
	return d;
fail:
	vlun_pool_desc_free(d);
	return NULL;
}

/* The delta that maps chunk `chunk` of the thin vdisk on member `member`
 * (placed after the linear vdisk's 128 sectors there). */
static inline struct vlun_meta_delta fp_delta(const struct vlun_pool_desc *d, struct vlun_extent *x,
					      uint32_t chunk, uint32_t member, uint64_t gen)
{
	*x = (struct vlun_extent){
		.vsector = (uint64_t)chunk * FP_CHUNK, .nsectors = FP_CHUNK, .member = member,
		.psector = d->members[member].data_start + 128 + (uint64_t)chunk * FP_CHUNK,
		.alt_member = VLUN_NO_MEMBER,
	};
	return (struct vlun_meta_delta){
		.vdisk_id = 2, .vsector = x->vsector, .nsectors = FP_CHUNK, .nextents = 1,
		.extents = x, .generation = gen,
	};
}

static inline void fp_close(struct fp_pool *fp)
{
	for (size_t i = 0; i < FP_MEMBERS; i++)
		vlun_blkdev_close(fp->m[i].dev);
	memset(fp, 0, sizeof(*fp));
}

/* Labels FP_MEMBERS memory disks, commits the checkpoint and, with
 * journal, two journal records. Fills *ret_desc (the final state) when
 * not NULL. 0 or a negative errno. */
static inline int fp_make(struct fp_pool *fp, bool journal, struct vlun_pool_desc **ret_desc)
{
	struct vlun_pool_desc *d = NULL;
	struct vlun_meta *st = NULL;
	int r;

	memset(fp, 0, sizeof(*fp));
	memset(fp->pool_uuid, 0xa5, VLUN_UUID_LEN);
	for (uint32_t i = 0; i < FP_MEMBERS; i++) {
		char name[16];
		uint8_t mu[VLUN_UUID_LEN];

		snprintf(name, sizeof(name), "mem:%u", i);
		memset(mu, 0x30 + (int)i, VLUN_UUID_LEN);
		r = vlun_memdisk_create(name, FP_DISK_BYTES, &fp->m[i].dev);
		if (r < 0)
			goto fail;
		r = vlun_meta_label_write(fp->m[i].dev, fp->pool_uuid, mu, "fuzzpool", FP_META_BYTES, false,
					  &fp->m[i].label);
		if (r < 0)
			goto fail;
	}
	d = fp_desc(fp);
	r = d ? vlun_meta_init(fp->m, FP_MEMBERS, &st) : -ENOMEM;
	if (r == 0)
		r = vlun_meta_commit(st, fp->m, FP_MEMBERS, d);
	for (uint32_t k = 0; journal && r == 0 && k < 2; k++) {
		struct vlun_extent x;
		struct vlun_meta_delta dl;

		d->vdisks[1].generation++;
		d->generation++;
		dl = fp_delta(d, &x, k, k % FP_MEMBERS, d->vdisks[1].generation);
		r = vlun_meta_apply_delta(d, &dl);
		if (r == 0)
			r = vlun_meta_commit_delta(st, fp->m, FP_MEMBERS, d, &dl, 1);
	}
	vlun_meta_free(st);
	if (r < 0)
		goto fail;
	if (ret_desc)
		*ret_desc = d;
	else
		vlun_pool_desc_free(d);
	return 0;
fail:
	vlun_pool_desc_free(d);
	fp_close(fp);
	return r;
}

#endif
