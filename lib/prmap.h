/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prmap.h — open modes → SCSI-3 persistent reservations on every path of a
 * device (a dm-multipath map, a SCSI disk, or an explicit list of paths).
 *
 * Shared by the engine (pool members) and the host tool (tools/vlun-pr).
 * Pure C: no tcmu. Per path, PR IN/OUT go through SG_IO (libsgutils2); the
 * reservation commands (RESERVE, RELEASE, PREEMPT [AND ABORT], CLEAR) go
 * through the kernel's block PR ioctls on the device itself when it is a
 * dm-multipath map (the kernel routes them to a working path), else
 * through SG_IO on a registered path.
 *
 * Mode → PR table (prmap_plan(); every row is a unit test):
 *
 *   mode        registers     reserves (SCSI type)          admitted when the LUN is
 *                                                           already reserved by another key
 *   exclusive   every path    Write Exclusive – Registrants  no: -EBUSY (take it over with
 *                             Only (5); with access=true     prmap_preempt)
 *                             Exclusive Access – RO (6)
 *   shared      every path    Write Exclusive – All          yes if the reservation is an
 *                             Registrants (7); access=true:  all-registrants type (7, 8):
 *                             Exclusive Access – AR (8).     join by registering only;
 *                             The first node reserves, the   no (-EBUSY) for 1, 3, 5, 6
 *                             others join.
 *   readonly    every path    nothing                        yes, except Exclusive Access (3),
 *                                                           which a registrant cannot read
 *
 * Why Registrants Only for "exclusive" and not plain Write Exclusive (1):
 * with types 1 and 3 the SPC holder is the one I_T nexus that reserved, so
 * on a multipath device writes through every OTHER path fail with
 * RESERVATION CONFLICT (LIO checks initiator name and ISID). With type 5
 * every registered path of this node may write, and so may nobody else
 * unless it registers — which a prmap in any mode refuses to do under
 * another node's exclusive reservation. opts.type overrides the type for
 * single-path devices (1 and 3 then work as SPC says).
 *
 * Why read-only registers: the node shows in READ KEYS (an administrator or
 * a cluster sees who has the LUN open), can be fenced by PREEMPT, and may
 * read under the Exclusive Access – Registrants Only / All Registrants
 * types. Registration also grants write permission under types 5–8: a
 * read-only opener must open the device O_RDONLY (prmap does not).
 *
 * Keys: one 64-bit key per node, never 0 (prmap_key_from_node_id()).
 * Registration uses REGISTER AND IGNORE EXISTING KEY, so a leftover
 * registration of the same node is taken over, never an error.
 *
 * Fencing: a node whose key has been preempted must not register again on
 * its own: prmap_refresh() registers a returning path only while the
 * node's key is still registered on the LUN, and otherwise reports the
 * handle fenced (-EPERM), like multipathd's reservation_key handling.
 *
 * Threads: no global state; every call on one handle is serialized by the
 * handle's mutex, so one handle may be used from several threads. Errors:
 * 0 or a negative errno; -EBUSY reservation conflict / held by another key,
 * -EPERM fenced, -EAGAIN unit attentions did not stop, -EIO other SCSI
 * failure, -ENODEV no usable path. prmap_last_error() is the message of
 * the last failure (device, path, command, SCSI status/sense), and every
 * failure is also logged through vlun_log.
 */
#ifndef VLUN_PRMAP_H
#define VLUN_PRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SCSI persistent reservation types (SPC-4, PERSISTENT RESERVE OUT TYPE) */
enum prmap_type {
	PRMAP_TYPE_NONE = 0,
	PRMAP_TYPE_WE = 1,      /* Write Exclusive */
	PRMAP_TYPE_EA = 3,      /* Exclusive Access */
	PRMAP_TYPE_WE_RO = 5,   /* Write Exclusive – Registrants Only */
	PRMAP_TYPE_EA_RO = 6,   /* Exclusive Access – Registrants Only */
	PRMAP_TYPE_WE_AR = 7,   /* Write Exclusive – All Registrants */
	PRMAP_TYPE_EA_AR = 8,   /* Exclusive Access – All Registrants */
};

enum prmap_mode {
	PRMAP_EXCLUSIVE = 0,
	PRMAP_SHARED,
	PRMAP_READONLY,
	PRMAP_NONE,             /* prmap_attach(): no PR action at open or close */
};

