/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vdisk_test.h — pools of temp files and synchronous requests for the
 * vdisk tests. */
#ifndef VDISK_TEST_H
#define VDISK_TEST_H

#include "engine_test.h"
#include "vlun.h"

#define ET_META_BYTES (1ull << 20)

struct et_pool {
	char *dir;
	char *paths[8];
	size_t n;
};

/* n member files of size bytes each, in a fresh temp dir. */
static inline void et_pool_files(struct et_pool *tp, size_t n, uint64_t size)
{
	memset(tp, 0, sizeof(*tp));
	tp->dir = et_tmpdir_new("pool");
	assert_non_null(tp->dir);
	tp->n = n;
	for (size_t i = 0; i < n; i++) {
		assert_true(asprintf(&tp->paths[i], "%s/m%zu", tp->dir, i) > 0);
		int fd = open(tp->paths[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)size), 0);
		close(fd);
	}
}

static inline void et_pool_create(struct et_pool *tp, const char *name)
{
	struct vlun_pool_create_opts o = { .name = name, .meta_bytes = ET_META_BYTES };
	char *why = NULL;
	int r = vlun_pool_create(&o, tp->paths, tp->n, false, &why);
	if (r < 0)
		fail_msg("pool create: %s (%s)", strerror(-r), why ? why : "");
	free(why);
}

static inline struct vlun_pool *et_pool_open(struct et_pool *tp)
{
	struct vlun_pool *p = NULL;
	char *why = NULL;
	int r = vlun_pool_open(tp->paths, tp->n, 0, &p, &why);
	if (r < 0)
		fail_msg("pool open: %s (%s)", strerror(-r), why ? why : "");
	free(why);
	return p;
}

static inline void et_pool_cleanup(struct et_pool *tp)
{
	for (size_t i = 0; i < tp->n; i++) {
		unlink(tp->paths[i]);
		free(tp->paths[i]);
	}
	rmdir(tp->dir);
	free(tp->dir);
}

static inline void et_vdisk_create(struct vlun_pool *p, const char *name, uint32_t layout, uint64_t size,
				   uint64_t chunk, uint32_t width)
{
	struct vlun_vdisk_create_opts o = { .name = name, .layout = layout, .size_bytes = size,
					    .chunk_bytes = chunk, .stripe_width = width };
	char *why = NULL;
	int r = vlun_vdisk_create(p, &o, &why);
	if (r < 0)
		fail_msg("vdisk create %s: %s (%s)", name, strerror(-r), why ? why : "");
	free(why);
}

static inline struct vlun_vdisk *et_vdisk_open(struct vlun_pool *p, const char *name)
{
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	int r = vlun_vdisk_open(p, name, 0, &vd, &why);
	if (r < 0)
		fail_msg("vdisk open %s: %s (%s)", name, strerror(-r), why ? why : "");
	free(why);
	return vd;
}

struct et_sreq {
	struct vlun_req req;
	struct iovec iov;
	struct et_waiter w;
	int st;
};

static inline void et_sreq_done(struct vlun_req *req, enum vlun_status st)
{
	struct et_sreq *s = req->priv;
	s->st = (int)st;
	et_waiter_signal(&s->w);
}

/* One request, waited for. Returns the vlun_status, or a negative errno
 * from submit. Asserts that done() ran on another thread than ours (so
 * never inside submit). */
static inline int et_io(struct vlun_vdisk *vd, uint32_t op, uint32_t flags, uint64_t off, uint64_t len,
			void *buf, uint64_t *ret_err_offset)
{
	struct et_sreq s;
	memset(&s, 0, sizeof(s));
	et_waiter_init(&s.w);
	s.iov.iov_base = buf;
	s.iov.iov_len = len;
	s.req.op = op;
	s.req.flags = flags;
	s.req.offset = off;
	s.req.length = len;
	s.req.iov = buf ? &s.iov : NULL;
	s.req.iovcnt = buf ? 1 : 0;
	s.req.done = et_sreq_done;
	s.req.priv = &s;
	int r = vlun_vdisk_submit(vd, &s.req);
	if (r < 0)
		return r;
	et_waiter_wait(&s.w, 1);
	assert_false(pthread_equal(s.w.thread_seen, pthread_self()));
	if (ret_err_offset)
		*ret_err_offset = s.req.err_offset;
	return s.st;
}

static inline void et_write(struct vlun_vdisk *vd, uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t *b = et_alloc(len);
	et_fill(b, len, seed, off);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, off, len, b, NULL), VLUN_OK);
	free(b);
}

/* Reads [off, off+len) and checks it is pattern seed (by absolute offset). */
static inline void et_check(struct vlun_vdisk *vd, uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t *b = et_alloc(len);
	memset(b, 0x5a, len);
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, off, len, b, NULL), VLUN_OK);
	for (uint64_t i = 0; i < len; i++)
		if (b[i] != et_pat(seed, off + i))
			fail_msg("byte at %llu: 0x%02x, want 0x%02x", (unsigned long long)(off + i), b[i],
				 et_pat(seed, off + i));
	free(b);
}

static inline void et_check_zero(struct vlun_vdisk *vd, uint64_t off, uint64_t len)
{
	uint8_t *b = et_alloc(len);
	memset(b, 0x5a, len);
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, off, len, b, NULL), VLUN_OK);
	for (uint64_t i = 0; i < len; i++)
		if (b[i])
			fail_msg("byte at %llu: 0x%02x, want 0", (unsigned long long)(off + i), b[i]);
	free(b);
}

/* Fills the data area of every member with junk (as if another disk had
 * used it). */
static inline void et_junk_members(struct et_pool *tp, struct vlun_pool *p)
{
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	uint8_t *junk = malloc(1 << 20);
	memset(junk, 0xab, 1 << 20);
	for (uint32_t m = 0; m < d->nmembers; m++) {
		int fd = open(d->members[m].path_hint, O_WRONLY);
		assert_true(fd >= 0);
		uint64_t off = d->members[m].data_start << 9, end = off + (d->members[m].data_sectors << 9);
		while (off < end) {
			size_t c = end - off < (1 << 20) ? end - off : (1 << 20);
			assert_int_equal(pwrite(fd, junk, c, (off_t)off), (ssize_t)c);
			off += c;
		}
		close(fd);
	}
	free(junk);
	vlun_pool_desc_free(d);
}

static inline const struct vlun_vdisk_desc *et_find_vdisk(const struct vlun_pool_desc *d, const char *name)
{
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (strcmp(d->vdisks[i].name, name) == 0)
			return &d->vdisks[i];
	return NULL;
}

#endif
