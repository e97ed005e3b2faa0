/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io.c — the asynchronous I/O engine (see io.h).
 *
 * Two backends behind one API; everything above "issue one request for the
 * not yet done part of a pio" and "a result for that request arrived" is
 * shared: back-pressure, bounce buffers, slicing, retries, the short-I/O
 * loop, the ZERO fallbacks, deferred work and the completion thread.
 *
 *   uring    one io_uring per engine. Submitters (any thread) take sq_lock
 *            only while getting and filling SQEs and calling
 *            io_uring_submit(); the metadata commit never holds it. The
 *            completion thread is the only reader of the CQ ring. Wake-ups
 *            of the completion thread (deferred work, stop) are NOP SQEs
 *            with a tag in user_data.
 *   threads  a small pool of worker threads takes requests from a queue
 *            (wq_lock) and runs them as blocking syscalls: preadv, pwritev
 *            (pwritev2 with RWF_DSYNC for FUA), fdatasync, fallocate. Each
 *            result goes on a completion list under `lock`; the completion
 *            thread waits on cq_cond for that list, deferred work or stop.
 *
 *   completion thread        resubmits short / EAGAIN / EINTR I/O, copies
 *                            bounce buffers back, runs pio->done() and the
 *                            functions queued with vlun_io_defer() — in
 *                            both backends, so done() never runs inside
 *                            vlun_io_submit() and always on one thread.
 *   zero worker              runs the blocking parts of VLUN_PIO_ZERO
 *                            (BLKZEROOUT on block devices, writing zeros as
 *                            the last fallback) and hands the result to the
 *                            completion thread, so done() always runs there.
 *
 * ZERO on a regular file: fallocate ZERO_RANGE; where the filesystem
 * refuses it (tmpfs), PUNCH_HOLE|KEEP_SIZE through the same backend; where
 * that is refused too, the zero worker writes zeros from one static buffer.
 *
 * Back-pressure: at most `depth` pios are in flight; a submitter that finds
 * the engine full waits for a completion instead of failing. The
 * completion thread itself (done callbacks, deferred functions) never
 * waits: it may go beyond depth, the ring has room for that (SQ entries =
 * depth + reserve, a CQ four times as large, and the kernel's NODROP CQ);
 * the worker queue is a list and has no limit.
 *
 * Backend choice (vlun_io_engine_new): VLUN_IO_BACKEND=uring|threads forces
 * one; unset (or "auto") means io_uring, falling back to threads — with one
 * warning per process saying why — when the ring cannot be set up, and
 * threads straight away under valgrind (3.19 cannot follow io_uring).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define IO_ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef IO_ON_VALGRIND
#define IO_ON_VALGRIND() false
#endif

#include "internal.h"
#include "io.h"

#define IO_DEFAULT_DEPTH 128u
#define IO_MAX_DEPTH 4096u
#define IO_RESERVE 32u
#define IO_BOUNCE_ALIGN 4096u
#define IO_ZERO_BUF (1u << 20)
#define IO_MAX_RETRIES 1000u
#define IO_IOV_MAX 1024
#define IO_WORKERS 8u

#define TAG_WAKE ((uint64_t)1)
#define TAG_STOP ((uint64_t)2)

enum io_backend { IO_BACKEND_URING, IO_BACKEND_THREADS };

struct defer_item {
	struct defer_item *next;
	void (*fn)(void *);
	void *arg;
	void (*release)(struct defer_item *); /* NULL: embedded in its owner */
};

/* Engine-private state of a pio that needs more than one request, a
 * bounce buffer or a flush after ZERO; hangs off pio->bounce. Plain pios
 * (the common case) have none. */
struct pio_ext {
	void *buf;        /* aligned copy of the whole data, or NULL */
	unsigned retries;
	bool zero_flush;  /* ZERO+FUA: the range is zeroed, the fdatasync is next */
	bool zero_punch;  /* ZERO: ZERO_RANGE was refused, punch a hole instead */
	int niov;
	struct iovec iov[]; /* the iovec of the request in flight (slice) */
};

/* One request: the not yet done part of a pio, as one syscall / SQE. */
struct io_req {
	uint32_t op;      /* enum vlun_pio_op */
	int fd;
	bool fua;
	const struct iovec *iov;
	int niov;
	uint64_t off;
	uint64_t len;     /* ZERO only */
	bool punch;       /* ZERO: PUNCH_HOLE instead of ZERO_RANGE */
};

/* threads backend: a request queued for a worker, then its result queued
 * for the completion thread. */
struct tjob {
	struct tjob *next;
	struct vlun_pio *pio;
	struct io_req req;
	int res;
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
	enum io_backend backend;
	unsigned depth;
	uint64_t max_sqe_bytes;    /* test hook: split every request (simulated short I/O) */

	/* uring */
	struct io_uring ring;
	bool ring_ready;
	pthread_mutex_t sq_lock;   /* SQ ring + io_uring_submit */

	/* threads */
	pthread_mutex_t wq_lock;   /* worker queue */
	pthread_cond_t wq_cond;    /* worker queue has work or wq_stop */
	struct tjob *wq_head, **wq_tail;
	bool wq_stop;
	pthread_t *workers;
	unsigned nworkers;         /* started */
	pthread_cond_t cq_cond;    /* (lock) completions, deferred work or cq_stop */
	struct tjob *cq_head, **cq_tail;
	bool cq_stop;

	pthread_mutex_t lock;      /* defer list, zero list, completion list; the
				    * waits for space and idle */
	pthread_cond_t space;      /* inflight < depth */
	pthread_cond_t idle;       /* inflight == 0 && no deferred work */
	pthread_cond_t zero_cond;  /* zero worker has work */
	/* pios submitted and not completed: changed without the lock; the
	 * lock is only taken to wake a waiter (space_waiters > 0, or the
	 * count reached zero) */
	_Atomic unsigned inflight;
	_Atomic unsigned space_waiters;
	bool defer_running;        /* the completion thread is running deferred work */
	_Atomic bool defer_queued; /* defer_head may be non-NULL (set with it under
				    * lock): run_deferred skips the lock without */
	struct defer_item *defer_head, **defer_tail;
	struct zero_job *zero_head, **zero_tail;
	bool zero_stop;

	pthread_t cq_thread;
	pthread_t zero_thread;
	bool cq_started, zero_started;
};

/* Submission plug (vlun_io_plug): the SQEs this thread queues for plug_e
 * meanwhile go to the kernel in one io_uring_submit at the unplug.
 * initial-exec: handler_vlun.so may import nothing but libc and tcmu (no
 * __tls_get_addr). */
static __thread struct vlun_io_engine *plug_e __attribute__((tls_model("initial-exec")));
static __thread unsigned plug_depth __attribute__((tls_model("initial-exec")));
static __thread unsigned plug_queued __attribute__((tls_model("initial-exec")));

/* Test hook (io.h): io_uring setup fails with this -errno when non-zero. */
static atomic_int uring_fail_injected;
static atomic_bool uring_fallback_warned, valgrind_noted;

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

/* Fills q with the request for the not yet done part of pio (slicing the
 * iovec into pio's ext where needed). 0 or -ENOMEM. */
static int pio_next_req(struct vlun_io_engine *e, struct vlun_pio *pio, struct io_req *q)
{
	struct pio_ext *x = pio->bounce;

	*q = (struct io_req){
		.op = pio->op, .fd = pio->fd, .fua = pio->fua,
		.iov = pio->iov, .niov = pio->iovcnt,
		.off = pio->offset + pio->done_bytes, .len = pio->length,
	};
	if ((pio->op == VLUN_PIO_READ || pio->op == VLUN_PIO_WRITE) &&
	    (x || pio->done_bytes > 0 || e->max_sqe_bytes)) {
		x = pio_ext_get(pio);
		if (!x)
			return -ENOMEM;
		pio_slice(pio, x, pio->done_bytes, e->max_sqe_bytes ? e->max_sqe_bytes : UINT64_MAX);
		q->iov = x->iov;
		q->niov = x->niov;
	}
	if (pio->op == VLUN_PIO_ZERO && x && x->zero_flush)
		q->op = VLUN_PIO_FSYNC;
	else if (pio->op == VLUN_PIO_ZERO && x && x->zero_punch)
		q->punch = true;
	return 0;
}

/* fallocate mode of a ZERO request. ZERO_RANGE keeps the blocks allocated;
 * filesystems without it (tmpfs, some network filesystems) mostly can punch
 * a hole, which reads back as zeros as well and costs no data write. */
static int zero_mode(const struct io_req *q)
{
	return (q->punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) | FALLOC_FL_KEEP_SIZE;
}

/* Queues the SQE for q (caller holds sq_lock). */
static void prep_req_locked(struct vlun_io_engine *e, struct vlun_pio *pio, const struct io_req *q)
{
	struct io_uring_sqe *sqe = get_sqe(e);
	switch (q->op) {
	case VLUN_PIO_READ:
		io_uring_prep_readv(sqe, q->fd, q->iov, (unsigned)q->niov, q->off);
		break;
	case VLUN_PIO_WRITE:
		io_uring_prep_writev(sqe, q->fd, q->iov, (unsigned)q->niov, q->off);
		if (q->fua)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case VLUN_PIO_FSYNC:
		io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
		break;
	case VLUN_PIO_ZERO:
		io_uring_prep_fallocate(sqe, q->fd, zero_mode(q), (off_t)q->off, (off_t)q->len);
		break;
	}
	vlun_tsan_release(pio); /* the CQ thread takes pio from the kernel */
	io_uring_sqe_set_data(sqe, pio);
}

/* Hands the not yet done part of pio to the backend. 0 or -errno; on
 * failure nothing is in flight for pio. */
static int issue(struct vlun_io_engine *e, struct vlun_pio *pio)
{
	struct io_req q;
	int r = pio_next_req(e, pio, &q);
	if (r < 0)
		return r;

	if (e->backend == IO_BACKEND_URING) {
		pthread_mutex_lock(&e->sq_lock);
		prep_req_locked(e, pio, &q);
		if (plug_e == e)
			plug_queued++; /* submitted at the unplug */
		else
			submit_locked(e);
		pthread_mutex_unlock(&e->sq_lock);
		return 0;
	}

	struct tjob *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->next = NULL;
	j->pio = pio;
	j->req = q;
	j->res = 0;
	pthread_mutex_lock(&e->wq_lock);
	*e->wq_tail = j;
	e->wq_tail = &j->next;
	pthread_cond_signal(&e->wq_cond);
	pthread_mutex_unlock(&e->wq_lock);
	return 0;
}

static void plug_flush(struct vlun_io_engine *e)
{
	if (!plug_queued)
		return;
	pthread_mutex_lock(&e->sq_lock);
	submit_locked(e);
	pthread_mutex_unlock(&e->sq_lock);
	plug_queued = 0;
}

void vlun_io_plug(struct vlun_io_engine *e)
{
	if (plug_depth++ == 0 && e && e->backend == IO_BACKEND_URING)
		plug_e = e;
}

void vlun_io_unplug(struct vlun_io_engine *e)
{
	(void)e; /* the outermost plug's engine is the one held back */
	if (plug_depth == 0 || --plug_depth > 0)
		return;
	if (plug_e)
		plug_flush(plug_e);
	plug_e = NULL;
	plug_queued = 0;
}

static int resubmit(struct vlun_io_engine *e, struct vlun_pio *pio)
{
	return issue(e, pio);
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

/* One more pio in flight; waits for room (inflight < depth) except on the
 * completion thread, which must never wait. */
static void inflight_inc(struct vlun_io_engine *e)
{
	if (on_cq_thread(e)) {
		atomic_fetch_add(&e->inflight, 1);
		return;
	}
	unsigned n = atomic_load_explicit(&e->inflight, memory_order_relaxed);
	for (;;) {
		if (n < e->depth) {
			if (atomic_compare_exchange_weak(&e->inflight, &n, n + 1))
				return;
			continue;
		}
		/* what this thread holds back counts as in flight: send it
		 * before waiting for room */
		if (plug_e == e && plug_queued)
			plug_flush(e);
		pthread_mutex_lock(&e->lock);
		/* seq_cst pairs with inflight_dec: either we see its decrement
		 * or it sees us waiting (and signals under the lock) */
		atomic_fetch_add(&e->space_waiters, 1);
		while (atomic_load(&e->inflight) >= e->depth)
			pthread_cond_wait(&e->space, &e->lock);
		atomic_fetch_sub(&e->space_waiters, 1);
		pthread_mutex_unlock(&e->lock);
		n = atomic_load_explicit(&e->inflight, memory_order_relaxed);
	}
}

/* One pio less in flight; wakes a submitter waiting for room, and the
 * drain when nothing is left. */
static void inflight_dec(struct vlun_io_engine *e)
{
	unsigned n = atomic_fetch_sub(&e->inflight, 1);
	if (atomic_load(&e->space_waiters) == 0 && n != 1)
		return;
	pthread_mutex_lock(&e->lock);
	pthread_cond_signal(&e->space);
	if (atomic_load(&e->inflight) == 0 && !e->defer_head && !e->defer_running)
		pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->lock);
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

	inflight_inc(e);

	int r;
	if (pio->op == VLUN_PIO_ZERO && fd_is_blockdev(pio->fd)) {
		r = zero_queue(e, pio, true);
	} else {
		r = issue(e, pio);
	}
	if (r < 0) {
		pio_ext_release(pio);
		inflight_dec(e);
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
	atomic_store(&e->defer_queued, true);
	if (e->backend == IO_BACKEND_THREADS)
		pthread_cond_signal(&e->cq_cond);
	pthread_mutex_unlock(&e->lock);
	/* The completion thread runs its list before it waits again; others
	 * wake it (one NOP per batch is enough). */
	if (e->backend == IO_BACKEND_URING && was_empty && !on_cq_thread(e))
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

const char *vlun_io_engine_backend(const struct vlun_io_engine *e)
{
	if (!e)
		return NULL;
	return e->backend == IO_BACKEND_URING ? "uring" : "threads";
}

void vlun_io_test_fail_uring_setup(int neg_errno)
{
	atomic_store(&uring_fail_injected, neg_errno < 0 ? neg_errno : 0);
}

/* ------------------------------------------------------------ CQ side */

static void pio_complete(struct vlun_io_engine *e, struct vlun_pio *pio, int res)
{
	struct pio_ext *x = pio->bounce;
	if (res == 0 && pio->op == VLUN_PIO_READ && x && x->buf)
		copy_to_iov(pio->iov, pio->iovcnt, x->buf, pio->length);
	pio_ext_release(pio);
	pio->done(pio, res);
	inflight_dec(e);
}

static void handle_cqe(struct vlun_io_engine *e, struct vlun_pio *pio, int res)
{
	bool rw = pio->op == VLUN_PIO_READ || pio->op == VLUN_PIO_WRITE;
	bool zero_flush = pio->op == VLUN_PIO_ZERO && pio->bounce &&
			  ((struct pio_ext *)pio->bounce)->zero_flush;

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

	if (pio->op == VLUN_PIO_ZERO && !zero_flush &&
	    (res == -EOPNOTSUPP || res == -EINVAL || res == -ENODEV)) {
		/* The filesystem cannot zero a range: punch a hole (tmpfs
		 * can), and where that is refused too, write zeros. */
		struct pio_ext *x = pio_ext_get(pio);
		int r = x ? 0 : -ENOMEM;
		if (x && !x->zero_punch) {
			x->zero_punch = true;
			r = resubmit(e, pio);
			if (r == 0)
				return;
		}
		r = zero_queue(e, pio, false);
		if (r < 0)
			pio_complete(e, pio, r);
		return;
	}

	if (res < 0) {
		pio_complete(e, pio, res);
		return;
	}

	if (pio->op == VLUN_PIO_ZERO && pio->fua && !zero_flush) {
		/* fallocate zeroed the range; FUA wants it durable before
		 * done(): an fdatasync follows. */
		struct pio_ext *x = pio_ext_get(pio);
		int r = x ? 0 : -ENOMEM;
		if (x) {
			x->zero_flush = true;
			r = resubmit(e, pio);
		}
		if (r < 0)
			pio_complete(e, pio, r);
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
	/* Called after every batch of completions; most have nothing
	 * deferred. A push after this check wakes the thread again (NOP /
	 * cq_cond), as it did before. */
	if (!atomic_load(&e->defer_queued))
		return;
	for (;;) {
		pthread_mutex_lock(&e->lock);
		struct defer_item *d = e->defer_head;
		e->defer_head = NULL;
		e->defer_tail = &e->defer_head;
		atomic_store(&e->defer_queued, false);
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
	if (atomic_load(&e->inflight) == 0 && !e->defer_head)
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

/* threads backend: the completion thread. */
static void *tcq_main(void *arg)
{
	struct vlun_io_engine *e = arg;

	for (;;) {
		pthread_mutex_lock(&e->lock);
		while (!e->cq_head && !e->defer_head && !e->cq_stop)
			pthread_cond_wait(&e->cq_cond, &e->lock);
		struct tjob *j = e->cq_head;
		e->cq_head = NULL;
		e->cq_tail = &e->cq_head;
		bool stop = e->cq_stop && !j && !e->defer_head;
		pthread_mutex_unlock(&e->lock);
		if (stop)
			break;
		while (j) {
			struct tjob *n = j->next;
			struct vlun_pio *pio = j->pio;
			int res = j->res;
			free(j);
			handle_cqe(e, pio, res);
			j = n;
		}
		run_deferred(e);
	}
	return NULL;
}

/* threads backend: one request as a blocking syscall; bytes or -errno. */
static int run_req(const struct io_req *q)
{
	ssize_t n = -1;

	switch (q->op) {
	case VLUN_PIO_READ:
		n = preadv(q->fd, q->iov, q->niov, (off_t)q->off);
		break;
	case VLUN_PIO_WRITE:
		if (!q->fua) {
			n = pwritev(q->fd, q->iov, q->niov, (off_t)q->off);
			break;
		}
		n = pwritev2(q->fd, q->iov, q->niov, (off_t)q->off, RWF_DSYNC);
		if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
			/* No per-write DSYNC here: write, then flush. */
			n = pwritev(q->fd, q->iov, q->niov, (off_t)q->off);
			if (n > 0 && fdatasync(q->fd) < 0)
				n = -1;
		}
		break;
	case VLUN_PIO_FSYNC:
		n = fdatasync(q->fd);
		break;
	case VLUN_PIO_ZERO:
		n = fallocate(q->fd, zero_mode(q), (off_t)q->off, (off_t)q->len);
		break;
	}
	if (n < 0)
		return errno ? -errno : -EIO;
	/* The kernel moves at most MAX_RW_COUNT (< INT_MAX) bytes per call. */
	return (int)n;
}

/* threads backend: a worker. */
static void *worker_main(void *arg)
{
	struct vlun_io_engine *e = arg;

	pthread_mutex_lock(&e->wq_lock);
	for (;;) {
		while (!e->wq_head && !e->wq_stop)
			pthread_cond_wait(&e->wq_cond, &e->wq_lock);
		struct tjob *j = e->wq_head;
		if (!j)
			break;
		e->wq_head = j->next;
		if (!e->wq_head)
			e->wq_tail = &e->wq_head;
		pthread_mutex_unlock(&e->wq_lock);

		j->res = run_req(&j->req);
		j->next = NULL;

		pthread_mutex_lock(&e->lock);
		*e->cq_tail = j;
		e->cq_tail = &j->next;
		pthread_cond_signal(&e->cq_cond);
		pthread_mutex_unlock(&e->lock);

		pthread_mutex_lock(&e->wq_lock);
	}
	pthread_mutex_unlock(&e->wq_lock);
	return NULL;
}

/* The source of written zeros: never written, shared by every engine and
 * thread. In .bss, so its pages are the kernel's zero page until touched
 * (they never are): no memory and no memset per zeroing job. */
static uint8_t zero_buf[IO_ZERO_BUF] __attribute__((aligned(IO_BOUNCE_ALIGN)));

/* Writes zeros with plain pwrite (last resort). */
static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	const void *z = zero_buf;
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

/* Sets up the ring; -errno (nothing to undo) on failure. */
static int uring_setup(struct vlun_io_engine *e)
{
	int r = atomic_load(&uring_fail_injected);
	if (r < 0)
		return r;

	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * (e->depth + IO_RESERVE);
	r = io_uring_queue_init_params(e->depth + IO_RESERVE, &e->ring, &p);
	if (r < 0)
		return r;
	e->ring_ready = true;
	if (!(p.features & IORING_FEAT_NODROP))
		vlun_warn("io: kernel io_uring lacks NODROP; completions may be lost under overload");
	return 0;
}

/* Picks the backend from VLUN_IO_BACKEND and what works; sets up the ring
 * for uring. 0 or -errno. */
static int choose_backend(struct vlun_io_engine *e)
{
	const char *v = getenv("VLUN_IO_BACKEND");
	bool forced = v && *v && strcmp(v, "auto") != 0;

	if (forced && strcmp(v, "threads") == 0) {
		e->backend = IO_BACKEND_THREADS;
		return 0;
	}
	if (forced && strcmp(v, "uring") != 0) {
		vlun_err("io: VLUN_IO_BACKEND='%s' is not a known I/O backend; set it to 'uring' or "
			 "'threads', or unset it (io_uring with automatic fallback to threads)", v);
		return -EINVAL;
	}
	/* valgrind 3.19 does not know that io_uring_enter(GETEVENTS) blocks:
	 * the completion thread waiting in it keeps valgrind's thread lock
	 * and the process hangs. (The test hook still gets its failed ring,
	 * so the fallback is testable under valgrind too.) */
	if (!forced && IO_ON_VALGRIND() && atomic_load(&uring_fail_injected) == 0) {
		if (!atomic_exchange(&valgrind_noted, true))
			vlun_info("io: running under valgrind, which cannot follow io_uring: "
				  "using the worker-thread backend");
		e->backend = IO_BACKEND_THREADS;
		return 0;
	}

	e->backend = IO_BACKEND_URING;
	int r = uring_setup(e);
	if (r == 0)
		return 0;
	if (forced) {
		vlun_err("io: cannot set up an io_uring of depth %u: %s, and VLUN_IO_BACKEND=uring "
			 "forbids the fallback (is io_uring disabled by kernel.io_uring_disabled or a "
			 "seccomp filter? unset VLUN_IO_BACKEND or set it to 'threads')",
			 e->depth, strerror(-r));
		return r;
	}
	if (!atomic_exchange(&uring_fallback_warned, true))
		vlun_warn("io: io_uring is not available (setting up a ring failed: %s; disabled by "
			  "kernel.io_uring_disabled, blocked by a seccomp profile, or RLIMIT_MEMLOCK too "
			  "low?); falling back to %u worker threads doing blocking preadv/pwritev: at "
			  "most %u I/Os in flight per pool and a thread hand-off per I/O, so lower IOPS "
			  "at high queue depth. Set VLUN_IO_BACKEND=threads to choose this without the "
			  "warning", strerror(-r), IO_WORKERS, IO_WORKERS);
	e->backend = IO_BACKEND_THREADS;
	return 0;
}

/* Stops every thread that was started and frees e (nothing in flight). */
static void engine_destroy(struct vlun_io_engine *e)
{
	if (e->zero_started) {
		pthread_mutex_lock(&e->lock);
		e->zero_stop = true;
		pthread_cond_signal(&e->zero_cond);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->zero_thread, NULL);
	}
	if (e->nworkers > 0) {
		pthread_mutex_lock(&e->wq_lock);
		e->wq_stop = true;
		pthread_cond_broadcast(&e->wq_cond);
		pthread_mutex_unlock(&e->wq_lock);
		for (unsigned i = 0; i < e->nworkers; i++)
			pthread_join(e->workers[i], NULL);
	}
	if (e->cq_started) {
		if (e->backend == IO_BACKEND_URING) {
			queue_nop(e, TAG_STOP);
		} else {
			pthread_mutex_lock(&e->lock);
			e->cq_stop = true;
			pthread_cond_signal(&e->cq_cond);
			pthread_mutex_unlock(&e->lock);
		}
		pthread_join(e->cq_thread, NULL);
	}
	if (e->ring_ready)
		io_uring_queue_exit(&e->ring);
	pthread_cond_destroy(&e->cq_cond);
	pthread_cond_destroy(&e->wq_cond);
	pthread_cond_destroy(&e->zero_cond);
	pthread_cond_destroy(&e->idle);
	pthread_cond_destroy(&e->space);
	pthread_mutex_destroy(&e->wq_lock);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->sq_lock);
	free(e->workers);
	free(e);
}

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
	e->wq_tail = &e->wq_head;
	e->cq_tail = &e->cq_head;
	pthread_mutex_init(&e->sq_lock, NULL);
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->wq_lock, NULL);
	pthread_cond_init(&e->space, NULL);
	pthread_cond_init(&e->idle, NULL);
	pthread_cond_init(&e->zero_cond, NULL);
	pthread_cond_init(&e->wq_cond, NULL);
	pthread_cond_init(&e->cq_cond, NULL);

	int r = choose_backend(e);
	if (r < 0)
		goto fail;

	if (e->backend == IO_BACKEND_THREADS) {
		unsigned n = VLUN_MIN(IO_WORKERS, queue_depth);
		e->workers = calloc(n, sizeof(*e->workers));
		if (!e->workers) {
			r = -ENOMEM;
			goto fail;
		}
		for (; e->nworkers < n; e->nworkers++) {
			r = -pthread_create(&e->workers[e->nworkers], NULL, worker_main, e);
			if (r < 0) {
				vlun_err("io: cannot start I/O worker thread %u of %u: %s", e->nworkers + 1,
					 n, strerror(-r));
				goto fail;
			}
		}
	}

	r = -pthread_create(&e->cq_thread, NULL, e->backend == IO_BACKEND_URING ? cq_main : tcq_main, e);
	if (r < 0) {
		vlun_err("io: cannot start the completion thread: %s", strerror(-r));
		goto fail;
	}
	e->cq_started = true;
	r = -pthread_create(&e->zero_thread, NULL, zero_main, e);
	if (r < 0) {
		vlun_err("io: cannot start the zeroing thread: %s", strerror(-r));
		goto fail;
	}
	e->zero_started = true;
	*ret = e;
	return 0;

fail:
	engine_destroy(e);
	return r;
}

void vlun_io_engine_free(struct vlun_io_engine *e)
{
	if (!e)
		return;
	/* Drain: everything submitted completes (done callbacks may submit
	 * more; wait for that too). */
	pthread_mutex_lock(&e->lock);
	while (atomic_load(&e->inflight) > 0 || e->defer_head || e->defer_running)
		pthread_cond_wait(&e->idle, &e->lock);
	pthread_mutex_unlock(&e->lock);
	engine_destroy(e);
}
