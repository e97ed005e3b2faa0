/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlun.h — the public API of libvlun, the vlun engine.
 *
 * libvlun knows nothing of tcmu-runner. It pools physical LUNs ("members":
 * files or block devices), keeps the pool's metadata on every member, and
 * carves virtual disks out of the pool through a map of extents. The
 * handler (handler/handler_vlun.c) and vlunctl (tools/) are its users.
 *
 * Conventions (systemd style): functions return 0 or a negative errno;
 * outputs are named ret_* and are untouched on failure; destructors accept
 * NULL. Sizes and offsets are uint64_t. The library logs only through the
 * callback set with vlun_set_log(). Map addresses are in 512-byte sectors;
 * I/O requests are in bytes (multiples of 512).
 */
#ifndef VLUN_H
#define VLUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VLUN_SECTOR_SHIFT 9
#define VLUN_SECTOR_SIZE 512u
#define VLUN_UUID_LEN 16
#define VLUN_NAME_MAX 63           /* names: [A-Za-z0-9._-], 1..63 chars */
#define VLUN_PATH_MAX 255          /* member path hints */
#define VLUN_MAX_MEMBERS 256
#define VLUN_MAX_VDISKS 1024
#define VLUN_MAX_EXTENTS (1u << 24) /* per virtual disk */
#define VLUN_NO_MEMBER UINT32_MAX
#define VLUN_MAX_JOBS 64            /* persistent jobs per pool */

/* ---------------------------------------------------------------- logging */

enum vlun_log_level { VLUN_LOG_ERR = 3, VLUN_LOG_WARN = 4, VLUN_LOG_INFO = 6, VLUN_LOG_DEBUG = 7 };
typedef void (*vlun_log_fn)(enum vlun_log_level level, const char *msg, void *userdata);
/* Default: messages at WARN and above go to stderr. fn == NULL silences. */
void vlun_set_log(vlun_log_fn fn, enum vlun_log_level max_level, void *userdata);

/* ------------------------------------------------------------ data model
 *
 * The model is what the metadata stores (lib/meta.c encodes and decodes it)
 * and what vlunctl shows. The runtime map (lib/map.c) is built from it.
 */

enum vlun_extent_flags {
	VLUN_EXT_INVALID = 1u << 0,    /* not allocated: reads give zeros, writes fault (thin) */
	VLUN_EXT_NO_WRITE = 1u << 1,   /* writes fault to the controller and wait */
	VLUN_EXT_ZERO = 1u << 2,       /* reads give zeros without I/O */
	VLUN_EXT_ERROR = 1u << 3,      /* I/O fails with MEDIUM ERROR */
	VLUN_EXT_ALT_EXISTS = 1u << 4, /* alt_member/alt_psector hold a second copy */
	VLUN_EXT_ALT_DIRTY = 1u << 5,  /* the alternate is behind (dirty bitmap dirty_id) */
};
#define VLUN_EXT_KNOWN_FLAGS 0x3fu

struct vlun_extent {
	uint64_t vsector;     /* first virtual sector */
	uint64_t nsectors;    /* length; extents of a disk are sorted, disjoint, contiguous */
	uint64_t psector;     /* sector on the member (absolute, from the member's start) */
	uint64_t alt_psector; /* alternate location (mirror/migration target) */
	uint32_t member;      /* member index, VLUN_NO_MEMBER when INVALID/ZERO */
	uint32_t alt_member;  /* VLUN_NO_MEMBER unless ALT_EXISTS */
	uint32_t flags;       /* enum vlun_extent_flags */
	uint32_t dirty_id;    /* dirty bitmap of the alternate; 0 = none (reserved) */
};

enum vlun_layout {
	VLUN_LAYOUT_LINEAR = 1,  /* concatenation of member ranges */
	VLUN_LAYOUT_STRIPED = 2, /* round robin over stripe_width members, stripe_sectors each */
	VLUN_LAYOUT_THIN = 3,    /* extents of chunk_sectors allocated on first write */
};

enum vlun_member_state {
	VLUN_MEMBER_OK = 0,
	VLUN_MEMBER_MISSING = 1, /* listed in the metadata, not found at assembly */
	VLUN_MEMBER_FAILED = 2,  /* I/O errors; marked by the controller */
};