/* PR service actions (PERSISTENT RESERVE IN / OUT) */
enum {
	PRMAP_IN_READ_KEYS = 0, PRMAP_IN_READ_RESERVATION = 1,
	PRMAP_IN_REPORT_CAPABILITIES = 2, PRMAP_IN_READ_FULL_STATUS = 3,
};
enum {
	PRMAP_OUT_REGISTER = 0, PRMAP_OUT_RESERVE = 1, PRMAP_OUT_RELEASE = 2,
	PRMAP_OUT_CLEAR = 3, PRMAP_OUT_PREEMPT = 4, PRMAP_OUT_PREEMPT_ABORT = 5,
	PRMAP_OUT_REGISTER_IGNORE = 6,
};

/* What a mode does (the table above). */
struct prmap_plan {
	bool register_paths;
	enum prmap_type reserve_type;   /* NONE: no reservation */
};
/* 0, or -EINVAL for an unknown mode or a type override (type != NONE)
 * that is not a SCSI type or is given with readonly. access selects the
 * Exclusive Access variant of the mode's type. */
int prmap_plan(enum prmap_mode mode, bool access, enum prmap_type type, struct prmap_plan *ret);

/* The reservation as READ RESERVATION reports it. */
struct prmap_resv {
	bool present;
	uint64_t key;                  /* 0 for the all-registrants types */
	enum prmap_type type;
};
enum prmap_action {
	PRMAP_ACT_RESERVE,             /* no reservation: take it */
	PRMAP_ACT_NOTHING,             /* nothing to reserve (readonly), or ours already */
	PRMAP_ACT_JOIN,                /* shared: another node reserved all-registrants: register only */
	PRMAP_ACT_CONFLICT,            /* held in a way this mode cannot accept */
};
/* What to do when opening in `plan` with `key`, given the reservation. */
enum prmap_action prmap_decide(const struct prmap_plan *plan, uint64_t key, const struct prmap_resv *resv);

/* A node's key: FNV-1a 64 of the id, never 0 (0 maps to a fixed value).
 * The same id gives the same key on every node and every run. 0 or
 * -EINVAL for an empty id. */
int prmap_key_from_node_id(const char *node_id, uint64_t *ret_key);
/* "0x1234abcd", "1234abcd" (hex) — strict; 0 is refused (-EINVAL). */
int prmap_parse_key(const char *s, uint64_t *ret_key);
/* "exclusive"|"shared"|"readonly"; type names "we", "ea", "we-ro", ... */
int prmap_parse_mode(const char *s, enum prmap_mode *ret);
int prmap_parse_type(const char *s, enum prmap_type *ret);
const char *prmap_mode_name(enum prmap_mode mode);
const char *prmap_type_name(enum prmap_type type);      /* "Write Exclusive - Registrants Only" */
const char *prmap_type_short(enum prmap_type type);     /* "we-ro" */

/* Decoders of PERSISTENT RESERVE IN parameter data (SPC-4 6.16). */
struct prmap_keys {
	uint32_t generation;
	size_t n;                      /* keys in the data (may exceed the buffer's) */
	size_t n_stored;
	uint64_t keys[64];
};
/* -EBADMSG for data too short for its header; a truncated key list sets
 * n > n_stored. */
int prmap_decode_keys(const uint8_t *buf, size_t len, struct prmap_keys *ret);
int prmap_decode_reservation(const uint8_t *buf, size_t len, uint32_t *ret_generation, struct prmap_resv *ret);

/* Path discovery under a sysfs root ("/sys" unless testing) for a kernel
 * block device name ("dm-3", "sdb"): a dm-multipath map gives its slaves,
 * a SCSI disk itself. Paths are "<dev_root>/<name>" ("/dev/sdb"), sorted.
 * -ENOENT no such device, -EINVAL a partition or a dm device that is not a
 * multipath map, -EOPNOTSUPP not a SCSI disk. *ret_is_mpath says whether
 * the device is a dm-multipath map. Free with prmap_strv_free(). */
int prmap_discover(const char *sysfs_root, const char *dev_root, const char *kname,
		   char ***ret_paths, size_t *ret_n, bool *ret_is_mpath);
void prmap_strv_free(char **v, size_t n);
/* The kernel name of a block device node ("/dev/mapper/mpatha" → "dm-0"),
 * through /sys/dev/block/MAJ:MIN. */
int prmap_kernel_name(const char *sysfs_root, const char *device, char **ret_kname);

/* The transport: how PR commands reach a path or the whole device. The
 * default (NULL in prmap_opts) is SG_IO through libsgutils2 for paths and
 * the block PR ioctls for the device; tests plug in a model of a target.
 * Each returns 0, -EBUSY (RESERVATION CONFLICT), -EAGAIN (UNIT ATTENTION:
 * retried by prmap), -ENODEV/-ENXIO (path gone), -EOPNOTSUPP (dev_out:
 * use a path instead) or -EIO; on failure it writes the SCSI status or
 * sense in words to err. */
