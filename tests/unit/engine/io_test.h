/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* io_test.h — synchronous wrapper around one pio for the io engine tests. */
#ifndef IO_TEST_H
#define IO_TEST_H

#include "engine_test.h"
#include "io.h"

struct sync_pio {
	struct vlun_pio pio;
	struct et_waiter w;
	int res;
};

static inline void sync_pio_done(struct vlun_pio *pio, int res)
{
	struct sync_pio *s = pio->priv;
	s->res = res;
	et_waiter_signal(&s->w);
}

/* Runs one pio and waits for it; returns its result. */
static inline int run_pio(struct vlun_io_engine *e, int fd, bool direct, uint32_t op, bool fua,
			  uint64_t off, uint64_t len, struct iovec *iov, int iovcnt)
{
	struct sync_pio s;
	memset(&s, 0, sizeof(s));
	et_waiter_init(&s.w);
	s.pio.op = op;
	s.pio.fd = fd;
	s.pio.direct = direct;
	s.pio.fua = fua;
	s.pio.offset = off;
	s.pio.length = len;
	s.pio.iov = iov;
	s.pio.iovcnt = iovcnt;
	s.pio.done = sync_pio_done;
	s.pio.priv = &s;
	int r = vlun_io_submit(e, &s.pio);
	if (r < 0)
		return r;
	et_waiter_wait(&s.w, 1);
	assert_false(pthread_equal(s.w.thread_seen, pthread_self()));
	return s.res;
}

/* Opens path O_DIRECT if the filesystem allows it; *direct says. */
static inline int open_member(const char *path, bool want_direct, bool *direct)
{
	int fd = -1;
	if (want_direct) {
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd >= 0) {
			*direct = true;
			return fd;
		}
	}
	*direct = false;
	return open(path, O_RDWR | O_CLOEXEC);
}

#endif
