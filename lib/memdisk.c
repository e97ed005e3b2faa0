/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memdisk.c — a memory disk behind the blkdev vtable, for tests and crash
 * injection (SQLite-style): fail the Nth write, tear the Nth write after a
 * number of bytes (the machine "dies" there: later writes and flushes fail
 * until vlun_memdisk_crash()), silently drop every write after N more, and
 * a volatile write cache whose unflushed writes vlun_memdisk_crash() undoes.
 * Every pwrite and flush is also a process-wide crash point (blkdev.h:
 * VLUN_CRASH_AT, vlun_crash_arm), as for files.
 *
 * The volatile cache is an undo log: each write under volatile_cache saves
 * the bytes it overwrites; flush forgets the log, crash replays it backwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "blkdev.h"
#include "internal.h"

struct undo {
	uint64_t off;
	size_t len;
	uint8_t *old;
};

struct memdisk {
	uint8_t *data;
	struct vlun_memdisk_faults f;
	uint64_t writes;     /* pwrites since creation */
	uint64_t base;       /* writes at the time the faults were set */
	bool dead;           /* a torn write "crashed" the machine */
	struct undo *undo;
	size_t nundo, capundo;
};

static struct memdisk *md(struct vlun_blkdev *d)
{
	return d->priv;
}

static int md_pread(struct vlun_blkdev *d, void *buf, size_t len, uint64_t off)
{
	if (off > d->size || len > d->size - off)
		return -EINVAL;
	memcpy(buf, md(d)->data + off, len);
	return 0;
}

static int md_store(struct memdisk *m, const void *buf, size_t len, uint64_t off)
{
	if (m->f.volatile_cache && len > 0) {
		struct undo *u;

		if (m->nundo == m->capundo) {
			size_t ncap = m->capundo ? m->capundo * 2 : 64;
			struct undo *nu = realloc(m->undo, ncap * sizeof(*nu));

			if (!nu)
				return -ENOMEM;
			m->undo = nu;
			m->capundo = ncap;
		}
		u = &m->undo[m->nundo];
		u->old = malloc(len);
		if (!u->old)
			return -ENOMEM;
		memcpy(u->old, m->data + off, len);
		u->off = off;
		u->len = len;
		m->nundo++;
	}
	memcpy(m->data + off, buf, len);
	return 0;
}

static int md_pwrite(struct vlun_blkdev *d, const void *buf, size_t len, uint64_t off)
{
	struct memdisk *m = md(d);
	uint64_t n;

	if (off > d->size || len > d->size - off)
		return -EINVAL;
	if (m->dead)
		return -EIO;
	switch (vlun_crash_point("pwrite", d->name, off, len)) {
	case VLUN_CRASH_SKIP:
		return 0;
	case VLUN_CRASH_EIO:
		return -EIO;
	case VLUN_CRASH_TORN:
		(void)md_store(m, buf, VLUN_MIN((size_t)d->lbs, len), off);
		_exit(VLUN_CRASH_EXIT_CODE);
	default:
		break;
	}
	m->writes++;
	n = m->writes - m->base;
	if (m->f.drop_after_n > 0 && n > (uint64_t)m->f.drop_after_n)
		return 0; /* silently lost */
	if (m->f.fail_write_n > 0 && n == (uint64_t)m->f.fail_write_n)
		return -EIO;
	if (m->f.tear_write_n > 0 && n == (uint64_t)m->f.tear_write_n) {
		int r = md_store(m, buf, VLUN_MIN((size_t)m->f.tear_bytes, len), off);

		m->dead = true;
		return r < 0 ? r : -EIO;
	}
	return md_store(m, buf, len, off);
}

static void md_forget(struct memdisk *m)
{
	for (size_t i = 0; i < m->nundo; i++)
		free(m->undo[i].old);
	m->nundo = 0;
}

static int md_flush(struct vlun_blkdev *d)
{
	struct memdisk *m = md(d);

	if (m->dead)
		return -EIO;
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
	md_forget(m);
	return 0;
}

static void md_close(struct vlun_blkdev *d)
{
	struct memdisk *m = md(d);

	md_forget(m);
	free(m->undo);
	free(m->data);
	free(m);
}

static const struct vlun_blkdev_ops md_ops = {
	.pread = md_pread,
	.pwrite = md_pwrite,
	.flush = md_flush,
	.close = md_close,
};

VLUN_EXPORT int vlun_memdisk_create(const char *name, uint64_t size, struct vlun_blkdev **ret)
{
	struct vlun_blkdev *d;
	struct memdisk *m;

	if (!ret || size == 0 || size % VLUN_SECTOR_SIZE || size > SIZE_MAX)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	m = calloc(1, sizeof(*m));
	if (!d || !m)
		goto nomem;
	m->data = calloc(1, (size_t)size);
	d->name = strdup(name ? name : "mem");
	if (!m->data || !d->name)
		goto nomem;
	d->ops = &md_ops;
	d->size = size;
	d->lbs = VLUN_SECTOR_SIZE;
	d->fd = -1;
	d->priv = m;
	*ret = d;
	return 0;
nomem:
	if (m)
		free(m->data);
	free(m);
	if (d)
		free(d->name);
	free(d);
	return -ENOMEM;
}

VLUN_EXPORT void vlun_memdisk_set_faults(struct vlun_blkdev *d, const struct vlun_memdisk_faults *f)
{
	struct memdisk *m = md(d);

	if (!f) {
		bool vc = m->f.volatile_cache;

		memset(&m->f, 0, sizeof(m->f));
		m->f.volatile_cache = vc;
	} else {
		if (m->f.volatile_cache && !f->volatile_cache)
			md_forget(m); /* cache turned off: what is there is durable */
		m->f = *f;
	}
	m->base = m->writes;
}

VLUN_EXPORT void vlun_memdisk_crash(struct vlun_blkdev *d)
{
	struct memdisk *m = md(d);

	while (m->nundo > 0) {
		struct undo *u = &m->undo[--m->nundo];

		memcpy(m->data + u->off, u->old, u->len);
		free(u->old);
	}
	/* Power comes back: the disk works again, with no faults armed. */
	m->dead = false;
	m->f.fail_write_n = m->f.tear_write_n = m->f.drop_after_n = 0;
	m->base = m->writes;
}

VLUN_EXPORT uint64_t vlun_memdisk_writes(struct vlun_blkdev *d)
{
	return md(d)->writes;
}

VLUN_EXPORT uint8_t *vlun_memdisk_data(struct vlun_blkdev *d)
{
	return md(d)->data;
}