struct vlun_member_desc {
	uint8_t uuid[VLUN_UUID_LEN];
	uint32_t index;       /* stable: extents refer to it */
	uint32_t state;       /* enum vlun_member_state */
	uint64_t size_bytes;  /* size when labelled/last grown */
	uint64_t data_start;  /* first sector of the data area */
	uint64_t data_sectors;/* length of the data area */
	char path_hint[VLUN_PATH_MAX + 1]; /* where it was last seen (informative) */
};

enum vlun_vdisk_flags {
	VLUN_VDISK_MIRRORED = 1u << 0, /* thin: chunks allocated later get a second copy */
	VLUN_VDISK_SNAP_RESERVE = 1u << 1, /* the snapshot reserve of another disk: never
					    * exported, deleted with its last snapshot */
};
#define VLUN_VDISK_KNOWN_FLAGS 0x3u

struct vlun_vdisk_desc {
	uint32_t id;          /* unique in the pool, never reused */
	uint8_t uuid[VLUN_UUID_LEN];
	char name[VLUN_NAME_MAX + 1];
	uint32_t layout;      /* enum vlun_layout */
	uint64_t size_sectors;
	uint64_t chunk_sectors;  /* thin: allocation unit; striped: stripe size */
	uint32_t stripe_width;   /* striped: number of members */
	uint32_t flags;          /* enum vlun_vdisk_flags */
	uint64_t generation;     /* bumped by every change of this disk's map */
	uint32_t nextents;
	struct vlun_extent *extents; /* sorted by vsector, covering [0, size_sectors) */
	/* Entries allocated at extents when more than nextents (the metadata
	 * code grows the array geometrically); 0 = exactly nextents. Code that
	 * puts another array in extents must set this too (0 when unsure). */
	uint32_t extents_cap;
};

/* A persistent job (a migration) as the metadata records it. */
struct vlun_job_desc {
	uint32_t id;
	uint32_t kind;            /* enum vlun_job_kind (VLUN_JOB_MIGRATE) */
	uint32_t vdisk_id;        /* UINT32_MAX: all */
	uint32_t from_member;     /* VLUN_NO_MEMBER: none */
	uint64_t vsector, nsectors; /* nsectors 0: to the end */
	uint64_t rate;            /* bytes/s, 0 unlimited */
	uint64_t created;         /* unix time */
	uint64_t to_mask[VLUN_MAX_MEMBERS / 64]; /* allowed targets; all zero: any */
};

/* ------------------------------------------------------------ snapshots
 *
 * Copy-on-first-write snapshot sessions of a source disk (lib/snap.c; the
 * design, the on-disk table and the commit order are at its top). The
 * source is divided into chunks (64 KiB by default); the first write to a
 * chunk after a session starts saves the old data in the source's reserve
 * (a hidden linear vdisk of the pool, flag VLUN_VDISK_SNAP_RESERVE) and
 * records which sessions need that saved copy in the chunk's session mask,
 * so N sessions that need the same old data share one copy. The saved copy
 * and its table entry are durable before the source write is acknowledged.
 * Sessions live in the pool metadata; the reserve's table lives in the
 * reserve itself.
 */
#define VLUN_MAX_SNAPSHOTS 64          /* sessions per source: one mask bit each */
#define VLUN_SNAP_DEFAULT_CHUNK (64u << 10)

enum vlun_snap_state {
	VLUN_SNAP_ACTIVE = 0,
	VLUN_SNAP_FAILED = 1,          /* the reserve filled (or its I/O failed): no longer usable */
};
enum vlun_snap_flags {
	VLUN_SNAP_WRITTEN = 1u << 0,   /* was exported writable and written: not the source's past */
};
/* What happens when a copy-on-first-write finds the reserve full. */
enum vlun_snap_full_policy {
	VLUN_SNAP_FULL_FAIL_SNAPSHOT = 0, /* default: the sessions needing the copy fail, the write goes on */
	VLUN_SNAP_FULL_FAIL_WRITE = 1,    /* the source write fails (DATA PROTECT, space allocation
					   * failed), the sessions stay intact */
};

struct vlun_snap_desc {
	uint32_t id;                   /* unique in the pool, never reused */
	uint32_t source_id;            /* vdisk id of the source */
	uint32_t bit;                  /* its bit in the chunk session masks (0..63) */
	uint32_t state;                /* enum vlun_snap_state */
	uint32_t flags;                /* enum vlun_snap_flags */
	uint64_t created;              /* unix time */
	char name[VLUN_NAME_MAX + 1];  /* unique among the source's sessions */
	char why[128];                 /* FAILED: what happened ("" otherwise) */
};

