/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crash_harness — crash-point sweep of the public API (issue 8, part 1).
 *
 * For one seed, a random workload runs through the public API on a pool of
 * member files: pool create, vdisk create/resize/delete (linear and thin),
 * writes (some FUA), FLUSH, UNMAP, member add. Every metadata pwrite and
 * flush (lib/blkdev.c) and every data request the workload submits is a
 * crash point (blkdev.h: vlun_crash_point).
 *
 *   1. An enumeration run counts the points (and classifies them).
 *   2. For each point k, a fresh pool runs the same workload with point k
 *      armed (mode exit: the process stops at k; tear: the write at k lands
 *      only its first sector, then stop; drop: k and every later write and
 *      flush are lost while the process runs on; fail: k alone fails with
 *      EIO).
 *   3. A separate process reassembles the pool and checks it against the
 *      workload's log (the reference model): the metadata is valid; every
 *      vdisk whose create was acknowledged exists unless its delete began,
 *      none exists that was not begun, sizes are ones the log allows; every
 *      512-byte sector reads without error and holds a value the model
 *      allows: a write acknowledged before a FLUSH that completed (or a FUA
 *      write) or anything after it; no sector of one vdisk carries another
 *      vdisk's tag or another LBA's, on thin disks never stale data. Then
 *      one more commit and a read-only reopen must validate.
 *
 * Every sector written is tagged (magic, vdisk id, sector, write number,
 * filler derived from them), so a sector identifies which write put it
 * there. The log is appended with write(2) one line per event, begin lines
 * before the request is submitted and ack lines after it completed; a line
 * lost at the crash only weakens the check (never a false failure). With
 * drop the workload stops at the first op after the point fired and no ack
 * after the point is logged (writes after it were lost).
 *
 * The workload is a table of actions (struct action). With --mirror it
 * also adds mirrors, removes them, fails a mirror member under writes and
 * resyncs, and migrates disks online (copies on the job thread go through
 * blkdev, so they are crash points too); the verifier then also compares
 * both copies of every clean mirrored extent in the member files, checks
 * that acknowledged migrations are recorded or done, and reopens the pool
 * and runs the recorded jobs to the end (check_copies, check_migrations,
 * resume_jobs). Snapshot actions go in the table when they exist.
 *
 * Usage: crash_harness [--mode exit,tear,drop,fail] [--seeds N] [--seed S]
 *                      [--ops N] [--every K] [--report FILE] [--selftest]
 *                      [--mirror] [--selftest-mirror] [--prefault-flush]
 *                      [--point K] [--verify-dir DIR] [-v]
 * VLUN_CRASH_SWEEP=big runs 4 seeds of 120 ops. Members live in
 * VLUN_CRASH_DIR (default /dev/shm, else TMPDIR). Exit 0 = no failures,
 * 1 = failures, 77 = skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blkdev.h"
#include "meta.h"
#include "vlun.h"

#define BLKSZ 4096u
#define SECT 512u
#define MiB (1ull << 20)
#define MEMBER_BYTES (40 * MiB)
#define META_BYTES (1 * MiB)
#define MAXVD 64
#define QD 4
#define TAG_MAGIC 0x52435256u /* "VRCR" */
#define VLUN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VLUN_MAX(a, b) ((a) > (b) ? (a) : (b))

static bool verbose;
static const char *dir;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "crash_harness: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* ---------------------------------------------------------------- rng */

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* ---------------------------------------------------------------- tags */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return x;
}

static void tag_sector(uint8_t *s, uint32_t id, uint64_t sector, uint64_t wnum)
{
	uint64_t seed = mix(id * 0x9e3779b97f4a7c15ull ^ mix(sector) ^ (wnum << 1));

	for (unsigned i = 0; i < SECT; i += 8) {
		uint64_t v = mix(seed + i);
		memcpy(s + i, &v, 8);
	}
	uint32_t magic = TAG_MAGIC;
	memcpy(s, &magic, 4);
	memcpy(s + 4, &id, 4);
	memcpy(s + 8, &sector, 8);
	memcpy(s + 16, &wnum, 8);
}

/* 0 zero sector, 1 a good tag (filled in), -1 garbage */
static int read_tag(const uint8_t *s, uint32_t *id, uint64_t *sector, uint64_t *wnum)
{
	uint8_t want[SECT];
	uint32_t magic;
	bool zero = true;

	for (unsigned i = 0; i < SECT && zero; i++)
		zero = s[i] == 0;
	if (zero)
		return 0;
	memcpy(&magic, s, 4);
	if (magic != TAG_MAGIC)
		return -1;
	memcpy(id, s + 4, 4);
	memcpy(sector, s + 8, 8);
	memcpy(wnum, s + 16, 8);
	tag_sector(want, *id, *sector, *wnum);
	return memcmp(want, s, SECT) ? -1 : 1;
}

/* ---------------------------------------------------------------- log */

static int log_fd = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool drop_mode;

static void logf_(bool is_ack, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(bool is_ack, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	pthread_mutex_lock(&log_lock);
	/* drop: writes after the point were lost, so nothing after it was
	 * really acknowledged */
	if (is_ack && drop_mode && vlun_crash_fired()) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) != n)
		_exit(3);
	pthread_mutex_unlock(&log_lock);
}

/* ------------------------------------------------------------ workload */

struct vdh {
	char name[VLUN_NAME_MAX + 1];
	uint32_t id, layout;
	uint64_t size, chunk;
	struct vlun_vdisk *vd;
	bool live;
};

struct wl {
	struct vlun_pool *pool;
	char *paths[3];
	struct vdh v[MAXVD];
	size_t nv;
	uint64_t wnum, fnum, vseq;
	bool member_added;
	unsigned qd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight;
	struct { uint32_t vi; uint64_t off, len; bool busy; } fl[QD];
};

struct wreq {
	struct vlun_req req;
	struct iovec iov;
	struct wl *w;
	int slot;
	char kind; /* 'w' 'u' 'f' */
	uint64_t num;
};

static void req_done(struct vlun_req *req, enum vlun_status st)
{
	struct wreq *r = (struct wreq *)req;
	struct wl *w = r->w;

	logf_(true, "%c %" PRIu64 " %d", r->kind, r->num, (int)st);
	pthread_mutex_lock(&w->lock);
	w->fl[r->slot].busy = false;
	w->inflight--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	free(r->iov.iov_base);
	free(r);
}

static void drain(struct wl *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->inflight)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static bool overlaps_inflight(struct wl *w, uint32_t vi, uint64_t off, uint64_t len)
{
	for (int i = 0; i < QD; i++)
		if (w->fl[i].busy && w->fl[i].vi == vi && off < w->fl[i].off + w->fl[i].len &&
		    w->fl[i].off < off + len)
			return true;
	return false;
}

/* Waits for a free slot (and for overlapping requests to finish). */
static int take_slot(struct wl *w, uint32_t vi, uint64_t off, uint64_t len)
{
	int s = -1;

	pthread_mutex_lock(&w->lock);
	while (w->inflight >= w->qd || overlaps_inflight(w, vi, off, len))
		pthread_cond_wait(&w->cond, &w->lock);
	for (int i = 0; i < QD; i++)
		if (!w->fl[i].busy) {
			s = i;
			break;
		}
	w->fl[s].busy = true;
	w->fl[s].vi = vi;
	w->fl[s].off = off;
	w->fl[s].len = len;
	w->inflight++;
	pthread_mutex_unlock(&w->lock);
	return s;
}

