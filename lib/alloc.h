/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * alloc.h — free space of the pool's members, derived from the map (the
 * metadata stores no free list: free = data area minus every extent's
 * primary and alternate ranges). Controller only; not thread safe.
 *
 * Freed space is not reusable at once: vlun_alloc_free() puts it on a
 * pending list that vlun_alloc_commit_done() releases after the metadata
 * commit that records the free is durable. Otherwise a crash could leave
 * the old owner's map pointing at blocks already rewritten by a new owner.
 */
#ifndef VLUN_ALLOC_H
#define VLUN_ALLOC_H

#include "vlun.h"

struct vlun_alloc;

/* Builds the free space from a description. -EUCLEAN if extents overlap. */
int vlun_alloc_new(const struct vlun_pool_desc *d, struct vlun_alloc **ret);
void vlun_alloc_free_all(struct vlun_alloc *a);

/* Adds a member's data area (add-member). */
int vlun_alloc_add_member(struct vlun_alloc *a, const struct vlun_member_desc *m);

/* Allocates nsectors contiguous on one member, aligned to align sectors.
 * member_hint: preferred member (VLUN_NO_MEMBER = the one with most free
 * space; ties round robin). allowed/nallowed restrict the members (NULL =
 * all healthy). -ENOSPC if no member has room. */
int vlun_alloc_get(struct vlun_alloc *a, uint64_t nsectors, uint64_t align, uint32_t member_hint,
		   const uint32_t *allowed, size_t nallowed,
		   uint32_t *ret_member, uint64_t *ret_psector);
/* Marks a range in use (used when building layouts that choose placement). */
int vlun_alloc_take(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors);
/* Allocates exactly [psector, psector+nsectors) on member if all of it is
 * free and the member is usable (OK), like vlun_alloc_get would: -EBUSY
 * not (all) free, -ENODEV member not usable, -ENOENT unknown member,
 * -ERANGE outside its data area.
 *
 * Placement policy of thin chunks (lib/vdisk.c, prep_start): a new chunk
 * goes physically right after its left virtual neighbour's chunk (same
 * member) when that space is free, else right before its right
 * neighbour's; so a disk written sequentially stays one extent on one
 * member (compact metadata, sequential physical I/O). Otherwise
 * vlun_alloc_get with the neighbour's member as hint (first fit there,
 * other members when it is full). A chunk with no allocated neighbour
 * (random first touch, the start of a disk) goes to the member with the
 * most free space, which spreads independent regions over the members.
 * Striping across members for bandwidth is the striped layout's job. */
int vlun_alloc_get_at(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors);
/* Frees a range: pending until vlun_alloc_commit_done(). */
int vlun_alloc_free(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors);
/* Takes back a range freed (pending) or free, for a change whose commit
 * failed and is rolled back. -EBUSY when part of it is in use. */
int vlun_alloc_unfree(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors);
/* The commit that recorded all frees so far is durable: make them reusable. */
void vlun_alloc_commit_done(struct vlun_alloc *a);

uint64_t vlun_alloc_free_sectors(const struct vlun_alloc *a, uint32_t member); /* VLUN_NO_MEMBER = all */
uint64_t vlun_alloc_total_sectors(const struct vlun_alloc *a, uint32_t member);

/* Additions (map helper). */
/* Returns a range taken but never recorded in committed metadata (e.g. a
 * layout that failed half way): reusable at once, unlike vlun_alloc_free. */
int vlun_alloc_put_back(struct vlun_alloc *a, uint32_t member, uint64_t psector, uint64_t nsectors);
/* The controller marked a member (enum vlun_member_state): only OK members
 * are allocated from. -ENOENT unknown member. */
int vlun_alloc_set_member_state(struct vlun_alloc *a, uint32_t member, uint32_t state);
/* Freed but not yet reusable (waiting for vlun_alloc_commit_done). */
uint64_t vlun_alloc_pending_sectors(const struct vlun_alloc *a, uint32_t member);
/* A copy of a member's free runs, sorted by address (caller frees). */
struct vlun_alloc_run {
	uint64_t start, len;
};
int vlun_alloc_runs(const struct vlun_alloc *a, uint32_t member, struct vlun_alloc_run **ret,
		    size_t *ret_n);

#endif