/* The snapshot store of one source disk (exists while it has sessions). */
struct vlun_snap_store_desc {
	uint32_t source_id;
	uint32_t reserve_id;           /* vdisk id of the reserve */
	uint64_t chunk_sectors;
	uint32_t full_policy;          /* enum vlun_snap_full_policy */
};

/* ------------------------------------------------- nodes (HA, PR)
 *
 * Gateway nodes sharing a pool's physical LUNs. Each node has an id
 * (vlun_set_node_id(); default /etc/vlun/node-id, else the hostname) and
 * a SCSI persistent reservation key derived from it. One node at a time is
 * the OWNER: the only one that writes data or metadata. Ownership moves by
 * vlun_pool_lock() (tcmu-runner's ALUA lock, vlunctl pool takeover), which
 * preempts the previous owner's key on every member and bumps map_epoch.
 */
#define VLUN_MAX_NODES 8
#define VLUN_NODE_ID_MAX 63
enum vlun_pr_mode {
	VLUN_PR_SHARED = 0,    /* default: every node registers, Write Exclusive - All Registrants */
	VLUN_PR_EXCLUSIVE = 1, /* the owner reserves Write Exclusive - Registrants Only */
	VLUN_PR_NONE = 2,      /* no persistent reservations (ownership by metadata only) */
};
enum vlun_node_role {
	VLUN_NODE_STANDBY = 0,
	VLUN_NODE_OWNER = 1,
	VLUN_NODE_FENCED = 2,  /* preempted by a takeover */
};
struct vlun_node_desc {
	char id[VLUN_NODE_ID_MAX + 1];
	uint64_t key;          /* PR key (prmap_key_from_node_id) */
	uint32_t role;         /* enum vlun_node_role */
	uint32_t lock_tag;     /* tcmu lock tag of the owner (ALUA group), 0xffff none */
	uint64_t since;        /* unix time of the last role change */
	uint64_t epoch;        /* map_epoch at that change */
};

struct vlun_pool_desc {
	uint8_t uuid[VLUN_UUID_LEN];
	char name[VLUN_NAME_MAX + 1];
	uint64_t seq;         /* metadata sequence number of the copy this came from */
	uint64_t generation;  /* bumped by every map change in the pool */
	uint64_t map_epoch;   /* bumped on ownership change (HA failover) */
	uint64_t created;     /* unix time */
	uint32_t next_vdisk_id;
	uint32_t nmembers;
	struct vlun_member_desc *members; /* indexed by position; member->index == position */
	uint32_t nvdisks;
	struct vlun_vdisk_desc *vdisks;
	uint32_t next_job_id;
	uint32_t njobs;
	struct vlun_job_desc *jobs; /* persistent jobs (migrations) */
	uint32_t next_snap_id;
	uint32_t nsnaps;
	struct vlun_snap_desc *snaps;        /* snapshot sessions */
	uint32_t nsnap_stores;
	struct vlun_snap_store_desc *snap_stores;
	/* HA / persistent reservations (lib/node.c, docs/pr.md): fixed
	 * arrays, so a plain struct copy duplicates them */
	uint32_t pr_mode;     /* enum vlun_pr_mode */
	uint32_t nnodes;
	struct vlun_node_desc nodes[VLUN_MAX_NODES];
};

/* Deep copy / free of a description. */
int vlun_pool_desc_dup(const struct vlun_pool_desc *src, struct vlun_pool_desc **ret);
void vlun_pool_desc_free(struct vlun_pool_desc *d);
/* Checks invariants (extents sorted, contiguous, inside members' data areas,
 * no two extents share physical sectors, ...). On failure writes a readable
 * reason into why (if not NULL) and returns -EUCLEAN. */
int vlun_pool_desc_validate(const struct vlun_pool_desc *d, char *why, size_t whylen);

/* ----------------------------------------------------------- utilities */

/* Accepted: "4096", "4096B", "2048s" (512-byte sectors), "64k", "10G",
 * "1.5T", "512MiB". Binary units K M G T P E, case-insensitive, with an
 * optional "i" and/or "B" ("KB" = "KiB" = 1024). A fraction must give a
 * whole number of bytes ("1.5K" ok, "1.1K" refused); no fraction with
 * bytes or sectors. Strict: no sign, spaces or junk; -EINVAL malformed,
 * -ERANGE overflow. Grammar at the top of lib/util.c. */
