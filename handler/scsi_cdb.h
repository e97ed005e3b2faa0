/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scsi_cdb.h — CDB decoding, validation and response building for the vlun
 * handler, as pure functions: no tcmu types, no I/O, no global state, so they
 * can be unit-tested and fuzzed on their own.
 *
 * One status vocabulary (enum vscsi_status), one table turning a status into
 * sense key / ASC / ASCQ (vscsi_sense_code), one decoder per CDB family.
 * Clause references are to SBC-4 (r15) and SPC-5 (r17).
 */
#ifndef VLUN_SCSI_CDB_H
#define VLUN_SCSI_CDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Operation codes this file knows (SPC-5 / SBC-4). */
enum {
	VSCSI_TEST_UNIT_READY = 0x00,
	VSCSI_READ_6 = 0x08,
	VSCSI_WRITE_6 = 0x0a,
	VSCSI_INQUIRY = 0x12,
	VSCSI_MODE_SELECT_6 = 0x15,
	VSCSI_MODE_SENSE_6 = 0x1a,
	VSCSI_READ_CAPACITY_10 = 0x25,
	VSCSI_READ_10 = 0x28,
	VSCSI_WRITE_10 = 0x2a,
	VSCSI_WRITE_VERIFY_10 = 0x2e,
	VSCSI_VERIFY_10 = 0x2f,
	VSCSI_SYNC_CACHE_10 = 0x35,
	VSCSI_WRITE_SAME_10 = 0x41,
	VSCSI_UNMAP = 0x42,
	VSCSI_MODE_SELECT_10 = 0x55,
	VSCSI_MODE_SENSE_10 = 0x5a,
	VSCSI_EXTENDED_COPY = 0x83,
	VSCSI_RECEIVE_COPY_RESULTS = 0x84,
	VSCSI_READ_16 = 0x88,
	VSCSI_COMPARE_AND_WRITE = 0x89,
	VSCSI_WRITE_16 = 0x8a,
	VSCSI_WRITE_VERIFY_16 = 0x8e,
	VSCSI_VERIFY_16 = 0x8f,
	VSCSI_SYNC_CACHE_16 = 0x91,
	VSCSI_WRITE_SAME_16 = 0x93,
	VSCSI_SERVICE_ACTION_IN_16 = 0x9e,
	VSCSI_MAINTENANCE_IN = 0xa3,
	VSCSI_READ_12 = 0xa8,
	VSCSI_WRITE_12 = 0xaa,
	VSCSI_WRITE_VERIFY_12 = 0xae,
	VSCSI_VERIFY_12 = 0xaf,
};
/* SERVICE ACTION IN(16) service actions */
#define VSCSI_SA_READ_CAPACITY_16 0x10
#define VSCSI_SA_GET_LBA_STATUS 0x12

/* The one status vocabulary of the handler. */
enum vscsi_status {
	VSCSI_OK = 0,
	VSCSI_NOT_HANDLED,          /* not ours: tcmu-runner's generic path answers */
	VSCSI_INVALID_OPCODE,       /* 05/20/00 */
	VSCSI_LBA_OUT_OF_RANGE,     /* 05/21/00 */
	VSCSI_INVALID_FIELD_CDB,    /* 05/24/00 */
	VSCSI_INVALID_FIELD_PARAM,  /* 05/26/00 */
	VSCSI_PARAM_LIST_LENGTH,    /* 05/1a/00 */
	VSCSI_SAVING_PARAMS_UNSUP,  /* 05/39/00 */
	VSCSI_WRITE_PROTECTED,      /* 07/27/00 */
	VSCSI_SPACE_ALLOC_FAILED,   /* 07/27/07 space allocation failed write protect */
	VSCSI_UNRECOVERED_READ,     /* 03/11/00 */
	VSCSI_WRITE_ERROR,          /* 03/0c/00 */
	VSCSI_MISCOMPARE,           /* 0e/1d/00 */
	VSCSI_INTERNAL_FAILURE,     /* 04/44/00 */
	VSCSI_UNSUPP_SEG_DESC_TYPE, /* 05/26/09 unsupported segment descriptor type code */
	VSCSI_COPY_ABORTED,         /* 0a/00/00 EXTENDED COPY segment failed */
	VSCSI_STATUS_MAX,
};

