/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * meta.c — the on-disk format of a vlun member and the crash-safe pool
 * metadata.
 *
 * ====================================================================
 * Member layout (all integers little-endian, encoded field by field)
 * ====================================================================
 *
 *   0 ........ 4095   untouched (partition table, boot sector, other labels)
 *   4096 ..... 8191   LABEL block (4 KiB)
 *   8192 ............ METADATA AREA (meta_bytes, default 64 MiB, min 1 MiB,
 *                     grown to end on a 1 MiB boundary so no space is lost)
 *                       slot A      slot_bytes   checkpoint copy
 *                       slot B      slot_bytes   checkpoint copy
 *                       journal     the rest     4 KiB-aligned records
 *   data_start ...... DATA AREA (1 MiB aligned) up to the end of the member
 *
 * The label is written once, when the member joins a pool; commits never
 * touch it. It records where every part of the metadata area is, so a
 * later version may size the parts differently without a format break.
 *
 * LABEL (the fixed part fits the first 512-byte sector of its block; the
 * rest of the block is reserved and written as zeros):
 *     0  magic "VLUNLABL"          8     72  pool name, NUL padded  64
 *     8  format major            u16    136  member size (bytes)   u64
 *    10  format minor            u16    144  label's own offset    u64
 *    12  crc32c of the 4 KiB     u32    152  meta area offset      u64
 *        block (this field = 0)         160  meta area bytes       u64
 *    16  incompat features       u64    168  slot bytes            u64
 *    24  ro_compat features      u64    176  journal offset        u64
 *    32  compat features         u64    184  journal bytes         u64
 *    40  pool uuid                16    192  data start (sector)   u64
 *    56  member uuid              16    200  created (unix time)   u64
 *
 * CHECKPOINT SLOT: a 4 KiB header block, then the payload.
 *     0  magic "VLUNCKPT"          8     56  seq                   u64
 *     8  major u16, 10 minor u16         64  payload length        u64
 *    12  crc32c of the 4 KiB     u32    72  payload crc32c        u32
 *        header block (field = 0)        76  slot (0 = A, 1 = B)   u32
 *    16  incompat/ro_compat/compat 3x u64 80  header's own offset   u64
 *    40  pool uuid                16     88  written (unix time)   u64
 *                                        96  map_epoch of the payload u64
 *        (offset 96 was zero before HA; older readers ignore it: the
 *        crc covers the whole block either way)
 *
 * MAP EPOCH (HA, lib/node.c): map_epoch is bumped by every change of the
 * pool's owner (vlun_pool_lock) and that change is always committed as a
 * checkpoint, so the newest checkpoint header of any member carries the
 * epoch on disk. Before every commit, a pool with more than one node in
 * its NODE record reads both slot headers of its members
 * (vlun_meta_peek_epoch) and refuses to write when the epoch on disk is
 * newer than its own: another node took the pool over; this node is
 * fenced (no data writes, no commits) until it takes the lock again.
 *
 * PAYLOAD (vlun_meta_encode): "VLUNMETA", major u16, minor u16, 4 reserved,
 * then typed records: type u16, flags u16, length u32 (of the body), body.
 * Flag bit 0 is MUST_UNDERSTAND: a reader that does not know the type
 * refuses the copy; other unknown records are skipped. Records, in order:
 *     POOL (1)   uuid, name[64], seq, generation, map_epoch, created,
 *                next_vdisk_id, nmembers, nvdisks, reserved      (128 B)
 *     MEMBER (2) index, state, uuid, size, data_start, data_sectors,
 *                path length u16, reserved u16, path bytes (52 B + path)
 *     VDISK (3)  id, layout, uuid, name[64], size, chunk, stripe_width,
 *                flags, generation, nextents, reserved (128 B), then the
 *                extents, 40 B each: nsectors, psector, alt_psector,
 *                member, alt_member, flags, dirty_id (vsector is implied:
 *                extents are contiguous from 0)
 *     JOB (16)   optional (not MUST_UNDERSTAND: a reader that skips it only
 *                forgets an unfinished migration): id, kind, vdisk id
 *                (UINT32_MAX all), from member, vsector, nsectors, rate,
 *                created, target member mask 4 x u64           (80 B)
 *     NODE (19)  optional, written only when the pool has nodes or a PR
 *                mode other than shared (a reader that skips it forgets
 *                which gateway node owns the pool, lib/node.c): PR mode
 *                u32 (0 shared, 1 exclusive, 2 none), number of nodes u32,
 *                reserved u64, then per node (96 B): node id[64], PR key
 *                u64, role u32 (0 standby, 1 owner, 2 fenced), lock tag
 *                u32 (0xffff none), since (unix time) u64, map_epoch of
 *                that role change u64                  (16 B + 96 B/node)
 *     END (4)    number of records before it, reserved; nothing may follow
 *     SNAP_STORE (18) MUST_UNDERSTAND (an older vlun must not write a source
 *                without copy-on-first-write): source id, reserve id,
 *                chunk_sectors u64, full policy, reserved      (24 B)
 *     SNAP (17)  MUST_UNDERSTAND: id, source id, bit, state, flags,
 *                reserved, created u64, name[64], why[128]     (224 B)
 *                (after the stores). The POOL record's last u32 (was
 *                reserved, 0) is next_snap_id. The reserve's slot table
 *                is not here: it lives in the reserve vdisk (snap.c).
 * Mirrors need no record of their own: ALT_EXISTS / ALT_DIRTY extents are
 * the mirror and its dirty regions (mirror.c). Types 17.. are kept for
 * later issues: snapshot sessions, node keys / PR registrations.
 *
 * JOURNAL RECORD (starts on a 4 KiB boundary of the journal, occupies its
 * length rounded up to 4 KiB):
 *     0  magic "VLUNJRNL"          8     48  checkpoint seq it follows u64
 *     8  major u16, 10 minor u16         56  length (header+deltas) u32
 *    12  crc32c over [0, length) u32     60  number of deltas       u32
 *    16  incompat features       u64    64  own position in journal u64
 *    24  pool uuid                16     72  pool generation after  u64
 *    40  seq                     u64    80..127 reserved
 *   128  deltas: type u16, flags u16 (MUST_UNDERSTAND), length u32, body.
 *        EXTENTS (1): vdisk id u32, nextents u32, vsector u64, nsectors u64,
 *        vdisk generation u64, then nextents extents as in the payload.
 *
 * ====================================================================
 * Sequence numbers and validity
 * ====================================================================
 * One counter, strictly increasing over checkpoints and journal records.
 * After checkpoint C, the journal is written from position 0 again with
 * records C+1, C+2, ... each naming C as the checkpoint it follows. A record
 * is replayed only if it names the chosen checkpoint and carries the next
 * seq, at the next position, with a good crc: leftovers from before the
 * last checkpoint are never replayed, and replay stops at the first gap.
 *
 * ====================================================================
 * Commit order (what survives a crash at each step)
 * ====================================================================
 * Checkpoint (vlun_meta_commit), seq S:
 *   1. On every member, write header + payload in one write to the slot
 *      that does NOT hold that member's newest valid copy.
 *        crash here: every member still has its previous newest copy (and
 *        the journal that follows it) untouched; a torn or unwritten new
 *        copy fails its crc. Load gives the old state — or S where some
 *        member's copy is complete, which is fine: the commit had not
 *        returned.
 *   2. Flush every member.
 *        crash here: as above, per member either copy may have landed.
 *   3. Return. From now S is on every member that did not fail; the next
 *      journal record is written at position 0 naming S.
 * Journal record (vlun_meta_commit_delta), seq S, following checkpoint C:
 *   1. Write the record at the current position on every member.
 *        crash here: the record is complete (replayed: new state) or torn
 *        (crc fails, replay stops before it: old state) on each member;
 *        replay takes a record from any member that has it.
 *   2. Flush every member; 3. return.
 *   When the record would not fit in the journal, a checkpoint is written
 *   instead (it resets the journal). After a failed write on any member,
 *   after a load and when a member is new, the next commit is a checkpoint,
 *   so stale or damaged copies are rewritten promptly.
 *
 * A copy that is bad (torn, crc mismatch, undecodable) never counts as a
 * member's newest copy, so the next checkpoint goes to that slot and never
 * over the newest good one.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "meta.h"

#define BLK 4096u
#define LABEL_OFFSET 4096u
#define META_OFFSET 8192u
#define DATA_ALIGN (1ull << 20)

/* features: none defined yet */
#define INCOMPAT_KNOWN 0ull
#define RO_COMPAT_KNOWN 0ull

static const char label_magic[8] = { 'V', 'L', 'U', 'N', 'L', 'A', 'B', 'L' };
static const char ckpt_magic[8] = { 'V', 'L', 'U', 'N', 'C', 'K', 'P', 'T' };
static const char jrnl_magic[8] = { 'V', 'L', 'U', 'N', 'J', 'R', 'N', 'L' };
static const char payload_magic[8] = { 'V', 'L', 'U', 'N', 'M', 'E', 'T', 'A' };

enum {
	L_MAGIC = 0, L_MAJOR = 8, L_MINOR = 10, L_CRC = 12, L_INCOMPAT = 16, L_RO_COMPAT = 24,
	L_COMPAT = 32, L_POOL_UUID = 40, L_MEMBER_UUID = 56, L_NAME = 72, L_MEMBER_SIZE = 136,
	L_SELF = 144, L_META_OFF = 152, L_META_BYTES = 160, L_SLOT_BYTES = 168, L_JOURNAL_OFF = 176,
	L_JOURNAL_BYTES = 184, L_DATA_START = 192, L_CREATED = 200, L_FIXED_END = 208,
};
static_assert(L_FIXED_END <= 512, "label fixed header must fit one 512-byte sector");
static_assert(L_NAME + VLUN_NAME_MAX + 1 == L_MEMBER_SIZE, "label name field");

enum {
	C_MAGIC = 0, C_MAJOR = 8, C_MINOR = 10, C_CRC = 12, C_INCOMPAT = 16, C_RO_COMPAT = 24,
	C_COMPAT = 32, C_POOL_UUID = 40, C_SEQ = 56, C_PAYLOAD_LEN = 64, C_PAYLOAD_CRC = 72,
	C_SLOT = 76, C_SELF = 80, C_TIME = 88, C_FIXED_END = 96,
};
static_assert(C_FIXED_END <= 512, "checkpoint header must fit one 512-byte sector");

enum {
	J_MAGIC = 0, J_MAJOR = 8, J_MINOR = 10, J_CRC = 12, J_INCOMPAT = 16, J_POOL_UUID = 24,
	J_SEQ = 40, J_CKPT_SEQ = 48, J_LENGTH = 56, J_NDELTAS = 60, J_SELF = 64, J_POOL_GEN = 72,
	J_FIXED_END = 80, J_HDR = 128,
};
static_assert(J_FIXED_END <= J_HDR && J_HDR <= 512, "journal record header must fit one sector");

/* payload */
#define REC_MUST_UNDERSTAND 0x1u
enum { REC_POOL = 1, REC_MEMBER = 2, REC_VDISK = 3, REC_END = 4, REC_JOB = 16, REC_SNAP = 17,
       REC_SNAP_STORE = 18 };
enum { SNAP_BODY = 224, SNAP_STORE_BODY = 24 };
enum { REC_HDR = 8, PREAMBLE = 16, POOL_BODY = 128, MEMBER_BODY = 52, VDISK_BODY = 128,
       END_BODY = 8, EXT_BYTES = 40, JOB_BODY = 80 };
enum { DELTA_EXTENTS = 1, DELTA_EXTENTS_BODY = 32 };
enum { REC_NODE = 19, NODE_HDR = 16, NODE_BODY = 96, C_EPOCH = 96 /* checkpoint header: map_epoch */ };

/* ------------------------------------------------------------------ helpers */