int vlun_parse_size(const char *s, uint64_t *ret_bytes);
/* Human-readable binary size ("1.5 GiB"), always NUL-terminated. */
const char *vlun_format_size(uint64_t bytes, char *buf, size_t len);
bool vlun_name_valid(const char *name);
void vlun_uuid_generate(uint8_t out[VLUN_UUID_LEN]);
void vlun_uuid_format(const uint8_t u[VLUN_UUID_LEN], char out[37]);
int vlun_uuid_parse(const char *s, uint8_t out[VLUN_UUID_LEN]);
uint32_t vlun_crc32c(uint32_t crc, const void *buf, size_t len); /* crc32c(0,"123456789",9)==0xe3069283 */

/* ------------------------------------------------------------ cfgstring
 *
 * The backstore's cfgstring, as given to targetcli (without the "vlun/"
 * prefix that tcmu-runner adds):
 *
 *   <pool>/<vdisk>[;option[;option...]]
 *
 *   <pool>     where the members are: a directory to scan, a glob, or a
 *              comma-separated list of member paths (absolute paths)
 *   <vdisk>    the virtual disk's name, or <source>@<snapshot>: a
 *              snapshot session of vdisk <source>, exported read-only
 *              unless option rw is given
 *   options    members=<path>,<path>...  (instead of the pool part:
 *                                          "<vdisk>;members=/a,/b")
 *              ro                         export read-only
 *              rw                         snapshots only: export writable
 *                                         (VLUN_VDISK_OPEN_WRITABLE); not with ro
 *              wce=0|1                    write cache enabled (default 1)
 *
 * A leading "vlun/" (tcmu-runner's subtype prefix) is dropped. The LAST
 * '/' separates the vdisk name unless a '|' is present. ';' and '|' cannot
 * appear in paths; each option at most once. A directory pool contributes
 * its regular files and block devices (not subdirectories, not names
 * starting with '.'); every item of a comma list may itself be a
 * directory, a glob or a path. Grammar at the top of lib/cfg.c.
 *
 * Example: cfgstring=/var/lib/vlun/pool0/thin0
 *          cfgstring=/var/lib/vlun/pool0/thin0@monday;rw
 *          cfgstring=/dev/mapper/lun*|thin0  -- '|' may separate a glob from
 *          the vdisk name when the glob itself contains '/'.
 * The parser is strict and says what is wrong.
 */
struct vlun_cfg {
	char *pool_spec;  /* directory, glob or comma list */
	char *vdisk;
	bool read_only;
	bool wce;
};
int vlun_cfg_parse(const char *cfgstring, struct vlun_cfg *ret, char **ret_reason);
void vlun_cfg_clear(struct vlun_cfg *cfg);
/* Expands a pool spec to member paths (sorted, deduplicated). */
int vlun_pool_spec_expand(const char *spec, char ***ret_paths, size_t *ret_n, char **ret_reason);
void vlun_strv_free(char **v, size_t n);

/* ----------------------------------------------------------------- pool */

struct vlun_pool;
struct vlun_vdisk;

struct vlun_pool_create_opts {
	const char *name;
	uint64_t meta_bytes;     /* per member metadata area; 0 = default (see meta.h) */
};

/* Labels the members (which must not carry a vlun label unless force) and
 * writes the first metadata. Members are files or block devices. */
int vlun_pool_create(const struct vlun_pool_create_opts *opts, char *const *paths, size_t n,
		     bool force, char **ret_reason);

enum vlun_open_flags {
	VLUN_OPEN_RDONLY = 1u << 0,  /* never writes metadata (vlunctl show) */
	VLUN_OPEN_NO_DIRECT = 1u << 1,
	VLUN_OPEN_NO_LOCK = 1u << 2, /* do not take the advisory pool lock */
	VLUN_OPEN_DEGRADED = 1u << 3, /* with RDONLY: a member missing or unreadable is reported
				       * (state MISSING, or FAILED as recorded), not refused */
	VLUN_OPEN_WAIT_LOCK = 1u << 4, /* a taken pool lock is tried again for up to 3 s before
					* the open is refused: the lock of a holder that was just
					* killed outlives it while the kernel ends its io_uring I/O
					* (the handler's open after a tcmu-runner restart) */
};

