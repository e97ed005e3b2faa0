/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * blkdev.c — synchronous member access for the slow path (labels and
 * metadata): files and block devices.
 *
 * O_DIRECT is tried first so that metadata writes do not sit in the page
 * cache; when the filesystem refuses it (tmpfs fails open() with EINVAL,
 * some filesystems fail the first aligned read instead) the device is
 * reopened buffered and flush (fdatasync) makes writes durable. With
 * O_DIRECT, I/O whose buffer, offset or length is not aligned goes through
 * an aligned bounce buffer; unaligned writes are refused (the metadata
 * never issues them). Short transfers are looped, EINTR is retried.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkdev.h"
#include "internal.h"

#define BOUNCE_ALIGN 4096u
#define BOUNCE_MAX (1u << 20)

/* ------------------------------------------------ crash-point injection
 * (blkdev.h). One process-wide counter; the armed point and mode are set
 * once from VLUN_CRASH_AT unless a test armed them first. */
static atomic_uint_fast64_t crash_count;
static atomic_uint_fast64_t crash_at;
static atomic_int crash_mode;
static atomic_bool crash_did_fire;
static atomic_bool crash_trace;
static pthread_once_t crash_env_once = PTHREAD_ONCE_INIT;
static atomic_bool crash_armed_by_api;

VLUN_EXPORT int vlun_crash_parse(const char *s, uint64_t *ret_n, enum vlun_crash_mode *ret_mode)
{
	enum vlun_crash_mode mode = VLUN_CRASH_EXIT;
	unsigned long long n;
	char *end;

	if (!s || !ret_n || !ret_mode || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end == ':') {
		static const struct { const char *name; enum vlun_crash_mode mode; } modes[] = {
			{ "exit", VLUN_CRASH_EXIT }, { "drop", VLUN_CRASH_DROP },
			{ "tear", VLUN_CRASH_TEAR }, { "fail", VLUN_CRASH_FAIL },
		};
		size_t i;

		for (i = 0; i < VLUN_ARRAY_SIZE(modes); i++)
			if (strcmp(end + 1, modes[i].name) == 0)
				break;
		if (i == VLUN_ARRAY_SIZE(modes))
			return -EINVAL;
		mode = modes[i].mode;
	} else if (*end) {
		return -EINVAL;
	}
	*ret_n = n;
	*ret_mode = mode;
	return 0;
}

static void crash_env(void)
{
	const char *s = getenv("VLUN_CRASH_AT"), *t = getenv("VLUN_CRASH_TRACE");
	enum vlun_crash_mode mode;
	uint64_t n;

	if (t && strcmp(t, "1") == 0)
		atomic_store(&crash_trace, true);
	if (!s || !*s || atomic_load(&crash_armed_by_api))
		return;
	if (vlun_crash_parse(s, &n, &mode) < 0) {
		vlun_err("VLUN_CRASH_AT='%s' is malformed (want <n>[:exit|:drop|:tear|:fail]); ignored", s);
		return;
	}
	atomic_store(&crash_mode, (int)mode);
	atomic_store(&crash_at, n);
}

VLUN_EXPORT void vlun_crash_arm(uint64_t n, enum vlun_crash_mode mode)
{
	pthread_once(&crash_env_once, crash_env);
	atomic_store(&crash_armed_by_api, true);
	atomic_store(&crash_did_fire, false);
	atomic_store(&crash_count, 0);
	atomic_store(&crash_mode, (int)mode);
	atomic_store(&crash_at, mode == VLUN_CRASH_OFF ? 0 : n);
}

VLUN_EXPORT uint64_t vlun_crash_points(void)
{
	return atomic_load(&crash_count);
}

VLUN_EXPORT bool vlun_crash_fired(void)
{
	return atomic_load(&crash_did_fire);
}

