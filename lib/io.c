/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io.c — the asynchronous I/O engine (see io.h).
 *
 * One io_uring per engine. Threads and locks:
 *
 *   submitters (any thread)  take sq_lock only while getting and filling
 *                            SQEs and calling io_uring_submit(); the metadata
 *                            commit never holds it.
 *   completion thread        the only reader of the CQ ring. Reaps CQEs,
 *                            resubmits short / EAGAIN / EINTR I/O, copies
 *                            bounce buffers back, runs pio->done() and the
 *                            functions queued with vlun_io_defer().
 *   zero worker              runs the blocking parts of VLUN_PIO_ZERO
 *                            (BLKZEROOUT on block devices, writing zeros as
 *                            the last fallback) and hands the result to the
 *                            completion thread, so done() always runs there.
 *
 * Back-pressure: at most `depth` pios are in flight; a submitter that finds
 * the engine full waits for a completion instead of failing. The
 * completion thread itself (done callbacks, deferred functions) never
 * waits: it may go beyond depth, the ring has room for that (SQ entries =
 * depth + reserve, a CQ four times as large, and the kernel's NODROP CQ).
 *
 * Wake-ups of the completion thread (deferred work, stop) are NOP SQEs with
 * a tag in user_data.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "io.h"

#define IO_DEFAULT_DEPTH 128u
#define IO_MAX_DEPTH 4096u
#define IO_RESERVE 32u
#define IO_BOUNCE_ALIGN 4096u
#define IO_ZERO_BUF (1u << 20)
#define IO_MAX_RETRIES 1000u
#define IO_IOV_MAX 1024

#define TAG_WAKE ((uint64_t)1)
#define TAG_STOP ((uint64_t)2)

struct defer_item {
	struct defer_item *next;
	void (*fn)(void *);
	void *arg;
	void (*release)(struct defer_item *); /* NULL: embedded in its owner */
};

/* Engine-private state of a pio that needs more than one SQE or a bounce
 * buffer; hangs off pio->bounce. Plain pios (the common case) have none. */
struct pio_ext {
	void *buf;        /* aligned copy of the whole data, or NULL */
	unsigned retries;
	int niov;
	struct iovec iov[]; /* the iovec of the SQE in flight (slice) */
};

struct zero_job {
	struct zero_job *next;
	struct vlun_io_engine *e;
	struct vlun_pio *pio;
	bool blockdev;
	int res;
	struct defer_item done; /* hands the result to the completion thread */
};

struct vlun_io_engine {
	struct io_uring ring;
	unsigned depth;
	uint64_t max_sqe_bytes;    /* test hook: split every SQE (simulated short I/O) */

	pthread_mutex_t sq_lock;   /* SQ ring + io_uring_submit */

	pthread_mutex_t lock;      /* inflight, defer list, zero list */
	pthread_cond_t space;      /* inflight < depth */
	pthread_cond_t idle;       /* inflight == 0 && no deferred work */
	pthread_cond_t zero_cond;  /* zero worker has work */
	unsigned inflight;         /* pios submitted and not completed */
	bool defer_running;        /* the completion thread is running deferred work */
	struct defer_item *defer_head, **defer_tail;
	struct zero_job *zero_head, **zero_tail;
	bool zero_stop;

	pthread_t cq_thread;
	pthread_t zero_thread;
	bool cq_started, zero_started;
};

static bool on_cq_thread(struct vlun_io_engine *e)
{
	return e->cq_started && pthread_equal(pthread_self(), e->cq_thread);
}

/* ------------------------------------------------------------ SQ side */

/* Gets an SQE; when the SQ is full, pushes what is queued to the kernel
 * and tries again. Caller holds sq_lock. */
static struct io_uring_sqe *get_sqe(struct vlun_io_engine *e)
{
	for (;;) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
		if (sqe)
			return sqe;
		int r = io_uring_submit(&e->ring);
		if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
			vlun_err("io: io_uring_submit failed while waiting for SQ space: %s", strerror(-r));
		if (r <= 0)
			usleep(50);
	}
}