static void whyf(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Appends "; text" to a member's problem (truncated to fit). */
static void problem_add(struct vlun_meta_member *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem_add(struct vlun_meta_member *m, const char *fmt, ...)
{
	size_t used = strnlen(m->problem, sizeof(m->problem) - 1);
	va_list ap;

	if (used > 0 && used + 2 < sizeof(m->problem)) {
		memcpy(m->problem + used, "; ", 3);
		used += 2;
	}
	if (used + 1 >= sizeof(m->problem))
		return;
	va_start(ap, fmt);
	vsnprintf(m->problem + used, sizeof(m->problem) - used, fmt, ap);
	va_end(ap);
}

static void *blk_alloc(size_t len)
{
	void *p;

	if (len == 0)
		len = BLK;
	if (posix_memalign(&p, BLK, VLUN_ALIGN_UP(len, BLK)))
		return NULL;
	memset(p, 0, VLUN_ALIGN_UP(len, BLK));
	return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* crc32c of a block whose crc field (4 bytes at crc_off) counts as zero. */
static uint32_t crc_skip(const uint8_t *p, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = vlun_crc32c(0, p, crc_off);

	c = vlun_crc32c(c, zero, 4);
	return vlun_crc32c(c, p + crc_off + 4, len - crc_off - 4);
}

static const char *slot_name(int s)
{
	return s ? "B" : "A";
}

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

/* ------------------------------------------------------------------ label */

static void label_encode(const struct vlun_label *l, uint8_t *b)
{
	memset(b, 0, BLK);
	memcpy(b + L_MAGIC, label_magic, 8);
	vlun_put_le16(b + L_MAJOR, (uint16_t)l->major);
	vlun_put_le16(b + L_MINOR, (uint16_t)l->minor);
	vlun_put_le64(b + L_INCOMPAT, l->incompat);
	vlun_put_le64(b + L_RO_COMPAT, l->ro_compat);
	vlun_put_le64(b + L_COMPAT, l->compat);
	memcpy(b + L_POOL_UUID, l->pool_uuid, VLUN_UUID_LEN);
	memcpy(b + L_MEMBER_UUID, l->member_uuid, VLUN_UUID_LEN);
	memcpy(b + L_NAME, l->pool_name, strnlen(l->pool_name, VLUN_NAME_MAX));
	vlun_put_le64(b + L_MEMBER_SIZE, l->member_size);
	vlun_put_le64(b + L_SELF, l->label_offset);
	vlun_put_le64(b + L_META_OFF, l->meta_offset);
	vlun_put_le64(b + L_META_BYTES, l->meta_bytes);
	vlun_put_le64(b + L_SLOT_BYTES, l->slot_bytes);
	vlun_put_le64(b + L_JOURNAL_OFF, l->journal_offset);
	vlun_put_le64(b + L_JOURNAL_BYTES, l->journal_bytes);
	vlun_put_le64(b + L_DATA_START, l->data_start);
	vlun_put_le64(b + L_CREATED, l->created);
	vlun_put_le32(b + L_CRC, crc_skip(b, BLK, L_CRC));
}

/* Decodes and checks a label block; dev_size 0 skips the size check. */
static int label_decode(const uint8_t *b, uint64_t dev_size, struct vlun_label *l, char *why, size_t whylen)
{
	uint64_t meta_end;

	if (memcmp(b + L_MAGIC, label_magic, 8)) {
		whyf(why, whylen, "no vlun label");
		return -ENOENT;
	}
	if (vlun_get_le32(b + L_CRC) != crc_skip(b, BLK, L_CRC)) {
		whyf(why, whylen, "label crc mismatch (corrupt label)");
		return -EUCLEAN;
	}
	memset(l, 0, sizeof(*l));
	l->major = vlun_get_le16(b + L_MAJOR);
	l->minor = vlun_get_le16(b + L_MINOR);
	l->incompat = vlun_get_le64(b + L_INCOMPAT);
	l->ro_compat = vlun_get_le64(b + L_RO_COMPAT);
	l->compat = vlun_get_le64(b + L_COMPAT);
	if (l->major > VLUN_META_FORMAT_MAJOR) {
		whyf(why, whylen, "label format %u.%u is newer than this vlun supports (%d.x); upgrade vlun",
		     l->major, l->minor, VLUN_META_FORMAT_MAJOR);
		return -EPROTONOSUPPORT;
	}
	if (l->incompat & ~INCOMPAT_KNOWN) {
		whyf(why, whylen, "label has unknown incompatible features 0x%llx; upgrade vlun",
		     (unsigned long long)(l->incompat & ~INCOMPAT_KNOWN));
		return -EPROTONOSUPPORT;
	}
	memcpy(l->pool_uuid, b + L_POOL_UUID, VLUN_UUID_LEN);
	memcpy(l->member_uuid, b + L_MEMBER_UUID, VLUN_UUID_LEN);
	memcpy(l->pool_name, b + L_NAME, VLUN_NAME_MAX + 1);
	l->member_size = vlun_get_le64(b + L_MEMBER_SIZE);
	l->label_offset = vlun_get_le64(b + L_SELF);
	l->meta_offset = vlun_get_le64(b + L_META_OFF);
	l->meta_bytes = vlun_get_le64(b + L_META_BYTES);
	l->slot_bytes = vlun_get_le64(b + L_SLOT_BYTES);
	l->journal_offset = vlun_get_le64(b + L_JOURNAL_OFF);
	l->journal_bytes = vlun_get_le64(b + L_JOURNAL_BYTES);
	l->data_start = vlun_get_le64(b + L_DATA_START);
	l->created = vlun_get_le64(b + L_CREATED);

	if (l->label_offset != LABEL_OFFSET) {
		whyf(why, whylen, "label says it lives at offset %llu, found at %u (misplaced copy)",
		     (unsigned long long)l->label_offset, LABEL_OFFSET);
		return -EUCLEAN;
	}
	if (l->pool_name[VLUN_NAME_MAX] != 0 || !vlun_name_valid(l->pool_name)) {
		whyf(why, whylen, "label has an invalid pool name");
		return -EUCLEAN;
	}
	meta_end = l->meta_offset + l->meta_bytes;
	if (l->meta_offset < LABEL_OFFSET + BLK || l->meta_offset % BLK || l->meta_bytes % BLK ||
	    l->meta_bytes > (1ull << 40) || l->slot_bytes % BLK || l->slot_bytes < 2 * BLK ||
	    l->journal_offset != l->meta_offset + 2 * l->slot_bytes || l->journal_bytes % BLK ||
	    l->journal_bytes < BLK || l->journal_offset + l->journal_bytes != meta_end ||
	    l->data_start > UINT64_MAX / VLUN_SECTOR_SIZE ||
	    l->data_start * VLUN_SECTOR_SIZE < meta_end ||
	    l->data_start * VLUN_SECTOR_SIZE > l->member_size) {
		whyf(why, whylen, "label describes an impossible layout (meta %llu+%llu, slots %llu, journal %llu+%llu, data at sector %llu, size %llu)",
		     (unsigned long long)l->meta_offset, (unsigned long long)l->meta_bytes,
		     (unsigned long long)l->slot_bytes, (unsigned long long)l->journal_offset,
		     (unsigned long long)l->journal_bytes, (unsigned long long)l->data_start,
		     (unsigned long long)l->member_size);
		return -EUCLEAN;
	}
	if (dev_size && dev_size < meta_end) {
		whyf(why, whylen, "device is %llu bytes, smaller than its label's metadata area (%llu); was it shrunk?",
		     (unsigned long long)dev_size, (unsigned long long)meta_end);
		return -EUCLEAN;
	}
	return 0;
}

VLUN_EXPORT int vlun_meta_label_read(struct vlun_blkdev *d, struct vlun_label *ret, char *why, size_t whylen)
{
	struct vlun_label l;
	uint8_t *b;
	int r;

	if (!d || !ret)
		return -EINVAL;
	if (d->size < LABEL_OFFSET + BLK) {
		whyf(why, whylen, "device too small to carry a vlun label");
		return -ENOENT;
	}
	b = blk_alloc(BLK);
	if (!b)
		return -ENOMEM;
	r = vlun_blkdev_pread(d, b, BLK, LABEL_OFFSET);
	if (r < 0) {
		whyf(why, whylen, "cannot read the label: %s", strerror(-r));
		goto out;
	}
	r = label_decode(b, d->size, &l, why, whylen);
	if (r == 0)
		*ret = l;
out:
	free(b);
	return r;
}

VLUN_EXPORT int vlun_meta_label_write(struct vlun_blkdev *d, const uint8_t pool_uuid[VLUN_UUID_LEN],
				      const uint8_t member_uuid[VLUN_UUID_LEN], const char *pool_name,
				      uint64_t meta_bytes, bool force, struct vlun_label *ret_label)
{
	struct vlun_label l = { 0 };
	uint64_t end, journal;
	uint8_t *b;
	int r;

	if (!d || !pool_uuid || !member_uuid || !pool_name || !vlun_name_valid(pool_name))
		return -EINVAL;
	if (d->lbs > BLK) {
		vlun_err("%s: logical block size %u is larger than vlun's 4 KiB metadata blocks", d->name, d->lbs);
		return -EOPNOTSUPP;
	}
	if (meta_bytes == 0)
		meta_bytes = VLUN_META_DEFAULT_BYTES;
	if (meta_bytes < VLUN_META_MIN_BYTES || meta_bytes > (1ull << 40)) {
		vlun_err("%s: metadata area of %llu bytes is out of range (%llu..%llu)", d->name,
			 (unsigned long long)meta_bytes, VLUN_META_MIN_BYTES, 1ull << 40);
		return -EINVAL;
	}
	/* The area runs to the 1 MiB boundary where data starts. */
	end = VLUN_ALIGN_UP(META_OFFSET + meta_bytes, DATA_ALIGN);
	if (d->size <= end) {
		vlun_err("%s: %llu bytes is too small: metadata needs %llu and the data area at least 1 sector",
			 d->name, (unsigned long long)d->size, (unsigned long long)end);
		return -ENOSPC;
	}
	meta_bytes = end - META_OFFSET;
	journal = meta_bytes / 4 / BLK * BLK;
	l.slot_bytes = (meta_bytes - journal) / 2 / BLK * BLK;

	b = blk_alloc(BLK);
	if (!b)
		return -ENOMEM;
	r = vlun_blkdev_pread(d, b, BLK, LABEL_OFFSET);
	if (r < 0) {
		vlun_err("%s: cannot read the label block: %s", d->name, strerror(-r));
		goto out;
	}
	if (!memcmp(b, label_magic, 8) && !force) {
		vlun_err("%s: already carries a vlun label; use force to overwrite it (destroys that pool's metadata)",
			 d->name);
		r = -EEXIST;
		goto out;
	}

	memcpy(l.pool_uuid, pool_uuid, VLUN_UUID_LEN);
	memcpy(l.member_uuid, member_uuid, VLUN_UUID_LEN);
	snprintf(l.pool_name, sizeof(l.pool_name), "%s", pool_name);
	l.major = VLUN_META_FORMAT_MAJOR;
	l.minor = VLUN_META_FORMAT_MINOR;
	l.member_size = d->size;
	l.label_offset = LABEL_OFFSET;
	l.meta_offset = META_OFFSET;
	l.meta_bytes = meta_bytes;
	l.journal_offset = META_OFFSET + 2 * l.slot_bytes;
	l.journal_bytes = end - l.journal_offset;
	l.data_start = end / VLUN_SECTOR_SIZE;
	l.created = now_s();

	/* Clear both slot headers and the journal's first block first, so that
	 * leftovers of an earlier pool can never be taken for ours; then the
	 * label; then flush. A crash before the label lands leaves no label. */
	memset(b, 0, BLK);
	for (int s = 0; s < 2 && r == 0; s++)
		r = vlun_blkdev_pwrite(d, b, BLK, l.meta_offset + (uint64_t)s * l.slot_bytes);
	if (r == 0)
		r = vlun_blkdev_pwrite(d, b, BLK, l.journal_offset);
	if (r == 0) {
		label_encode(&l, b);
		r = vlun_blkdev_pwrite(d, b, BLK, LABEL_OFFSET);
	}
	if (r == 0)
		r = vlun_blkdev_flush(d);
	if (r < 0) {
		vlun_err("%s: writing the label failed: %s", d->name, strerror(-r));
		goto out;
	}
	if (ret_label)
		*ret_label = l;
out:
	free(b);
	return r;
}

/* ------------------------------------------------------------ payload codec */

struct wr {
	uint8_t *p;
	size_t off;
};

static void w16(struct wr *w, uint16_t v) { vlun_put_le16(w->p + w->off, v); w->off += 2; }
static void w32(struct wr *w, uint32_t v) { vlun_put_le32(w->p + w->off, v); w->off += 4; }
static void w64(struct wr *w, uint64_t v) { vlun_put_le64(w->p + w->off, v); w->off += 8; }
static void wbytes(struct wr *w, const void *s, size_t n) { memcpy(w->p + w->off, s, n); w->off += n; }
static void wstr(struct wr *w, const char *s, size_t field)
{
	size_t n = strnlen(s, field - 1);

	memcpy(w->p + w->off, s, n);
	memset(w->p + w->off + n, 0, field - n);
	w->off += field;
}
static void wrec(struct wr *w, uint16_t type, uint16_t flags, uint32_t len)
{
	w16(w, type);
	w16(w, flags);
	w32(w, len);
}

static void wextent(struct wr *w, const struct vlun_extent *x)
{
	w64(w, x->nsectors);
	w64(w, x->psector);
	w64(w, x->alt_psector);
	w32(w, x->member);
	w32(w, x->alt_member);
	w32(w, x->flags);
	w32(w, x->dirty_id);
}

VLUN_EXPORT int vlun_meta_encode(const struct vlun_pool_desc *d, uint8_t **ret_buf, size_t *ret_len)
{
	size_t len = PREAMBLE + REC_HDR + POOL_BODY + REC_HDR + END_BODY;
	uint32_t nrec = 1;
	struct wr w;

	if (!d || !ret_buf || !ret_len)
		return -EINVAL;
	if (d->nmembers > VLUN_MAX_MEMBERS || d->nvdisks > VLUN_MAX_VDISKS ||
	    (d->nmembers && !d->members) || (d->nvdisks && !d->vdisks))
		return -EINVAL;
	for (uint32_t i = 0; i < d->nmembers; i++)
		len += REC_HDR + MEMBER_BODY + strnlen(d->members[i].path_hint, VLUN_PATH_MAX);
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		if (d->vdisks[i].nextents > VLUN_MAX_EXTENTS || (d->vdisks[i].nextents && !d->vdisks[i].extents))
			return -EINVAL;
		len += REC_HDR + VDISK_BODY + (size_t)d->vdisks[i].nextents * EXT_BYTES;
	}
	if (d->njobs && !d->jobs)
		return -EINVAL;
	len += (size_t)d->njobs * (REC_HDR + JOB_BODY);
	if ((d->nsnaps && !d->snaps) || (d->nsnap_stores && !d->snap_stores))
		return -EINVAL;
	len += (size_t)d->nsnap_stores * (REC_HDR + SNAP_STORE_BODY) + (size_t)d->nsnaps * (REC_HDR + SNAP_BODY);
	if (d->nnodes > VLUN_MAX_NODES)
		return -EINVAL;
	if (d->nnodes || d->pr_mode)
		len += REC_HDR + NODE_HDR + (size_t)d->nnodes * NODE_BODY;
	w.p = malloc(len);
	if (!w.p)
		return -ENOMEM;
	w.off = 0;

	wbytes(&w, payload_magic, 8);
	w16(&w, VLUN_META_FORMAT_MAJOR);
	w16(&w, VLUN_META_FORMAT_MINOR);
	w32(&w, 0);

	wrec(&w, REC_POOL, REC_MUST_UNDERSTAND, POOL_BODY);
	wbytes(&w, d->uuid, VLUN_UUID_LEN);
	wstr(&w, d->name, VLUN_NAME_MAX + 1);
	w64(&w, d->seq);
	w64(&w, d->generation);
	w64(&w, d->map_epoch);
	w64(&w, d->created);
	w32(&w, d->next_vdisk_id);
	w32(&w, d->nmembers);
	w32(&w, d->nvdisks);
	w32(&w, d->next_snap_id);

	for (uint32_t i = 0; i < d->nmembers; i++) {
		const struct vlun_member_desc *m = &d->members[i];
		size_t pl = strnlen(m->path_hint, VLUN_PATH_MAX);

		wrec(&w, REC_MEMBER, REC_MUST_UNDERSTAND, (uint32_t)(MEMBER_BODY + pl));
		w32(&w, m->index);
		w32(&w, m->state);
		wbytes(&w, m->uuid, VLUN_UUID_LEN);
		w64(&w, m->size_bytes);
		w64(&w, m->data_start);
		w64(&w, m->data_sectors);
		w16(&w, (uint16_t)pl);
		w16(&w, 0);
		wbytes(&w, m->path_hint, pl);
		nrec++;
	}
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *v = &d->vdisks[i];

		wrec(&w, REC_VDISK, REC_MUST_UNDERSTAND, (uint32_t)(VDISK_BODY + (size_t)v->nextents * EXT_BYTES));
		w32(&w, v->id);
		w32(&w, v->layout);
		wbytes(&w, v->uuid, VLUN_UUID_LEN);
		wstr(&w, v->name, VLUN_NAME_MAX + 1);
		w64(&w, v->size_sectors);
		w64(&w, v->chunk_sectors);
		w32(&w, v->stripe_width);
		w32(&w, v->flags);
		w64(&w, v->generation);
		w32(&w, v->nextents);
		w32(&w, 0);
		for (uint32_t e = 0; e < v->nextents; e++)
			wextent(&w, &v->extents[e]);
		nrec++;
	}
	for (uint32_t i = 0; i < d->njobs; i++) {
		const struct vlun_job_desc *j = &d->jobs[i];

		wrec(&w, REC_JOB, 0, JOB_BODY);
		w32(&w, j->id);
		w32(&w, j->kind);
		w32(&w, j->vdisk_id);
		w32(&w, j->from_member);
		w64(&w, j->vsector);
		w64(&w, j->nsectors);
		w64(&w, j->rate);
		w64(&w, j->created);
		for (size_t k = 0; k < VLUN_ARRAY_SIZE(j->to_mask); k++)
			w64(&w, j->to_mask[k]);
		nrec++;
	}
	for (uint32_t i = 0; i < d->nsnap_stores; i++) {
		const struct vlun_snap_store_desc *ss = &d->snap_stores[i];

		wrec(&w, REC_SNAP_STORE, REC_MUST_UNDERSTAND, SNAP_STORE_BODY);
		w32(&w, ss->source_id);
		w32(&w, ss->reserve_id);
		w64(&w, ss->chunk_sectors);
		w32(&w, ss->full_policy);
		w32(&w, 0);
		nrec++;
	}
	for (uint32_t i = 0; i < d->nsnaps; i++) {
		const struct vlun_snap_desc *sn = &d->snaps[i];

		wrec(&w, REC_SNAP, REC_MUST_UNDERSTAND, SNAP_BODY);
		w32(&w, sn->id);
		w32(&w, sn->source_id);
		w32(&w, sn->bit);
		w32(&w, sn->state);
		w32(&w, sn->flags);
		w32(&w, 0);
		w64(&w, sn->created);
		wstr(&w, sn->name, VLUN_NAME_MAX + 1);
		wstr(&w, sn->why, sizeof(sn->why));
		nrec++;
	}
	if (d->nnodes || d->pr_mode) {
		wrec(&w, REC_NODE, 0, (uint32_t)(NODE_HDR + (size_t)d->nnodes * NODE_BODY));
		w32(&w, d->pr_mode);
		w32(&w, d->nnodes);
		w64(&w, 0);
		for (uint32_t i = 0; i < d->nnodes; i++) {
			const struct vlun_node_desc *nd = &d->nodes[i];

			wstr(&w, nd->id, VLUN_NODE_ID_MAX + 1);
			w64(&w, nd->key);
			w32(&w, nd->role);
			w32(&w, nd->lock_tag);
			w64(&w, nd->since);
			w64(&w, nd->epoch);
		}
		nrec++;
	}
	wrec(&w, REC_END, REC_MUST_UNDERSTAND, END_BODY);
	w32(&w, nrec);
	w32(&w, 0);
	assert(w.off == len);
	*ret_buf = w.p;
	*ret_len = len;
	return 0;
}

struct rd {
	const uint8_t *p;
	size_t len, off;
};

static uint16_t r16(struct rd *r) { uint16_t v = vlun_get_le16(r->p + r->off); r->off += 2; return v; }
static uint32_t r32(struct rd *r) { uint32_t v = vlun_get_le32(r->p + r->off); r->off += 4; return v; }
static uint64_t r64(struct rd *r) { uint64_t v = vlun_get_le64(r->p + r->off); r->off += 8; return v; }
static void rbytes(struct rd *r, void *dst, size_t n) { memcpy(dst, r->p + r->off, n); r->off += n; }
/* A NUL-padded string field; false if it has no terminator. */
static bool rstr(struct rd *r, char *dst, size_t field)
{
	const uint8_t *s = r->p + r->off;

	r->off += field;
	if (!memchr(s, 0, field))
		return false;
	memcpy(dst, s, field);
	return true;
}

static void rextent(struct rd *r, struct vlun_extent *x, uint64_t vsector)
{
	x->vsector = vsector;
	x->nsectors = r64(r);
	x->psector = r64(r);
	x->alt_psector = r64(r);
	x->member = r32(r);
	x->alt_member = r32(r);
	x->flags = r32(r);
	x->dirty_id = r32(r);
}

/* Reads nextents extents from r starting at vsector; checks sums do not wrap. */
static int rextents(struct rd *r, uint32_t n, uint64_t vsector, struct vlun_extent **ret, char *why, size_t whylen)
{
	struct vlun_extent *x;

	x = calloc(n ? n : 1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	for (uint32_t e = 0; e < n; e++) {
		rextent(r, &x[e], vsector);
		if (x[e].nsectors == 0 || x[e].nsectors > UINT64_MAX - vsector) {
			whyf(why, whylen, "extent %u has a bad length %llu", e, (unsigned long long)x[e].nsectors);
			free(x);
			return -EUCLEAN;
		}
		vsector += x[e].nsectors;
	}
	*ret = x;
	return 0;
}

static const char *rec_name(uint16_t t)
{
	switch (t) {
	case REC_POOL: return "POOL";
	case REC_MEMBER: return "MEMBER";
	case REC_VDISK: return "VDISK";
	case REC_END: return "END";
	case REC_SNAP: return "SNAP";
	case REC_SNAP_STORE: return "SNAP_STORE";
	case REC_NODE: return "NODE";
	default: return "unknown";
	}
}

VLUN_EXPORT int vlun_meta_decode(const uint8_t *buf, size_t len, struct vlun_pool_desc **ret,
				 char *why, size_t whylen)
{
	struct vlun_pool_desc *d = NULL;
	struct rd r = { .p = buf, .len = len };
	uint32_t nrec = 0, nm = 0, nv = 0, major, minor;
	bool have_pool = false, have_end = false;
	char sub[128];
	int ret_code = -EUCLEAN;

	if (!buf || !ret)
		return -EINVAL;
	if (len < PREAMBLE || memcmp(buf, payload_magic, 8)) {
		whyf(why, whylen, "payload: %s", len < PREAMBLE ? "truncated preamble" : "bad magic");
		return -EUCLEAN;
	}
	r.off = 8;
	major = r16(&r);
	minor = r16(&r);
	r.off += 4;
	if (major != VLUN_META_FORMAT_MAJOR) {
		whyf(why, whylen, "payload format %u.%u is not supported by this vlun (%d.x)%s", major, minor,
		     VLUN_META_FORMAT_MAJOR, major > VLUN_META_FORMAT_MAJOR ? "; upgrade vlun" : "");
		return -EPROTONOSUPPORT;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;

	while (r.off < r.len && !have_end) {
		size_t at = r.off, body;
		uint16_t type, flags;
		uint32_t blen;

		if (r.len - r.off < REC_HDR) {
			whyf(why, whylen, "payload offset %zu: truncated record header", at);
			goto fail;
		}
		type = r16(&r);
		flags = r16(&r);
		blen = r32(&r);
		if (blen > r.len - r.off) {
			whyf(why, whylen, "payload offset %zu: %s record of %u bytes runs past the end (%zu left)",
			     at, rec_name(type), blen, r.len - r.off);
			goto fail;
		}
		body = r.off;
		if (!have_pool && type != REC_POOL && (flags & REC_MUST_UNDERSTAND)) {
			whyf(why, whylen, "payload offset %zu: %s record before the POOL record", at, rec_name(type));
			goto fail;
		}
		switch (type) {
		case REC_POOL:
			if (have_pool || blen != POOL_BODY) {
				whyf(why, whylen, "payload offset %zu: %s", at,
				     have_pool ? "second POOL record" : "POOL record has the wrong length");
				goto fail;
			}
			rbytes(&r, d->uuid, VLUN_UUID_LEN);
			if (!rstr(&r, d->name, VLUN_NAME_MAX + 1)) {
				whyf(why, whylen, "POOL record: pool name not terminated");
				goto fail;
			}
			d->seq = r64(&r);
			d->generation = r64(&r);
			d->map_epoch = r64(&r);
			d->created = r64(&r);
			d->next_vdisk_id = r32(&r);
			d->nmembers = r32(&r);
			d->nvdisks = r32(&r);
			d->next_snap_id = r32(&r);
			if (d->nmembers > VLUN_MAX_MEMBERS || d->nvdisks > VLUN_MAX_VDISKS) {
				whyf(why, whylen, "POOL record: %u members / %u vdisks exceed the limits (%d / %d)",
				     d->nmembers, d->nvdisks, VLUN_MAX_MEMBERS, VLUN_MAX_VDISKS);
				d->nmembers = d->nvdisks = 0;
				goto fail;
			}
			d->members = calloc(d->nmembers ? d->nmembers : 1, sizeof(*d->members));
			d->vdisks = calloc(d->nvdisks ? d->nvdisks : 1, sizeof(*d->vdisks));
			if (!d->members || !d->vdisks) {
				ret_code = -ENOMEM;
				goto fail;
			}
			have_pool = true;
			break;
		case REC_MEMBER: {
			struct vlun_member_desc *m;
			uint16_t pl;

			if (nm >= d->nmembers) {
				whyf(why, whylen, "payload offset %zu: more MEMBER records than the %u announced", at, d->nmembers);
				goto fail;
			}
			if (blen < MEMBER_BODY) {
				whyf(why, whylen, "payload offset %zu: MEMBER record too short", at);
				goto fail;
			}
			m = &d->members[nm];
			m->index = r32(&r);
			m->state = r32(&r);
			rbytes(&r, m->uuid, VLUN_UUID_LEN);
			m->size_bytes = r64(&r);
			m->data_start = r64(&r);
			m->data_sectors = r64(&r);
			pl = r16(&r);
			r.off += 2;
			if (pl > VLUN_PATH_MAX || blen != MEMBER_BODY + (uint32_t)pl) {
				whyf(why, whylen, "payload offset %zu: MEMBER record path length %u does not match", at, pl);
				goto fail;
			}
			rbytes(&r, m->path_hint, pl);
			m->path_hint[pl] = 0;
			if (strlen(m->path_hint) != pl) {
				whyf(why, whylen, "payload offset %zu: MEMBER record path contains NUL", at);
				goto fail;
			}
			nm++;
			break;
		}
		case REC_VDISK: {
			struct vlun_vdisk_desc *v;
			uint32_t n;

			if (nv >= d->nvdisks) {
				whyf(why, whylen, "payload offset %zu: more VDISK records than the %u announced", at, d->nvdisks);
				goto fail;
			}
			if (blen < VDISK_BODY) {
				whyf(why, whylen, "payload offset %zu: VDISK record too short", at);
				goto fail;
			}
			v = &d->vdisks[nv];
			v->id = r32(&r);
			v->layout = r32(&r);
			rbytes(&r, v->uuid, VLUN_UUID_LEN);
			if (!rstr(&r, v->name, VLUN_NAME_MAX + 1)) {
				whyf(why, whylen, "payload offset %zu: VDISK record name not terminated", at);
				goto fail;
			}
			v->size_sectors = r64(&r);
			v->chunk_sectors = r64(&r);
			v->stripe_width = r32(&r);
			v->flags = r32(&r);
			v->generation = r64(&r);
			n = r32(&r);
			r.off += 4;
			if (n > VLUN_MAX_EXTENTS || (uint64_t)blen != VDISK_BODY + (uint64_t)n * EXT_BYTES) {
				whyf(why, whylen, "payload offset %zu: VDISK '%s' record length %u does not match %u extents",
				     at, v->name, blen, n);
				goto fail;
			}
			nv++; /* from here d owns v->extents */
			ret_code = rextents(&r, n, 0, &v->extents, sub, sizeof(sub));
			if (ret_code < 0) {
				whyf(why, whylen, "payload offset %zu: VDISK '%s': %s", at, v->name, sub);
				goto fail;
			}
			ret_code = -EUCLEAN;
			v->nextents = n;
			break;
		}
		case REC_JOB: {
			struct vlun_job_desc j = { 0 };

			if (blen != JOB_BODY) {
				whyf(why, whylen, "payload offset %zu: JOB record has the wrong length", at);
				goto fail;
			}
			if (d->njobs >= VLUN_MAX_JOBS) {
				whyf(why, whylen, "payload offset %zu: more than %d JOB records", at, VLUN_MAX_JOBS);
				goto fail;
			}
			j.id = r32(&r);
			j.kind = r32(&r);
			j.vdisk_id = r32(&r);
			j.from_member = r32(&r);
			j.vsector = r64(&r);
			j.nsectors = r64(&r);
			j.rate = r64(&r);
			j.created = r64(&r);
			for (size_t k = 0; k < VLUN_ARRAY_SIZE(j.to_mask); k++)
				j.to_mask[k] = r64(&r);
			struct vlun_job_desc *nj = realloc(d->jobs, (d->njobs + 1) * sizeof(*nj));
			if (!nj) {
				ret_code = -ENOMEM;
				goto fail;
			}
			d->jobs = nj;
			d->jobs[d->njobs++] = j;
			if (j.id >= d->next_job_id)
				d->next_job_id = j.id + 1;
			break;
		}
		case REC_SNAP_STORE: {
			struct vlun_snap_store_desc ss = { 0 };

			if (blen != SNAP_STORE_BODY || d->nsnap_stores >= VLUN_MAX_VDISKS) {
				whyf(why, whylen, "payload offset %zu: SNAP_STORE record has the wrong length or is one too many", at);
				goto fail;
			}
			ss.source_id = r32(&r);
			ss.reserve_id = r32(&r);
			ss.chunk_sectors = r64(&r);
			ss.full_policy = r32(&r);
			r.off += 4;
			struct vlun_snap_store_desc *ns = realloc(d->snap_stores, (d->nsnap_stores + 1) * sizeof(*ns));
			if (!ns) {
				ret_code = -ENOMEM;
				goto fail;
			}
			d->snap_stores = ns;
			d->snap_stores[d->nsnap_stores++] = ss;
			break;
		}
		case REC_SNAP: {
			struct vlun_snap_desc sn = { 0 };

			if (blen != SNAP_BODY || d->nsnaps >= VLUN_MAX_VDISKS * VLUN_MAX_SNAPSHOTS) {
				whyf(why, whylen, "payload offset %zu: SNAP record has the wrong length or is one too many", at);
				goto fail;
			}
			sn.id = r32(&r);
			sn.source_id = r32(&r);
			sn.bit = r32(&r);
			sn.state = r32(&r);
			sn.flags = r32(&r);
			r.off += 4;
			sn.created = r64(&r);
			if (!rstr(&r, sn.name, VLUN_NAME_MAX + 1) || !rstr(&r, sn.why, sizeof(sn.why))) {
				whyf(why, whylen, "payload offset %zu: SNAP record name or reason not terminated", at);
				goto fail;
			}
			struct vlun_snap_desc *ns = realloc(d->snaps, (d->nsnaps + 1) * sizeof(*ns));
			if (!ns) {
				ret_code = -ENOMEM;
				goto fail;
			}
			d->snaps = ns;
			d->snaps[d->nsnaps++] = sn;
			break;
		}
		case REC_NODE: {
			uint32_t nn;

			if (blen < NODE_HDR) {
				whyf(why, whylen, "payload offset %zu: NODE record too short", at);
				goto fail;
			}
			d->pr_mode = r32(&r);
			nn = r32(&r);
			r.off += 8;
			if (d->pr_mode > VLUN_PR_NONE || nn > VLUN_MAX_NODES ||
			    blen != NODE_HDR + (uint64_t)nn * NODE_BODY) {
				whyf(why, whylen, "payload offset %zu: NODE record with PR mode %u and %u nodes "
				     "(at most %d) in %u bytes is not valid", at, d->pr_mode, nn, VLUN_MAX_NODES, blen);
				goto fail;
			}
			for (uint32_t i = 0; i < nn; i++) {
				struct vlun_node_desc *nd = &d->nodes[i];

				if (!rstr(&r, nd->id, VLUN_NODE_ID_MAX + 1) || !nd->id[0]) {
					whyf(why, whylen, "payload offset %zu: NODE record: node %u id empty or not "
					     "terminated", at, i);
					goto fail;
				}
				nd->key = r64(&r);
				nd->role = r32(&r);
				nd->lock_tag = r32(&r);
				nd->since = r64(&r);
				nd->epoch = r64(&r);
				if (nd->role > VLUN_NODE_FENCED) {
					whyf(why, whylen, "payload offset %zu: NODE '%s' has an unknown role %u", at,
					     nd->id, nd->role);
					goto fail;
				}
			}
			d->nnodes = nn;
			break;
		}
		case REC_END:
			if (blen != END_BODY) {
				whyf(why, whylen, "payload offset %zu: END record has the wrong length", at);
				goto fail;
			}
			if (r32(&r) != nrec) {
				whyf(why, whylen, "payload offset %zu: END record counts a different number of records (%u read)",
				     at, nrec);
				goto fail;
			}
			r.off += 4;
			have_end = true;
			break;
		default:
			if (flags & REC_MUST_UNDERSTAND) {
				whyf(why, whylen, "payload offset %zu: record type %u must be understood but is unknown to this vlun; upgrade vlun",
				     at, type);
				ret_code = -EPROTONOSUPPORT;
				goto fail;
			}
			r.off = body + blen; /* optional and unknown: skip */
			break;
		}
		if (r.off != body + blen) {
			whyf(why, whylen, "payload offset %zu: %s record length %u does not match its contents",
			     at, rec_name(type), blen);
			goto fail;
		}
		if (type != REC_END)
			nrec++;
	}
	if (!have_end) {
		whyf(why, whylen, "payload truncated: no END record after %zu bytes", r.off);
		goto fail;
	}
	if (r.off != r.len) {
		whyf(why, whylen, "payload has %zu bytes of junk after the END record", r.len - r.off);
		goto fail;
	}
	if (nm != d->nmembers || nv != d->nvdisks) {
		whyf(why, whylen, "payload has %u/%u MEMBER and %u/%u VDISK records", nm, d->nmembers, nv, d->nvdisks);
		goto fail;
	}
	if (vlun_pool_desc_validate(d, sub, sizeof(sub)) < 0) {
		whyf(why, whylen, "decoded metadata is inconsistent: %s", sub);
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	if (d) {
		/* Only the vdisks decoded so far own extents. */
		if (d->vdisks)
			d->nvdisks = nv;
		vlun_pool_desc_free(d);
	}
	return ret_code;
}

/* ------------------------------------------------------------------ deltas */

static struct vlun_vdisk_desc *find_vdisk(struct vlun_pool_desc *d, uint32_t id)
{
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (d->vdisks[i].id == id)
			return &d->vdisks[i];
	return NULL;
}

static int delta_check(struct vlun_pool_desc *d, const struct vlun_meta_delta *dl, struct vlun_vdisk_desc **ret_v)
{
	struct vlun_vdisk_desc *v;
	uint64_t pos;

	if (!d || !dl)
		return -EINVAL;
	v = find_vdisk(d, dl->vdisk_id);
	if (!v)
		return -ENOENT;
	if (dl->nsectors == 0 || dl->vsector > v->size_sectors || dl->nsectors > v->size_sectors - dl->vsector ||
	    dl->nextents == 0 || dl->nextents > VLUN_MAX_EXTENTS || !dl->extents)
		return -EINVAL;
	pos = dl->vsector;
	for (uint32_t i = 0; i < dl->nextents; i++) {
		const struct vlun_extent *x = &dl->extents[i];

		if (x->vsector != pos || x->nsectors == 0 || x->nsectors > dl->vsector + dl->nsectors - pos)
			return -EINVAL;
		pos += x->nsectors;
	}
	if (pos != dl->vsector + dl->nsectors)
		return -EINVAL;
	*ret_v = v;
	return 0;
}

/* First extent index whose end is > s (extents sorted, contiguous). */
static uint32_t ext_search(const struct vlun_vdisk_desc *v, uint64_t s)
{
	uint32_t lo = 0, hi = v->nextents;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct vlun_extent *x = &v->extents[mid];

		if (x->vsector + x->nsectors <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ext_advance(struct vlun_extent *x, uint64_t by)
{
	x->vsector += by;
	x->nsectors -= by;
	if (x->member != VLUN_NO_MEMBER)
		x->psector += by;
	if (x->flags & VLUN_EXT_ALT_EXISTS)
		x->alt_psector += by;
}

/* Appends e to w[0..*n), merging it into the last one when compatible. */
static void ext_push(struct vlun_extent *w, uint32_t *n, const struct vlun_extent *e)
{
	if (*n > 0 && vlun_extent_mergeable(&w[*n - 1], e))
		w[*n - 1].nsectors += e->nsectors;
	else
		w[(*n)++] = *e;
}

/* Makes room for want extents in v->extents: grows geometrically, so a
 * run of single-chunk allocations costs amortised O(1) reallocations. */
static int ext_reserve(struct vlun_vdisk_desc *v, uint64_t want)
{
	uint64_t cap = v->extents_cap >= v->nextents ? v->extents_cap : v->nextents;
	struct vlun_extent *nx;

	if (want <= cap)
		return 0;
	if (want > VLUN_MAX_EXTENTS)
		return -E2BIG;
	cap = VLUN_MAX(cap + cap / 2, 16);
	cap = VLUN_MIN(VLUN_MAX(cap, want), (uint64_t)VLUN_MAX_EXTENTS);
	nx = realloc(v->extents, cap * sizeof(*nx));
	if (!nx)
		return -ENOMEM;
	v->extents = nx;
	v->extents_cap = (uint32_t)cap;
	return 0;
}

/*
 * Replaces the extents over [vsector, vsector+nsectors) by the delta's, in
 * place: the window [wlo, whi) = the overlapped extents plus one neighbour
 * on each side is rebuilt (cut-off parts of the overlapped ones kept, every
 * compatible pair merged) in a small buffer, then the tail moves by the
 * difference in count. Cost: O(delta + tail moved), no copy of the whole
 * table. A description that was merged stays merged, so the result is
 * what merging the whole table would give; the pool's in-memory copy and
 * journal replay both come through here and get the same table. On
 * failure d is unchanged.
 */
VLUN_EXPORT int vlun_meta_apply_delta(struct vlun_pool_desc *d, const struct vlun_meta_delta *dl)
{
	struct vlun_vdisk_desc *v;
	struct vlun_extent stackbuf[16], *w = stackbuf, piece;
	uint64_t start, end, total;
	uint32_t lo, hi, wlo, whi, nw = 0;
	size_t want;
	int r;

	r = delta_check(d, dl, &v);
	if (r < 0)
		return r;
	start = dl->vsector;
	end = dl->vsector + dl->nsectors;
	lo = ext_search(v, start);
	hi = ext_search(v, end - 1) + 1; /* [lo, hi) overlap the range */
	if (lo >= v->nextents || hi > v->nextents)
		return -EINVAL; /* the disk's own extents do not cover its size */
	wlo = lo > 0 ? lo - 1 : lo;
	whi = hi < v->nextents ? hi + 1 : hi;

	want = (size_t)dl->nextents + 4;
	if (want > sizeof(stackbuf) / sizeof(stackbuf[0])) {
		w = malloc(want * sizeof(*w));
		if (!w)
			return -ENOMEM;
	}
	if (wlo < lo)
		ext_push(w, &nw, &v->extents[wlo]);
	if (v->extents[lo].vsector < start) {
		piece = v->extents[lo];
		piece.nsectors = start - piece.vsector;
		ext_push(w, &nw, &piece);
	}
	for (uint32_t i = 0; i < dl->nextents; i++)
		ext_push(w, &nw, &dl->extents[i]);
	if (v->extents[hi - 1].vsector + v->extents[hi - 1].nsectors > end) {
		piece = v->extents[hi - 1];
		ext_advance(&piece, end - piece.vsector);
		ext_push(w, &nw, &piece);
	}
	if (whi > hi)
		ext_push(w, &nw, &v->extents[hi]);

	total = (uint64_t)v->nextents - (whi - wlo) + nw;
	r = ext_reserve(v, total);
	if (r < 0)
		goto out;
	if (nw != whi - wlo)
		memmove(v->extents + wlo + nw, v->extents + whi,
			(size_t)(v->nextents - whi) * sizeof(*v->extents));
	memcpy(v->extents + wlo, w, (size_t)nw * sizeof(*w));
	v->nextents = (uint32_t)total;
	v->generation = dl->generation;
	/* Give memory back when the table shrank a lot (e.g. merges after
	 * the disk was filled); failing to shrink is harmless. */
	if (v->extents_cap > 64 && (uint64_t)v->nextents * 4 < v->extents_cap) {
		uint32_t cap = VLUN_MAX(v->nextents * 2, 16u);
		struct vlun_extent *nx = realloc(v->extents, (size_t)cap * sizeof(*nx));

		if (nx) {
			v->extents = nx;
			v->extents_cap = cap;
		}
	}
	r = 0;
out:
	if (w != stackbuf)
		free(w);
	return r;
}

/* --------------------------------------------------------------- state */

struct mstate {
	uint8_t member_uuid[VLUN_UUID_LEN];
	int good_slot;      /* slot holding this member's newest valid checkpoint, -1 none */
	uint64_t good_seq;
};

struct vlun_meta {
	uint8_t pool_uuid[VLUN_UUID_LEN];
	uint64_t seq;        /* last seq used (a failed attempt consumes its seq too) */
	uint64_t ckpt_seq;   /* the checkpoint the journal follows */
	uint64_t jpos;       /* next record's position in the journal */
	bool need_ckpt;
	size_t nmem;
	struct mstate *mem;
};

VLUN_EXPORT void vlun_meta_free(struct vlun_meta *st)
{
	if (!st)
		return;
	free(st->mem);
	free(st);
}

static struct mstate *mstate_find(struct vlun_meta *st, const uint8_t uuid[VLUN_UUID_LEN])
{
	for (size_t i = 0; i < st->nmem; i++)
		if (!memcmp(st->mem[i].member_uuid, uuid, VLUN_UUID_LEN))
			return &st->mem[i];
	return NULL;
}

static struct mstate *mstate_add(struct vlun_meta *st, const uint8_t uuid[VLUN_UUID_LEN], int slot, uint64_t seq)
{
	struct mstate *n = realloc(st->mem, (st->nmem + 1) * sizeof(*n));

	if (!n)
		return NULL;
	st->mem = n;
	n = &st->mem[st->nmem++];
	memcpy(n->member_uuid, uuid, VLUN_UUID_LEN);
	n->good_slot = slot;
	n->good_seq = seq;
	return n;
}

/* ------------------------------------------------------ checkpoint slots */

enum { SLOT_EMPTY = 0, SLOT_VALID = 1, SLOT_BAD = 2, SLOT_UNSUPPORTED = 3 };

static uint64_t slot_offset(const struct vlun_label *l, int s)
{
	return l->meta_offset + (uint64_t)s * l->slot_bytes;
}

/* Reads and checks slot s of a member. With ret_payload, hands back the
 * payload buffer of a valid copy. seq is set for VALID, UNSUPPORTED and for
 * BAD copies whose header was intact. what describes a non-valid copy. */
static int slot_read(struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN], int s,
		     uint64_t *ret_seq, uint8_t **ret_payload, size_t *ret_plen, char *what, size_t wlen)
{
	const struct vlun_label *l = &m->label;
	uint64_t off = slot_offset(l, s), seq, plen;
	uint8_t *h = NULL, *p = NULL;
	int r;

	*ret_seq = 0;
	what[0] = 0;
	h = blk_alloc(BLK);
	if (!h)
		return -ENOMEM;
	r = vlun_blkdev_pread(m->dev, h, BLK, off);
	if (r < 0) {
		whyf(what, wlen, "slot %s: read error: %s", slot_name(s), strerror(-r));
		r = SLOT_BAD;
		goto out;
	}
	if (all_zero(h, C_FIXED_END)) {
		r = SLOT_EMPTY;
		goto out;
	}
	r = SLOT_BAD;
	if (memcmp(h + C_MAGIC, ckpt_magic, 8)) {
		whyf(what, wlen, "slot %s: no checkpoint header (bad magic)", slot_name(s));
		goto out;
	}
	if (vlun_get_le32(h + C_CRC) != crc_skip(h, BLK, C_CRC)) {
		whyf(what, wlen, "slot %s: header crc mismatch", slot_name(s));
		goto out;
	}
	seq = vlun_get_le64(h + C_SEQ);
	*ret_seq = seq;
	if (memcmp(h + C_POOL_UUID, pool_uuid, VLUN_UUID_LEN)) {
		whyf(what, wlen, "slot %s: copy of another pool (seq %llu)", slot_name(s), (unsigned long long)seq);
		*ret_seq = 0;
		goto out;
	}
	if (vlun_get_le64(h + C_SELF) != off || vlun_get_le32(h + C_SLOT) != (uint32_t)s) {
		whyf(what, wlen, "slot %s: header written for another place (seq %llu)", slot_name(s),
		     (unsigned long long)seq);
		goto out;
	}
	if (vlun_get_le16(h + C_MAJOR) > VLUN_META_FORMAT_MAJOR ||
	    (vlun_get_le64(h + C_INCOMPAT) & ~INCOMPAT_KNOWN)) {
		whyf(what, wlen, "slot %s: format %u.%u / incompat features 0x%llx not supported (seq %llu)",
		     slot_name(s), vlun_get_le16(h + C_MAJOR), vlun_get_le16(h + C_MINOR),
		     (unsigned long long)vlun_get_le64(h + C_INCOMPAT), (unsigned long long)seq);
		r = SLOT_UNSUPPORTED;
		goto out;
	}
	plen = vlun_get_le64(h + C_PAYLOAD_LEN);
	if (plen == 0 || plen > l->slot_bytes - BLK) {
		whyf(what, wlen, "slot %s: payload length %llu out of range (seq %llu)", slot_name(s),
		     (unsigned long long)plen, (unsigned long long)seq);
		goto out;
	}
	p = blk_alloc((size_t)plen);
	if (!p) {
		r = -ENOMEM;
		goto out;
	}
	r = vlun_blkdev_pread(m->dev, p, VLUN_ALIGN_UP((size_t)plen, BLK), off + BLK);
	if (r < 0) {
		whyf(what, wlen, "slot %s: payload read error: %s (seq %llu)", slot_name(s), strerror(-r),
		     (unsigned long long)seq);
		r = SLOT_BAD;
		goto out;
	}
	if (vlun_crc32c(0, p, (size_t)plen) != vlun_get_le32(h + C_PAYLOAD_CRC)) {
		whyf(what, wlen, "slot %s: payload crc mismatch (seq %llu)", slot_name(s), (unsigned long long)seq);
		r = SLOT_BAD;
		goto out;
	}
	r = SLOT_VALID;
	if (ret_payload) {
		*ret_payload = p;
		*ret_plen = (size_t)plen;
		p = NULL;
	}
out:
	free(p);
	free(h);
	return r;
}

static void ckpt_header(uint8_t *h, const struct vlun_label *l, const uint8_t pool_uuid[VLUN_UUID_LEN], int s,
			uint64_t seq, const uint8_t *payload, size_t plen)
{
	uint64_t off = slot_offset(l, s);

	memset(h, 0, BLK);
	memcpy(h + C_MAGIC, ckpt_magic, 8);
	vlun_put_le16(h + C_MAJOR, VLUN_META_FORMAT_MAJOR);
	vlun_put_le16(h + C_MINOR, VLUN_META_FORMAT_MINOR);
	memcpy(h + C_POOL_UUID, pool_uuid, VLUN_UUID_LEN);
	vlun_put_le64(h + C_SEQ, seq);
	vlun_put_le64(h + C_PAYLOAD_LEN, plen);
	vlun_put_le32(h + C_PAYLOAD_CRC, vlun_crc32c(0, payload, plen));
	vlun_put_le32(h + C_SLOT, (uint32_t)s);
	vlun_put_le64(h + C_SELF, off);
	vlun_put_le64(h + C_TIME, now_s());
	vlun_put_le32(h + C_CRC, crc_skip(h, BLK, C_CRC));
}

/* ----------------------------------------------------------------- journal */

struct jdeltas {
	size_t n;
	struct vlun_meta_delta *d;
	uint64_t pool_generation;
};

static void jdeltas_clear(struct jdeltas *j)
{
	for (size_t i = 0; i < j->n; i++)
		free((void *)j->d[i].extents);
	free(j->d);
	j->d = NULL;
	j->n = 0;
}

enum { JR_OK = 0, JR_END = 1, JR_BAD = 2 };

/* Reads the record at pos on member m; JR_OK only if it is the record seq
 * following checkpoint ckpt with a good crc and well-formed deltas. */
static int journal_read(struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN], uint64_t jcap,
			uint64_t pos, uint64_t ckpt, uint64_t seq, struct jdeltas *ret, uint64_t *ret_len,
			char *what, size_t wlen)
{
	uint64_t base = m->label.journal_offset + pos, len;
	uint8_t *b = NULL;
	struct rd r;
	struct jdeltas jd = { 0 };
	uint32_t nd;
	char sub[96];
	int res = JR_END;

	what[0] = 0;
	b = blk_alloc(BLK);
	if (!b)
		return -ENOMEM;
	if (vlun_blkdev_pread(m->dev, b, BLK, base) < 0) {
		whyf(what, wlen, "journal seq %llu: read error", (unsigned long long)seq);
		res = JR_BAD;
		goto out;
	}
	/* Not ours, not this checkpoint's, or not the next one: end of chain. */
	if (memcmp(b + J_MAGIC, jrnl_magic, 8) || memcmp(b + J_POOL_UUID, pool_uuid, VLUN_UUID_LEN) ||
	    vlun_get_le64(b + J_CKPT_SEQ) != ckpt || vlun_get_le64(b + J_SEQ) != seq ||
	    vlun_get_le64(b + J_SELF) != pos)
		goto out;
	res = JR_BAD;
	len = vlun_get_le32(b + J_LENGTH);
	if (len < J_HDR || len > jcap - pos) {
		whyf(what, wlen, "journal seq %llu: length %llu out of range", (unsigned long long)seq,
		     (unsigned long long)len);
		goto out;
	}
	if (len > BLK) {
		uint8_t *nb = blk_alloc((size_t)len);

		if (!nb) {
			res = -ENOMEM;
			goto out;
		}
		memcpy(nb, b, BLK);
		free(b);
		b = nb;
		if (vlun_blkdev_pread(m->dev, b + BLK, VLUN_ALIGN_UP((size_t)len, BLK) - BLK, base + BLK) < 0) {
			whyf(what, wlen, "journal seq %llu: read error", (unsigned long long)seq);
			goto out;
		}
	}
	if (vlun_get_le32(b + J_CRC) != crc_skip(b, (size_t)len, J_CRC)) {
		whyf(what, wlen, "journal seq %llu: crc mismatch (torn write?)", (unsigned long long)seq);
		goto out;
	}
	if (vlun_get_le16(b + J_MAJOR) > VLUN_META_FORMAT_MAJOR || (vlun_get_le64(b + J_INCOMPAT) & ~INCOMPAT_KNOWN)) {
		whyf(what, wlen, "journal seq %llu: format %u.%u or features 0x%llx not supported; upgrade vlun",
		     (unsigned long long)seq, vlun_get_le16(b + J_MAJOR), vlun_get_le16(b + J_MINOR),
		     (unsigned long long)vlun_get_le64(b + J_INCOMPAT));
		res = -EPROTONOSUPPORT;
		goto out;
	}
	nd = vlun_get_le32(b + J_NDELTAS);
	jd.pool_generation = vlun_get_le64(b + J_POOL_GEN);
	if (nd == 0 || nd > (len - J_HDR) / REC_HDR) {
		whyf(what, wlen, "journal seq %llu: bad delta count %u", (unsigned long long)seq, nd);
		goto out;
	}
	jd.d = calloc(nd, sizeof(*jd.d));
	if (!jd.d) {
		res = -ENOMEM;
		goto out;
	}
	r = (struct rd){ .p = b, .len = (size_t)len, .off = J_HDR };
	for (uint32_t i = 0; i < nd; i++) {
		uint16_t type, flags;
		uint32_t blen;
		size_t body;

		if (r.len - r.off < REC_HDR) {
			whyf(what, wlen, "journal seq %llu: delta %u truncated", (unsigned long long)seq, i);
			goto out;
		}
		type = r16(&r);
		flags = r16(&r);
		blen = r32(&r);
		body = r.off;
		if (blen > r.len - r.off) {
			whyf(what, wlen, "journal seq %llu: delta %u runs past the record", (unsigned long long)seq, i);
			goto out;
		}
		if (type == DELTA_EXTENTS) {
			struct vlun_meta_delta *dl = &jd.d[jd.n];
			struct vlun_extent *x;

			if (blen < DELTA_EXTENTS_BODY) {
				whyf(what, wlen, "journal seq %llu: delta %u too short", (unsigned long long)seq, i);
				goto out;
			}
			dl->vdisk_id = r32(&r);
			dl->nextents = r32(&r);
			dl->vsector = r64(&r);
			dl->nsectors = r64(&r);
			dl->generation = r64(&r);
			if (dl->nextents == 0 || dl->nextents > VLUN_MAX_EXTENTS ||
			    (uint64_t)blen != DELTA_EXTENTS_BODY + (uint64_t)dl->nextents * EXT_BYTES) {
				whyf(what, wlen, "journal seq %llu: delta %u length does not match its extents",
				     (unsigned long long)seq, i);
				goto out;
			}
			if (rextents(&r, dl->nextents, dl->vsector, &x, sub, sizeof(sub)) < 0) {
				whyf(what, wlen, "journal seq %llu: delta %u: %s", (unsigned long long)seq, i, sub);
				goto out;
			}
			dl->extents = x;
			jd.n++;
		} else if (flags & REC_MUST_UNDERSTAND) {
			whyf(what, wlen, "journal seq %llu: delta type %u must be understood but is unknown; upgrade vlun",
			     (unsigned long long)seq, type);
			res = -EPROTONOSUPPORT;
			goto out;
		}
		r.off = body + blen;
	}
	if (r.off != r.len) {
		whyf(what, wlen, "journal seq %llu: junk after the deltas", (unsigned long long)seq);
		goto out;
	}
	*ret = jd;
	jd = (struct jdeltas){ 0 };
	*ret_len = VLUN_ALIGN_UP(len, BLK);
	res = JR_OK;
out:
	jdeltas_clear(&jd);
	free(b);
	return res;
}

static int journal_encode(const uint8_t pool_uuid[VLUN_UUID_LEN], uint64_t seq, uint64_t ckpt, uint64_t pos,
			  uint64_t pool_gen, const struct vlun_meta_delta *deltas, size_t nd,
			  uint8_t **ret, size_t *ret_len)
{
	size_t len = J_HDR;
	struct wr w;

	if (nd == 0 || nd > UINT32_MAX || !deltas)
		return -EINVAL;
	for (size_t i = 0; i < nd; i++) {
		if (deltas[i].nextents == 0 || deltas[i].nextents > VLUN_MAX_EXTENTS || !deltas[i].extents)
			return -EINVAL;
		len += REC_HDR + DELTA_EXTENTS_BODY + (size_t)deltas[i].nextents * EXT_BYTES;
	}
	if (len > UINT32_MAX)
		return -E2BIG;
	w.p = blk_alloc(len);
	if (!w.p)
		return -ENOMEM;
	w.off = 0;
	wbytes(&w, jrnl_magic, 8);
	w16(&w, VLUN_META_FORMAT_MAJOR);
	w16(&w, VLUN_META_FORMAT_MINOR);
	w32(&w, 0); /* crc */
	w64(&w, 0); /* incompat */
	wbytes(&w, pool_uuid, VLUN_UUID_LEN);
	w64(&w, seq);
	w64(&w, ckpt);
	w32(&w, (uint32_t)len);
	w32(&w, (uint32_t)nd);
	w64(&w, pos);
	w64(&w, pool_gen);
	w.off = J_HDR;
	for (size_t i = 0; i < nd; i++) {
		const struct vlun_meta_delta *dl = &deltas[i];

		wrec(&w, DELTA_EXTENTS, REC_MUST_UNDERSTAND,
		     (uint32_t)(DELTA_EXTENTS_BODY + (size_t)dl->nextents * EXT_BYTES));
		w32(&w, dl->vdisk_id);
		w32(&w, dl->nextents);
		w64(&w, dl->vsector);
		w64(&w, dl->nsectors);
		w64(&w, dl->generation);
		for (uint32_t e = 0; e < dl->nextents; e++)
			wextent(&w, &dl->extents[e]);
	}
	vlun_put_le32(w.p + J_CRC, crc_skip(w.p, len, J_CRC));
	*ret = w.p;
	*ret_len = len;
	return 0;
}

/* ------------------------------------------------------------------- load */

struct cand {
	size_t member;
	int slot;
	uint64_t seq;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1;
	if (x->member != y->member)
		return x->member < y->member ? -1 : 1;
	return x->slot - y->slot;
}

static bool member_usable(const struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN])
{
	return m->dev && !memcmp(m->label.pool_uuid, pool_uuid, VLUN_UUID_LEN);
}

static uint64_t journal_cap(const struct vlun_meta_member *m, size_t n, const uint8_t pool_uuid[VLUN_UUID_LEN])
{
	uint64_t cap = UINT64_MAX;

	for (size_t i = 0; i < n; i++)
		if (member_usable(&m[i], pool_uuid))
			cap = VLUN_MIN(cap, m[i].label.journal_bytes);
	return cap == UINT64_MAX ? 0 : cap;
}

/* Replays the journal chain after checkpoint ckpt onto *d. With
 * validate_each, stops before a record that leaves d inconsistent. */
static int replay(struct vlun_meta_member *m, size_t n, const uint8_t pool_uuid[VLUN_UUID_LEN], uint64_t ckpt,
		  bool validate_each, bool note, struct vlun_pool_desc *d, uint64_t *ret_seq, uint64_t *ret_pos,
		  char *why, size_t whylen)
{
	uint64_t jcap = journal_cap(m, n, pool_uuid), pos = 0, seq = ckpt;
	char what[160], sub[128];
	char (*whats)[160] = NULL;
	bool *gap = NULL;
	int *res = NULL, r = 0;

	gap = calloc(n, sizeof(*gap));
	res = calloc(n, sizeof(*res));
	whats = calloc(n, sizeof(*whats));
	if (!gap || !res || !whats) {
		r = -ENOMEM;
		goto out;
	}
	while (pos < jcap) {
		struct jdeltas jd = { 0 };
		uint64_t rlen = 0;
		size_t from = n;

		for (size_t i = 0; i < n; i++) {
			res[i] = JR_END;
			if (!member_usable(&m[i], pool_uuid))
				continue;
			if (from < n) {
				/* already have it; see whether this member does too */
				struct jdeltas tmp = { 0 };
				uint64_t tl;

				res[i] = journal_read(&m[i], pool_uuid, jcap, pos, ckpt, seq + 1, &tmp, &tl, what, sizeof(what));
				jdeltas_clear(&tmp);
			} else {
				res[i] = journal_read(&m[i], pool_uuid, jcap, pos, ckpt, seq + 1, &jd, &rlen, what, sizeof(what));
				if (res[i] == JR_OK)
					from = i;
			}
			if (res[i] < 0) {
				r = res[i];
				whyf(why, whylen, "%s: %s", m[i].dev->name, what[0] ? what : strerror(-r));
				jdeltas_clear(&jd);
				goto out;
			}
			if (res[i] == JR_BAD)
				snprintf(whats[i], sizeof(whats[i]), "%s", what);
		}
		if (from >= n)
			break;
		/* apply: check every delta first so a bad record changes nothing */
		for (size_t k = 0; k < jd.n; k++) {
			struct vlun_vdisk_desc *v;

			r = delta_check(d, &jd.d[k], &v);
			if (r < 0)
				break;
		}
		if (r == 0 && validate_each) {
			struct vlun_pool_desc *t = NULL;

			r = vlun_pool_desc_dup(d, &t);
			for (size_t k = 0; r == 0 && k < jd.n; k++)
				r = vlun_meta_apply_delta(t, &jd.d[k]);
			if (r == 0 && vlun_pool_desc_validate(t, sub, sizeof(sub)) < 0)
				r = -EUCLEAN;
			vlun_pool_desc_free(t);
			if (r == -ENOMEM) {
				jdeltas_clear(&jd);
				goto out;
			}
		}
		if (r < 0) {
			if (note)
				problem_add(&m[from], "journal seq %llu does not apply to the checkpoint; replay stopped",
					    (unsigned long long)(seq + 1));
			vlun_warn("%s: journal record seq %llu does not apply (%s); replay stops there",
				  m[from].dev->name, (unsigned long long)(seq + 1), strerror(-r));
			r = 0;
			jdeltas_clear(&jd);
			break;
		}
		for (size_t k = 0; k < jd.n; k++) {
			r = vlun_meta_apply_delta(d, &jd.d[k]);
			if (r < 0) {
				jdeltas_clear(&jd);
				goto out;
			}
		}
		d->generation = jd.pool_generation;
		jdeltas_clear(&jd);
		seq++;
		d->seq = seq;
		for (size_t i = 0; note && i < n; i++) {
			if (!member_usable(&m[i], pool_uuid))
				continue;
			if (res[i] == JR_OK) {
				m[i].newest_seq = VLUN_MAX(m[i].newest_seq, seq);
			} else if (!gap[i]) {
				gap[i] = true;
				if (res[i] == JR_BAD)
					problem_add(&m[i], "%s", whats[i]);
				else
					problem_add(&m[i], "journal seq %llu missing", (unsigned long long)seq);
			}
		}
		pos += rlen;
	}
	/* A torn record where the chain ends is worth a note too. */
	for (size_t i = 0; note && i < n && pos < jcap; i++) {
		struct jdeltas tmp = { 0 };
		uint64_t tl;

		if (!member_usable(&m[i], pool_uuid) || gap[i])
			continue;
		if (journal_read(&m[i], pool_uuid, jcap, pos, ckpt, seq + 1, &tmp, &tl, what, sizeof(what)) == JR_BAD)
			problem_add(&m[i], "%s", what);
		jdeltas_clear(&tmp);
	}
	*ret_seq = seq;
	*ret_pos = pos;
out:
	free(gap);
	free(res);
	free(whats);
	return r;
}

VLUN_EXPORT int vlun_meta_load(struct vlun_meta_member *m, size_t n, struct vlun_pool_desc **ret_desc,
			       struct vlun_meta **ret_state, char *why, size_t whylen)
{
	const uint8_t *pool_uuid;
	struct cand *c = NULL;
	size_t nc = 0, chosen = SIZE_MAX;
	uint64_t unsupported_seq = 0, jseq = 0, jpos = 0;
	struct vlun_pool_desc *d = NULL, *base = NULL;
	struct vlun_meta *st = NULL;
	int (*best)[2] = NULL; /* per member, per slot: status */
	uint64_t (*seqs)[2] = NULL;
	char what[160];
	int r;

	if (!m || n == 0 || n > VLUN_MAX_MEMBERS || !ret_desc)
		return -EINVAL;
	pool_uuid = m[0].label.pool_uuid;
	c = calloc(2 * n, sizeof(*c));
	best = calloc(n, sizeof(*best));
	seqs = calloc(n, sizeof(*seqs));
	if (!c || !best || !seqs) {
		r = -ENOMEM;
		goto out;
	}

	/* 1. Every slot of every member. */
	for (size_t i = 0; i < n; i++) {
		m[i].newest_seq = 0;
		m[i].problem[0] = 0;
		if (!m[i].dev) {
			problem_add(&m[i], "no device");
			continue;
		}
		if (!member_usable(&m[i], pool_uuid)) {
			problem_add(&m[i], "label belongs to another pool");
			continue;
		}
		for (int s = 0; s < 2; s++) {
			r = slot_read(&m[i], pool_uuid, s, &seqs[i][s], NULL, NULL, what, sizeof(what));
			if (r < 0)
				goto out;
			best[i][s] = r;
			if (r == SLOT_VALID)
				c[nc++] = (struct cand){ .member = i, .slot = s, .seq = seqs[i][s] };
			else if (r == SLOT_UNSUPPORTED)
				unsupported_seq = VLUN_MAX(unsupported_seq, seqs[i][s]);
			if (r == SLOT_BAD || r == SLOT_UNSUPPORTED)
				problem_add(&m[i], "%s", what);
		}
	}

	/* 2. Newest valid copy that decodes. */
	qsort(c, nc, sizeof(*c), cand_cmp);
	for (size_t k = 0; k < nc; k++) {
		uint8_t *p = NULL;
		size_t plen = 0;
		char sub[128];

		if (c[k].seq < unsupported_seq) {
			whyf(why, whylen, "the newest metadata (seq %llu) was written by a newer, incompatible vlun; upgrade vlun",
			     (unsigned long long)unsupported_seq);
			r = -EPROTONOSUPPORT;
			goto out;
		}
		r = slot_read(&m[c[k].member], pool_uuid, c[k].slot, &c[k].seq, &p, &plen, what, sizeof(what));
		if (r < 0)
			goto out;
		if (r != SLOT_VALID) { /* changed under us? treat as bad */
			best[c[k].member][c[k].slot] = SLOT_BAD;
			problem_add(&m[c[k].member], "%s", what);
			continue;
		}
		r = vlun_meta_decode(p, plen, &base, sub, sizeof(sub));
		free(p);
		if (r == 0 && (memcmp(base->uuid, pool_uuid, VLUN_UUID_LEN) || base->seq != c[k].seq)) {
			snprintf(sub, sizeof(sub), "payload's pool uuid or seq %llu does not match its header",
				 (unsigned long long)base->seq);
			vlun_pool_desc_free(base);
			base = NULL;
			r = -EUCLEAN;
		}
		if (r == -EPROTONOSUPPORT) {
			whyf(why, whylen, "%s slot %s (seq %llu): %s", m[c[k].member].dev->name,
			     slot_name(c[k].slot), (unsigned long long)c[k].seq, sub);
			goto out;
		}
		if (r == -ENOMEM)
			goto out;
		if (r < 0) {
			best[c[k].member][c[k].slot] = SLOT_BAD;
			problem_add(&m[c[k].member], "slot %s: undecodable (seq %llu): %s", slot_name(c[k].slot),
				    (unsigned long long)c[k].seq, sub);
			continue;
		}
		chosen = k;
		break;
	}
	if (chosen == SIZE_MAX) {
		size_t off = 0;

		if (unsupported_seq) {
			whyf(why, whylen, "the only metadata (seq %llu) was written by a newer, incompatible vlun; upgrade vlun",
			     (unsigned long long)unsupported_seq);
			r = -EPROTONOSUPPORT;
			goto out;
		}
		whyf(why, whylen, "no valid metadata copy on any member:");
		for (size_t i = 0; why && i < n; i++) {
			off = strnlen(why, whylen);
			if (off + 1 >= whylen)
				break;
			snprintf(why + off, whylen - off, " %s: %s%s", m[i].dev ? m[i].dev->name : "(none)",
				 m[i].problem[0] ? m[i].problem : "both slots empty (pool creation never finished?)",
				 i + 1 < n ? ";" : "");
		}
		r = -EUCLEAN;
		goto out;
	}

	/* 3. Journal replay after the chosen checkpoint. */
	for (size_t i = 0; i < n; i++) {
		int gs = -1;

		if (!member_usable(&m[i], pool_uuid))
			continue;
		for (int s = 0; s < 2; s++)
			if (best[i][s] == SLOT_VALID && (gs < 0 || seqs[i][s] > seqs[i][gs]))
				gs = s;
		m[i].newest_seq = gs >= 0 ? seqs[i][gs] : 0;
	}
	r = vlun_pool_desc_dup(base, &d);
	if (r < 0)
		goto out;
	r = replay(m, n, pool_uuid, c[chosen].seq, false, true, d, &jseq, &jpos, why, whylen);
	if (r < 0)
		goto out;
	if (jseq > c[chosen].seq && vlun_pool_desc_validate(d, what, sizeof(what)) < 0) {
		/* Some record breaks the invariants: replay again, stopping before it. */
		vlun_warn("journal replay after checkpoint seq %llu gives inconsistent metadata (%s); replaying record by record",
			  (unsigned long long)c[chosen].seq, what);
		vlun_pool_desc_free(d);
		d = NULL;
		r = vlun_pool_desc_dup(base, &d);
		if (r < 0)
			goto out;
		r = replay(m, n, pool_uuid, c[chosen].seq, true, false, d, &jseq, &jpos, why, whylen);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!member_usable(&m[i], pool_uuid))
			continue;
		if (m[i].newest_seq == 0)
			problem_add(&m[i], "no valid checkpoint (pool is at seq %llu)", (unsigned long long)jseq);
		else if (m[i].newest_seq < c[chosen].seq)
			problem_add(&m[i], "stale: newest valid copy is seq %llu, pool is at seq %llu",
				    (unsigned long long)m[i].newest_seq, (unsigned long long)jseq);
		if (m[i].problem[0])
			vlun_warn("%s: %s", m[i].dev->name, m[i].problem);
	}

	/* 4. Commit state: the next commit is a checkpoint (it rewrites stale
	 * and damaged copies), into each member's slot that does not hold its
	 * newest valid copy. */
	if (ret_state) {
		st = calloc(1, sizeof(*st));
		if (!st) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(st->pool_uuid, pool_uuid, VLUN_UUID_LEN);
		st->seq = VLUN_MAX(jseq, unsupported_seq);
		for (size_t i = 0; i < n; i++)
			for (int s = 0; s < 2; s++)
				st->seq = VLUN_MAX(st->seq, seqs[i][s]); /* never reuse a seq seen on disk */
		st->ckpt_seq = c[chosen].seq;
		st->jpos = jpos;
		st->need_ckpt = true;
		for (size_t i = 0; i < n; i++) {
			int gs = -1;

			if (!member_usable(&m[i], pool_uuid))
				continue;
			for (int s = 0; s < 2; s++)
				if (best[i][s] == SLOT_VALID && (gs < 0 || seqs[i][s] > seqs[i][gs]))
					gs = s;
			if (!mstate_add(st, m[i].label.member_uuid, gs, gs >= 0 ? seqs[i][gs] : 0)) {
				r = -ENOMEM;
				goto out;
			}
		}
	}
	d->seq = jseq;
	*ret_desc = d;
	d = NULL;
	if (ret_state) {
		*ret_state = st;
		st = NULL;
	}
	r = 0;
out:
	vlun_pool_desc_free(d);
	vlun_pool_desc_free(base);
	vlun_meta_free(st);
	free(c);
	free(best);
	free(seqs);
	return r;
}

VLUN_EXPORT int vlun_meta_init(struct vlun_meta_member *m, size_t n, struct vlun_meta **ret_state)
{
	struct vlun_meta *st;

	if (!m || n == 0 || !ret_state)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	memcpy(st->pool_uuid, m[0].label.pool_uuid, VLUN_UUID_LEN);
	st->need_ckpt = true;
	for (size_t i = 0; i < n; i++) {
		if (memcmp(m[i].label.pool_uuid, st->pool_uuid, VLUN_UUID_LEN)) {
			vlun_meta_free(st);
			return -EINVAL;
		}
		/* Labelling cleared both slots: nothing valid yet, start with A. */
		if (!mstate_add(st, m[i].label.member_uuid, -1, 0)) {
			vlun_meta_free(st);
			return -ENOMEM;
		}
	}
	*ret_state = st;
	return 0;
}

/* Finds (or, for a member new to this state, probes) a member's state. */
static int member_state(struct vlun_meta *st, struct vlun_meta_member *m, struct mstate **ret)
{
	struct mstate *ms = mstate_find(st, m->label.member_uuid);
	uint64_t seq[2] = { 0, 0 };
	int gs = -1;
	char what[160];

	if (ms) {
		*ret = ms;
		return 0;
	}
	for (int s = 0; s < 2; s++) {
		int r = slot_read(m, st->pool_uuid, s, &seq[s], NULL, NULL, what, sizeof(what));

		if (r < 0)
			return r;
		if (r == SLOT_VALID && (gs < 0 || seq[s] > seq[gs]))
			gs = s;
	}
	ms = mstate_add(st, m->label.member_uuid, gs, gs >= 0 ? seq[gs] : 0);
	if (!ms)
		return -ENOMEM;
	*ret = ms;
	return 0;
}

static int check_members(struct vlun_meta *st, struct vlun_meta_member *m, size_t n)
{
	if (!st || !m || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!m[i].dev || memcmp(m[i].label.pool_uuid, st->pool_uuid, VLUN_UUID_LEN)) {
			vlun_err("metadata commit: member %zu (%s) is not a member of this pool", i,
				 m[i].dev ? m[i].dev->name : "no device");
			return -EINVAL;
		}
	}
	return 0;
}

VLUN_EXPORT int vlun_meta_commit(struct vlun_meta *st, struct vlun_meta_member *m, size_t n,
				 struct vlun_pool_desc *d)
{
	uint8_t *payload = NULL, *buf = NULL;
	size_t plen = 0, wlen;
	uint64_t seq, old_seq;
	struct mstate **ms = NULL;
	int *res = NULL, r;
	size_t ok = 0;
	char why[256];

	r = check_members(st, m, n);
	if (r < 0)
		return r;
	if (!d || memcmp(d->uuid, st->pool_uuid, VLUN_UUID_LEN))
		return -EINVAL;
	if (vlun_pool_desc_validate(d, why, sizeof(why)) < 0) {
		vlun_err("metadata commit refused: the description is inconsistent: %s", why);
		return -EINVAL;
	}
	ms = calloc(n, sizeof(*ms));
	res = calloc(n, sizeof(*res));
	if (!ms || !res) {
		r = -ENOMEM;
		goto out;
	}
	/* First make sure every member has a state (this may grow st->mem),
	 * then take pointers into the final array. */
	for (size_t i = 0; i < n; i++) {
		r = member_state(st, &m[i], &ms[i]);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++)
		ms[i] = mstate_find(st, m[i].label.member_uuid);

	seq = st->seq + 1;
	old_seq = d->seq;
	d->seq = seq;
	r = vlun_meta_encode(d, &payload, &plen);
	d->seq = old_seq;
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (plen > m[i].label.slot_bytes - BLK) {
			vlun_err("%s: metadata of %zu bytes does not fit the %llu-byte checkpoint slot; the pool needs a larger metadata area",
				 m[i].dev->name, plen, (unsigned long long)(m[i].label.slot_bytes - BLK));
			r = -ENOSPC;
			goto out;
		}
	}
	wlen = BLK + VLUN_ALIGN_UP(plen, BLK);
	buf = blk_alloc(wlen);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(buf + BLK, payload, plen);
	st->seq = seq; /* consumed, even if every write fails */

	/* Step 1: header + payload, one write per member, into the slot that
	 * does not hold the member's newest valid copy. */
	for (size_t i = 0; i < n; i++) {
		int s = ms[i]->good_slot == 0 ? 1 : 0; /* also A when none is valid */

		ckpt_header(buf, &m[i].label, st->pool_uuid, s, seq, payload, plen);
		vlun_put_le64(buf + C_EPOCH, d->map_epoch);
		vlun_put_le32(buf + C_CRC, crc_skip(buf, BLK, C_CRC));
		res[i] = vlun_blkdev_pwrite(m[i].dev, buf, wlen, slot_offset(&m[i].label, s));
	}
	/* Step 2: flush every member. */
	for (size_t i = 0; i < n; i++) {
		if (res[i] == 0)
			res[i] = vlun_blkdev_flush(m[i].dev);
	}
	/* Step 3: account. */
	for (size_t i = 0; i < n; i++) {
		if (res[i] == 0) {
			ms[i]->good_slot = ms[i]->good_slot == 0 ? 1 : 0;
			ms[i]->good_seq = seq;
			m[i].newest_seq = seq;
			m[i].problem[0] = 0;
			ok++;
		} else {
			vlun_err("%s: writing metadata checkpoint seq %llu failed: %s", m[i].dev->name,
				 (unsigned long long)seq, strerror(-res[i]));
			snprintf(m[i].problem, sizeof(m[i].problem), "checkpoint seq %llu write failed: %s",
				 (unsigned long long)seq, strerror(-res[i]));
		}
	}
	if (ok == 0) {
		st->need_ckpt = true;
		r = -EIO;
		goto out;
	}
	st->ckpt_seq = seq;
	st->jpos = 0;
	st->need_ckpt = ok < n;
	d->seq = seq;
	r = 0;
out:
	free(payload);
	free(buf);
	free(ms);
	free(res);
	return r;
}