/* Sense keys */
#define VSCSI_KEY_NO_SENSE 0x0
#define VSCSI_KEY_MEDIUM_ERROR 0x3
#define VSCSI_KEY_HARDWARE_ERROR 0x4
#define VSCSI_KEY_ILLEGAL_REQUEST 0x5
#define VSCSI_KEY_DATA_PROTECT 0x7
#define VSCSI_KEY_COPY_ABORTED 0xa
#define VSCSI_KEY_MISCOMPARE 0xe

struct vscsi_sense_code {
	uint8_t key, asc, ascq;
};

/* The single status -> sense table. Returns false for statuses that carry no
 * sense (OK, NOT_HANDLED, out of range values). */
bool vscsi_sense_code(enum vscsi_status st, struct vscsi_sense_code *ret);
const char *vscsi_status_name(enum vscsi_status st);

/* Fixed-format sense data (SPC-5 4.4.3), current error, 18 bytes.
 * INFORMATION is set (and VALID) when info_valid and info fits in 32 bits.
 * Writes min(len, 18) bytes after zeroing buf[0..len). Returns bytes used
 * (18) or 0 if the status has no sense. */
size_t vscsi_sense_build(uint8_t *buf, size_t len, enum vscsi_status st, bool info_valid,
			 uint64_t info);

/* What the logical unit is and advertises; input to validation and to the
 * response builders. */
struct vscsi_lu {
	uint64_t num_lbas;
	uint32_t block_size;
	bool thin;        /* logical block provisioning: UNMAP, WRITE SAME/UNMAP, LBPRZ */
	bool read_only;   /* writes fail with DATA PROTECT, MODE SENSE WP=1 */
	bool wce;         /* caching mode page WCE */
	uint32_t unmap_granularity; /* blocks, thin only */
	uint8_t tpgs;     /* standard INQUIRY TPGS field (bits 5:4 value, 0..3) */
};

/* ------------------------------------------------- read/write family */

enum vscsi_rw_kind {
	VSCSI_RW_READ,
	VSCSI_RW_WRITE,
	VSCSI_RW_WRITE_VERIFY,
	VSCSI_RW_VERIFY,
	VSCSI_RW_WRITE_SAME,
	VSCSI_RW_COMPARE_AND_WRITE,
	VSCSI_RW_SYNC_CACHE,
};

struct vscsi_rw {
	uint8_t opcode;
	uint8_t kind;      /* enum vscsi_rw_kind */
	uint64_t lba;
	uint32_t nblocks;  /* TRANSFER LENGTH / NUMBER OF LOGICAL BLOCKS (READ(6): 0 means 256) */
	uint8_t protect;   /* RDPROTECT / WRPROTECT / VRPROTECT */
	bool dpo, fua;
	bool unmap, anchor, ndob; /* WRITE SAME */
	uint8_t bytchk;    /* VERIFY / WRITE AND VERIFY */
	bool immed;        /* SYNCHRONIZE CACHE */
};

/* Decodes any CDB of the family (READ/WRITE 6/10/12/16, WRITE AND VERIFY,
 * VERIFY, WRITE SAME, COMPARE AND WRITE, SYNCHRONIZE CACHE). Returns
 * VSCSI_NOT_HANDLED for other opcodes, VSCSI_INVALID_FIELD_CDB if cdb_len is
 * too short for the opcode, else VSCSI_OK. */
enum vscsi_status vscsi_decode_rw(const uint8_t *cdb, size_t cdb_len, struct vscsi_rw *ret);