static void release_slot(struct wl *w, int s)
{
	pthread_mutex_lock(&w->lock);
	w->fl[s].busy = false;
	w->inflight--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int pick_vdisk(struct wl *w, bool thin_only)
{
	int c[MAXVD], n = 0;

	for (size_t i = 0; i < w->nv; i++)
		if (w->v[i].live && w->v[i].vd && (!thin_only || w->v[i].layout == VLUN_LAYOUT_THIN))
			c[n++] = (int)i;
	return n ? c[rnd_below((uint64_t)n)] : -1;
}

static void submit(struct wl *w, int vi, char kind, uint32_t op, uint32_t flags, uint64_t off, uint64_t len)
{
	struct vdh *h = &w->v[vi];
	struct wreq *r = calloc(1, sizeof(*r));
	char what[32];
	int s;

	if (!r)
		die("out of memory");
	s = take_slot(w, (uint32_t)vi, off, len);
	r->w = w;
	r->slot = s;
	r->kind = kind;
	r->req.op = op;
	r->req.flags = flags;
	r->req.offset = off;
	r->req.length = len;
	r->req.done = req_done;
	snprintf(what, sizeof(what), "submit-%c", kind);
	/* the workload's own crash point: before the request exists */
	switch (vlun_crash_point(what, h->name, off, len)) {
	case VLUN_CRASH_EIO:
	case VLUN_CRASH_SKIP:
		release_slot(w, s);
		free(r);
		return;
	default:
		break;
	}
	if (kind == 'w') {
		uint8_t *buf;

		r->num = ++w->wnum;
		if (posix_memalign((void **)&buf, 4096, len))
			die("out of memory");
		for (uint64_t o = 0; o < len; o += SECT)
			tag_sector(buf + o, h->id, (off + o) / SECT, r->num);
		r->iov.iov_base = buf;
		r->iov.iov_len = len;
		r->req.iov = &r->iov;
		r->req.iovcnt = 1;
		logf_(false, "W %" PRIu64 " %u %" PRIu64 " %" PRIu64 " %d", r->num, h->id, off / BLKSZ,
		      len / BLKSZ, !!(flags & VLUN_REQ_FUA));
	} else if (kind == 'u') {
		r->num = ++w->wnum;
		logf_(false, "U %" PRIu64 " %u %" PRIu64 " %" PRIu64, r->num, h->id, off / BLKSZ, len / BLKSZ);
	} else {
		r->num = ++w->fnum;
		logf_(false, "F %" PRIu64 " %u", r->num, h->id);
	}
	int e = vlun_vdisk_submit(h->vd, &r->req);
	if (e < 0) {
		logf_(true, "%c %" PRIu64 " %d", kind, r->num, 100);
		release_slot(w, s);
		free(r->iov.iov_base);
		free(r);
	}
}

static void random_range(struct vdh *h, uint64_t *off, uint64_t *len, unsigned maxblk)
{
	uint64_t nblk = h->size / BLKSZ;
	uint64_t b = rnd_below(nblk), n = 1 + rnd_below(maxblk);

	/* half the time stay near the start, so writes overlap */
	if (rnd_below(2))
		b = rnd_below(VLUN_MIN(nblk, 64));
	if (b + n > nblk)
		n = nblk - b;
	*off = b * BLKSZ;
	*len = n * BLKSZ;
}

static int act_write(struct wl *w)
{
	int vi = pick_vdisk(w, false);
	uint64_t off, len;

	if (vi < 0)
		return 0;
	random_range(&w->v[vi], &off, &len, 16);
	submit(w, vi, 'w', VLUN_OP_WRITE, rnd_below(4) == 0 ? VLUN_REQ_FUA : 0, off, len);
	return 0;
}

static int act_flush(struct wl *w)
{
	int vi = pick_vdisk(w, false);

	if (vi >= 0)
		submit(w, vi, 'f', VLUN_OP_FLUSH, 0, 0, 0);
	return 0;
}

static int act_unmap(struct wl *w)
{
	int vi = pick_vdisk(w, true);
	uint64_t off, len;

	if (vi < 0)
		return 0;
	random_range(&w->v[vi], &off, &len, 300);
	submit(w, vi, 'u', VLUN_OP_UNMAP, 0, off, len);
	return 0;
}

static int vd_open(struct wl *w, struct vdh *h)
{
	char *why = NULL;
	int r = vlun_vdisk_open(w->pool, h->name, 0, &h->vd, &why);

	if (r < 0)
		die("vdisk open '%s' failed without a crash: %s", h->name, why ? why : strerror(-r));
	free(why);
	return 0;
}

static uint32_t next_id(struct wl *w)
{
	struct vlun_pool_desc *d = NULL;
	uint32_t id;

	if (vlun_pool_describe(w->pool, &d) < 0)
		die("describe failed");
	id = d->next_vdisk_id;
	vlun_pool_desc_free(d);
	return id;
}

static int create_vdisk(struct wl *w, uint32_t layout, uint64_t size, uint64_t chunk)
{
	struct vdh *h;
	char *why = NULL;
	int r;

	if (w->nv >= MAXVD)
		return 0;
	h = &w->v[w->nv];
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "v%" PRIu64, ++w->vseq);
	h->layout = layout;
	h->size = size;
	h->chunk = layout == VLUN_LAYOUT_THIN ? chunk : 0;
	h->id = next_id(w);
	struct vlun_vdisk_create_opts o = { .name = h->name, .layout = layout, .size_bytes = size,
					    .chunk_bytes = h->chunk };
	logf_(false, "C %u %u %" PRIu64 " %s", h->id, layout, size / BLKSZ, h->name);
	r = vlun_vdisk_create(w->pool, &o, &why);
	if (r < 0) {
		if (verbose)
			fprintf(stderr, "create %s: %s\n", h->name, why ? why : strerror(-r));
		free(why);
		logf_(true, "c %u %d", h->id, r);
		return 0;
	}
	logf_(true, "c %u 0", h->id);
	h->live = true;
	w->nv++;
	return vd_open(w, h);
}

static int act_create(struct wl *w)
{
	if (rnd_below(3) == 0)
		return create_vdisk(w, VLUN_LAYOUT_LINEAR, (1 + rnd_below(3)) * MiB, 0);
	uint64_t chunk = rnd_below(2) ? 64 * 1024 : 256 * 1024;
	return create_vdisk(w, VLUN_LAYOUT_THIN, (1 + rnd_below(4)) * MiB, chunk);
}

static int act_delete(struct wl *w)
{
	int vi = pick_vdisk(w, false), live = 0;
	char *why = NULL;

	for (size_t i = 0; i < w->nv; i++)
		live += w->v[i].live;
	if (vi < 0 || live < 2)
		return 0;
	drain(w);
	struct vdh *h = &w->v[vi];
	vlun_vdisk_close(h->vd);
	h->vd = NULL;
	h->live = false;
	logf_(false, "D %u", h->id);
	int r = vlun_vdisk_delete(w->pool, h->name, &why);
	logf_(true, "d %u %d", h->id, r);
	if (r < 0 && verbose)
		fprintf(stderr, "delete %s: %s\n", h->name, why ? why : strerror(-r));
	free(why);
	if (r < 0) {
		h->live = true;
		return vd_open(w, h);
	}
	return 0;
}

static int act_resize(struct wl *w)
{
	int vi = pick_vdisk(w, false);
	char *why = NULL;

	if (vi < 0)
		return 0;
	drain(w);
	struct vdh *h = &w->v[vi];
	uint64_t ns = (1 + rnd_below(4)) * MiB;
	if (ns == h->size)
		ns += MiB;
	vlun_vdisk_close(h->vd);
	h->vd = NULL;
	logf_(false, "R %u %" PRIu64, h->id, ns / BLKSZ);
	int r = vlun_vdisk_resize(w->pool, h->name, ns, true, &why);
	logf_(true, "r %u %d", h->id, r);
	if (r < 0 && verbose)
		fprintf(stderr, "resize %s: %s\n", h->name, why ? why : strerror(-r));
	free(why);
	if (r == 0)
		h->size = ns;
	return vd_open(w, h);
}

static int act_add_member(struct wl *w)
{
	char *why = NULL;

	if (w->member_added)
		return 0;
	drain(w);
	w->member_added = true;
	logf_(false, "M");
	int r = vlun_pool_add_member(w->pool, w->paths[2], false, &why);
	logf_(true, "m %d", r);
	if (r < 0 && verbose)
		fprintf(stderr, "add member: %s\n", why ? why : strerror(-r));
	free(why);
	return 0;
}

/* ------------------------------------------- mirrors and migration
 *
 * Enabled by --mirror (the crash_mirror_migrate_* tests). Copies run on the
 * pool's job thread (started when a vdisk is open, job.c) through
 * lib/blkdev, so each copy write and flush is a crash point. The actions
 * change no data, so the model needs only their begin/ack lines; the
 * verifier checks the copies (check_copies) and resumes recorded jobs. */

static bool mirror_actions;
static bool prefault_flush; /* --prefault-flush: see act_member_fault */

/* The description of vdisk id (caller frees *ret_pd), NULL if gone. */
static const struct vlun_vdisk_desc *vdesc_of(struct wl *w, uint32_t id, struct vlun_pool_desc **ret_pd)
{
	if (vlun_pool_describe(w->pool, ret_pd) < 0)
		die("describe failed");
	for (uint32_t i = 0; i < (*ret_pd)->nvdisks; i++)
		if ((*ret_pd)->vdisks[i].id == id)
			return &(*ret_pd)->vdisks[i];
	return NULL;
}

static bool is_mirrored(const struct vlun_vdisk_desc *dd)
{
	for (uint32_t k = 0; dd && k < dd->nextents; k++)
		if (dd->extents[k].flags & VLUN_EXT_ALT_EXISTS)
			return true;
	return false;
}

/* Waits until no job is queued or running (resync done, migrations done
 * or waiting), at most ms milliseconds. */
static void wait_jobs(struct wl *w, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 5) {
		struct vlun_job_info *v = NULL;
		size_t n = 0;
		bool busy = false;
		if (vlun_jobs_list(w->pool, &v, &n) < 0)
			return;
		for (size_t i = 0; i < n; i++)
			if (v[i].state == VLUN_JOB_QUEUED || v[i].state == VLUN_JOB_RUNNING)
				busy = true;
		free(v);
		if (!busy)
			return;
		usleep(5000);
	}
}

