/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snap_test.h — helpers of the snapshot engine tests: sessions, whole-disk
 * reads and a byte model of the source. */
#ifndef SNAP_TEST_H
#define SNAP_TEST_H

#include "engine/vdisk_test.h"

static inline int st_create(struct vlun_pool *p, const char *src, const char *name, uint64_t reserve,
			    uint64_t chunk, int policy)
{
	struct vlun_snapshot_create_opts o = { .source = src, .name = name, .reserve_bytes = reserve,
					       .chunk_bytes = chunk, .full_policy = policy };
	char *why = NULL;
	int r = vlun_snapshot_create(p, &o, &why);
	if (r < 0)
		print_message("snapshot create %s@%s: %s (%s)\n", src, name, strerror(-r), why ? why : "");
	free(why);
	return r;
}

static inline struct vlun_vdisk *st_open(struct vlun_pool *p, const char *name, unsigned flags)
{
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	int r = vlun_vdisk_open(p, name, flags, &vd, &why);
	if (r < 0)
		fail_msg("open %s: %s (%s)", name, strerror(-r), why ? why : "");
	free(why);
	return vd;
}

/* The whole content of vd equals img. */
static inline void st_expect(struct vlun_vdisk *vd, const uint8_t *img, uint64_t size, const char *what)
{
	uint8_t *b = et_alloc(size);
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, 0, size, b, NULL), VLUN_OK);
	for (uint64_t i = 0; i < size; i++)
		if (b[i] != img[i])
			fail_msg("%s: byte %llu is 0x%02x, want 0x%02x", what, (unsigned long long)i, b[i], img[i]);
	free(b);
}

/* The content of snapshot name equals img (opened read-only, closed). */
static inline void st_expect_snap(struct vlun_pool *p, const char *name, const uint8_t *img, uint64_t size)
{
	struct vlun_vdisk *v = st_open(p, name, 0);
	assert_int_equal(vlun_vdisk_size(v), size);
	st_expect(v, img, size, name);
	vlun_vdisk_close(v);
}

/* Writes len bytes of pattern seed at off to vd and to the model. */
static inline void st_write(struct vlun_vdisk *vd, uint8_t *model, uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t *b = et_alloc(len);
	et_fill(b, len, seed, off);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, off, len, b, NULL), VLUN_OK);
	if (model)
		memcpy(model + off, b, len);
	free(b);
}

static inline struct vlun_snapshot_info st_info(struct vlun_pool *p, const char *src, const char *name)
{
	struct vlun_snapshot_info *inf = NULL, out;
	size_t n = 0;
	assert_int_equal(vlun_snapshot_list(p, src, &inf, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(inf[i].d.name, name) == 0) {
			out = inf[i];
			free(inf);
			return out;
		}
	fail_msg("no snapshot %s@%s in the list", src, name);
	free(inf);
	return out;
}

#endif