VLUN_EXPORT enum vlun_crash_action vlun_crash_point(const char *what, const char *dev, uint64_t off, uint64_t len)
{
	uint64_t at, k;
	int mode;

	pthread_once(&crash_env_once, crash_env);
	k = atomic_fetch_add(&crash_count, 1) + 1;
	at = atomic_load(&crash_at);
	mode = atomic_load(&crash_mode);
	if (atomic_load(&crash_trace))
		fprintf(stderr, "crash point %llu: %s %s off=%llu len=%llu%s\n", (unsigned long long)k,
			what ? what : "?", dev ? dev : "-", (unsigned long long)off, (unsigned long long)len,
			at && k == at ? " <- armed" : "");
	if (at == 0 || k < at || mode == VLUN_CRASH_OFF)
		return VLUN_CRASH_GO;
	if (k == at)
		atomic_store(&crash_did_fire, true);
	switch (mode) {
	case VLUN_CRASH_EXIT:
		if (k == at)
			_exit(VLUN_CRASH_EXIT_CODE);
		return VLUN_CRASH_GO;
	case VLUN_CRASH_DROP:
		return VLUN_CRASH_SKIP;
	case VLUN_CRASH_TEAR:
		return k == at ? VLUN_CRASH_TORN : VLUN_CRASH_GO;
	case VLUN_CRASH_FAIL:
		return k == at ? VLUN_CRASH_EIO : VLUN_CRASH_GO;
	default:
		return VLUN_CRASH_GO;
	}
}

static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* past the end */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool aligned(const struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off)
{
	return ((uintptr_t)buf % BOUNCE_ALIGN) == 0 && len % d->lbs == 0 && off % d->lbs == 0;
}

static int fd_pread(struct vlun_blkdev *d, void *buf, size_t len, uint64_t off)
{
	uint8_t *bounce;
	int r = 0;

	if (off > d->size || len > d->size - off)
		return -EINVAL;
	if (!d->direct || aligned(d, buf, len, off))
		return full_pread(d->fd, buf, len, off);

	/* Read the enclosing aligned range piecewise through a bounce buffer. */
	if (posix_memalign((void **)&bounce, BOUNCE_ALIGN, BOUNCE_MAX))
		return -ENOMEM;
	while (len > 0) {
		uint64_t a = off / d->lbs * d->lbs;
		size_t skip = (size_t)(off - a);
		size_t want = VLUN_MIN(len, (size_t)BOUNCE_MAX - skip);
		size_t span = VLUN_ALIGN_UP(skip + want, d->lbs);

		if (span > BOUNCE_MAX) {
			span -= d->lbs;
			want = span - skip;
		}
		r = full_pread(d->fd, bounce, span, a);
		if (r < 0)
			break;
		memcpy(buf, bounce + skip, want);
		buf = (uint8_t *)buf + want;
		len -= want;
		off += want;
	}
	free(bounce);
	return r;
}

static int fd_pwrite_real(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off);

static int fd_pwrite(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off)
{
	if (off > d->size || len > d->size - off)
		return -EINVAL;
	switch (vlun_crash_point("pwrite", d->name, off, len)) {
	case VLUN_CRASH_SKIP:
		return 0;
	case VLUN_CRASH_EIO:
		return -EIO;
	case VLUN_CRASH_TORN:
		if (len > d->lbs)
			(void)fd_pwrite_real(d, buf, d->lbs, off);
		_exit(VLUN_CRASH_EXIT_CODE);
	default:
		break;
	}
	return fd_pwrite_real(d, buf, len, off);
}

static int fd_pwrite_real(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off)
{
	uint8_t *bounce;
	int r = 0;

	if (!d->direct || aligned(d, buf, len, off))
		return full_pwrite(d->fd, buf, len, off);
	if (len % d->lbs || off % d->lbs) {
		vlun_err("%s: unaligned metadata write of %zu bytes at %llu with O_DIRECT (block size %u)",
			 d->name, len, (unsigned long long)off, d->lbs);
		return -EINVAL;
	}
	if (posix_memalign((void **)&bounce, BOUNCE_ALIGN, BOUNCE_MAX))
		return -ENOMEM;
	while (len > 0) {
		size_t n = VLUN_MIN(len, (size_t)BOUNCE_MAX);

		memcpy(bounce, buf, n);
		r = full_pwrite(d->fd, bounce, n, off);
		if (r < 0)
			break;
		buf = (const uint8_t *)buf + n;
		len -= n;
		off += n;
	}
	free(bounce);
	return r;
}