/* Assembles a pool from its members alone. The paths may include
 * unrelated files; those are ignored (reported at INFO). Refuses with a
 * reason if members listed in the metadata are missing, if copies of the
 * metadata disagree in a way that cannot be resolved, or if the newest
 * valid copy is corrupt (naming the member and the problem). The newest
 * valid copy wins; stale copies are rewritten on the next commit.
 * If the paths hold members of several pools, open refuses (-ENOTUNIQ,
 * listing them) unless one entry of paths is "pool=<name or uuid>", which
 * selects that pool. Opening a pool already open in this process returns
 * the same object with one more reference (close once per open). */
int vlun_pool_open(char *const *paths, size_t n, unsigned flags, struct vlun_pool **ret,
		   char **ret_reason);
void vlun_pool_close(struct vlun_pool *p);

/* A snapshot of the current description (caller frees). */
int vlun_pool_describe(struct vlun_pool *p, struct vlun_pool_desc **ret);

int vlun_pool_add_member(struct vlun_pool *p, const char *path, bool force, char **ret_reason);

struct vlun_vdisk_create_opts {
	const char *name;
	uint32_t layout;
	uint64_t size_bytes;
	uint64_t chunk_bytes;   /* thin chunk (default 1 MiB) or stripe size (default 64 KiB) */
	uint32_t stripe_width;  /* 0 = all members */
	const uint32_t *members;/* restrict to these member indexes (NULL = any) */
	size_t nmembers;
};
int vlun_vdisk_create(struct vlun_pool *p, const struct vlun_vdisk_create_opts *o, char **ret_reason);
int vlun_vdisk_resize(struct vlun_pool *p, const char *name, uint64_t new_size_bytes,
		      bool force, char **ret_reason);
int vlun_vdisk_delete(struct vlun_pool *p, const char *name, char **ret_reason);

/* Free and used space (bytes of data area). */
int vlun_pool_space(struct vlun_pool *p, uint64_t *ret_total, uint64_t *ret_free);

/* Is the pool held by a running handler? (advisory lock on the members,
 * see pool.c). Returns 1 held, 0 not, <0 error. pid of a holder if known.
 * A held pool must not be changed by another process (only one process may
 * commit its metadata): a locked open also serves the pool's control
 * channel, through which the holder makes the changes that are safe online
 * itself (vdisk create/resize/delete, member add; see ctl.h and
 * vlun_ctl_request()). */
int vlun_pool_paths_in_use(char *const *paths, size_t n, int *ret_pid);

/* ------------------------------------------------- mirrors and migration
 *
 * All of these run in the process that holds the pool (the handler inside
 * tcmu-runner, or vlunctl when nothing holds it); vlunctl reaches the
 * holder through the control channel (ctl.h). Copies run on the pool's job
 * thread while hosts do I/O: the region being copied (at most 1 MiB) gets
 * NO_WRITE, writes to it wait in the controller, the copy lands, the map
 * entry flips in one metadata change, writes resume. Ranges are in bytes;
 * length 0 = to the end of the disk.
 */

/* Adds a second copy of [offset, offset+length) of a virtual disk on
 * other members (members/nmembers restricts where; NULL = any member other
 * than the one holding the primary). The new copies are marked behind and
 * the resync fills them. A thin disk mirrored as a whole also mirrors the
 * chunks it allocates later. -ENOSPC when the members lack room (nothing
 * changes then). */
int vlun_mirror_add(struct vlun_pool *p, const char *vdisk, uint64_t offset, uint64_t length,
		    const uint32_t *members, size_t nmembers, char **ret_reason);
/* Drops one copy of a mirrored range: the copy on member (VLUN_NO_MEMBER:
 * the alternates). Dropping the only good copy is refused (-EBUSY). */
int vlun_mirror_remove(struct vlun_pool *p, const char *vdisk, uint64_t offset, uint64_t length,
		       uint32_t member, char **ret_reason);
/* Splits a fully mirrored, fully in-sync virtual disk: its alternates
 * become a new virtual disk new_name (a point-in-time copy), the source
 * keeps its primaries. Writes are held for the moment of the split. */
int vlun_mirror_split(struct vlun_pool *p, const char *vdisk, const char *new_name, char **ret_reason);