VLUN_EXPORT int vlun_meta_commit_delta(struct vlun_meta *st, struct vlun_meta_member *m, size_t n,
				       struct vlun_pool_desc *d, const struct vlun_meta_delta *deltas,
				       size_t ndeltas)
{
	uint8_t *rec = NULL;
	size_t rlen = 0, ok = 0;
	uint64_t seq, alen, jcap = UINT64_MAX;
	int *res = NULL, r;

	r = check_members(st, m, n);
	if (r < 0)
		return r;
	if (!d || !deltas || ndeltas == 0)
		return -EINVAL;
	if (st->need_ckpt)
		return vlun_meta_commit(st, m, n, d);
	for (size_t i = 0; i < n; i++) {
		struct mstate *ms = mstate_find(st, m[i].label.member_uuid);

		/* A member that lacks the checkpoint the journal follows gets one. */
		if (!ms || ms->good_slot < 0 || ms->good_seq != st->ckpt_seq)
			return vlun_meta_commit(st, m, n, d);
		jcap = VLUN_MIN(jcap, m[i].label.journal_bytes);
	}
	seq = st->seq + 1;
	r = journal_encode(st->pool_uuid, seq, st->ckpt_seq, st->jpos, d->generation, deltas, ndeltas, &rec, &rlen);
	if (r == -E2BIG)
		return vlun_meta_commit(st, m, n, d);
	if (r < 0)
		return r;
	alen = VLUN_ALIGN_UP(rlen, BLK);
	if (st->jpos + alen > jcap) {
		/* The journal is full: a checkpoint holds everything and resets it. */
		free(rec);
		return vlun_meta_commit(st, m, n, d);
	}
	res = calloc(n, sizeof(*res));
	if (!res) {
		free(rec);
		return -ENOMEM;
	}
	st->seq = seq;
	/* Step 1: the record at the same position on every member; step 2: flush. */
	for (size_t i = 0; i < n; i++)
		res[i] = vlun_blkdev_pwrite(m[i].dev, rec, (size_t)alen, m[i].label.journal_offset + st->jpos);
	for (size_t i = 0; i < n; i++)
		if (res[i] == 0)
			res[i] = vlun_blkdev_flush(m[i].dev);
	for (size_t i = 0; i < n; i++) {
		if (res[i] == 0) {
			m[i].newest_seq = seq;
			ok++;
		} else {
			vlun_err("%s: writing metadata journal record seq %llu failed: %s", m[i].dev->name,
				 (unsigned long long)seq, strerror(-res[i]));
			snprintf(m[i].problem, sizeof(m[i].problem), "journal seq %llu write failed: %s",
				 (unsigned long long)seq, strerror(-res[i]));
		}
	}
	free(res);
	free(rec);
	if (ok < n)
		st->need_ckpt = true;
	if (ok == 0)
		return -EIO;
	st->jpos += alen;
	d->seq = seq;
	return 0;
}

