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

/* Crash-point injection (issue 8), compiled in always, armed only by a
 * test (vlun_crash_arm) or by the environment:
 *
 *   VLUN_CRASH_AT=<n>[:exit|:drop|:tear|:fail]
 *
 * Every pwrite and flush of a member opened with vlun_blkdev_open (files,
 * block devices) and of a memory disk is one crash point, counted
 * process-wide from 1; a test may add its own (vlun_crash_point, e.g. before
 * submitting a data write). At point n:
 *   exit  the process stops at once (_exit(VLUN_CRASH_EXIT_CODE)) before
 *         the write or flush is issued: a process kill / power cut with
 *         every earlier write in the device (files: the page cache).
 *   drop  point n and every later write is silently dropped and reported
 *         as done, flushes too: the process runs on unaware of the crash.
 *   tear  a write point n writes only its first logical block, then the
 *         process stops (a flush point n stops like exit).
 *   fail  point n alone fails with -EIO (write or flush); later ones work.
 * VLUN_CRASH_TRACE=1 prints every point to stderr as "crash point N: ...". */
enum vlun_crash_mode {
	VLUN_CRASH_OFF = 0,
	VLUN_CRASH_EXIT = 1,
	VLUN_CRASH_DROP = 2,
	VLUN_CRASH_TEAR = 3,
	VLUN_CRASH_FAIL = 4,
};
#define VLUN_CRASH_EXIT_CODE 86
/* What happens to the operation at a crash point. */
enum vlun_crash_action { VLUN_CRASH_GO = 0, VLUN_CRASH_SKIP = 1, VLUN_CRASH_EIO = 2, VLUN_CRASH_TORN = 3 };
/* Arms point n (1-based; 0 = count only) in mode and resets the counter. */
void vlun_crash_arm(uint64_t n, enum vlun_crash_mode mode);
/* Parses "<n>[:mode]"; -EINVAL when malformed. */
int vlun_crash_parse(const char *s, uint64_t *ret_n, enum vlun_crash_mode *ret_mode);
/* Points passed since the counter was (re)set. */
uint64_t vlun_crash_points(void);
/* Whether the armed point was reached (drop/fail: the process lives on). */
bool vlun_crash_fired(void);
/* Passes one crash point; what/dev/off/len describe it (for the trace).
 * Returns what the caller must do with its operation. May not return
 * (exit, tear). */
enum vlun_crash_action vlun_crash_point(const char *what, const char *dev, uint64_t off, uint64_t len);

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