enum vlun_job_kind {
	VLUN_JOB_RESYNC = 1,  /* copies dirty mirror regions (automatic) */
	VLUN_JOB_MIGRATE = 2, /* moves extents to other members (persistent) */
	VLUN_JOB_ROLLBACK = 3, /* vlun_snapshot_rollback() restoring a source (not persistent) */
};
enum vlun_job_state {
	VLUN_JOB_QUEUED = 0, VLUN_JOB_RUNNING = 1, VLUN_JOB_DONE = 2, VLUN_JOB_FAILED = 3,
	VLUN_JOB_CANCELLED = 4, VLUN_JOB_WAITING = 5, /* blocked: e.g. a member is failed */
};

struct vlun_migrate_opts {
	const char *vdisk;        /* NULL: every virtual disk */
	uint64_t offset, length;  /* bytes; length 0 = to the end (only with vdisk) */
	uint32_t from_member;     /* move what lies on this member (VLUN_NO_MEMBER: the range) */
	const uint32_t *to;       /* target members (NULL: any other healthy member) */
	size_t nto;
	uint64_t rate;            /* bytes per second, 0 = unlimited */
};
/* Starts a migration; it is recorded in the metadata and resumes after a
 * restart of the holder until done or cancelled. */
int vlun_migrate_start(struct vlun_pool *p, const struct vlun_migrate_opts *o, uint32_t *ret_job_id,
		       char **ret_reason);
/* Resync rate limit (bytes/s, 0 unlimited) and an immediate probe of
 * failed members followed by a resync pass. */
int vlun_resync_start(struct vlun_pool *p, uint64_t rate, char **ret_reason);

struct vlun_job_info {
	uint32_t id;              /* 0 for the resync */
	uint32_t kind;            /* enum vlun_job_kind */
	uint32_t state;           /* enum vlun_job_state */
	uint32_t vdisk_id;        /* UINT32_MAX: all */
	uint64_t total_bytes;     /* to copy (estimate, grows if writes dirty more) */
	uint64_t done_bytes;
	uint64_t rate;            /* limit, bytes/s (0 none) */
	uint64_t bytes_per_sec;   /* measured over the last seconds */
	uint64_t started;         /* unix time */
	char what[128];           /* "migrate vdisk 'a' off member 1", ... */
	char error[160];          /* last error, "" none */
};
/* Jobs of a held pool with their progress (caller frees *ret). */
int vlun_jobs_list(struct vlun_pool *p, struct vlun_job_info **ret, size_t *ret_n);
int vlun_job_cancel(struct vlun_pool *p, uint32_t id, char **ret_reason);
/* Runs the pool's jobs in the calling thread until none has work left
 * (vlunctl, when no handler holds the pool); progress(info, arg) is called
 * about once a second. 0, or the first job error. */
int vlun_jobs_run(struct vlun_pool *p, void (*progress)(const struct vlun_job_info *info, void *arg),
		  void *arg);

/* ------------------------------------------------------------ HA lock
 *
 * The node id of this process (before the first pool open; NULL restores
 * the default: $VLUN_NODE_ID, /etc/vlun/node-id, the hostname). */
int vlun_set_node_id(const char *id);
/* The effective node id (copied into buf) and its PR key. */
int vlun_node_id(char *buf, size_t len, uint64_t *ret_key);

enum vlun_lock_state {
	VLUN_LOCK_UNLOCKED = 0, /* standby: reads only */
	VLUN_LOCK_OWNER = 1,    /* this node writes */
	VLUN_LOCK_FENCED = 2,   /* preempted: no writes until the lock is taken again */
};
/* Takes ownership of a writable pool (HA failover): PREEMPT AND ABORT of
 * the previous owner's key on every member with PR, reload of the
 * metadata from disk, map_epoch + 1, a checkpoint recording this node as
 * owner with tag (0xffff: none). 0 also when already the owner. */
int vlun_pool_lock(struct vlun_pool *p, uint16_t tag, char **ret_reason);
/* Gives ownership up (commits what is pending; this node becomes standby). */
int vlun_pool_unlock(struct vlun_pool *p);
/* enum vlun_lock_state; checks the members' registrations (a preempted
 * node learns it here at the latest). */
