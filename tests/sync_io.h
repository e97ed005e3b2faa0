/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sync_io.h — one request through vlun_vdisk_submit(), waited for, for
 * test programs outside cmocka (the crash tests, the snapshot sweep, a
 * handler test's second gateway process, vlunctl's test helper; cmocka
 * tests use et_io in tests/unit/engine/vdisk_test.h, which also checks the
 * completion thread). Returns the enum vlun_status of the completion, or
 * submit's negative errno. buf NULL: no data (FLUSH, UNMAP).
 */
#ifndef VLUN_TEST_SYNC_IO_H
#define VLUN_TEST_SYNC_IO_H

#include <pthread.h>
#include <sys/uio.h>

#include "vlun.h"

struct sync_io_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, st;
};

static inline void sync_io_done(struct vlun_req *req, enum vlun_status st)
{
	struct sync_io_wait *w = req->priv;

	pthread_mutex_lock(&w->lock);
	w->done = 1;
	w->st = (int)st;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static inline int sync_io(struct vlun_vdisk *vd, uint32_t op, uint32_t flags, uint64_t off, void *buf,
			  uint64_t len)
{
	struct sync_io_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct iovec iov = { buf, len };
	struct vlun_req req = { .op = op, .flags = flags, .offset = off, .length = len, .iov = buf ? &iov : NULL,
				.iovcnt = buf ? 1 : 0, .done = sync_io_done, .priv = &w };
	int r = vlun_vdisk_submit(vd, &req);

	if (r < 0)
		return r;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	return w.st;
}

#endif