/* Field checks tcmu-runner's generic path lacks (SBC-4 5.x, "protection
 * information" 4.22: with PROT_EN=0 a nonzero RD/WR/VRPROTECT is INVALID
 * FIELD IN CDB), write protection, WRITE SAME UNMAP/ANCHOR against the
 * provisioning the LU advertises, and the LBA range for VERIFY (which the
 * runner does not implement). Returns VSCSI_OK when the runner may proceed. */
enum vscsi_status vscsi_check_rw(const struct vscsi_lu *lu, const struct vscsi_rw *rw);

/* Does a write carrying this CDB have to be durable before completion?
 * (FUA bit of WRITE(10/12/16) and COMPARE AND WRITE; WRITE AND VERIFY
 * always, since it verifies the medium.) Any opcode may be passed. */
bool vscsi_cdb_write_fua(const uint8_t *cdb, size_t cdb_len);

/* Is this opcode one that modifies the medium? */
bool vscsi_opcode_writes(uint8_t opcode);

/* UNMAP (SBC-4 5.30) CDB checks: ANCHOR unsupported. */
enum vscsi_status vscsi_check_unmap(const struct vscsi_lu *lu, const uint8_t *cdb, size_t cdb_len);

/* ------------------------------------------------------ EXTENDED COPY */

#define VSCSI_XCOPY_HDR_LEN 16u
/* EXTENDED COPY(LID1) (opcode 83h, service action 00h; SPC-4 6.4) needs a
 * word before the runner sees it: tcmu-runner 1.5.4 copies only parameter
 * lists with LIST ID USAGE 11b (no list identifier) and rejects 00b and
 * 10b with INVALID FIELD IN PARAMETER LIST. Like LIO's own copy manager,
 * vlun accepts them: the copy completes before the command's status, and
 * no copy status is kept for RECEIVE COPY RESULTS (which offers only
 * OPERATING PARAMETERS), so the identifier has nothing to name.
 * Given the CDB and the first bytes of the parameter list (hdr, hdr_len
 * of them present), rewrites hdr to the 11b form the runner accepts
 * (LIST IDENTIFIER 0, LIST ID USAGE 11b) and sets *ret_changed. Returns
 * VSCSI_INVALID_FIELD_PARAM for the reserved LIST ID USAGE 01b, else
 * VSCSI_NOT_HANDLED (the runner goes on: short lists, other service
 * actions and header errors are its business). */
/* Segment descriptors of an EXTENDED COPY(LID1) parameter list (par, len
 * bytes present; SPC-4 6.4.5), checked before the runner's copy manager,
 * which reports them wrongly: a type other than block->block (02h) is
 * UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE (the runner says INVALID FIELD
 * IN PARAMETER LIST when the length is not 28), and a block->block segment
 * reaching past the last LBA (num_lbas) on either side aborts the copy
 * (COPY ABORTED, as LIO; the runner says LBA OUT OF RANGE). Returns
 * VSCSI_NOT_HANDLED when the runner may go on, including for malformed
 * lists, whose errors are the runner's. */
enum vscsi_status vscsi_xcopy_check_segments(const uint8_t *par, size_t len, uint64_t num_lbas);

enum vscsi_status vscsi_xcopy_fix_list_id(const uint8_t *cdb, size_t cdb_len, uint8_t *hdr,
					  size_t hdr_len, bool *ret_changed);

/* ----------------------------------------------------------- INQUIRY */

struct vscsi_inquiry {
	bool evpd;
	uint8_t page;
	uint16_t alloc_len;
};
enum vscsi_status vscsi_decode_inquiry(const uint8_t *cdb, size_t cdb_len, struct vscsi_inquiry *ret);

#define VSCSI_STD_INQUIRY_LEN 96u
/* Standard INQUIRY data (SPC-5 6.7.2) with version descriptors SAM-5,
 * SPC-4, SBC-3. Writes min(len, 96) bytes; returns 96. */
size_t vscsi_build_std_inquiry(uint8_t *buf, size_t len, const struct vscsi_lu *lu);