int vlun_pool_lock_state(struct vlun_pool *p);
/* The owner's tag as the metadata on disk says: 0, -ENOENT no owner, or
 * -ENODATA an owner without a tag. */
int vlun_pool_lock_tag(struct vlun_pool *p, uint16_t *ret_tag);
/* fn(arg) is called once, from the pool's job thread, when the periodic
 * check (every 3 s) finds that another node took the pool over while this
 * one was the owner: this node is fenced from then on. A request that meets
 * the takeover first completes VLUN_E_FENCED instead; fn is not called for
 * it. The handler tells tcmu-runner the lock is lost, so the next write it
 * gets takes the lock again cleanly. NULL fn: no call. Set it before I/O;
 * it must not call back into the pool. */
void vlun_pool_on_fenced(struct vlun_pool *p, void (*fn)(void *arg), void *arg);
/* Sets the pool's PR mode (owner only; applies at the next open). */
int vlun_pool_set_pr_mode(struct vlun_pool *p, uint32_t mode, char **ret_reason);

/* Fault injection for tests and drills: while fail is true, every I/O
 * the engine sends to the member fails with EIO without reaching it (as
 * a dead path would). */
int vlun_pool_inject_member_fault(struct vlun_pool *p, uint32_t member, bool fail);

/* --------------------------------------------------- snapshot sessions
 *
 * Like the mirror calls, these run in the process holding the pool
 * (vlunctl reaches a handler through the control channel). A snapshot is
 * opened for I/O as vlun_vdisk_open(p, "<source>@<snapshot>", flags):
 * read-only unless flags has VLUN_VDISK_OPEN_WRITABLE (cfgstring option
 * "rw"); its writes are copied-on-write into the reserve as private
 * chunks of that session.
 */
struct vlun_snapshot_create_opts {
	const char *source;            /* source vdisk name */
	const char *name;              /* the session's name */
	/* used when the source has no store yet (its first session), or to
	 * grow/change it: */
	uint64_t reserve_bytes;        /* 0: keep, or 20% of the source for a new store */
	uint64_t chunk_bytes;          /* 0: VLUN_SNAP_DEFAULT_CHUNK; fixed once the store exists */
	int full_policy;               /* enum vlun_snap_full_policy, or -1: keep / default */
};
int vlun_snapshot_create(struct vlun_pool *p, const struct vlun_snapshot_create_opts *o,
			 char **ret_reason);
/* Ends a session: chunks no other session needs go back to the reserve;
 * the last session of a source also deletes its reserve. Refused (-EBUSY)
 * while the snapshot is open for I/O. */
int vlun_snapshot_delete(struct vlun_pool *p, const char *source, const char *name,
			 char **ret_reason);
/* Restores the source's content from the session (the session stays, and
 * the source's other sessions keep their content: the restoring writes go
 * through copy-on-first-write like any other). Refused (-EBUSY) while the
 * source or the snapshot is open for I/O by anyone else, or while another
 * rollback runs in the pool. While it copies, vlun_jobs_list() shows it as
 * a VLUN_JOB_ROLLBACK job (bytes of the session's saved chunks, done,
 * rate); it stays listed as done or failed for a while after. */
int vlun_snapshot_rollback(struct vlun_pool *p, const char *source, const char *name,
			   char **ret_reason);
/* Grows the reserve and/or changes the full policy (-1 keep) of a source's store. */
int vlun_snapshot_reserve_set(struct vlun_pool *p, const char *source, uint64_t reserve_bytes,
			      int full_policy, char **ret_reason);

struct vlun_snapshot_info {
	struct vlun_snap_desc d;
	char source[VLUN_NAME_MAX + 1];
	uint64_t chunk_bytes;
	uint64_t saved_bytes;          /* saved chunks this session needs (shared ones included) */
	uint64_t shared_bytes;         /* of those, needed by other sessions too */
	uint64_t reserve_used_bytes;   /* of the source's whole reserve */
	uint64_t reserve_total_bytes;
	uint32_t full_policy;
	bool open;                     /* exported / open for I/O in the holder */
};
/* Sessions of one source (NULL: all) with their usage (caller frees *ret). */
int vlun_snapshot_list(struct vlun_pool *p, const char *source, struct vlun_snapshot_info **ret,
		       size_t *ret_n);