/* ------------------------------------------------ per-copy inspection
 * (meta.h: vlun_meta_inspect) for vlunctl check/repair. */

VLUN_EXPORT const char *vlun_meta_copy_name(int idx)
{
	static const char *const names[VLUN_COPY_N] = { "label", "slot A", "slot B", "journal" };

	return idx >= 0 && idx < VLUN_COPY_N ? names[idx] : "?";
}

VLUN_EXPORT int vlun_meta_inspect(struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN],
				  struct vlun_meta_copy ret[VLUN_COPY_N])
{
	struct vlun_meta_copy c[VLUN_COPY_N];
	uint64_t newest = 0, pos = 0, seq;
	char what[160];
	int r;

	if (!m || !m->dev || !pool_uuid || !ret)
		return -EINVAL;
	memset(c, 0, sizeof(c));
	c[VLUN_COPY_LABEL].offset = m->label.label_offset;
	r = vlun_meta_label_read(m->dev, &m->label, c[VLUN_COPY_LABEL].why, sizeof(c[VLUN_COPY_LABEL].why));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		c[VLUN_COPY_LABEL].state = r == -EPROTONOSUPPORT ? VLUN_COPY_UNSUPPORTED : VLUN_COPY_BAD;
		if (!c[VLUN_COPY_LABEL].why[0])
			snprintf(c[VLUN_COPY_LABEL].why, sizeof(c[VLUN_COPY_LABEL].why), "%s", strerror(-r));
		for (int k = VLUN_COPY_SLOT_A; k < VLUN_COPY_N; k++) {
			c[k].state = VLUN_COPY_BAD;
			snprintf(c[k].why, sizeof(c[k].why), "not readable without a valid label");
		}
		memcpy(ret, c, sizeof(c));
		return 0;
	}
	for (int s = 0; s < 2; s++) {
		struct vlun_meta_copy *x = &c[VLUN_COPY_SLOT_A + s];
		uint8_t *p = NULL;
		size_t plen = 0;

		x->offset = slot_offset(&m->label, s);
		r = slot_read(m, pool_uuid, s, &x->seq, &p, &plen, what, sizeof(what));
		if (r < 0)
			return r;
		if (r == SLOT_VALID) {
			struct vlun_pool_desc *d = NULL;
			char sub[128] = "";
			int dr = vlun_meta_decode(p, plen, &d, sub, sizeof(sub));

			if (dr == -ENOMEM) {
				free(p);
				return dr;
			}
			if (dr == 0 && (memcmp(d->uuid, pool_uuid, VLUN_UUID_LEN) || d->seq != x->seq)) {
				snprintf(sub, sizeof(sub), "payload's pool uuid or seq does not match its header");
				dr = -EUCLEAN;
			}
			vlun_pool_desc_free(d);
			if (dr == -EPROTONOSUPPORT) {
				r = SLOT_UNSUPPORTED;
				snprintf(what, sizeof(what), "slot %s: %s (seq %llu)", slot_name(s), sub,
					 (unsigned long long)x->seq);
			} else if (dr < 0) {
				r = SLOT_BAD;
				snprintf(what, sizeof(what), "slot %s: undecodable (seq %llu): %s", slot_name(s),
					 (unsigned long long)x->seq, sub);
			}
		}
		free(p);
		x->state = r == SLOT_VALID ? VLUN_COPY_VALID : r == SLOT_EMPTY ? VLUN_COPY_EMPTY :
			   r == SLOT_UNSUPPORTED ? VLUN_COPY_UNSUPPORTED : VLUN_COPY_BAD;
		if (x->state != VLUN_COPY_VALID && x->state != VLUN_COPY_EMPTY)
			snprintf(x->why, sizeof(x->why), "%s", what);
		if (x->state == VLUN_COPY_VALID)
			newest = VLUN_MAX(newest, x->seq);
	}
	/* The journal chain after this member's newest valid checkpoint. */
	struct vlun_meta_copy *j = &c[VLUN_COPY_JOURNAL];
	j->offset = m->label.journal_offset;
	j->seq = newest;
	if (newest == 0) {
		j->state = VLUN_COPY_EMPTY;
	} else {
		for (seq = newest + 1;; seq++) {
			struct jdeltas jd = { 0 };
			uint64_t len = 0;

			r = journal_read(m, pool_uuid, m->label.journal_bytes, pos, newest, seq, &jd, &len, what,
					 sizeof(what));
			jdeltas_clear(&jd);
			if (r == -ENOMEM)
				return r;
			if (r == -EPROTONOSUPPORT) {
				j->state = VLUN_COPY_UNSUPPORTED;
				snprintf(j->why, sizeof(j->why), "%s", what);
				break;
			}
			if (r == JR_BAD) {
				j->state = VLUN_COPY_BAD;
				snprintf(j->why, sizeof(j->why), "%.80s, at journal position %llu after %u good record(s)",
					 what, (unsigned long long)pos, j->records);
				break;
			}
			if (r != JR_OK)
				break;
			j->records++;
			j->seq = seq;
			pos += VLUN_ALIGN_UP(len, BLK);
			if (pos >= m->label.journal_bytes)
				break;
		}
	}
	memcpy(ret, c, sizeof(c));
	return 0;
}