static int pick_linear(struct wl *w, int want_mirrored)
{
	int c[MAXVD], n = 0;
	struct vlun_pool_desc *pd = NULL;

	for (size_t i = 0; i < w->nv; i++) {
		if (!w->v[i].live || !w->v[i].vd || w->v[i].layout != VLUN_LAYOUT_LINEAR)
			continue;
		if (want_mirrored >= 0) {
			bool m = is_mirrored(vdesc_of(w, w->v[i].id, &pd));
			vlun_pool_desc_free(pd);
			pd = NULL;
			if (m != (want_mirrored == 1))
				continue;
		}
		c[n++] = (int)i;
	}
	return n ? c[rnd_below((uint64_t)n)] : -1;
}

static int act_mirror_add(struct wl *w)
{
	int vi = pick_linear(w, 0);
	char *why = NULL;

	if (vi < 0)
		return 0;
	struct vdh *h = &w->v[vi];
	logf_(false, "X %u", h->id);
	int r = vlun_mirror_add(w->pool, h->name, 0, 0, NULL, 0, &why);
	logf_(true, "x %u %d", h->id, r);
	if (r < 0 && verbose)
		fprintf(stderr, "mirror add %s: %s\n", h->name, why ? why : strerror(-r));
	free(why);
	/* half the time the resync races the next writes */
	if (r == 0 && rnd_below(2))
		wait_jobs(w, 3000);
	return 0;
}

static int act_mirror_remove(struct wl *w)
{
	int vi = pick_linear(w, 1);
	char *why = NULL;

	if (vi < 0)
		return 0;
	struct vdh *h = &w->v[vi];
	drain(w);
	wait_jobs(w, 3000);
	logf_(false, "Y %u", h->id);
	int r = vlun_mirror_remove(w->pool, h->name, 0, 0, VLUN_NO_MEMBER, &why);
	logf_(true, "y %u %d", h->id, r);
	if (r < 0 && verbose)
		fprintf(stderr, "mirror remove %s: %s\n", h->name, why ? why : strerror(-r));
	free(why);
	return 0;
}

/* A member of a mirrored disk fails (injected) under writes, comes back,
 * and the resync fills what it missed. Only the mirrored disk is written
 * while the member is failed (other disks may have data there without a
 * second copy: their writes would fail, which proves nothing here). */
static int act_member_fault(struct wl *w)
{
	int vi = pick_linear(w, 1);
	struct vlun_pool_desc *pd = NULL;

	if (vi < 0)
		return 0;
	struct vdh *h = &w->v[vi];
	drain(w);
	wait_jobs(w, 3000);
	const struct vlun_vdisk_desc *dd = vdesc_of(w, h->id, &pd);
	uint32_t m = VLUN_NO_MEMBER;
	for (uint32_t k = 0; dd && k < dd->nextents && m == VLUN_NO_MEMBER; k++) {
		const struct vlun_extent *e = &dd->extents[k];
		if (e->flags & VLUN_EXT_ALT_EXISTS)
			m = rnd_below(2) ? e->member : e->alt_member;
	}
	vlun_pool_desc_free(pd);
	if (m == VLUN_NO_MEMBER)
		return 0;
	/* The fault meets whatever is pending, frees included: with a free
	 * pending, a mirrored write failing on the injected member used to
	 * deadlock the controller (found by this sweep, fixed in vdisk.c in
	 * bb0cf7a; test_mirror_write_fail_with_pending_free.c, docs/crash.md).
	 * --prefault-flush commits pending frees first (two flushes: in fail
	 * mode one of them may be the failing point), as the sweep did while
	 * the fix was not in: it steps around that path. */
	for (int i = 0; i < 2 && prefault_flush; i++) {
		submit(w, vi, 'f', VLUN_OP_FLUSH, 0, 0, 0);
		drain(w);
	}
	logf_(false, "I %u %u 1", h->id, m);
	vlun_pool_inject_member_fault(w->pool, m, true);
	unsigned nw = 2 + (unsigned)rnd_below(4);
	for (unsigned i = 0; i < nw; i++) {
		uint64_t off, len;
		random_range(h, &off, &len, 16);
		submit(w, vi, 'w', VLUN_OP_WRITE, rnd_below(3) == 0 ? VLUN_REQ_FUA : 0, off, len);
	}
	if (rnd_below(2))
		submit(w, vi, 'f', VLUN_OP_FLUSH, 0, 0, 0);
	drain(w);
	vlun_pool_inject_member_fault(w->pool, m, false);
	logf_(false, "I %u %u 0", h->id, m);
	char *why = NULL;
	vlun_resync_start(w->pool, 0, &why);
	free(why);
	if (rnd_below(2))
		wait_jobs(w, 5000);
	return 0;
}

/* Online migration of a disk off the member holding its first extent
 * (a few 1 MiB regions); half the time it races the next writes. */
static int act_migrate(struct wl *w)
{
	int vi = pick_vdisk(w, false);
	struct vlun_pool_desc *pd = NULL;
	char *why = NULL;
	uint32_t job = 0, from = VLUN_NO_MEMBER;

	if (vi < 0)
		return 0;
	struct vdh *h = &w->v[vi];
	const struct vlun_vdisk_desc *dd = vdesc_of(w, h->id, &pd);
	for (uint32_t k = 0; dd && k < dd->nextents && from == VLUN_NO_MEMBER; k++)
		if (!(dd->extents[k].flags & VLUN_EXT_INVALID))
			from = dd->extents[k].member;
	vlun_pool_desc_free(pd);
	if (from == VLUN_NO_MEMBER)
		return 0;
	struct vlun_migrate_opts o = { .vdisk = h->name, .from_member = from };
	logf_(false, "J %u %u", h->id, from);
	int r = vlun_migrate_start(w->pool, &o, &job, &why);
	logf_(true, "j %u %d %u", h->id, r, job);
	if (r < 0 && verbose)
		fprintf(stderr, "migrate %s: %s\n", h->name, why ? why : strerror(-r));
	free(why);
	if (r == 0 && rnd_below(2))
		wait_jobs(w, 3000);
	return 0;
}

/* The workload: a table of actions, chosen by weight. Snapshot actions
 * go here when they exist, each logging the events the verifier's model
 * needs. The mirror/migration actions weigh 0 unless --mirror. */
struct action {
	const char *name;
	unsigned weight;
	int (*run)(struct wl *w);
};
static const struct action actions[] = {
	{ "write", 40, act_write },
	{ "flush", 10, act_flush },
	{ "unmap", 8, act_unmap },
	{ "create", 3, act_create },
	{ "delete", 2, act_delete },
	{ "resize", 3, act_resize },
	{ "add-member", 1, act_add_member },
	{ "mirror-add", 0, act_mirror_add },       /* --mirror: 4 */
	{ "mirror-remove", 0, act_mirror_remove }, /* --mirror: 1 */
	{ "member-fault", 0, act_member_fault },   /* --mirror: 3 */
	{ "migrate", 0, act_migrate },             /* --mirror: 3 */
};
static const unsigned mirror_weights[] = { 4, 1, 3, 3 };
#define NACTIONS (sizeof(actions) / sizeof(actions[0]))
#define NMIRROR (sizeof(mirror_weights) / sizeof(mirror_weights[0]))

static unsigned weight_of(size_t i)
{
	if (i >= NACTIONS - NMIRROR)
		return mirror_actions ? mirror_weights[i - (NACTIONS - NMIRROR)] : 0;
	return actions[i].weight;
}

static const struct action *pick_action(void)
{
	unsigned total = 0, x;

	for (size_t i = 0; i < NACTIONS; i++)
		total += weight_of(i);
	x = (unsigned)rnd_below(total);
	for (size_t i = 0; i < NACTIONS; i++) {
		if (x < weight_of(i))
			return &actions[i];
		x -= weight_of(i);
	}
	return &actions[0];
}

static char *member_path(int i)
{
	char *p;

	if (asprintf(&p, "%s/m%d", dir, i) < 0)
		die("out of memory");
	return p;
}

static void make_members(void)
{
	for (int i = 0; i < 3; i++) {
		char *p = member_path(i);
		int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || ftruncate(fd, (off_t)MEMBER_BYTES) < 0)
			die("cannot create %s: %s", p, strerror(errno));
		close(fd);
		free(p);
	}
}

