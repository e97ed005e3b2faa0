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
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkdev.h"
#include "internal.h"

#define BOUNCE_ALIGN 4096u
#define BOUNCE_MAX (1u << 20)

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

static int fd_pwrite(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off)
{
	uint8_t *bounce;
	int r = 0;

	if (off > d->size || len > d->size - off)
		return -EINVAL;
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