/* Submits everything queued. Caller holds sq_lock. -EAGAIN/-EBUSY (the
 * kernel is short of resources or the CQ overflowed) are retried: the
 * completion thread drains the CQ meanwhile. */
static void submit_locked(struct vlun_io_engine *e)
{
	for (unsigned tries = 0;; tries++) {
		int r = io_uring_submit(&e->ring);
		if (r >= 0)
			return;
		if (r != -EAGAIN && r != -EBUSY && r != -EINTR) {
			/* Nothing sensible left: the SQEs stay queued and go
			 * with the next submit. */
			vlun_err("io: io_uring_submit failed: %s; the request stays queued", strerror(-r));
			return;
		}
		usleep(tries < 100 ? 10 : 1000);
	}
}

static void queue_nop(struct vlun_io_engine *e, uint64_t tag)
{
	pthread_mutex_lock(&e->sq_lock);
	struct io_uring_sqe *sqe = get_sqe(e);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, tag);
	submit_locked(e);
	pthread_mutex_unlock(&e->sq_lock);
}

static uint64_t iov_total(const struct iovec *iov, int n)
{
	uint64_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static bool iov_aligned(const struct iovec *iov, int n, uint64_t a)
{
	for (int i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % a || iov[i].iov_len % a)
			return false;
	return true;
}

static void copy_from_iov(void *dst, const struct iovec *iov, int n, uint64_t len)
{
	uint8_t *d = dst;
	for (int i = 0; i < n && len > 0; i++) {
		size_t c = VLUN_MIN((uint64_t)iov[i].iov_len, len);
		memcpy(d, iov[i].iov_base, c);
		d += c;
		len -= c;
	}
}

static void copy_to_iov(const struct iovec *iov, int n, const void *src, uint64_t len)
{
	const uint8_t *s = src;
	for (int i = 0; i < n && len > 0; i++) {
		size_t c = VLUN_MIN((uint64_t)iov[i].iov_len, len);
		memcpy(iov[i].iov_base, s, c);
		s += c;
		len -= c;
	}
}

static struct pio_ext *pio_ext_get(struct vlun_pio *pio)
{
	if (!pio->bounce) {
		struct pio_ext *x = calloc(1, sizeof(*x) + (size_t)(pio->iovcnt + 1) * sizeof(struct iovec));
		if (!x)
			return NULL;
		pio->bounce = x;
	}
	return pio->bounce;
}

static void pio_ext_release(struct vlun_pio *pio)
{
	struct pio_ext *x = pio->bounce;
	if (!x)
		return;
	free(x->buf);
	free(x);
	pio->bounce = NULL;
}

/* Switches pio to an aligned bounce buffer covering all of it. */
static int pio_bounce(struct vlun_pio *pio)
{
	struct pio_ext *x = pio_ext_get(pio);
	if (!x)
		return -ENOMEM;
	if (x->buf)
		return 0;
	void *b = NULL;
	if (posix_memalign(&b, IO_BOUNCE_ALIGN, VLUN_ALIGN_UP(pio->length, IO_BOUNCE_ALIGN)) != 0)
		return -ENOMEM;
	if (pio->op == VLUN_PIO_WRITE)
		copy_from_iov(b, pio->iov, pio->iovcnt, pio->length);
	x->buf = b;
	return 0;
}

/* Fills x->iov with the part of the data from byte `from`, at most `max`
 * bytes. */
static void pio_slice(struct vlun_pio *pio, struct pio_ext *x, uint64_t from, uint64_t max)
{
	uint64_t want = VLUN_MIN(pio->length - from, max);
	x->niov = 0;
	if (x->buf) {
		x->iov[0].iov_base = (uint8_t *)x->buf + from;
		x->iov[0].iov_len = want;
		x->niov = 1;
		return;
	}
	uint64_t skip = from;
	for (int i = 0; i < pio->iovcnt && want > 0; i++) {
		uint64_t l = pio->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		uint64_t c = VLUN_MIN(l - skip, want);
		x->iov[x->niov].iov_base = (uint8_t *)pio->iov[i].iov_base + skip;
		x->iov[x->niov].iov_len = c;
		x->niov++;
		want -= c;
		skip = 0;
	}
}

/* Queues the SQE for the not yet done part of pio (caller holds sq_lock). */
static int prep_pio_locked(struct vlun_io_engine *e, struct vlun_pio *pio)
{
	struct pio_ext *x = pio->bounce;
	const struct iovec *iov = pio->iov;
	int niov = pio->iovcnt;
	uint64_t off = pio->offset + pio->done_bytes;

	if ((pio->op == VLUN_PIO_READ || pio->op == VLUN_PIO_WRITE) &&
	    (x || pio->done_bytes > 0 || e->max_sqe_bytes)) {
		x = pio_ext_get(pio);
		if (!x)
			return -ENOMEM;
		pio_slice(pio, x, pio->done_bytes, e->max_sqe_bytes ? e->max_sqe_bytes : UINT64_MAX);
		iov = x->iov;
		niov = x->niov;
	}

	struct io_uring_sqe *sqe = get_sqe(e);
	switch (pio->op) {
	case VLUN_PIO_READ:
		io_uring_prep_readv(sqe, pio->fd, iov, (unsigned)niov, off);
		break;
	case VLUN_PIO_WRITE:
		io_uring_prep_writev(sqe, pio->fd, iov, (unsigned)niov, off);
		if (pio->fua)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case VLUN_PIO_FSYNC:
		io_uring_prep_fsync(sqe, pio->fd, IORING_FSYNC_DATASYNC);
		break;
	case VLUN_PIO_ZERO:
		io_uring_prep_fallocate(sqe, pio->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)pio->offset, (off_t)pio->length);
		break;
	}
	vlun_tsan_release(pio); /* the CQ thread takes pio from the kernel */
	io_uring_sqe_set_data(sqe, pio);
	return 0;
}

