/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * blkdev.h — synchronous access to a member for the slow path (labels,
 * metadata). A vtable so tests can use a memory disk that fails the Nth
 * write, tears a sector, or drops every write after a point (crash
 * injection). The fast path does not use this; it uses io.h on the fd.
 */
#ifndef VLUN_BLKDEV_H
#define VLUN_BLKDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct vlun_blkdev;

struct vlun_blkdev_ops {
	/* Whole-buffer semantics: return 0 or -errno (short I/O is -EIO). */
	int (*pread)(struct vlun_blkdev *d, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off);
	int (*flush)(struct vlun_blkdev *d); /* everything written so far is durable */
	void (*close)(struct vlun_blkdev *d);
};

struct vlun_blkdev {
	const struct vlun_blkdev_ops *ops;
	char *name;          /* path or "mem:N", for messages */
	uint64_t size;       /* bytes */
	uint32_t lbs;        /* logical block size (512 or 4096) */
	int fd;              /* -1 for memory disks */
	bool direct;         /* fd opened with O_DIRECT */
	bool is_blockdev;
	void *priv;
};

/* Opens a file or block device read-write (or read-only). Tries O_DIRECT
 * first and falls back to buffered I/O + fdatasync when the filesystem
 * refuses it (tmpfs). */
int vlun_blkdev_open(const char *path, bool rdonly, bool try_direct, struct vlun_blkdev **ret);
void vlun_blkdev_close(struct vlun_blkdev *d);
static inline int vlun_blkdev_pread(struct vlun_blkdev *d, void *b, size_t l, uint64_t o) { return d->ops->pread(d, b, l, o); }
static inline int vlun_blkdev_pwrite(struct vlun_blkdev *d, const void *b, size_t l, uint64_t o) { return d->ops->pwrite(d, b, l, o); }
static inline int vlun_blkdev_flush(struct vlun_blkdev *d) { return d->ops->flush(d); }

/* Memory disk for tests (and for crash-point injection, issue 8). */
struct vlun_memdisk_faults {
	int64_t fail_write_n;     /* the Nth pwrite (1-based) from now fails with -EIO; 0 = never */
	int64_t tear_write_n;     /* the Nth pwrite writes only its first tear_bytes, then "crash" */
	uint32_t tear_bytes;
	int64_t drop_after_n;     /* after N more pwrites, all later writes are silently dropped (0 = never) */
	bool volatile_cache;      /* writes are lost on crash unless flushed */
};
int vlun_memdisk_create(const char *name, uint64_t size, struct vlun_blkdev **ret);
void vlun_memdisk_set_faults(struct vlun_blkdev *d, const struct vlun_memdisk_faults *f);
/* Simulates power loss: with volatile_cache, unflushed writes are undone. */
void vlun_memdisk_crash(struct vlun_blkdev *d);
uint64_t vlun_memdisk_writes(struct vlun_blkdev *d); /* pwrites so far */
uint8_t *vlun_memdisk_data(struct vlun_blkdev *d);   /* direct access for tests */

#endif