/* ------------------------------------------------------------ HA epoch */

VLUN_EXPORT int vlun_meta_peek_epoch(struct vlun_meta_member *m, const uint8_t pool_uuid[VLUN_UUID_LEN],
				     uint64_t *ret_seq, uint64_t *ret_epoch)
{
	uint64_t best_seq = 0, best_epoch = 0;
	bool found = false;
	int first_err = 0;
	uint8_t *h;

	if (!m || !m->dev || !pool_uuid)
		return -EINVAL;
	h = blk_alloc(BLK);
	if (!h)
		return -ENOMEM;
	for (int s = 0; s < 2; s++) {
		uint64_t off = slot_offset(&m->label, s), seq;
		int r = vlun_blkdev_pread(m->dev, h, BLK, off);

		if (r < 0) {
			if (!first_err)
				first_err = r;
			continue;
		}
		if (memcmp(h + C_MAGIC, ckpt_magic, 8) || vlun_get_le32(h + C_CRC) != crc_skip(h, BLK, C_CRC) ||
		    memcmp(h + C_POOL_UUID, pool_uuid, VLUN_UUID_LEN) || vlun_get_le64(h + C_SELF) != off)
			continue;
		seq = vlun_get_le64(h + C_SEQ);
		if (!found || seq > best_seq) {
			best_seq = seq;
			best_epoch = vlun_get_le64(h + C_EPOCH);
			found = true;
		}
	}
	free(h);
	if (!found)
		return first_err ? first_err : -ENOENT;
	if (ret_seq)
		*ret_seq = best_seq;
	if (ret_epoch)
		*ret_epoch = best_epoch;
	return 0;
}