static int resubmit(struct vlun_io_engine *e, struct vlun_pio *pio)
{
	pthread_mutex_lock(&e->sq_lock);
	int r = prep_pio_locked(e, pio);
	if (r == 0)
		submit_locked(e);
	pthread_mutex_unlock(&e->sq_lock);
	return r;
}

static int zero_queue(struct vlun_io_engine *e, struct vlun_pio *pio, bool blockdev)
{
	struct zero_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->e = e;
	j->pio = pio;
	j->blockdev = blockdev;
	pthread_mutex_lock(&e->lock);
	*e->zero_tail = j;
	e->zero_tail = &j->next;
	pthread_cond_signal(&e->zero_cond);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static bool fd_is_blockdev(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
}

int vlun_io_submit(struct vlun_io_engine *e, struct vlun_pio *pio)
{
	if (!e || !pio || !pio->done || pio->fd < 0 || pio->op > VLUN_PIO_ZERO)
		return -EINVAL;
	bool rw = pio->op == VLUN_PIO_READ || pio->op == VLUN_PIO_WRITE;
	if (rw) {
		if (pio->iovcnt <= 0 || pio->iovcnt > IO_IOV_MAX || !pio->iov || pio->length == 0 ||
		    iov_total(pio->iov, pio->iovcnt) < pio->length)
			return -EINVAL;
		if (pio->direct && (pio->offset % VLUN_SECTOR_SIZE || pio->length % VLUN_SECTOR_SIZE))
			return -EINVAL;
	}
	if (pio->op == VLUN_PIO_ZERO && pio->length == 0)
		return -EINVAL;

	pio->done_bytes = 0;
	pio->bounce = NULL;
	if (rw && pio->direct && !iov_aligned(pio->iov, pio->iovcnt, VLUN_SECTOR_SIZE)) {
		int r = pio_bounce(pio);
		if (r < 0)
			return r;
	} else if (rw && iov_total(pio->iov, pio->iovcnt) != pio->length) {
		/* The iovec is longer than the I/O: send a slice of it. */
		if (!pio_ext_get(pio))
			return -ENOMEM;
	}

	pthread_mutex_lock(&e->lock);
	if (!on_cq_thread(e))
		while (e->inflight >= e->depth)
			pthread_cond_wait(&e->space, &e->lock);
	e->inflight++;
	pthread_mutex_unlock(&e->lock);

	int r;
	if (pio->op == VLUN_PIO_ZERO && fd_is_blockdev(pio->fd)) {
		r = zero_queue(e, pio, true);
	} else {
		pthread_mutex_lock(&e->sq_lock);
		r = prep_pio_locked(e, pio);
		if (r == 0)
			submit_locked(e);
		pthread_mutex_unlock(&e->sq_lock);
	}
	if (r < 0) {
		pio_ext_release(pio);
		pthread_mutex_lock(&e->lock);
		e->inflight--;
		pthread_cond_signal(&e->space);
		if (e->inflight == 0 && !e->defer_head)
			pthread_cond_broadcast(&e->idle);
		pthread_mutex_unlock(&e->lock);
	}
	return r;
}

static void defer_push(struct vlun_io_engine *e, struct defer_item *d)
{
	d->next = NULL;
	pthread_mutex_lock(&e->lock);
	bool was_empty = !e->defer_head;
	*e->defer_tail = d;
	e->defer_tail = &d->next;
	pthread_mutex_unlock(&e->lock);
	/* The completion thread runs its list before it waits again; others
	 * wake it (one NOP per batch is enough). */
	if (was_empty && !on_cq_thread(e))
		queue_nop(e, TAG_WAKE);
}

static void defer_free_fn(struct defer_item *d)
{
	free(d);
}

int vlun_io_defer(struct vlun_io_engine *e, void (*fn)(void *), void *arg)
{
	if (!e || !fn)
		return -EINVAL;
	struct defer_item *d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fn = fn;
	d->arg = arg;
	d->release = defer_free_fn;
	defer_push(e, d);
	return 0;
}

void vlun_io_engine_set_max_sqe_bytes(struct vlun_io_engine *e, uint64_t max)
{
	if (e)
		e->max_sqe_bytes = max ? VLUN_ALIGN_UP(max, VLUN_SECTOR_SIZE) : 0;
}

/* ------------------------------------------------------------ CQ side */

static void pio_complete(struct vlun_io_engine *e, struct vlun_pio *pio, int res)
{
	struct pio_ext *x = pio->bounce;
	if (res == 0 && pio->op == VLUN_PIO_READ && x && x->buf)
		copy_to_iov(pio->iov, pio->iovcnt, x->buf, pio->length);
	pio_ext_release(pio);
	pio->done(pio, res);

	pthread_mutex_lock(&e->lock);
	e->inflight--;
	pthread_cond_signal(&e->space);
	if (e->inflight == 0 && !e->defer_head && !e->defer_running)
		pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->lock);
}

