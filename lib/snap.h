/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * snap.h — the snapshot engine's internal interface (lib/snap.c; the
 * design, the reserve's on-disk format and the commit order are at the top
 * of snap.c). vdisk.c calls the fast-path hooks; pool.c the refusals and
 * the shutdown; the tests the codec.
 */
#ifndef VLUN_SNAP_H
#define VLUN_SNAP_H

#include <stdbool.h>
#include <stdint.h>

#include "vlun.h"

struct snap_store;
struct snap_view;
struct vlun_pool;
struct vlun_vdisk;
struct vlun_vdisk_desc;

/* ---- on-disk codec (exposed for the unit tests) */
#define SNAP_BLOCK 4096u              /* unit of every table / header write */
#define SNAP_SECTOR_ENTRIES 31u       /* entries per 512-byte sector */
#define SNAP_GROUP_ENTRIES 248u       /* 8 sectors x 31: entries (= slots) per group */
#define SNAP_HDR_AREA 8192u           /* header copies A (0) and B (4096) */
#define SNAP_ENTRY_WRITTEN (1ull << 63) /* chunk field: a private copy written through a writable snapshot */

struct snap_entry {
	uint64_t chunk;   /* source chunk index | SNAP_ENTRY_WRITTEN */
	uint64_t mask;    /* sessions (bits) that need this copy; 0 = free slot */
};

struct snap_hdr {
	uint64_t seq;
	uint32_t source_id, reserve_id;
	uint64_t chunk_sectors;
	uint64_t nslots;
	uint64_t created;
};

/* Header block (4 KiB; the header lives in its first sector). */
void snap_hdr_encode(const struct snap_hdr *h, unsigned copy, uint8_t blk[SNAP_BLOCK]);
int snap_hdr_decode(const uint8_t blk[SNAP_BLOCK], unsigned copy, struct snap_hdr *ret, char *why, size_t whylen);
/* Table block of group g: e[SNAP_GROUP_ENTRIES]. */
void snap_tblock_encode(const struct snap_entry *e, uint64_t g, uint8_t blk[SNAP_BLOCK]);
/* Decodes one 512-byte sector (index sidx 0..7) of group g's block into
 * e[SNAP_SECTOR_ENTRIES]; -EUCLEAN with a reason when torn/corrupt. An
 * all-zero sector is an empty sector (never written). */
int snap_tsector_decode(const uint8_t *sec, uint64_t g, unsigned sidx, struct snap_entry *e, char *why,
			size_t whylen);
/* Byte offsets inside the reserve. */
uint64_t snap_group_off(uint64_t chunk_bytes, uint64_t g);
uint64_t snap_slot_off(uint64_t chunk_bytes, uint64_t slot);
/* Slots that fit in a reserve of bytes. */
uint64_t snap_slots_for(uint64_t chunk_bytes, uint64_t bytes);

/* ---- vdisk.c hooks */
/* A write (WRITE, WRITE_ZEROES, UNMAP) to a disk with a store: returns the
 * side (0/1) of the store's write epoch it entered when every chunk it
 * touches needs no copy (the caller ends it with snap_write_exit when the
 * request completes), or -1 when a copy is needed: then the caller hands
 * the request to snap_source_write (it was counted in nothing). */
int snap_write_enter(struct snap_store *ss, uint64_t offset, uint64_t length);
void snap_write_exit(struct snap_store *ss, unsigned side);
/* Queues the write to the snapshot worker; 0 or -ENOMEM. The worker copies
 * the chunks, then submits req again (through the hook). The request is
 * already counted in vd's in-flight count: vdisk_snap_hold_end ends that. */
int snap_source_write(struct snap_store *ss, struct vlun_vdisk *vd, struct vlun_req *req);
/* "<source>@<snapshot>" opens. */
int snap_view_open(struct vlun_pool *p, const char *name, unsigned flags, struct vlun_vdisk **ret,
		   char **ret_reason);
int snap_view_submit(struct snap_view *v, struct vlun_req *req);
void snap_view_close(struct snap_view *v);
/* Before a plain open of name: loads the store of a source (the source
 * must never be written without copy-on-first-write). 0 when name has no
 * store or it is loaded. */
int snap_source_attach(struct vlun_pool *p, const char *name, char **ret_reason);

/* ---- pool.c */
/* Why vdisk d must not be deleted/resized/opened directly, or NULL
 * (ctl_lock held). op: "delete", "resize", "export". */
const char *snap_refuse_locked(struct vlun_pool *p, const struct vlun_vdisk_desc *d, const char *op, char *buf,
			       size_t len);
extern __thread bool snap_internal_op __attribute__((tls_model("initial-exec"))); /* snap.c resizing its own reserve */
/* Stops the worker and drops every store (pool close). */
void snap_pool_stop(struct vlun_pool *p);

/* ---- job.c, ctl.c: a rollback is a job (VLUN_JOB_ROLLBACK) */
/* Appends the pool's rollback, running or finished in the last minutes,
 * to a job list (*v grows by one). ctl_lock held. 0 or -ENOMEM. */
int snap_jobs_append_locked(struct vlun_pool *p, struct vlun_job_info **v, size_t *n);
/* vlun_snapshot_rollback() on a thread of its own (the control channel's
 * snapshot-rollback wait=0): returns once the request is checked — its
 * refusal, as the synchronous call gives it, or 0 and the id of the job
 * that vlun_jobs_list() shows until it is done. Pool close stops it
 * between two chunks (the job fails; the source is partly restored). */
int snap_rollback_start(struct vlun_pool *p, const char *source, const char *name, uint32_t *ret_job_id,
			char **ret_reason);

/* ---- vdisk.c, for snap.c */
/* Takes an engine reference on vdisk id (opening it internally if no one
 * has it open); takes ctl_lock. */
int vdisk_hold(struct vlun_pool *p, uint32_t id, struct vlun_vdisk **ret);
void vdisk_release(struct vlun_vdisk *vd);
void vdisk_set_snap(struct vlun_vdisk *vd, struct snap_store *ss);
bool vdisk_user_open(struct vlun_vdisk *vd); /* ctl_lock held */
void vdisk_snap_hold_end(struct vlun_vdisk *vd);
int vdisk_new_view(struct vlun_pool *p, const char *name, uint64_t size_sectors, struct snap_view *v,
		   struct vlun_vdisk **ret);
void vdisk_free_view(struct vlun_vdisk *vd);
/* The reserve's map changed size (grow): publish it. ctl_lock held. */
struct vlun_map *vdisk_map_of(const struct vlun_vdisk *vd);

#endif