int vlun_meta_peek_changed(const struct vlun_meta *st, struct vlun_meta_member *m, size_t n,
			   bool *ret_changed)
{
	int first_err = -ENODEV;

	if (!st || !m || !ret_changed)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint64_t cseq = 0, pos = st->jpos;
		uint8_t *b;
		int r;

		if (!member_usable(&m[i], st->pool_uuid))
			continue;
		r = vlun_meta_peek_epoch(&m[i], st->pool_uuid, &cseq, NULL);
		if (r < 0) {
			first_err = r;
			continue;
		}
		if (cseq > st->ckpt_seq) {
			*ret_changed = true;
			return 0;
		}
		if (pos + BLK > m[i].label.journal_bytes) {
			/* the journal is full: the owner's next commit is a checkpoint */
			*ret_changed = false;
			return 0;
		}
		b = blk_alloc(BLK);
		if (!b)
			return -ENOMEM;
		r = vlun_blkdev_pread(m[i].dev, b, BLK, m[i].label.journal_offset + pos);
		if (r < 0) {
			free(b);
			first_err = r;
			continue;
		}
		*ret_changed = !memcmp(b + J_MAGIC, jrnl_magic, 8) &&
			       !memcmp(b + J_POOL_UUID, st->pool_uuid, VLUN_UUID_LEN) &&
			       vlun_get_le64(b + J_CKPT_SEQ) == st->ckpt_seq && vlun_get_le64(b + J_SELF) == pos &&
			       vlun_get_le64(b + J_SEQ) > st->seq;
		free(b);
		return 0;
	}
	return first_err;
}
