/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A resize whose commit fails must leave the disk's space allocated.
 *
 * Found by the crash sweep (crash_harness --mode fail, seed 1, 40 ops, only
 * under load — the point numbers move; see docs/crash.md): after "R 4 768" (grow of thin v4)
 * failed with EIO at the armed point, v4 later read v5's data (v4 sector
 * 1656 held v5 sector 1400, write 26) — one disk's data in another.
 * vlun_vdisk_resize's rollback (pool.c) first releases every extent of the
 * disk (vlun_layout_release -> vlun_alloc_free: into the allocator's
 * *pending* set), then re-takes the saved extents with vlun_alloc_take,
 * which only takes from the *free* set: it fails with -EBUSY (ignored).
 * The disk's live chunks stay pending, and the next commit that has a
 * free of its own (an UNMAP: after_commit_locked merges the pending set
 * only when frees_pending) makes them free: the next allocation gets them
 * while the disk still maps them.
 *
 * Here: thin disk a, one chunk written and flushed; its grow fails at the
 * commit (crash point armed in fail mode); b writes and unmaps a chunk
 * and a FLUSH commits (with a free pending, the commit releases the
 * pending set — a's chunk with it); thin disk b then takes chunks until the member is
 * full. None of b's chunks may be a's, and a must still read its own data.
 * Exit 0 pass, 1 fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkdev.h"
#include "../sync_io.h"
#include "vlun.h"

/* Does any allocated extent of disk name cover member m sector ps? */
static bool maps(struct vlun_pool *p, const char *name, uint32_t m, uint64_t ps)
{
	struct vlun_pool_desc *d = NULL;
	bool hit = false;

	if (vlun_pool_describe(p, &d) < 0)
		return false;
	for (uint32_t i = 0; i < d->nvdisks; i++)
		for (uint32_t k = 0; !strcmp(d->vdisks[i].name, name) && k < d->vdisks[i].nextents; k++) {
			const struct vlun_extent *e = &d->vdisks[i].extents[k];
			if (!(e->flags & VLUN_EXT_INVALID) && e->member == m && ps >= e->psector &&
			    ps < e->psector + e->nsectors)
				hit = true;
		}
	vlun_pool_desc_free(d);
	return hit;
}

static int first_chunk(struct vlun_pool *p, const char *name, uint32_t *ret_m, uint64_t *ret_ps)
{
	struct vlun_pool_desc *d = NULL;
	int r = -ENOENT;

	if (vlun_pool_describe(p, &d) < 0)
		return -EIO;
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (!strcmp(d->vdisks[i].name, name) && d->vdisks[i].nextents &&
		    !(d->vdisks[i].extents[0].flags & VLUN_EXT_INVALID)) {
			*ret_m = d->vdisks[i].extents[0].member;
			*ret_ps = d->vdisks[i].extents[0].psector;
			r = 0;
		}
	vlun_pool_desc_free(d);
	return r;
}

int main(void)
{
	const char *v = getenv("VLUN_UNDER_VALGRIND");
	char dir[] = "/tmp/vlun-rsz-XXXXXX", *paths[1];
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *a = NULL, *b = NULL;
	char *why = NULL;
	uint8_t *buf;
	int rc = 1;

	if (v && !strcmp(v, "1"))
		return 77; /* io_uring */
	if (!mkdtemp(dir) || posix_memalign((void **)&buf, 4096, 65536))
		return 2;
	if (asprintf(&paths[0], "%s/m0", dir) < 0)
		return 2;
	int fd = open(paths[0], O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 32 << 20) < 0)
		return 2;
	close(fd);
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	struct vlun_pool_create_opts co = { .name = "rsz", .meta_bytes = 1 << 20 };
	struct vlun_vdisk_create_opts oa = { .name = "a", .layout = VLUN_LAYOUT_THIN, .size_bytes = 1 << 20,
					     .chunk_bytes = 65536 };
	struct vlun_vdisk_create_opts ob = { .name = "b", .layout = VLUN_LAYOUT_THIN, .size_bytes = 28 << 20,
					     .chunk_bytes = 65536 };
	if (vlun_pool_create(&co, paths, 1, false, &why) < 0 || vlun_pool_open(paths, 1, 0, &p, &why) < 0 ||
	    vlun_vdisk_create(p, &oa, &why) < 0 || vlun_vdisk_create(p, &ob, &why) < 0 ||
	    vlun_vdisk_open(p, "a", 0, &a, &why) < 0 || vlun_vdisk_open(p, "b", 0, &b, &why) < 0) {
		fprintf(stderr, "setup: %s\n", why ? why : "?");
		return 2;
	}
	memset(buf, 0xaa, 65536);
	if (sync_io(a, VLUN_OP_WRITE, 0, 0, buf, 65536) || sync_io(a, VLUN_OP_FLUSH, 0, 0, NULL, 0)) {
		fprintf(stderr, "setup: write to a failed\n");
		return 2;
	}
	/* the grow's commit fails: its first flush or metadata write gets EIO */
	vlun_crash_arm(1, VLUN_CRASH_FAIL); /* counts from 1 again */
	int r = vlun_vdisk_resize(p, "a", 2 << 20, true, &why);
	vlun_crash_arm(0, VLUN_CRASH_OFF);
	if (r == 0) {
		fprintf(stderr, "setup: the armed resize did not fail; nothing tested\n");
		return 2;
	}
	free(why);
	why = NULL;
	/* An UNMAP frees something, so the next commit releases the pending
	 * set (after_commit_locked does only when frees are pending). */
	memset(buf, 0xcc, 65536);
	if (sync_io(b, VLUN_OP_WRITE, 0, 0, buf, 65536) || sync_io(b, VLUN_OP_UNMAP, 0, 0, NULL, 65536) ||
	    sync_io(b, VLUN_OP_FLUSH, 0, 0, NULL, 0)) {
		fprintf(stderr, "setup: write/unmap/flush of b failed\n");
		return 2;
	}
	/* b takes chunks until the member is full: a's chunk must not be
	 * among them */
	memset(buf, 0xbb, 65536);
	for (uint64_t off = 0; off < (28ull << 20); off += 65536)
		if (sync_io(b, VLUN_OP_WRITE, 0, off, buf, 4096))
			break; /* out of space */
	sync_io(b, VLUN_OP_FLUSH, 0, 0, NULL, 0);
	uint32_t ma = 0;
	uint64_t pa = 0;
	if (first_chunk(p, "a", &ma, &pa) < 0) {
		fprintf(stderr, "FAIL: a has no first chunk after the failed resize\n");
		goto out;
	}
	memset(buf, 0, 65536);
	if (sync_io(a, VLUN_OP_READ, 0, 0, buf, 65536)) {
		fprintf(stderr, "FAIL: reading a failed\n");
		goto out;
	}
	if (maps(p, "b", ma, pa)) {
		struct vlun_pool_desc *d = NULL;
		char vwhy[256] = "";
		bool valid = vlun_pool_describe(p, &d) == 0 && vlun_pool_desc_validate(d, vwhy, sizeof(vwhy)) == 0;
		vlun_pool_desc_free(d);
		fprintf(stderr, "FAIL: a and b both map member %u sector %llu after a's failed resize "
			"(vlun_pool_desc_validate: %s)\n", ma, (unsigned long long)pa, valid ? "passes" : vwhy);
	}
	else if (buf[0] != 0xaa || memcmp(buf, buf + 1, 65535))
		fprintf(stderr, "FAIL: a reads 0x%02x, not its own 0xaa, after the failed resize\n", buf[0]);
	else
		rc = 0;
out:
	vlun_vdisk_close(a);
	vlun_vdisk_close(b);
	vlun_pool_close(p);
	unlink(paths[0]);
	free(paths[0]);
	rmdir(dir);
	free(buf);
	return rc;
}