static void handle_cqe(struct vlun_io_engine *e, struct vlun_pio *pio, int res)
{
	bool rw = pio->op == VLUN_PIO_READ || pio->op == VLUN_PIO_WRITE;

	if (res == -EAGAIN || res == -EINTR) {
		struct pio_ext *x = pio_ext_get(pio);
		if (x && ++x->retries <= IO_MAX_RETRIES && resubmit(e, pio) == 0)
			return;
		vlun_err("io: %s on fd %d offset %llu kept failing with %s; giving up",
			 pio->op == VLUN_PIO_READ ? "read" : "write", pio->fd,
			 (unsigned long long)(pio->offset + pio->done_bytes), strerror(-res));
		pio_complete(e, pio, -EIO);
		return;
	}

	if (rw && res == -EINVAL && pio->direct && !(pio->bounce && ((struct pio_ext *)pio->bounce)->buf)) {
		/* The device wants more alignment than 512 (4K sectors):
		 * retry through a page-aligned bounce buffer. */
		if (pio_bounce(pio) == 0 && resubmit(e, pio) == 0)
			return;
	}

	if (pio->op == VLUN_PIO_ZERO && (res == -EOPNOTSUPP || res == -EINVAL || res == -ENODEV)) {
		/* The filesystem cannot zero a range: write zeros instead. */
		int r = zero_queue(e, pio, false);
		if (r < 0)
			pio_complete(e, pio, r);
		return;
	}

	if (res < 0) {
		pio_complete(e, pio, res);
		return;
	}

	if (rw) {
		pio->done_bytes += (uint64_t)res;
		if (pio->done_bytes < pio->length) {
			if (res == 0) {
				vlun_err("io: %s on fd %d at offset %llu made no progress (end of device?)",
					 pio->op == VLUN_PIO_READ ? "read" : "write", pio->fd,
					 (unsigned long long)(pio->offset + pio->done_bytes));
				pio_complete(e, pio, -EIO);
				return;
			}
			/* Short I/O: send the rest. */
			int r = resubmit(e, pio);
			if (r < 0)
				pio_complete(e, pio, r);
			return;
		}
	}
	pio_complete(e, pio, 0);
}

