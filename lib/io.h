/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io.h — the asynchronous I/O engine: submit physical I/O on member fds
 * from any thread; done() runs later on the engine's completion thread
 * (never inside vlun_io_submit), as do functions queued with
 * vlun_io_defer().
 *
 * Two backends with the same behaviour (bounce buffers for unaligned
 * O_DIRECT, short-I/O resubmission, EINTR/EAGAIN retries, ZERO fallbacks,
 * FUA durable before done()):
 *   uring    one io_uring per engine; a submission lock held only while
 *            filling SQEs (never by the metadata commit). The default.
 *   threads  a pool of up to 8 worker threads running blocking preadv /
 *            pwritev (pwritev2 RWF_DSYNC for FUA), fdatasync and fallocate
 *            (BLKZEROOUT or written zeros where that cannot zero). For
 *            hosts without io_uring (seccomp profiles of containers,
 *            kernel.io_uring_disabled, old kernels) and for valgrind. At
 *            most 8 I/Os in flight at once and a thread hand-off per I/O.
 * Selection at vlun_io_engine_new, from the environment variable
 * VLUN_IO_BACKEND:
 *   unset/"auto"  io_uring; if setting up the ring fails (any error:
 *                 ENOSYS, EPERM, EACCES, ENOMEM...) the threads backend,
 *                 with one warning per process naming the error and the
 *                 cost. Under valgrind (RUNNING_ON_VALGRIND) threads.
 *   "uring"       io_uring or fail (-errno, logged).
 *   "threads"     the threads backend.
 *   anything else -EINVAL with an error naming the value.
 */
#ifndef VLUN_IO_H
#define VLUN_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct vlun_io_engine;

enum vlun_pio_op { VLUN_PIO_READ, VLUN_PIO_WRITE, VLUN_PIO_FSYNC, VLUN_PIO_ZERO };

struct vlun_pio;
typedef void (*vlun_pio_done_fn)(struct vlun_pio *pio, int res); /* res: 0 or -errno */

/* One physical I/O on one member fd. */
struct vlun_pio {
	uint32_t op;           /* enum vlun_pio_op */
	int fd;
	bool fua;              /* write with RWF_DSYNC */
	bool direct;           /* fd is O_DIRECT: buffers/offsets must be aligned */
	uint64_t offset;       /* bytes */
	uint64_t length;       /* bytes */
	struct iovec *iov;
	int iovcnt;
	vlun_pio_done_fn done;
	void *priv;
	/* engine-private */
	uint64_t done_bytes;
	void *bounce;
};

int vlun_io_engine_new(unsigned queue_depth, struct vlun_io_engine **ret);
void vlun_io_engine_free(struct vlun_io_engine *e); /* drains in-flight I/O first */
/* Queues pio; 0 or -errno. Short reads/writes are resubmitted for the rest;
 * EINTR/EAGAIN retried; an unaligned buffer on an O_DIRECT fd goes through
 * a bounce buffer. done() runs on the completion thread. */
int vlun_io_submit(struct vlun_io_engine *e, struct vlun_pio *pio);
/* Plug: the io_uring requests this thread queues until the matching
 * unplug go to the kernel in one submission (a request split into pieces,
 * a flush of every member). Nests; the thread must not wait for anything
 * but vlun_io_submit's room (which sends what is held back first) while
 * plugged. No effect on the threads backend. */
void vlun_io_plug(struct vlun_io_engine *e);
void vlun_io_unplug(struct vlun_io_engine *e);
/* Runs fn(arg) on the completion thread (for deferred completions). */
int vlun_io_defer(struct vlun_io_engine *e, void (*fn)(void *), void *arg);
/* Test hook: no request (SQE or syscall) carries more than max bytes (0 =
 * no limit), which exercises the short-I/O resubmission path exactly as a
 * short completion from the kernel does, in both backends. */
void vlun_io_engine_set_max_sqe_bytes(struct vlun_io_engine *e, uint64_t max);
/* "uring" or "threads": the backend e runs on. */
const char *vlun_io_engine_backend(const struct vlun_io_engine *e);
/* Test hook: while neg_errno < 0, setting up an io_uring fails with it (as
 * a kernel without io_uring would); 0 turns that off. */
void vlun_io_test_fail_uring_setup(int neg_errno);

#endif
