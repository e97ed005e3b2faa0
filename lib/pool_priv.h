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
	/* The controller marked it FAILED (desc state): the fast path sends
	 * nothing to it where another clean copy exists. Set and cleared by
	 * the controller only (ctl_lock), read by anyone. */
	atomic_bool failed;
	/* Fault injection (vlun_pool_inject_member_fault): every I/O the
	 * engine sends to it fails with EIO without reaching it. */
	atomic_bool inject_fail;
};

/* Work for the controller thread. */
enum ctl_work_kind {
	CTL_FAULT,   /* a write piece hit INVALID / NO_WRITE */
	CTL_INSTALL, /* a new chunk is prepared: publish it */
	CTL_COMMIT,  /* make pending metadata durable, then call back */
	CTL_UNMAP,   /* UNMAP / WRITE_ZEROES on a thin disk */
	CTL_CALL,    /* run fn(arg) on the controller thread */
	CTL_WFAIL,   /* one side of a mirrored write failed: mark, then end it */
	CTL_FFAIL,   /* a member's flush failed: fail it over where mirrored */
	CTL_MERR,    /* a member returned an I/O error (read retried elsewhere) */
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
	bool need_full_commit;       /* desc changed beyond deltas (member state): checkpoint */
	struct job_runner *jobs;     /* resync / migration thread (job.c); NULL until started */
	_Atomic uint64_t resync_rate; /* bytes/s limit of the resync, 0 none (vlun_resync_start) */

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
	struct snap_pool *snap;      /* snapshot engine (snap.c); NULL until first used */

	/* HA (node.c): true while this node must not write (standby, or
	 * fenced by another node's takeover). Read by the fast path and the
	 * job thread, set by node.c (and by a write that met a reservation
	 * conflict). */
	atomic_bool ha_fenced;
	struct pool_ha *ha;          /* node.c; NULL for read-only opens */
	/* vlun_pool_on_fenced: called by the job thread on a takeover it finds */
	void (*_Atomic on_fenced)(void *arg);
	void *_Atomic on_fenced_arg;
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
/* The description of vdisk id, or NULL (ctl_lock held). */
struct vlun_vdisk_desc *pool_vdesc_by_id_locked(struct vlun_pool *p, uint32_t id);

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

/* ---- mirror.c: controller actions on mirrored extents (ctl_lock held) */
/* Size of the regions dirty tracking rounds to (sectors). */
#define MIRROR_REGION_SECTORS 2048u
/* Publishes new extents of [vsector, vsector+nsectors) of a vdisk: the
 * open map (set_entry to the agents) and, when persist, the description
 * as a pending delta. */
int mirror_publish_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vsector, uint64_t nsectors,
			  const struct vlun_extent *ext, uint32_t n, bool persist);
/* Marks member m FAILED: state in the description (checkpoint at the next
 * commit), extents whose primary is on m and whose alternate is clean
 * swap copies. Idempotent. */
void mirror_member_fail_locked(struct vlun_pool *p, uint32_t m, const char *why);
/* A member returned an I/O error: FAILED if it holds mirrored copies. */
void mirror_member_error_locked(struct vlun_pool *p, uint32_t m, int res);
/* The description's extents of [vs, vs+ns), clipped (caller frees). */
int mirror_desc_range(const struct vlun_vdisk_desc *d, uint64_t vs, uint64_t ns, struct vlun_extent **ret,
		      uint32_t *ret_n);
/* Member m is usable again (probe or admin): state OK; resync follows. */
void mirror_member_restore_locked(struct vlun_pool *p, uint32_t m);
/* The copy on member m of vdisk id's [vs, vs+ns) is behind (a write did
 * not reach it): the range, rounded out to regions, gets ALT_DIRTY, with
 * copies swapped where m holds the primary. -EIO when no good copy
 * remains for some part. */
int mirror_mark_behind_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vs, uint64_t ns,
			      uint32_t m);
/* A flush of member m failed: m is FAILED and every mirrored extent with
 * a copy on m is behind there (copies swapped where m held the primary).
 * -EIO when m also holds data with no other copy (the flush fails). */
int mirror_member_flush_failed_locked(struct vlun_pool *p, uint32_t m, const char *why);
/* A write hit ERROR on [vs, vs+ns): promote a clean alternate. -EIO none. */
int mirror_repair_error_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vs, uint64_t ns);
/* Commits pending deltas, or a checkpoint when need_full_commit. */
int pool_commit_locked(struct vlun_pool *p);

/* Waits until every physical I/O issued before now has completed (no
 * ctl_lock needed). */
void pool_epoch_drain(struct vlun_pool *p);

/* ---- job.c: the resync/migration thread of a writable pool */
int jobs_start_locked(struct vlun_pool *p);
void jobs_stop(struct vlun_pool *p);
/* Something may need resync (a member came back, a mirror was added). */
void jobs_kick(struct vlun_pool *p);

/* ---- vdisk.c, for pool.c */
/* Runs a controller work item of the vdisk fast path (CTL_FAULT,
 * CTL_INSTALL, CTL_UNMAP) with ctl_lock held. */
void vdisk_ctl_run_locked(struct vlun_pool *p, struct ctl_work *w);
uint32_t vdisk_id_of(const struct vlun_vdisk *vd);
struct vlun_map *vdisk_map_of(const struct vlun_vdisk *vd);
/* Requests not yet completed (used to refuse delete/shrink). */
bool vdisk_busy(const struct vlun_vdisk *vd);
/* The open vdisk with this id, or NULL (ctl_lock held). */
struct vlun_vdisk *pool_open_vdisk_locked(struct vlun_pool *p, uint32_t id);
/* Writes parked on NO_WRITE of vd try again (ctl_lock held). */
void vdisk_kick_parked_locked(struct vlun_vdisk *vd);
/* The vdisk's I/O statistics (stats.h), read by pool_stats_collect. */
const struct vlun_iostat *vdisk_stats_of(const struct vlun_vdisk *vd);

#endif
