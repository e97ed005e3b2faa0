/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io.h — the asynchronous I/O engine: one io_uring per engine, a
 * submission lock held only while filling SQEs (never by the metadata
 * commit), and a completion thread that reaps CQEs and runs callbacks.
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
/* Runs fn(arg) on the completion thread (for deferred completions). */
int vlun_io_defer(struct vlun_io_engine *e, void (*fn)(void *), void *arg);
/* Test hook: no SQE carries more than max bytes (0 = no limit), which
 * exercises the short-I/O resubmission path exactly as a short completion
 * from the kernel does. */
void vlun_io_engine_set_max_sqe_bytes(struct vlun_io_engine *e, uint64_t max);

#endif