struct prmap_transport {
	int (*path_in)(void *ctx, const char *path, int sa, uint8_t *buf, size_t len,
		       char *err, size_t errlen);
	int (*path_out)(void *ctx, const char *path, int sa, enum prmap_type type,
			uint64_t rk, uint64_t sark, bool aptpl, char *err, size_t errlen);
	int (*dev_out)(void *ctx, const char *device, int sa, enum prmap_type type,
		       uint64_t rk, uint64_t sark, char *err, size_t errlen);
	void *ctx;
};

struct prmap_opts {
	enum prmap_mode mode;
	uint64_t key;                  /* this node's key, not 0 */
	bool access;                   /* Exclusive Access variant of the mode's type */
	enum prmap_type type;          /* override of the mode's type (NONE: the table) */
	bool no_aptpl;                 /* register without APTPL (default: with, as the kernel does) */
	const char *sysfs_root;        /* NULL: "/sys" */
	const char *dev_root;          /* NULL: "/dev" */
	const struct prmap_transport *transport;   /* NULL: SG_IO + block ioctls */
};

struct prmap;

/* Open `device` in opts->mode: discover its paths, refuse (-EBUSY) when
 * the reservation does not admit the mode, register every path, reserve
 * (or join). Paths that fail to register are left for prmap_refresh();
 * at least one must succeed. On failure nothing stays registered and
 * *ret_reason (may be NULL; free() it) says why: device, path, command
 * and the SCSI status or sense. */
int prmap_open(const char *device, const struct prmap_opts *opts, struct prmap **ret,
	       char **ret_reason);
/* The same over an explicit list of path devices (device names the set in
 * messages and gets the ioctls only if it is a block device; may be NULL). */
int prmap_open_paths(const char *device, const char *const *paths, size_t n,
		     const struct prmap_opts *opts, struct prmap **ret, char **ret_reason);
/* Only discover: no registration, no reservation (for show/preempt/release
 * by a tool). Mode and key still set what the later calls use. */
int prmap_attach(const char *device, const struct prmap_opts *opts, struct prmap **ret,
		 char **ret_reason);
/* prmap_attach over an explicit list of paths (as prmap_open_paths). */
int prmap_attach_paths(const char *device, const char *const *paths, size_t n,
		       const struct prmap_opts *opts, struct prmap **ret, char **ret_reason);

/* Rediscover the paths (a path logged out and back in is a new SCSI
 * device), register those not registered, while this node's key is still
 * on the LUN; -EPERM when it is not (fenced). *ret_registered (may be
 * NULL): how many paths were registered now. Run it every few seconds or
 * on a path event. */
int prmap_refresh(struct prmap *m, unsigned *ret_registered);

/* Register every path that is not yet (attach handles; open does this). */
int prmap_register(struct prmap *m);

/* HA takeover: PREEMPT (abort: PREEMPT AND ABORT, which also aborts the
 * victim's queued commands) the victim's key with this handle's type;
 * this node is registered first if it is not. With a registrants-only or
 * plain type this node then holds the reservation. */
int prmap_preempt(struct prmap *m, uint64_t victim, bool abort);

/* Release the reservation if this key holds it (not for all-registrants
 * types, where a release would end it for every node), then unregister
 * every path. The handle stays usable (prmap_register again). */
int prmap_release(struct prmap *m);
/* CLEAR: drop every registration and the reservation (administrator). */
int prmap_clear(struct prmap *m);

/* The state seen through each path: READ KEYS and READ RESERVATION. */
struct prmap_path_state {
	char *path;
	char *hctl;                    /* SCSI address H:C:T:L, NULL if unknown */
	bool registered;               /* by this handle (its own bookkeeping) */
	int err;                       /* 0, or why the path answered nothing */
	struct prmap_keys keys;
	uint32_t resv_generation;
	struct prmap_resv resv;
};
struct prmap_state {
	char *device;
	bool is_mpath;
	bool fenced;
	uint64_t key;
	size_t n_paths;
	struct prmap_path_state *paths;
};
int prmap_get_state(struct prmap *m, struct prmap_state **ret);
void prmap_state_free(struct prmap_state *s);

bool prmap_fenced(struct prmap *m);
uint64_t prmap_key(struct prmap *m);
/* The message of the last failure on this handle ("" if none); valid until
 * the next call on the handle. */
const char *prmap_last_error(struct prmap *m);

/* prmap_release() (errors logged) and free. NULL is fine. */
void prmap_close(struct prmap *m);
/* Free without any PR command: registrations and reservation stay. */
void prmap_free(struct prmap *m);

#endif