static void run_deferred(struct vlun_io_engine *e)
{
	for (;;) {
		pthread_mutex_lock(&e->lock);
		struct defer_item *d = e->defer_head;
		e->defer_head = NULL;
		e->defer_tail = &e->defer_head;
		e->defer_running = d != NULL;
		pthread_mutex_unlock(&e->lock);
		if (!d)
			break;
		while (d) {
			struct defer_item *n = d->next;
			void (*rel)(struct defer_item *) = d->release;
			d->fn(d->arg); /* may free an embedded item's owner */
			if (rel)
				rel(d);
			d = n;
		}
	}
	pthread_mutex_lock(&e->lock);
	e->defer_running = false;
	if (e->inflight == 0 && !e->defer_head)
		pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->lock);
}

static void *cq_main(void *arg)
{
	struct vlun_io_engine *e = arg;
	bool stop = false;

	while (!stop) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&e->ring, &cqe);
		if (r < 0) {
			if (r != -EINTR && r != -EAGAIN && r != -ETIME)
				vlun_err("io: waiting for completions failed: %s", strerror(-r));
			run_deferred(e);
			continue;
		}
		unsigned head;
		io_uring_for_each_cqe(&e->ring, head, cqe) {
			uint64_t tag = io_uring_cqe_get_data64(cqe);
			int res = cqe->res;
			/* Release the slot before the callback: done() may submit. */
			io_uring_cq_advance(&e->ring, 1);
			if (tag == TAG_WAKE)
				continue;
			if (tag == TAG_STOP) {
				stop = true;
				continue;
			}
			vlun_tsan_acquire(tag);
			handle_cqe(e, (struct vlun_pio *)(uintptr_t)tag, res);
		}
		run_deferred(e);
	}
	return NULL;
}

/* Writes zeros with plain pwrite (last resort). */
static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	void *z = NULL;
	if (posix_memalign(&z, IO_BOUNCE_ALIGN, IO_ZERO_BUF) != 0)
		return -ENOMEM;
	memset(z, 0, IO_ZERO_BUF);
	int r = 0;
	while (len > 0) {
		size_t c = VLUN_MIN(len, (uint64_t)IO_ZERO_BUF);
		ssize_t w = pwrite(fd, z, c, (off_t)off);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = -errno;
			break;
		}
		if (w == 0) {
			r = -EIO;
			break;
		}
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	free(z);
	return r;
}

static void zero_done_fn(void *arg)
{
	struct zero_job *j = arg;
	struct vlun_io_engine *e = j->e;
	struct vlun_pio *pio = j->pio;
	int res = j->res;
	free(j);
	pio_complete(e, pio, res);
}