/* The child that runs the workload (crash armed or count only). */
static int run_workload(uint64_t seed, unsigned ops, uint64_t at, enum vlun_crash_mode mode)
{
	struct wl *w = calloc(1, sizeof(*w));
	char *why = NULL;
	char *lp;
	int r;

	if (!w || asprintf(&lp, "%s/log", dir) < 0)
		die("out of memory");
	log_fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (log_fd < 0)
		die("cannot create %s: %s", lp, strerror(errno));
	free(lp);
	if (!verbose)
		vlun_set_log(NULL, VLUN_LOG_ERR, NULL); /* errors are expected at the armed point */
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	drop_mode = mode == VLUN_CRASH_DROP;
	w->qd = drop_mode ? 1 : QD;
	rng_state = mix(seed + 1) | 1;
	for (int i = 0; i < 3; i++)
		w->paths[i] = member_path(i);

	vlun_crash_arm(at, mode);
	struct vlun_pool_create_opts co = { .name = "crash", .meta_bytes = META_BYTES };
	r = vlun_pool_create(&co, w->paths, 2, false, &why);
	if (r < 0) {
		if (mode == VLUN_CRASH_OFF)
			die("pool create failed: %s", why ? why : strerror(-r));
		return 0; /* failed at the armed point */
	}
	logf_(true, "P");
	r = vlun_pool_open(w->paths, 3, 0, &w->pool, &why);
	if (r < 0) {
		if (mode == VLUN_CRASH_OFF)
			die("pool open failed: %s", why ? why : strerror(-r));
		return 0;
	}
	create_vdisk(w, VLUN_LAYOUT_THIN, 4 * MiB, 64 * 1024);
	create_vdisk(w, VLUN_LAYOUT_LINEAR, 2 * MiB, 0);
	create_vdisk(w, VLUN_LAYOUT_THIN, 4 * MiB, 1 * MiB);
	if (mirror_actions) {
		/* a second linear disk, and the first one mirrored from the start */
		create_vdisk(w, VLUN_LAYOUT_LINEAR, 3 * MiB, 0);
		act_mirror_add(w);
	}
	for (unsigned k = 0; k < ops; k++) {
		if (drop_mode && vlun_crash_fired())
			break; /* the machine is "dead": see the top comment */
		const struct action *a = pick_action();
		if (verbose)
			fprintf(stderr, "op %u: %s\n", k, a->name);
		a->run(w);
		if (drop_mode)
			drain(w);
	}
	drain(w);
	if (mode == VLUN_CRASH_OFF) {
		/* geometry for classifying the points */
		struct vlun_blkdev *d = NULL;
		struct vlun_label l;
		if (vlun_blkdev_open(w->paths[0], true, false, &d) == 0 &&
		    vlun_meta_label_read(d, &l, NULL, 0) == 0)
			logf_(false, "G %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, vlun_crash_points(),
			      l.meta_offset, l.slot_bytes, l.journal_offset, l.journal_bytes);
		vlun_blkdev_close(d);
	}
	for (size_t i = 0; i < w->nv; i++)
		vlun_vdisk_close(w->v[i].vd);
	vlun_pool_close(w->pool);
	return 0;
}

/* ------------------------------------------------------------ verifier */

enum { EV_WRITE = 1, EV_ZERO = 2, EV_ANY = 3 };
struct ev {
	uint8_t kind;
	bool ok, fua;
	uint64_t wnum;
	long ack; /* log line of the ack, LONG_MAX if none */
};
struct hist {
	struct ev *e;
	uint32_t n, cap;
};
struct mvd {
	bool exists;            /* create begun */
	bool create_acked, delete_begun, delete_acked;
	uint32_t layout;
	char name[VLUN_NAME_MAX + 1];
	uint64_t sizes[256];    /* blocks; size events in order */
	long size_ack[256];
	uint32_t nsizes;
	long max_flush_begin;   /* begin line of the latest acked flush */
	uint64_t maxblk;
	struct hist *h;         /* [maxblk] */
};

struct mig {
	uint32_t vdisk, from, job;
	bool acked, touched; /* touched: a later change may put the disk on 'from' again */
};

struct model {
	bool pool_created, member_add_acked;
	struct mig mig[256];
	uint32_t nmig;
	struct mvd v[MAXVD + 2];
	/* pending by number */
	struct pend { uint32_t id; uint64_t blk, n; uint8_t kind; bool fua; long ev_line; } *p;
	uint64_t np;
	long fl_begin[100000];
	uint32_t fl_id[100000];
};

static struct hist *hist_at(struct mvd *v, uint64_t blk)
{
	if (blk >= v->maxblk) {
		uint64_t n = VLUN_MAX(blk + 1, v->maxblk * 2);
		v->h = realloc(v->h, n * sizeof(*v->h));
		if (!v->h)
			die("out of memory");
		memset(v->h + v->maxblk, 0, (n - v->maxblk) * sizeof(*v->h));
		v->maxblk = n;
	}
	return &v->h[blk];
}

static struct ev *hist_push(struct mvd *v, uint64_t blk, uint8_t kind, uint64_t wnum)
{
	struct hist *h = hist_at(v, blk);

	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->e = realloc(h->e, h->cap * sizeof(*h->e));
		if (!h->e)
			die("out of memory");
	}
	h->e[h->n] = (struct ev){ .kind = kind, .wnum = wnum, .ack = LONG_MAX };
	return &h->e[h->n++];
}

static void set_ack(struct mvd *v, uint64_t blk, uint64_t n, uint64_t wnum, long line, bool ok)
{
	for (uint64_t b = blk; b < blk + n; b++) {
		struct hist *h = hist_at(v, b);
		for (uint32_t i = h->n; i-- > 0;)
			if (h->e[i].wnum == wnum) {
				h->e[i].ack = line;
				h->e[i].ok = ok;
				break;
			}
	}
}

static unsigned nfail;
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (++nfail > 20)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static uint64_t wnum_base = 1ull << 40;
/* --selftest: every acknowledged write is taken as durable, which is
 * false after a crash; the sweep must then report failures (meson runs it
 * with should_fail) — proof that the checks can fail. */
static bool strict_selftest; /* resize events' pseudo write numbers */

static struct model *parse_log(void)
{
	struct model *m = calloc(1, sizeof(*m));
	char *lp, line[512];
	FILE *f;
	long ln = 0;

