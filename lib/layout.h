/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * layout.h — builds the initial extents of a virtual disk for a layout and
 * grows/shrinks them, taking space from the allocator.
 */
#ifndef VLUN_LAYOUT_H
#define VLUN_LAYOUT_H

#include "alloc.h"
#include "vlun.h"

#define VLUN_THIN_CHUNK_DEFAULT (1ull << 20)   /* bytes */
#define VLUN_STRIPE_DEFAULT (64ull << 10)      /* bytes */

/* Fills vd->extents/nextents for vd->layout, vd->size_sectors,
 * vd->chunk_sectors, vd->stripe_width. linear: largest free runs first,
 * possibly across members. striped: stripe_width members, each stripe one
 * extent (members' ranges contiguous). thin: one INVALID extent.
 * On failure nothing is taken from the allocator; why says e.g. "not
 * enough free space: need 10 GiB, 4 GiB free". */
int vlun_layout_build(struct vlun_alloc *a, const struct vlun_pool_desc *pool,
		      struct vlun_vdisk_desc *vd, const uint32_t *members, size_t nmembers,
		      char *why, size_t whylen);
/* Resizes vd (grow: new extents per layout; shrink: frees the tail —
 * pending until commit). */
int vlun_layout_resize(struct vlun_alloc *a, const struct vlun_pool_desc *pool,
		       struct vlun_vdisk_desc *vd, uint64_t new_size_sectors, char *why, size_t whylen);
/* Releases every extent of vd to the allocator (pending until commit). */
void vlun_layout_release(struct vlun_alloc *a, const struct vlun_vdisk_desc *vd);

#endif
