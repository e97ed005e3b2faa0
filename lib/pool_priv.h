/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool_priv.h — the runtime pool object shared by pool.c (assembly,
 * registry, controller, commits) and vdisk.c (the fast path).
 *
 * Locks, in order:
 *   registry lock (pool.c)  the process-wide list of open pools
 *   ctl_lock                the controller mutex: desc, maps' changes,
 *                           allocator, pending deltas, open vdisk list,
 *                           metadata commits. Never taken by the fast path
 *                           nor by the io completion thread.
 *   q_lock                  the controller's work queue (short critical
 *                           sections; the completion thread may take it)
 */
#ifndef VLUN_POOL_PRIV_H
#define VLUN_POOL_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "alloc.h"
#include "io.h"
#include "map.h"
#include "meta.h"
#include "stats.h"
#include "vlun.h"

struct vlun_vdisk;

/* A member as the fast path sees it, indexed by desc member index. */
struct pool_member {
	struct vlun_blkdev *dev; /* NULL when missing */
	int fd;
	bool direct;
	struct vlun_iostat stats; /* I/O to this member (stats.h) */
};

/* Work for the controller thread. */
enum ctl_work_kind {
	CTL_FAULT,   /* a write piece hit INVALID / NO_WRITE */
	CTL_INSTALL, /* a new chunk is prepared: publish it */
	CTL_COMMIT,  /* make pending metadata durable, then call back */
	CTL_UNMAP,   /* UNMAP / WRITE_ZEROES on a thin disk */
	CTL_CALL,    /* run fn(arg) on the controller thread */
};

struct ctl_work {
	struct ctl_work *next;
	enum ctl_work_kind kind;
	void (*fn)(void *arg, int res); /* CTL_COMMIT / CTL_CALL */
	void *arg;
};

struct pending_delta {
	uint32_t vdisk_id;
	uint64_t vsector, nsectors;
	uint32_t nextents;
	struct vlun_extent *extents;
	uint64_t generation;
};

struct vlun_pool {
	struct vlun_pool *reg_next; /* registry */
	unsigned refs;              /* registry lock */
	unsigned flags;             /* enum vlun_open_flags */
	uint8_t uuid[VLUN_UUID_LEN];

	pthread_mutex_t ctl_lock;
	struct vlun_pool_desc *desc;
	struct vlun_meta *meta;
	struct vlun_meta_member *mm; /* as given to vlun_meta_load/commit */
	size_t nmm;
	struct vlun_alloc *alloc;
	struct pool_member *members; /* [desc->nmembers] */
	uint32_t nmembers;
	struct vlun_vdisk **open;    /* open vdisks */
	size_t nopen;
	struct pending_delta *pending;
	size_t npending, apending;
	bool frees_pending;          /* alloc has frees waiting for a commit */

	/* metadata changes made but not yet durable (pending + committing) */
	atomic_ulong meta_dirty;

	/* fast-path pios in flight per epoch side; the controller flips the
	 * epoch and waits for the old side before freed space is reused */
	atomic_ulong io_active[2];
	atomic_uint io_epoch;

	struct vlun_io_engine *io;   /* started on the first vdisk open */

	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct ctl_work *q_head, **q_tail;
	bool ctl_stop;
	bool ctl_started;
	pthread_t ctl_thread;

	struct ctl_server *ctl_srv;  /* control channel (ctl.c); NULL when not served */
};

/* ---- pool.c, for vdisk.c */
/* Queues work for the controller thread (any thread, never blocks long). */
void pool_ctl_queue(struct vlun_pool *p, struct ctl_work *w);
/* Starts the engine and controller threads if not yet (ctl_lock held). */
int pool_start_locked(struct vlun_pool *p);
/* Records a change of a vdisk's map in the description and as a pending
 * delta (ctl_lock held). The map was already changed with vlun_map_set. */
int pool_record_change_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vsector,
			      uint64_t nsectors, const struct vlun_extent *ext, uint32_t n);
/* fsyncs every member and commits pending deltas (ctl_lock held). */
int pool_commit_pending_locked(struct vlun_pool *p);
struct vlun_vdisk_desc *pool_find_vdisk_locked(struct vlun_pool *p, const char *name);

static inline unsigned pool_io_enter(struct vlun_pool *p)
{
	unsigned side = atomic_load(&p->io_epoch) & 1;
	atomic_fetch_add(&p->io_active[side], 1);
	return side;
}

static inline void pool_io_enter_side(struct vlun_pool *p, unsigned side)
{
	atomic_fetch_add(&p->io_active[side], 1);
}

static inline void pool_io_exit(struct vlun_pool *p, unsigned side)
{
	atomic_fetch_sub(&p->io_active[side], 1);
}

/* ---- ctl.c, for pool.c: the control channel of a pool opened with the
 * lock (protocol in ctl.h). start: 0 or negative errno (the pool works
 * without it); stop: joins the server thread (NULL-safe, idempotent). */
struct ctl_server;
int ctl_server_start(struct vlun_pool *p);
void ctl_server_stop(struct vlun_pool *p);

/* ---- vdisk.c, for pool.c */
/* Runs a controller work item of the vdisk fast path (CTL_FAULT,
 * CTL_INSTALL, CTL_UNMAP) with ctl_lock held. */
void vdisk_ctl_run_locked(struct vlun_pool *p, struct ctl_work *w);
uint32_t vdisk_id_of(const struct vlun_vdisk *vd);
struct vlun_map *vdisk_map_of(const struct vlun_vdisk *vd);
/* Requests not yet completed (used to refuse delete/shrink). */
bool vdisk_busy(const struct vlun_vdisk *vd);
/* The vdisk's I/O statistics (stats.h), read by pool_stats_collect. */
const struct vlun_iostat *vdisk_stats_of(const struct vlun_vdisk *vd);

#endif
