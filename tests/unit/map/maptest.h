/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the map-area unit tests. */
#ifndef MAPTEST_H
#define MAPTEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "layout.h"
#include "map.h"
#include "vlun.h"

#define NOM VLUN_NO_MEMBER

static inline struct vlun_extent ext_mapped(uint64_t v, uint64_t n, uint32_t m, uint64_t ps)
{
	return (struct vlun_extent){ .vsector = v, .nsectors = n, .psector = ps, .member = m,
				     .alt_member = NOM };
}

static inline struct vlun_extent ext_invalid(uint64_t v, uint64_t n)
{
	return (struct vlun_extent){ .vsector = v, .nsectors = n, .member = NOM, .alt_member = NOM,
				     .flags = VLUN_EXT_INVALID };
}

/* A pool description with n members of data_sectors each, data starting
 * at sector 2048. Caller frees with vlun_pool_desc_free-like free_pool(). */
static inline struct vlun_pool_desc *make_pool(uint32_t n, uint64_t data_sectors)
{
	struct vlun_pool_desc *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	strcpy(d->name, "testpool");
	d->nmembers = n;
	d->members = calloc(n, sizeof(*d->members));
	assert_non_null(d->members);
	for (uint32_t i = 0; i < n; i++) {
		d->members[i].index = i;
		d->members[i].state = VLUN_MEMBER_OK;
		d->members[i].data_start = 2048;
		d->members[i].data_sectors = data_sectors;
		snprintf(d->members[i].path_hint, sizeof(d->members[i].path_hint), "/dev/test%u", i);
	}
	return d;
}

/* Adds a vdisk with a copy of the given extents. */
static inline void pool_add_vdisk(struct vlun_pool_desc *d, const char *name,
				  const struct vlun_extent *e, uint32_t n)
{
	struct vlun_vdisk_desc *v;

	d->vdisks = realloc(d->vdisks, (d->nvdisks + 1) * sizeof(*d->vdisks));
	assert_non_null(d->vdisks);
	v = &d->vdisks[d->nvdisks++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->extents = malloc(n * sizeof(*e));
	assert_non_null(v->extents);
	memcpy(v->extents, e, n * sizeof(*e));
	v->nextents = n;
	for (uint32_t i = 0; i < n; i++)
		v->size_sectors += e[i].nsectors;
}

static inline void free_pool(struct vlun_pool_desc *d)
{
	if (!d)
		return;
	for (uint32_t i = 0; i < d->nvdisks; i++)
		free(d->vdisks[i].extents);
	free(d->vdisks);
	free(d->members);
	free(d);
}

/* Checks that extents cover [0, size) sorted and contiguous. */
static inline void assert_cover(const struct vlun_extent *e, uint32_t n, uint64_t size)
{
	uint64_t pos = 0;

	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(e[i].vsector, pos);
		assert_true(e[i].nsectors > 0);
		pos += e[i].nsectors;
	}
	assert_int_equal(pos, size);
}

#endif
