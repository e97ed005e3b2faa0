/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * map.h — the runtime virtualization map of one virtual disk, read by the
 * fast path without locks and changed only by the controller.
 *
 * Readers (any thread) call vlun_map_lookup(), which copies out the extents
 * covering a range inside an RCU read-side section (liburcu-bp: no thread
 * registration needed) and never blocks. The controller replaces entries
 * with vlun_map_set() under its own mutex; changed pages are copied,
 * published with rcu_assign_pointer and the old ones freed after a grace
 * period. Lookup is O(log n) (binary search over page keys, then in page).
 */
#ifndef VLUN_MAP_H
#define VLUN_MAP_H

#include "vlun.h"

struct vlun_map;

int vlun_map_new(const struct vlun_extent *ext, uint32_t n, uint64_t size_sectors,
		 struct vlun_map **ret);
void vlun_map_free(struct vlun_map *m);

/* Copies the extents that cover [vsector, vsector+nsectors) into out (at
 * most max), clipped to the range: out[0].vsector == vsector, and the
 * psector/alt_psector are adjusted by the clip. Returns the number of
 * extents written (>0), -ERANGE if the range leaves the disk, or -ENOBUFS
 * if more than max are needed (then the first max are written: callers
 * handle the rest in another call). */
int vlun_map_lookup(struct vlun_map *m, uint64_t vsector, uint64_t nsectors,
		    struct vlun_extent *out, uint32_t max);

/* Replaces the mapping of [vsector, vsector+nsectors) by the given extents
 * (which must cover exactly that range, sorted). Splits neighbouring
 * extents as needed and merges adjacent compatible ones. Controller only
 * (callers serialise). Bumps the generation. */
int vlun_map_set(struct vlun_map *m, uint64_t vsector, uint64_t nsectors,
		 const struct vlun_extent *ext, uint32_t n);

/* Grows or shrinks the mapped size; new space is one INVALID extent (thin)
 * or the given extents. Controller only. */
int vlun_map_resize(struct vlun_map *m, uint64_t new_size_sectors,
		    const struct vlun_extent *tail, uint32_t ntail);

uint64_t vlun_map_generation(struct vlun_map *m);
uint64_t vlun_map_size(struct vlun_map *m);
/* Copies the whole map (sorted, merged) for the metadata (caller frees). */
int vlun_map_export(struct vlun_map *m, struct vlun_extent **ret, uint32_t *ret_n);
/* Number of pages of the current version (statistics, tests). */
uint64_t vlun_map_page_count(struct vlun_map *m);

#endif