	if (!m || asprintf(&lp, "%s/log", dir) < 0)
		die("out of memory");
	f = fopen(lp, "r");
	if (!f)
		die("no log %s", lp);
	free(lp);
	m->p = calloc(1 << 20, sizeof(*m->p));
	while (fgets(line, sizeof(line), f)) {
		unsigned id, layout, fua;
		uint64_t num, blk, n, sz;
		int st;
		char name[128];
		struct mvd *v;

		ln++;
		switch (line[0]) {
		case 'P':
			m->pool_created = true;
			break;
		case 'C':
			if (sscanf(line, "C %u %u %" SCNu64 " %127s", &id, &layout, &sz, name) != 4 || id > MAXVD)
				die("bad log line %ld", ln);
			v = &m->v[id];
			for (uint64_t b = 0; b < v->maxblk; b++) /* an id refused before is reused */
				free(v->h[b].e);
			free(v->h);
			memset(v, 0, sizeof(*v));
			v->exists = true;
			v->layout = layout;
			snprintf(v->name, sizeof(v->name), "%.63s", name);
			v->sizes[0] = sz;
			v->size_ack[0] = LONG_MAX;
			v->nsizes = 1;
			v->max_flush_begin = -1;
			for (uint64_t b = 0; b < sz; b++)
				hist_push(v, b, layout == VLUN_LAYOUT_THIN ? EV_ZERO : EV_ANY, 0);
			break;
		case 'c':
			if (sscanf(line, "c %u %d", &id, &st) != 2 || id > MAXVD)
				die("bad log line %ld", ln);
			v = &m->v[id];
			v->create_acked = st == 0;
			if (st == 0) {
				v->size_ack[0] = ln;
				for (uint64_t b = 0; b < v->sizes[0]; b++)
					set_ack(v, b, 1, 0, ln, true);
			} else {
				v->exists = false;
			}
			break;
		case 'D':
			if (sscanf(line, "D %u", &id) != 1 || id > MAXVD)
				die("bad log line %ld", ln);
			m->v[id].delete_begun = true;
			break;
		case 'd':
			if (sscanf(line, "d %u %d", &id, &st) != 2 || id > MAXVD)
				die("bad log line %ld", ln);
			m->v[id].delete_acked = st == 0;
			break;
		case 'R': {
			if (sscanf(line, "R %u %" SCNu64, &id, &sz) != 2 || id > MAXVD)
				die("bad log line %ld", ln);
			for (uint32_t i = 0; i < m->nmig; i++) /* a grow may land on 'from' */
				if (m->mig[i].vdisk == id)
					m->mig[i].touched = true;
			v = &m->v[id];
			uint64_t old = v->sizes[v->nsizes - 1], lo = VLUN_MIN(old, sz), hi = VLUN_MAX(old, sz);
			uint64_t pw = ++wnum_base;
			/* shrink discards, grow adds fresh space: thin reads zeros
			 * there, linear anything */
			for (uint64_t b = lo; b < hi; b++)
				hist_push(v, b, v->layout == VLUN_LAYOUT_THIN ? EV_ZERO : EV_ANY, pw);
			v->sizes[v->nsizes] = sz;
			v->size_ack[v->nsizes] = LONG_MAX;
			m->p[0].blk = lo; /* remember the range for the ack */
			m->p[0].n = hi - lo;
			m->p[0].id = id;
			m->p[0].ev_line = (long)pw;
			v->nsizes++;
			break;
		}
		case 'r':
			if (sscanf(line, "r %u %d", &id, &st) != 2 || id > MAXVD)
				die("bad log line %ld", ln);
			v = &m->v[id];
			if (st == 0) {
				v->size_ack[v->nsizes - 1] = ln;
				set_ack(v, m->p[0].blk, m->p[0].n, (uint64_t)m->p[0].ev_line, ln, true);
			} else {
				/* refused: the size did not change */
				v->nsizes--;
			}
			break;
		case 'W':
		case 'U':
			fua = 0;
			if ((line[0] == 'W' && sscanf(line, "W %" SCNu64 " %u %" SCNu64 " %" SCNu64 " %u", &num, &id,
						      &blk, &n, &fua) != 5) ||
			    (line[0] == 'U' && sscanf(line, "U %" SCNu64 " %u %" SCNu64 " %" SCNu64, &num, &id, &blk, &n) != 4) ||
			    id > MAXVD || num >= (1 << 20))
				die("bad log line %ld", ln);
			v = &m->v[id];
			for (uint64_t b = blk; b < blk + n; b++)
				hist_push(v, b, line[0] == 'W' ? EV_WRITE : EV_ZERO, num)->fua = fua;
			m->p[num] = (struct pend){ .id = id, .blk = blk, .n = n, .fua = fua };
			break;
		case 'w':
		case 'u':
			if (sscanf(line + 1, " %" SCNu64 " %d", &num, &st) != 2 || num >= (1 << 20))
				die("bad log line %ld", ln);
			set_ack(&m->v[m->p[num].id], m->p[num].blk, m->p[num].n, num, ln, st == 0);
			break;
		case 'F':
			if (sscanf(line, "F %" SCNu64 " %u", &num, &id) != 2 || num >= 100000)
				die("bad log line %ld", ln);
			m->fl_begin[num] = ln;
			m->fl_id[num] = id;
			break;
		case 'f':
			if (sscanf(line, "f %" SCNu64 " %d", &num, &st) != 2 || num >= 100000)
				die("bad log line %ld", ln);
			if (st == 0)
				m->v[m->fl_id[num]].max_flush_begin =
					VLUN_MAX(m->v[m->fl_id[num]].max_flush_begin, m->fl_begin[num]);
			break;
		case 'J':
		case 'X':
			if (sscanf(line + 2, "%u", &id) == 1)
				for (uint32_t i = 0; i < m->nmig; i++)
					if (m->mig[i].vdisk == id)
						m->mig[i].touched = true;
			if (line[0] == 'J' && m->nmig < 256 &&
			    sscanf(line, "J %u %u", &m->mig[m->nmig].vdisk, &m->mig[m->nmig].from) == 2)
				m->nmig++;
			break;
		case 'j': {
			unsigned job;
			if (sscanf(line, "j %u %d %u", &id, &st, &job) != 3 || !m->nmig)
				die("bad log line %ld", ln);
			m->mig[m->nmig - 1].acked = st == 0;
			m->mig[m->nmig - 1].job = job;
			break;
		}
		case 'M':
			break;
		case 'm':
			m->member_add_acked = atoi(line + 2) == 0;
			break;
		default:
			break;
		}
	}
	fclose(f);
	return m;
}

static bool ev_durable(const struct mvd *v, const struct ev *e)
{
	if (!e->ok || e->ack == LONG_MAX)
		return false;
	if (strict_selftest)
		return true; /* deliberately wrong model: the checker must bite */
	if (e->kind == EV_WRITE || (e->kind == EV_ZERO && e->wnum < (1ull << 40) && e->wnum != 0))
		return e->fua || v->max_flush_begin > e->ack;
	return true; /* create / resize events: durable when acknowledged */
}

static int read_all(struct vlun_vdisk *vd, uint8_t *buf, uint64_t len);

/* What the model allows in block b: d = index of the last durable event
 * (-1 none); any: anything readable; zero_ok: zeros. */
static int block_rule(struct mvd *v, uint64_t b, bool *any, bool *zero_ok)
{
	struct hist *h = hist_at(v, b);
	int d = -1;

	for (uint32_t i = 0; i < h->n; i++)
		if (ev_durable(v, &h->e[i]))
			d = (int)i;
	*any = d < 0 && v->layout != VLUN_LAYOUT_THIN;
	*zero_ok = d < 0 && v->layout == VLUN_LAYOUT_THIN;
	for (uint32_t i = (uint32_t)(d < 0 ? 0 : d); i < h->n; i++) {
		*any |= h->e[i].kind == EV_ANY;
		*zero_ok |= h->e[i].kind == EV_ZERO;
	}
	return d;
}

/* Checks one 512-byte sector (of block b) read from the disk, or from one
 * copy (where names it: " (primary on member 1)"). */
static void check_sector(const struct vlun_vdisk_desc *dd, struct mvd *v, uint64_t b, unsigned s,
			 const uint8_t *sec, const char *where)
{
	bool any, zero_ok;
	int d = block_rule(v, b, &any, &zero_ok);
	struct hist *h = hist_at(v, b);
	uint64_t sector = b * (BLKSZ / SECT) + s, tsec = 0, wnum = 0;
	uint32_t tid = 0;
	int t = read_tag(sec, &tid, &tsec, &wnum);

	if (any)
		return;
	if (t == 0) {
		if (!zero_ok)
			fail("vdisk %s (id %u) sector %" PRIu64 "%s: zeros, but write %" PRIu64
			     " was durable (acknowledged before a completed FLUSH or FUA)",
			     dd->name, dd->id, sector, where, h->e[d].wnum);
		return;
	}
	if (t < 0) {
		fail("vdisk %s (id %u) sector %" PRIu64 "%s: garbage (no valid tag)", dd->name, dd->id, sector, where);
		return;
	}
	if (tid != dd->id || tsec != sector) {
		fail("vdisk %s (id %u) sector %" PRIu64 "%s: holds vdisk %u sector %" PRIu64
		     " (write %" PRIu64 ") — data of another disk or LBA", dd->name, dd->id, sector, where,
		     tid, tsec, wnum);
		return;
	}
	bool ok = false;
	for (uint32_t i = (uint32_t)(d < 0 ? 0 : d); i < h->n && !ok; i++)
		ok = h->e[i].kind == EV_WRITE && h->e[i].wnum == wnum;
	if (!ok)
		fail("vdisk %s (id %u) sector %" PRIu64 "%s: holds write %" PRIu64
		     ", older than the durable write %" PRIu64 " (or never issued)", dd->name, dd->id,
		     sector, where, wnum, d >= 0 ? h->e[d].wnum : 0);
}

static void check_vdisk(struct vlun_pool *p, const struct vlun_vdisk_desc *dd, struct mvd *v)
{
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	uint64_t size = dd->size_sectors * 512 / BLKSZ;
	int r;

	/* size: one of the sizes from the last durable one on */
	uint32_t first = 0;
	for (uint32_t i = 0; i < v->nsizes; i++)
		if (v->size_ack[i] != LONG_MAX)
			first = i;
	bool size_ok = false;
	for (uint32_t i = first; i < v->nsizes; i++)
		size_ok |= v->sizes[i] == size;
	if (!size_ok)
		fail("vdisk %s: size %" PRIu64 " blocks is not one the log allows (last acknowledged %" PRIu64 ")",
		     dd->name, size, v->sizes[first]);

	r = vlun_vdisk_open(p, dd->name, 0, &vd, &why);
	if (r < 0) {
		fail("vdisk %s: cannot open after the crash: %s", dd->name, why ? why : strerror(-r));
		free(why);
		return;
	}
	uint8_t *buf;
	if (posix_memalign((void **)&buf, 4096, size > 0 ? size * BLKSZ : 4096))
		die("out of memory");
	r = read_all(vd, buf, size * BLKSZ);
	if (r)
		fail("vdisk %s: read error after the crash (status %d): something is unreadable", dd->name, r);
	for (uint64_t b = 0; !r && b < size; b++)
		for (unsigned s = 0; s < BLKSZ / SECT; s++)
			check_sector(dd, v, b, s, buf + b * BLKSZ + s * SECT, "");
	free(buf);
	vlun_vdisk_close(vd);
}

struct rwait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int st;
};