/* ------------------------------------------------------ virtual disk I/O
 *
 * The fast path. vlun_vdisk_submit() looks the range up in the current map
 * (no lock the metadata commit holds), splits it into physical I/Os and
 * submits them with io_uring; it never waits for the controller. A write
 * that hits an INVALID (thin, unallocated) or NO_WRITE extent is handed to
 * the controller thread, which allocates/commits and then resubmits it.
 * The completion callback runs exactly once, on an engine thread, never
 * from inside vlun_vdisk_submit().
 */

enum vlun_op {
	VLUN_OP_READ = 0,
	VLUN_OP_WRITE = 1,
	VLUN_OP_FLUSH = 2,        /* data and pending metadata durable */
	VLUN_OP_UNMAP = 3,        /* give space back (thin); others: no-op */
	VLUN_OP_WRITE_ZEROES = 4, /* range reads as zeros afterwards; thin: may unmap */
};

enum vlun_req_flags {
	VLUN_REQ_FUA = 1u << 0, /* write: durable (data and its allocation) before completion */
};

/* Outcome of a request, translated to SCSI sense by the handler. */
enum vlun_status {
	VLUN_OK = 0,
	VLUN_E_READ = 1,      /* MEDIUM ERROR, unrecovered read error (03/11/00) */
	VLUN_E_WRITE = 2,     /* MEDIUM ERROR, write error (03/0c/00) */
	VLUN_E_RANGE = 3,     /* ILLEGAL REQUEST, LBA out of range (05/21/00) */
	VLUN_E_NOSPACE = 4,   /* DATA PROTECT, space allocation failed write protect (07/27/07) */
	VLUN_E_NOMEM = 5,     /* BUSY / retry */
	VLUN_E_HW = 6,        /* HARDWARE ERROR, internal target failure (04/44/00) */
	VLUN_E_READONLY = 7,  /* DATA PROTECT, write protected (07/27/00) */
	VLUN_E_FENCED = 8,    /* lost ownership (HA) */
};

struct vlun_req;
typedef void (*vlun_req_done_fn)(struct vlun_req *req, enum vlun_status st);

struct vlun_req {
	/* set by the caller */
	uint32_t op;            /* enum vlun_op */
	uint32_t flags;         /* enum vlun_req_flags */
	uint64_t offset;        /* bytes, multiple of 512 */
	uint64_t length;        /* bytes, multiple of 512 */
	const struct iovec *iov;/* READ/WRITE data; not copied: valid until done */
	int iovcnt;
	vlun_req_done_fn done;
	void *priv;             /* caller's cookie */
	/* filled in on error: the first failing byte offset (for sense INFORMATION) */
	uint64_t err_offset;
	/* engine-private, do not touch */
	void *internal[4];
};

enum vlun_vdisk_open_flags {
	VLUN_VDISK_OPEN_RDONLY = 1u << 0,   /* writes fail VLUN_E_READONLY (same bit as VLUN_OPEN_RDONLY) */
	VLUN_VDISK_OPEN_WRITABLE = 1u << 1, /* "<source>@<snapshot>": writes allowed (else DATA PROTECT) */
};
/* Opens a virtual disk of an open pool for I/O (starts the engine threads
 * on first use). name "<source>@<snapshot>" opens a snapshot session. */
int vlun_vdisk_open(struct vlun_pool *p, const char *name, unsigned flags,
		    struct vlun_vdisk **ret, char **ret_reason);
void vlun_vdisk_close(struct vlun_vdisk *vd); /* waits for in-flight requests */
uint64_t vlun_vdisk_size(const struct vlun_vdisk *vd);
uint32_t vlun_vdisk_layout(const struct vlun_vdisk *vd);
uint64_t vlun_vdisk_chunk_bytes(const struct vlun_vdisk *vd); /* thin chunk / stripe; 0 linear */

/* 0 when queued (done() will be called), or negative errno if it could not
 * be queued (-EINVAL bad range/alignment, -ENOMEM). */
int vlun_vdisk_submit(struct vlun_vdisk *vd, struct vlun_req *req);

/* GET LBA STATUS support: the provisioning status of the run starting at
 * offset (bytes): mapped (1), deallocated (0, reads zeros) — and its length
 * in bytes (up to max_len). */
int vlun_vdisk_lba_status(struct vlun_vdisk *vd, uint64_t offset, uint64_t max_len,
			  bool *ret_mapped, uint64_t *ret_len);

#ifdef __cplusplus
}
#endif
#endif