#define VSCSI_VPD_B2_LEN 8u
/* Logical Block Provisioning VPD page (SBC-4 6.6.6): thin -> LBPU, LBPWS,
 * LBPWS10, LBPRZ=1, PROVISIONING TYPE thin; otherwise all clear (fully
 * provisioned). Writes min(len, 8); returns 8. */
size_t vscsi_build_vpd_b2(uint8_t *buf, size_t len, const struct vscsi_lu *lu);

/* ------------------------------------------------------- READ CAPACITY */

#define VSCSI_RC16_LEN 32u
/* READ CAPACITY(16) data (SBC-4 5.20.2); LBPME/LBPRZ only when thin. */
size_t vscsi_build_read_capacity16(uint8_t *buf, size_t len, const struct vscsi_lu *lu);
/* ALLOCATION LENGTH of SERVICE ACTION IN(16) CDBs (bytes 10..13). */
uint32_t vscsi_sai16_alloc_len(const uint8_t *cdb);

/* ---------------------------------------------------------- MODE SENSE */

struct vscsi_mode_sense {
	bool ten;          /* MODE SENSE(10) */
	bool dbd, llbaa;
	uint8_t pc;        /* page control: 0 current, 1 changeable, 2 default, 3 saved */
	uint8_t page, subpage;
	uint16_t alloc_len;
};
enum vscsi_status vscsi_decode_mode_sense(const uint8_t *cdb, size_t cdb_len,
					  struct vscsi_mode_sense *ret);
/* Builds the mode parameter data: header with WP (read-only) and DPOFUA,
 * no block descriptors, pages 01h (read-write error recovery), 08h
 * (caching, WCE) and 0Ah (control), or all of them for 3Fh. Writes at most
 * len bytes (the rest of buf untouched), stores the full length in
 * *ret_full. Returns VSCSI_INVALID_FIELD_CDB for pages/subpages we do not
 * have, VSCSI_SAVING_PARAMS_UNSUP for saved values. */
enum vscsi_status vscsi_build_mode_sense(const struct vscsi_mode_sense *ms,
					 const struct vscsi_lu *lu, uint8_t *buf, size_t len,
					 size_t *ret_full);

/* ----------------------------------------------------- GET LBA STATUS */

struct vscsi_get_lba_status {
	uint64_t lba;
	uint32_t alloc_len;
};
enum vscsi_status vscsi_decode_get_lba_status(const uint8_t *cdb, size_t cdb_len,
					      const struct vscsi_lu *lu,
					      struct vscsi_get_lba_status *ret);

/* Provisioning status of the run starting at lba, at most max_blocks long:
 * *ret_mapped and *ret_nblocks (>= 1). Returns 0 or a negative errno. */
typedef int (*vscsi_lba_status_fn)(void *userdata, uint64_t lba, uint64_t max_blocks,
				   bool *ret_mapped, uint64_t *ret_nblocks);

#define VSCSI_LBA_STATUS_MAX_DESC 1024u
/* Builds the GET LBA STATUS parameter data (SBC-4 5.7.2): an 8-byte header
 * and as many 16-byte descriptors as fit in len (and at most
 * VSCSI_LBA_STATUS_MAX_DESC), starting at req->lba, with adjacent runs of
 * the same status merged. Returns VSCSI_OK (*ret_used = bytes written) or
 * VSCSI_INTERNAL_FAILURE when the status callback fails. */
enum vscsi_status vscsi_build_lba_status(const struct vscsi_get_lba_status *req,
					 const struct vscsi_lu *lu, vscsi_lba_status_fn fn,
					 void *userdata, uint8_t *buf, size_t len, size_t *ret_used);

/* Big-endian helpers */
static inline uint16_t vscsi_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t vscsi_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t vscsi_get_be64(const uint8_t *p)
{
	return (uint64_t)vscsi_get_be32(p) << 32 | vscsi_get_be32(p + 4);
}
static inline void vscsi_put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void vscsi_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline void vscsi_put_be64(uint8_t *p, uint64_t v)
{
	vscsi_put_be32(p, v >> 32);
	vscsi_put_be32(p + 4, (uint32_t)v);
}

#endif