static void rdone(struct vlun_req *req, enum vlun_status st)
{
	struct rwait *w = req->priv;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->st = (int)st;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int read_all(struct vlun_vdisk *vd, uint8_t *buf, uint64_t len)
{
	for (uint64_t off = 0; off < len;) {
		uint64_t n = VLUN_MIN(len - off, 256 * 1024);
		struct rwait w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
		struct iovec iov = { buf + off, n };
		struct vlun_req req = { .op = VLUN_OP_READ, .offset = off, .length = n, .iov = &iov, .iovcnt = 1,
					.done = rdone, .priv = &w };
		int r = vlun_vdisk_submit(vd, &req);
		if (r < 0)
			return 1000 - r;
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		if (w.st)
			return w.st;
		off += n;
	}
	return 0;
}

/* Mirror copies, read from the member files themselves: for every extent
 * whose alternate is not marked behind (ALT_DIRTY), both copies must hold
 * the same bytes, and each copy must hold a value the model allows (a
 * stale copy that looks clean would be served by reads, which balance
 * between the copies). A sector where the copies differ but the model
 * has a write that was in flight at the crash (never acknowledged, or
 * failed) is counted, not failed: both copies are values the model
 * allows, see docs/crash.md. Returns the ALT_DIRTY extents seen. */
static unsigned diverge_inflight, copies_compared, jobs_resumed, dirty_seen, jobs_blocked;
static char diverge_first[160];
static uint64_t cur_point; /* set by the sweep before it forks the verifier */
static unsigned check_copies(const struct vlun_pool_desc *d, struct model *m, const char *phase)
{
	int fds[VLUN_MAX_MEMBERS];
	unsigned dirty = 0;

	for (uint32_t i = 0; i < d->nmembers && i < VLUN_MAX_MEMBERS; i++)
		fds[i] = open(d->members[i].path_hint, O_RDONLY);
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *dd = &d->vdisks[i];
		if (dd->id > MAXVD || !m->v[dd->id].exists)
			continue;
		struct mvd *v = &m->v[dd->id];
		for (uint32_t k = 0; k < dd->nextents; k++) {
			const struct vlun_extent *e = &dd->extents[k];
			if (!(e->flags & VLUN_EXT_ALT_EXISTS) || e->member >= d->nmembers ||
			    e->alt_member >= d->nmembers)
				continue;
			if (e->flags & VLUN_EXT_ALT_DIRTY) {
				dirty++;
				continue;
			}
			for (uint64_t x = 0; x < e->nsectors; x++) {
				uint8_t a[SECT], bb[SECT];
				uint64_t vs = e->vsector + x, blk = vs / (BLKSZ / SECT);
				unsigned sub = (unsigned)(vs % (BLKSZ / SECT));
				if (pread(fds[e->member], a, SECT, (off_t)((e->psector + x) * SECT)) != SECT ||
				    pread(fds[e->alt_member], bb, SECT, (off_t)((e->alt_psector + x) * SECT)) != SECT) {
					fail("%s: vdisk %s sector %" PRIu64 ": cannot read its copies on members %u/%u",
					     phase, dd->name, vs, e->member, e->alt_member);
					continue;
				}
				char where[96];
				snprintf(where, sizeof(where), " (%s, primary copy on member %u)", phase, e->member);
				check_sector(dd, v, blk, sub, a, where);
				snprintf(where, sizeof(where), " (%s, alternate copy on member %u)", phase, e->alt_member);
				check_sector(dd, v, blk, sub, bb, where);
				copies_compared++;
				if (!memcmp(a, bb, SECT))
					continue;
				struct hist *h = hist_at(v, blk);
				bool inflight = false;
				for (uint32_t j = 0; j < h->n; j++)
					inflight |= h->e[j].kind == EV_WRITE && (h->e[j].ack == LONG_MAX || !h->e[j].ok);
				if (inflight) {
					if (!diverge_inflight++)
						snprintf(diverge_first, sizeof(diverge_first), "%s: vdisk %s sector %"
							 PRIu64 " (members %u/%u)", phase, dd->name, vs, e->member,
							 e->alt_member);
				} else {
					fail("%s: vdisk %s (id %u) sector %" PRIu64 ": the copies on members %u (sector %"
					     PRIu64 ") and %u (sector %" PRIu64 ") differ, yet the extent is not marked "
					     "behind (ALT_DIRTY) and no write to it was in flight", phase, dd->name, dd->id,
					     vs, e->member, e->psector + x, e->alt_member, e->alt_psector + x);
				}
			}
		}
	}
	for (uint32_t i = 0; i < d->nmembers && i < VLUN_MAX_MEMBERS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return dirty;
}

/* --selftest-mirror: the alternate of the first clean mirrored extent
 * gets the primary's sector with one byte flipped, as a resync that
 * silently skipped a write would leave it; check_copies has to see it. */
static bool selftest_mirror;
static void corrupt_one_copy(const struct vlun_pool_desc *d)
{
	for (uint32_t i = 0; i < d->nvdisks; i++)
		for (uint32_t k = 0; k < d->vdisks[i].nextents; k++) {
			const struct vlun_extent *e = &d->vdisks[i].extents[k];
			if (!(e->flags & VLUN_EXT_ALT_EXISTS) || (e->flags & VLUN_EXT_ALT_DIRTY) ||
			    e->alt_member >= d->nmembers)
				continue;
			uint8_t sec[SECT];
			int fd = open(d->members[e->alt_member].path_hint, O_RDWR);
			if (fd < 0 || pread(fd, sec, SECT, (off_t)(e->alt_psector * SECT)) != SECT)
				die("selftest: cannot read member %u", e->alt_member);
			sec[100] ^= 0x40;
			if (pwrite(fd, sec, SECT, (off_t)(e->alt_psector * SECT)) != SECT)
				die("selftest: cannot write member %u", e->alt_member);
			close(fd);
			return;
		}
}

/* An acknowledged migration is either still recorded (resumes at the next
 * open) or done: nothing of the (linear, untouched since) disk is left on
 * the member it emptied. */
static void check_migrations(const struct vlun_pool_desc *d, struct model *m)
{
	for (uint32_t i = 0; i < m->nmig; i++) {
		const struct mig *g = &m->mig[i];
		bool recorded = false;
		if (!g->acked)
			continue;
		for (uint32_t k = 0; k < d->njobs; k++)
			recorded |= d->jobs[k].id == g->job;
		if (recorded || g->touched || m->v[g->vdisk].layout != VLUN_LAYOUT_LINEAR)
			continue;
		for (uint32_t k = 0; k < d->nvdisks; k++) {
			const struct vlun_vdisk_desc *dd = &d->vdisks[k];
			if (dd->id != g->vdisk)
				continue;
			for (uint32_t x = 0; x < dd->nextents; x++) {
				const struct vlun_extent *e = &dd->extents[x];
				if (e->member == g->from || ((e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member == g->from)) {
					fail("migration job %u of vdisk %s off member %u was acknowledged, is no longer "
					     "recorded (njobs %u), but sectors %" PRIu64 "+%" PRIu64 " are still on member %u",
					     g->job, dd->name, g->from, d->njobs, e->vsector, e->nsectors, g->from);
					break;
				}
			}
		}
	}
}

/* Can migration j never finish in this pool? True when an extent in its
 * scope lies on the member it empties and every other member is that
 * extent's other copy (or the job has no target at all). */
static bool job_blocked(const struct vlun_pool_desc *d, const struct vlun_job_desc *j)
{
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *dd = &d->vdisks[i];
		if (j->vdisk_id != UINT32_MAX && j->vdisk_id != dd->id)
			continue;
		for (uint32_t k = 0; k < dd->nextents; k++) {
			const struct vlun_extent *e = &dd->extents[k];
			bool alt = (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER;
			if (e->member == VLUN_NO_MEMBER || (e->flags & VLUN_EXT_INVALID))
				continue;
			if (e->member != j->from_member && !(alt && e->alt_member == j->from_member))
				continue;
			uint32_t other = !alt ? VLUN_NO_MEMBER : e->member == j->from_member ? e->alt_member : e->member;
			uint32_t targets = 0;
			for (uint32_t m = 0; m < d->nmembers; m++)
				targets += m != j->from_member && m != other;
			if (targets == 0)
				return true;
		}
	}
	return false;
}

/* Resume: reopen with no disk open and run the recorded jobs to the end
 * (vlun_jobs_run) — the resync of what is behind and any interrupted
 * migration must finish; then nothing is behind, no job is left, the
 * copies agree and every disk still reads what the log allows. */
static struct vlun_pool *resume_jobs(struct vlun_pool *p, char **paths, struct model *m)
{
	struct vlun_pool_desc *d = NULL;
	char *why = NULL, vwhy[256];
	int r;

	vlun_pool_close(p);
	p = NULL;
	r = vlun_pool_open(paths, 3, 0, &p, &why);
	if (r < 0) {
		fail("reopen to resume the jobs refuses: %s", why ? why : strerror(-r));
		free(why);
		return NULL;
	}
	alarm(60); /* a job that never ends is a failure, not a hang */
	r = vlun_jobs_run(p, NULL, NULL);
	alarm(60);
	if (vlun_pool_describe(p, &d) < 0)
		die("describe failed");
	if (vlun_pool_desc_validate(d, vwhy, sizeof(vwhy)) < 0)
		fail("metadata after the resumed jobs is invalid: %s", vwhy);
	/* A job may legitimately wait (-ENOSPC, "add a member"): moving a
	 * mirrored extent off a member needs a third member for the copy. */
	uint32_t blocked = 0;
	for (uint32_t k = 0; k < d->njobs; k++)
		blocked += job_blocked(d, &d->jobs[k]);
	if (r < 0 && !(r == -ENOSPC && blocked == d->njobs))
		fail("resuming the jobs (vlun_jobs_run) failed: %s", strerror(-r));
	if (d->njobs > blocked)
		fail("%u job(s) still recorded after vlun_jobs_run returned (%u waiting for a third member)",
		     d->njobs, blocked);
	jobs_blocked += blocked;
	unsigned dirty = check_copies(d, m, "after resume");
	if (dirty)
		fail("%u mirrored extent(s) still behind (ALT_DIRTY) after the resync ran to the end", dirty);
	for (uint32_t i = 0; i < d->nmembers; i++)
		if (d->members[i].state != VLUN_MEMBER_OK)
			fail("member %u is in state %u after the resume (its file is healthy)", i, d->members[i].state);
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (d->vdisks[i].id <= MAXVD && m->v[d->vdisks[i].id].exists)
			check_vdisk(p, &d->vdisks[i], &m->v[d->vdisks[i].id]);
	vlun_pool_desc_free(d);
	return p;
}

/* The child that reassembles and checks. Exit 0 ok, 1 failures. */
static int verify(void)
{
	struct model *m = parse_log();
	char *paths[3];
	struct vlun_pool *p = NULL;
	struct vlun_pool_desc *d = NULL;
	char *why = NULL, vwhy[256];
	int r;

	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	for (int i = 0; i < 3; i++)
		paths[i] = member_path(i);
	/* The crashed process's io_uring may hold its member files (and so
	 * their OFD locks) for a moment after it exited: reopen as the
	 * handler does after a restart. */
	r = vlun_pool_open(paths, 3, VLUN_OPEN_WAIT_LOCK, &p, &why);
	if (r < 0) {
		if (m->pool_created)
			fail("pool created (acknowledged) but reassembly refuses: %s", why ? why : strerror(-r));
		return nfail ? 1 : 0;
	}
	r = vlun_pool_describe(p, &d);
	if (r < 0)
		die("describe: %s", strerror(-r));
	if (vlun_pool_desc_validate(d, vwhy, sizeof(vwhy)) < 0)
		fail("metadata after the crash is invalid: %s", vwhy);
	if (m->member_add_acked && d->nmembers != 3)
		fail("member add was acknowledged but the pool has %u members", d->nmembers);
	if (selftest_mirror)
		corrupt_one_copy(d);
	/* before any disk is open: no job thread runs yet (pool.c) */
	dirty_seen = check_copies(d, m, "after reassembly");
	check_migrations(d, m);
	jobs_resumed = d->njobs;
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *dd = &d->vdisks[i];
		if (dd->id > MAXVD || !m->v[dd->id].exists) {
			fail("vdisk %s (id %u) exists but its create never began (or failed)", dd->name, dd->id);
			continue;
		}
		if (m->v[dd->id].delete_acked)
			fail("vdisk %s (id %u) exists but its delete was acknowledged", dd->name, dd->id);
		check_vdisk(p, dd, &m->v[dd->id]);
	}
	for (uint32_t id = 0; id <= MAXVD; id++) {
		struct mvd *v = &m->v[id];
		bool found = false;
		if (!v->create_acked || v->delete_begun)
			continue;
		for (uint32_t i = 0; i < d->nvdisks; i++)
			found |= d->vdisks[i].id == id;
		if (!found)
			fail("vdisk %s (id %u): create acknowledged, no delete begun, but missing after the crash",
			     v->name, id);
	}
	vlun_pool_desc_free(d);
	d = NULL;
	if (mirror_actions) {
		p = resume_jobs(p, paths, m);
		if (!p)
			return 1;
	}
	/* One more commit (rewrites stale copies), then a read-only reopen. */
	struct vlun_vdisk_create_opts o = { .name = "post", .layout = VLUN_LAYOUT_THIN, .size_bytes = MiB };
	r = vlun_vdisk_create(p, &o, &why);
	if (r < 0)
		fail("a commit after reassembly failed: %s", why ? why : strerror(-r));
	vlun_pool_close(p);
	p = NULL;
	r = vlun_pool_open(paths, 3, VLUN_OPEN_RDONLY, &p, &why);
	if (r < 0) {
		fail("reopen after the post-crash commit refuses: %s", why ? why : strerror(-r));
	} else {
		if (vlun_pool_describe(p, &d) < 0 || vlun_pool_desc_validate(d, vwhy, sizeof(vwhy)) < 0)
			fail("metadata after the post-crash commit is invalid: %s", vwhy);
		vlun_pool_desc_free(d);
		vlun_pool_close(p);
	}
	if (diverge_inflight)
		printf("note: point %" PRIu64 ": %u sector(s) of clean mirror extents differ between the copies "
		       "where a write was in flight at the crash; first: %s\n", cur_point, diverge_inflight,
		       diverge_first);
	fflush(stdout);
	/* counters for the sweep's summary (the parent adds them up) */
	char *sp;
	if (asprintf(&sp, "%s/stats", dir) >= 0) {
		FILE *f = fopen(sp, "a");
		if (f) {
			fprintf(f, "%u %u %u %u %u\n", copies_compared, dirty_seen, jobs_resumed, diverge_inflight,
				jobs_blocked);
			fclose(f);
		}
		free(sp);
	}
	return nfail ? 1 : 0;
}

/* ------------------------------------------------------------ driver */

static int run_child(int (*fn)(uint64_t, unsigned, uint64_t, enum vlun_crash_mode), uint64_t seed,
		     unsigned ops, uint64_t at, enum vlun_crash_mode mode, const char *trace)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (trace) {
			int fd = open(trace, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || dup2(fd, 2) < 0)
				_exit(2);
			setenv("VLUN_CRASH_TRACE", "1", 1);
		}
		alarm(120); /* a hang (deadlock) is a failure (status 142), not a stuck sweep */
		_exit(fn ? fn(seed, ops, at, mode) : verify());
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

enum { K_LABEL, K_SLOTA, K_SLOTB, K_JOURNAL, K_OTHER, K_FLUSH, K_SUBMIT, K_N };
static const char *kind_names[K_N] = { "label write", "slot A write", "slot B write", "journal write",
				       "copy write (data area)", "flush", "data request submit" };

struct point { uint8_t kind; };

static struct point *enumerate(uint64_t seed, unsigned ops, uint64_t *ret_n)
{
	char *trace, *lp, line[512];
	uint64_t n = 0, meta_off = 0, slot = 0, joff = 0, jlen = 0;
	struct point *pts = NULL;
	FILE *f;

	make_members();
	if (asprintf(&trace, "%s/trace", dir) < 0 || asprintf(&lp, "%s/log", dir) < 0)
		die("out of memory");
	int r = run_child(run_workload, seed, ops, 0, VLUN_CRASH_OFF, trace);
	if (r != 0)
		die("the enumeration run (no crash) failed with status %d; see %s", r, trace);
	f = fopen(lp, "r");
	while (f && fgets(line, sizeof(line), f))
		if (line[0] == 'G')
			sscanf(line, "G %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &n, &meta_off, &slot,
			       &joff, &jlen);
	if (f)
		fclose(f);
	if (!n)
		die("the enumeration run logged no geometry");
	r = run_child(NULL, 0, 0, 0, 0, NULL);
	if (r != 0)
		die("the run without a crash does not verify (status %d): the harness or the engine is broken", r);
	pts = calloc(n + 1, sizeof(*pts));
	f = fopen(trace, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long k, off;
		char what[32];
		if (sscanf(line, "crash point %llu: %31s %*s off=%llu", &k, what, &off) != 3 || k > n)
			continue;
		uint8_t kind = K_OTHER;
		if (!strcmp(what, "flush"))
			kind = K_FLUSH;
		else if (!strncmp(what, "submit", 6))
			kind = K_SUBMIT;
		else if (off == 4096)
			kind = K_LABEL;
		else if (off >= meta_off && off < meta_off + slot)
			kind = K_SLOTA;
		else if (off >= meta_off + slot && off < meta_off + 2 * slot)
			kind = K_SLOTB;
		else if (off >= joff && off < joff + jlen)
			kind = K_JOURNAL;
		pts[k].kind = kind;
	}
	if (f)
		fclose(f);
	free(trace);
	free(lp);
	*ret_n = n;
	return pts;
}

int main(int argc, char **argv)
{
	const char *modes_arg = "exit,tear,drop,fail", *report = NULL, *verify_dir = NULL;
	unsigned seeds = 1, ops = 40, every = 1;
	uint64_t only = 0; /* --point K: just that point, keep the directory */
	uint64_t seed0 = 1;
	const char *big = getenv("VLUN_CRASH_SWEEP");
	char tmpl[PATH_MAX];

	if (big && !strcmp(big, "big")) {
		seeds = 4;
		ops = 120;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			modes_arg = argv[++i];
		else if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
			seeds = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed0 = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--every") && i + 1 < argc)
			every = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--point") && i + 1 < argc)
			only = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--verify-dir") && i + 1 < argc)
			verify_dir = argv[++i];
		else if (!strcmp(argv[i], "--prefault-flush"))
			prefault_flush = true;
		else if (!strcmp(argv[i], "--no-prefault-flush"))
			prefault_flush = false; /* the default; kept for old command lines */
		else if (!strcmp(argv[i], "--mirror"))
			mirror_actions = true;
		else if (!strcmp(argv[i], "--selftest-mirror"))
			mirror_actions = selftest_mirror = true;
		else if (!strcmp(argv[i], "--selftest"))
			strict_selftest = true;
		else if (!strcmp(argv[i], "--report") && i + 1 < argc)
			report = argv[++i];
		else
			die("usage: crash_harness [--mode exit,tear,drop,fail] [--seeds N] [--seed S] [--ops N] "
			    "[--every K] [--point K] [--report FILE] [--mirror] [--selftest] [--selftest-mirror] [--verify-dir DIR] [--prefault-flush] [-v]");
	}
	if (getenv("VLUN_UNDER_VALGRIND") && !strcmp(getenv("VLUN_UNDER_VALGRIND"), "1")) {
		fprintf(stderr, "skipped under valgrind: the harness drives io_uring\n");
		return 77;
	}
	if (verify_dir) { /* check a kept directory again (after --point) */
		dir = verify_dir;
		return verify();
	}
	if (every == 0 || seeds == 0)
		die("--every and --seeds must be at least 1");
	/* tmpfs when there is one: a sweep fdatasyncs thousands of times */
	const char *tmp = getenv("VLUN_CRASH_DIR");
	if (!tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/vlun-crash-XXXXXX", tmp);
	if (!mkdtemp(tmpl))
		die("mkdtemp %s: %s", tmpl, strerror(errno));
	dir = tmpl;

	unsigned total_fail = 0;
	FILE *rep = report ? fopen(report, "a") : NULL;
	for (uint64_t seed = seed0; seed < seed0 + seeds; seed++) {
		uint64_t n;
		struct point *pts = enumerate(seed, ops, &n);
		unsigned kinds[K_N] = { 0 };
		for (uint64_t k = 1; k <= n; k++)
			kinds[pts[k].kind]++;
		printf("seed %" PRIu64 ", %u ops: %" PRIu64 " crash points (", seed, ops, n);
		for (int k = 0; k < K_N; k++)
			printf("%s%s %u", k ? ", " : "", kind_names[k], kinds[k]);
		printf(")\n");
		fflush(stdout);
		char modes[64];
		snprintf(modes, sizeof(modes), "%s", modes_arg);
		for (char *save = NULL, *mname = strtok_r(modes, ",", &save); mname; mname = strtok_r(NULL, ",", &save)) {
			enum vlun_crash_mode mode;
			uint64_t dummy;
			char spec[32];
			snprintf(spec, sizeof(spec), "1:%s", mname);
			if (vlun_crash_parse(spec, &dummy, &mode) < 0)
				die("unknown mode '%s'", mname);
			unsigned tried = 0, fired = 0, failed = 0;
			unsigned fails_by_kind[K_N] = { 0 }, tried_by_kind[K_N] = { 0 };
			time_t t0 = time(NULL);
			char *stp;
			if (asprintf(&stp, "%s/stats", dir) >= 0) { /* the enumeration's verify wrote there */
				unlink(stp);
				free(stp);
			}
			for (uint64_t k = only ? only : 1; k <= (only ? only : n); k += every) {
				/* tear only means something for a write */
				if (mode == VLUN_CRASH_TEAR && pts[k].kind >= K_FLUSH)
					continue;
				make_members();
				int r = run_child(run_workload, seed, ops, k, mode, NULL);
				if (r != 0 && r != VLUN_CRASH_EXIT_CODE) {
					fprintf(stderr, "FAIL: seed %" PRIu64 " %s at point %" PRIu64 ": workload died with status %d\n",
						seed, mname, k, r);
					failed++;
					continue;
				}
				tried++;
				tried_by_kind[pts[k].kind]++;
				fired += r == VLUN_CRASH_EXIT_CODE || mode == VLUN_CRASH_DROP || mode == VLUN_CRASH_FAIL;
				cur_point = k;
				if (run_child(NULL, 0, 0, 0, 0, NULL) != 0) {
					fprintf(stderr, "FAIL: seed %" PRIu64 " mode %s crash point %" PRIu64 " (%s): see above; "
						"reproduce: crash_harness%s --seed %" PRIu64 " --ops %u --mode %s --point %" PRIu64 "\n",
						seed, mname, k, kind_names[pts[k].kind], mirror_actions ? " --mirror" : "", seed, ops, mname, k);
					failed++;
					fails_by_kind[pts[k].kind]++;
					/* keep the workload's log: the point numbers move
					 * between runs, so --point may not hit it again */
					char *from = NULL, *to = NULL;
					if (!strict_selftest && !selftest_mirror && asprintf(&from, "%s/log", dir) >= 0 &&
					    asprintf(&to, "%s-fail-s%" PRIu64 "-%s-%" PRIu64 ".log", dir, seed, mname, k) >= 0 &&
					    rename(from, to) == 0)
						fprintf(stderr, "  the failing run's log: %s\n", to);
					free(to);
					free(from);
				}
			}
			printf("  mode %-4s: %u points tried, %u stopped/fired, %u failures (%lds)\n", mname, tried,
			       fired, failed, (long)(time(NULL) - t0));
			if (mirror_actions) {
				unsigned long long st[5] = { 0 }, runs_dirty = 0, runs_jobs = 0;
				char *sp, sl[128];
				if (asprintf(&sp, "%s/stats", dir) < 0)
					die("out of memory");
				FILE *sf = fopen(sp, "r");
				while (sf && fgets(sl, sizeof(sl), sf)) {
					unsigned a, b, c, e, g;
					if (sscanf(sl, "%u %u %u %u %u", &a, &b, &c, &e, &g) != 5)
						continue;
					st[0] += a, st[1] += b, st[2] += c, st[3] += e, st[4] += g;
					runs_dirty += b > 0;
					runs_jobs += c > 0;
				}
				if (sf)
					fclose(sf);
				unlink(sp);
				free(sp);
				printf("    mirror copies compared: %llu sectors; crashes leaving extents behind: %llu "
				       "(%llu extents); leaving a migration recorded: %llu (waiting for a third "
				       "member after resume: %llu); in-flight divergent sectors: %llu\n", st[0],
				       runs_dirty, st[1], runs_jobs, st[4], st[3]);
				if (rep)
					fprintf(rep, "<!-- seed %" PRIu64 " %s: compared %llu, runs behind %llu (%llu "
						"extents), runs with a recorded migration %llu (blocked %llu), in-flight "
						"divergent %llu -->\n", seed, mname, st[0], runs_dirty, st[1], runs_jobs,
						st[4], st[3]);
			}
			fflush(stdout);
			if (rep) {
				fprintf(rep, "| %" PRIu64 " | %u | %s | %u | %u |", seed, ops, mname, tried, failed);
				for (int kk = 0; kk < K_N; kk++)
					fprintf(rep, " %u/%u |", tried_by_kind[kk], fails_by_kind[kk]);
				fprintf(rep, "\n");
			}
			total_fail += failed;
		}
		free(pts);
	}
	if (rep)
		fclose(rep);
	if (only) {
		printf("kept %s (members m0..m2, log, trace)\n", dir);
		return total_fail ? 1 : 0;
	}
	for (int i = 0; i < 3; i++) {
		char *p = member_path(i);
		unlink(p);
		free(p);
	}
	char *x;
	if (asprintf(&x, "%s/log", dir) >= 0) {
		unlink(x);
		free(x);
	}
	if (asprintf(&x, "%s/trace", dir) >= 0) {
		unlink(x);
		free(x);
	}
	if (asprintf(&x, "%s/stats", dir) >= 0) {
		unlink(x);
		free(x);
	}
	rmdir(dir);
	printf("%s: %u failures\n", total_fail ? "FAILED" : "ok", total_fail);
	return total_fail ? 1 : 0;
}
