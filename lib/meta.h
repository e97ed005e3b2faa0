/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * meta.h — the on-disk format of a vlun member and the pool metadata.
 * The layout and the commit order are described at the top of meta.c.
 */
#ifndef VLUN_META_H
#define VLUN_META_H

#include "blkdev.h"
#include "vlun.h"

#define VLUN_META_FORMAT_MAJOR 1
#define VLUN_META_FORMAT_MINOR 0
#define VLUN_META_DEFAULT_BYTES (64ull << 20) /* per member: 2 slots + journal */
#define VLUN_META_MIN_BYTES (1ull << 20)

/* The label of one member, as read from it. */
struct vlun_label {
	uint8_t pool_uuid[VLUN_UUID_LEN];
	uint8_t member_uuid[VLUN_UUID_LEN];
	char pool_name[VLUN_NAME_MAX + 1];
	uint32_t major, minor;
	uint64_t incompat, ro_compat, compat; /* feature bits */
	uint64_t member_size;     /* bytes, when labelled */
	uint64_t meta_offset;     /* bytes: start of the metadata area */
	uint64_t meta_bytes;      /* bytes: whole metadata area (slots + journal) */
	uint64_t data_start;      /* sector: first sector of the data area */
	/* where the parts of the metadata area are (bytes from the member's start) */
	uint64_t label_offset;    /* the label's own location (4096) */
	uint64_t slot_bytes;      /* each checkpoint slot; A at meta_offset, B right after */
	uint64_t journal_offset;  /* journal ring: after slot B up to the area's end */
	uint64_t journal_bytes;
	uint64_t created;         /* unix time the label was written */
};

/* Writes a new label on d (no metadata yet). The data area starts after the
 * metadata area, aligned to 1 MiB. Refuses (-EEXIST) if d has a valid vlun
 * label unless force. Fills *ret_label. */
int vlun_meta_label_write(struct vlun_blkdev *d, const uint8_t pool_uuid[VLUN_UUID_LEN],
			  const uint8_t member_uuid[VLUN_UUID_LEN], const char *pool_name,
			  uint64_t meta_bytes, bool force, struct vlun_label *ret_label);
/* Reads and checks the label: -ENOENT no vlun label (wrong magic),
 * -EUCLEAN corrupt (bad crc), -EPROTONOSUPPORT newer incompatible major or
 * unknown incompat feature. why says which. */
int vlun_meta_label_read(struct vlun_blkdev *d, struct vlun_label *ret, char *why, size_t whylen);

/* A set of members being read or committed together. */
struct vlun_meta_member {
	struct vlun_blkdev *dev;
	struct vlun_label label;
	/* filled by load: */
	uint64_t newest_seq;      /* newest valid seq found on this member (0 none) */
	char problem[160];        /* what was wrong with this member's copies, "" if none */
};

/* Delta records for the journal: the replacement of a vdisk's extents over
 * [vsector, vsector+nsectors) by a new run of extents. */
struct vlun_meta_delta {
	uint32_t vdisk_id;
	uint64_t vsector, nsectors;
	uint32_t nextents;
	const struct vlun_extent *extents;
	uint64_t generation;      /* the vdisk's generation after this delta */
};

struct vlun_meta;  /* commit state: which slot is next, journal position, seq */

/* Reads every copy (both slots, then the journal) on every member and
 * returns the newest valid state. Members whose copies are all invalid or
 * older are described in their ->problem. Refuses with -EUCLEAN and a reason
 * naming the member and the problem when no valid copy exists. */
int vlun_meta_load(struct vlun_meta_member *m, size_t n, struct vlun_pool_desc **ret_desc,
		   struct vlun_meta **ret_state, char *why, size_t whylen);
/* Creates commit state for a brand new pool (after labels were written). */
int vlun_meta_init(struct vlun_meta_member *m, size_t n, struct vlun_meta **ret_state);
void vlun_meta_free(struct vlun_meta *st);