static int fd_flush(struct vlun_blkdev *d)
{
	switch (vlun_crash_point("flush", d->name, 0, 0)) {
	case VLUN_CRASH_SKIP:
		return 0;
	case VLUN_CRASH_EIO:
		return -EIO;
	case VLUN_CRASH_TORN:
		_exit(VLUN_CRASH_EXIT_CODE);
	default:
		break;
	}
	while (fdatasync(d->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void fd_close(struct vlun_blkdev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static const struct vlun_blkdev_ops fd_ops = {
	.pread = fd_pread,
	.pwrite = fd_pwrite,
	.flush = fd_flush,
	.close = fd_close,
};

static int fd_rdonly_pwrite(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off)
{
	return -EROFS;
}

static const struct vlun_blkdev_ops fd_rdonly_ops = {
	.pread = fd_pread,
	.pwrite = fd_rdonly_pwrite,
	.flush = fd_flush,
	.close = fd_close,
};

/* Some filesystems accept O_DIRECT at open and refuse the first I/O. */
static bool direct_works(int fd, uint64_t size)
{
	void *p;
	bool ok = true;

	if (size < BOUNCE_ALIGN)
		return true;
	if (posix_memalign(&p, BOUNCE_ALIGN, BOUNCE_ALIGN))
		return false;
	if (full_pread(fd, p, BOUNCE_ALIGN, 0) == -EINVAL)
		ok = false;
	free(p);
	return ok;
}

VLUN_EXPORT int vlun_blkdev_open(const char *path, bool rdonly, bool try_direct, struct vlun_blkdev **ret)
{
	int flags = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct vlun_blkdev *d = NULL;
	struct stat st;
	int fd = -1, r;
	bool direct = false;

	if (!path || !ret)
		return -EINVAL;
	if (try_direct) {
		fd = open(path, flags | O_DIRECT);
		if (fd >= 0)
			direct = true;
		else if (errno != EINVAL)
			return -errno;
	}
	if (fd < 0) {
		fd = open(path, flags);
		if (fd < 0)
			return -errno;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		r = -ENOMEM;
		goto fail;
	}
	d->name = strdup(path);
	if (!d->name) {
		r = -ENOMEM;
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		int lbs;

		if (ioctl(fd, BLKGETSIZE64, &sz) < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0) {
			r = -errno;
			vlun_err("%s: cannot read the block device's size: %s", path, strerror(-r));
			goto fail;
		}
		if (lbs < (int)VLUN_SECTOR_SIZE || lbs > 65536 || (lbs & (lbs - 1))) {
			vlun_err("%s: unsupported logical block size %d", path, lbs);
			r = -EOPNOTSUPP;
			goto fail;
		}
		d->size = sz;
		d->lbs = (uint32_t)lbs;
		d->is_blockdev = true;
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
		d->lbs = VLUN_SECTOR_SIZE;
	} else {
		vlun_err("%s: not a regular file or block device", path);
		r = -ENOTBLK;
		goto fail;
	}
	if (direct && !direct_works(fd, d->size)) {
		int fd2 = open(path, flags);

		if (fd2 < 0) {
			r = -errno;
			goto fail;
		}
		close(fd);
		fd = fd2;
		direct = false;
	}
	if (try_direct && !direct)
		vlun_debug("%s: O_DIRECT refused, using buffered I/O with fdatasync", path);
	d->fd = fd;
	d->direct = direct;
	d->ops = rdonly ? &fd_rdonly_ops : &fd_ops;
	*ret = d;
	return 0;
fail:
	if (d)
		free(d->name);
	free(d);
	if (fd >= 0)
		close(fd);
	return r;
}

VLUN_EXPORT void vlun_blkdev_close(struct vlun_blkdev *d)
{
	if (!d)
		return;
	if (d->ops && d->ops->close)
		d->ops->close(d);
	free(d->name);
	free(d);
}