static void *zero_main(void *arg)
{
	struct vlun_io_engine *e = arg;
	for (;;) {
		pthread_mutex_lock(&e->lock);
		while (!e->zero_head && !e->zero_stop)
			pthread_cond_wait(&e->zero_cond, &e->lock);
		struct zero_job *j = e->zero_head;
		if (!j) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		e->zero_head = j->next;
		if (!e->zero_head)
			e->zero_tail = &e->zero_head;
		pthread_mutex_unlock(&e->lock);

		struct vlun_pio *pio = j->pio;
		int r = -EOPNOTSUPP;
		if (j->blockdev) {
			uint64_t range[2] = { pio->offset, pio->length };
			r = ioctl(pio->fd, BLKZEROOUT, range) < 0 ? -errno : 0;
		}
		if (r < 0)
			r = write_zeros(pio->fd, pio->offset, pio->length);
		if (r == 0 && pio->fua)
			r = fdatasync(pio->fd) < 0 ? -errno : 0;
		j->res = r;
		j->done.fn = zero_done_fn;
		j->done.arg = j;
		j->done.release = NULL;
		defer_push(e, &j->done);
	}
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int vlun_io_engine_new(unsigned queue_depth, struct vlun_io_engine **ret)
{
	if (!ret)
		return -EINVAL;
	if (queue_depth == 0)
		queue_depth = IO_DEFAULT_DEPTH;
	if (queue_depth > IO_MAX_DEPTH)
		queue_depth = IO_MAX_DEPTH;

	struct vlun_io_engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->depth = queue_depth;
	e->defer_tail = &e->defer_head;
	e->zero_tail = &e->zero_head;
	pthread_mutex_init(&e->sq_lock, NULL);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->space, NULL);
	pthread_cond_init(&e->idle, NULL);
	pthread_cond_init(&e->zero_cond, NULL);

	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * (queue_depth + IO_RESERVE);
	int r = io_uring_queue_init_params(queue_depth + IO_RESERVE, &e->ring, &p);
	if (r < 0) {
		vlun_err("io: cannot set up an io_uring of depth %u: %s (is io_uring disabled by "
			 "kernel.io_uring_disabled or a seccomp filter?)", queue_depth, strerror(-r));
		goto fail_sync;
	}
	if (!(p.features & IORING_FEAT_NODROP))
		vlun_warn("io: kernel io_uring lacks NODROP; completions may be lost under overload");

	r = -pthread_create(&e->cq_thread, NULL, cq_main, e);
	if (r < 0) {
		vlun_err("io: cannot start the completion thread: %s", strerror(-r));
		goto fail_ring;
	}
	e->cq_started = true;
	r = -pthread_create(&e->zero_thread, NULL, zero_main, e);
	if (r < 0) {
		vlun_err("io: cannot start the zeroing thread: %s", strerror(-r));
		queue_nop(e, TAG_STOP);
		pthread_join(e->cq_thread, NULL);
		goto fail_ring;
	}
	e->zero_started = true;
	*ret = e;
	return 0;

fail_ring:
	io_uring_queue_exit(&e->ring);
fail_sync:
	pthread_cond_destroy(&e->zero_cond);
	pthread_cond_destroy(&e->idle);
	pthread_cond_destroy(&e->space);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->sq_lock);
	free(e);
	return r;
}

void vlun_io_engine_free(struct vlun_io_engine *e)
{
	if (!e)
		return;
	/* Drain: everything submitted completes (done callbacks may submit
	 * more; wait for that too). */
	pthread_mutex_lock(&e->lock);
	while (e->inflight > 0 || e->defer_head || e->defer_running)
		pthread_cond_wait(&e->idle, &e->lock);
	e->zero_stop = true;
	pthread_cond_signal(&e->zero_cond);
	pthread_mutex_unlock(&e->lock);

	pthread_join(e->zero_thread, NULL);
	queue_nop(e, TAG_STOP);
	pthread_join(e->cq_thread, NULL);
	io_uring_queue_exit(&e->ring);
	pthread_cond_destroy(&e->zero_cond);
	pthread_cond_destroy(&e->idle);
	pthread_cond_destroy(&e->space);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->sq_lock);
	free(e);
}