/* Full checkpoint: writes d (with seq = last+1) to the older slot of every
 * member, then flushes. Resets the journal. Returns 0 when at least the
 * copies on all healthy members are durable; -EIO if none could be written.
 * d->seq is updated. Members added to m since the last commit are fine. */
int vlun_meta_commit(struct vlun_meta *st, struct vlun_meta_member *m, size_t n,
		     struct vlun_pool_desc *d);
/* Appends deltas as one journal record (seq = last+1) on every member and
 * flushes; falls back to a checkpoint of d when the journal is full. d must
 * already contain the change. */
int vlun_meta_commit_delta(struct vlun_meta *st, struct vlun_meta_member *m, size_t n,
			   struct vlun_pool_desc *d, const struct vlun_meta_delta *deltas,
			   size_t ndeltas);

/* HA: the seq and map_epoch of the newest valid checkpoint header of m
 * (the headers only, 2 x 4 KiB: cheap enough before every commit).
 * -ENOENT no valid header, or the read error. */
int vlun_meta_peek_epoch(struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN],
			 uint64_t *ret_seq, uint64_t *ret_epoch);

/* HA standby: whether the metadata on disk moved past st (the state this
 * process loaded): a newer checkpoint header, or a journal record at st's
 * next position that follows st's checkpoint with a newer seq. Reads the
 * two slot headers and one journal block of the first member that
 * answers (3 x 4 KiB). A torn record also says changed: the caller's
 * reload decides. 0 with *ret_changed, or the read error of every member. */
int vlun_meta_peek_changed(const struct vlun_meta *st, struct vlun_meta_member *m, size_t n,
			   bool *ret_changed);

/* Codec of the checkpoint payload (exposed for tests and the fuzzer). */
int vlun_meta_encode(const struct vlun_pool_desc *d, uint8_t **ret_buf, size_t *ret_len);
int vlun_meta_decode(const uint8_t *buf, size_t len, struct vlun_pool_desc **ret,
		     char *why, size_t whylen);
/* Applies a delta to a description (used by replay and by pool.c). */
int vlun_meta_apply_delta(struct vlun_pool_desc *d, const struct vlun_meta_delta *delta);

/* Per-copy inspection for `vlunctl check` / `repair` (issue 8). Read-only:
 * the label, both checkpoint slots and the journal chain that follows the
 * member's newest valid checkpoint. seq: the slot's checkpoint seq (also
 * for a bad copy whose header was intact), for the journal the seq of the
 * last good record of the chain (the checkpoint's when there is none);
 * records: journal records in that chain. A journal copy is BAD when the
 * record after the chain's end claims to continue it but fails its checks
 * (torn, crc), which is also what an interrupted commit leaves. */
enum vlun_meta_copy_state {
	VLUN_COPY_VALID = 0,
	VLUN_COPY_EMPTY = 1,       /* never written (a new pool's second slot) */
	VLUN_COPY_BAD = 2,         /* torn, crc mismatch, undecodable, misplaced */
	VLUN_COPY_UNSUPPORTED = 3, /* written by a newer, incompatible vlun */
};
enum { VLUN_COPY_LABEL = 0, VLUN_COPY_SLOT_A = 1, VLUN_COPY_SLOT_B = 2, VLUN_COPY_JOURNAL = 3,
       VLUN_COPY_N = 4 };
struct vlun_meta_copy {
	uint32_t state;      /* enum vlun_meta_copy_state */
	uint64_t offset;     /* bytes from the member's start */
	uint64_t seq;
	uint32_t records;    /* journal only */
	char why[160];       /* what is wrong, "" when VALID/EMPTY */
};
/* Inspects the copies of member m (its label already read into m->label)
 * for the pool pool_uuid; fills ret[VLUN_COPY_N]. 0 or -errno (-ENOMEM). */
int vlun_meta_inspect(struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN],
		      struct vlun_meta_copy ret[VLUN_COPY_N]);
/* The name of a copy index ("label", "slot A", "slot B", "journal"). */
const char *vlun_meta_copy_name(int idx);

#endif
