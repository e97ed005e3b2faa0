/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crash_sync_io.h — one request through vlun_vdisk_submit(), waited for:
 * the crash regression tests and the snapshot sweep drive the engine one
 * I/O at a time. Returns the enum vlun_status of the completion, or -1
 * when the request could not be queued. buf NULL: no data (FLUSH).
 */
#ifndef VLUN_CRASH_SYNC_IO_H
#define VLUN_CRASH_SYNC_IO_H

#include <pthread.h>
#include <sys/uio.h>

#include "vlun.h"

struct crash_io_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, st;
};

static inline void crash_io_done(struct vlun_req *req, enum vlun_status st)
{
	struct crash_io_wait *w = req->priv;

	pthread_mutex_lock(&w->lock);
	w->done = 1;
	w->st = (int)st;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static inline int crash_io(struct vlun_vdisk *vd, uint32_t op, uint32_t flags, uint64_t off, void *buf,
			   uint64_t len)
{
	struct crash_io_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct iovec iov = { buf, len };
	struct vlun_req req = { .op = op, .flags = flags, .offset = off, .length = len, .iov = &iov,
				.iovcnt = buf ? 1 : 0, .done = crash_io_done, .priv = &w };

	if (vlun_vdisk_submit(vd, &req) < 0)
		return -1;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	return w.st;
}

#endif
