/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scsi_cdb.c — pure CDB decoders, checks and response builders (see
 * scsi_cdb.h). Nothing here knows tcmu-runner.
 */
#include <string.h>

#include "scsi_cdb.h"

/* ------------------------------------------------------------ statuses */

static const struct {
	const char *name;
	bool has_sense;
	struct vscsi_sense_code code;
} status_table[VSCSI_STATUS_MAX] = {
	[VSCSI_OK] = { "ok", false, { 0, 0, 0 } },
	[VSCSI_NOT_HANDLED] = { "not handled", false, { 0, 0, 0 } },
	[VSCSI_INVALID_OPCODE] = { "invalid command operation code", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x20, 0x00 } },
	[VSCSI_LBA_OUT_OF_RANGE] = { "LBA out of range", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x21, 0x00 } },
	[VSCSI_INVALID_FIELD_CDB] = { "invalid field in CDB", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x24, 0x00 } },
	[VSCSI_INVALID_FIELD_PARAM] = { "invalid field in parameter list", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x26, 0x00 } },
	[VSCSI_PARAM_LIST_LENGTH] = { "parameter list length error", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x1a, 0x00 } },
	[VSCSI_SAVING_PARAMS_UNSUP] = { "saving parameters not supported", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x39, 0x00 } },
	[VSCSI_WRITE_PROTECTED] = { "write protected", true, { VSCSI_KEY_DATA_PROTECT, 0x27, 0x00 } },
	[VSCSI_SPACE_ALLOC_FAILED] = { "space allocation failed write protect", true, { VSCSI_KEY_DATA_PROTECT, 0x27, 0x07 } },
	[VSCSI_UNRECOVERED_READ] = { "unrecovered read error", true, { VSCSI_KEY_MEDIUM_ERROR, 0x11, 0x00 } },
	[VSCSI_WRITE_ERROR] = { "write error", true, { VSCSI_KEY_MEDIUM_ERROR, 0x0c, 0x00 } },
	[VSCSI_MISCOMPARE] = { "miscompare during verify operation", true, { VSCSI_KEY_MISCOMPARE, 0x1d, 0x00 } },
	[VSCSI_INTERNAL_FAILURE] = { "internal target failure", true, { VSCSI_KEY_HARDWARE_ERROR, 0x44, 0x00 } },
	[VSCSI_UNSUPP_SEG_DESC_TYPE] = { "unsupported segment descriptor type code", true, { VSCSI_KEY_ILLEGAL_REQUEST, 0x26, 0x09 } },
	[VSCSI_COPY_ABORTED] = { "copy aborted", true, { VSCSI_KEY_COPY_ABORTED, 0x00, 0x00 } },
};

bool vscsi_sense_code(enum vscsi_status st, struct vscsi_sense_code *ret)
{
	if ((unsigned)st >= VSCSI_STATUS_MAX || !status_table[st].has_sense)
		return false;
	*ret = status_table[st].code;
	return true;
}

const char *vscsi_status_name(enum vscsi_status st)
{
	if ((unsigned)st >= VSCSI_STATUS_MAX)
		return "unknown status";
	return status_table[st].name;
}

size_t vscsi_sense_build(uint8_t *buf, size_t len, enum vscsi_status st, bool info_valid,
			 uint64_t info)
{
	struct vscsi_sense_code sc;
	uint8_t s[18] = { 0 };

	if (!vscsi_sense_code(st, &sc))
		return 0;
	s[0] = 0x70; /* current error, fixed format */
	if (info_valid && info <= UINT32_MAX) {
		s[0] |= 0x80; /* VALID: INFORMATION is meaningful */
		vscsi_put_be32(&s[3], (uint32_t)info);
	}
	s[2] = sc.key;
	s[7] = sizeof(s) - 8; /* ADDITIONAL SENSE LENGTH */
	s[12] = sc.asc;
	s[13] = sc.ascq;
	memset(buf, 0, len);
	memcpy(buf, s, len < sizeof(s) ? len : sizeof(s));
	return sizeof(s);
}

/* ------------------------------------------------- read/write family */

static size_t cdb_group_len(uint8_t opcode)
{
	switch (opcode >> 5) {
	case 0: return 6;
	case 1: case 2: return 10;
	case 4: return 16;
	case 5: return 12;
	default: return 0;
	}
}

enum vscsi_status vscsi_decode_rw(const uint8_t *cdb, size_t cdb_len, struct vscsi_rw *ret)
{
	struct vscsi_rw rw = { 0 };
	size_t need;

	if (!cdb || cdb_len < 1)
		return VSCSI_INVALID_FIELD_CDB;
	rw.opcode = cdb[0];
	switch (rw.opcode) {
	case VSCSI_READ_6: case VSCSI_READ_10: case VSCSI_READ_12: case VSCSI_READ_16:
		rw.kind = VSCSI_RW_READ;
		break;
	case VSCSI_WRITE_6: case VSCSI_WRITE_10: case VSCSI_WRITE_12: case VSCSI_WRITE_16:
		rw.kind = VSCSI_RW_WRITE;
		break;
	case VSCSI_WRITE_VERIFY_10: case VSCSI_WRITE_VERIFY_12: case VSCSI_WRITE_VERIFY_16:
		rw.kind = VSCSI_RW_WRITE_VERIFY;
		break;
	case VSCSI_VERIFY_10: case VSCSI_VERIFY_12: case VSCSI_VERIFY_16:
		rw.kind = VSCSI_RW_VERIFY;
		break;
	case VSCSI_WRITE_SAME_10: case VSCSI_WRITE_SAME_16:
		rw.kind = VSCSI_RW_WRITE_SAME;
		break;
	case VSCSI_COMPARE_AND_WRITE:
		rw.kind = VSCSI_RW_COMPARE_AND_WRITE;
		break;
	case VSCSI_SYNC_CACHE_10: case VSCSI_SYNC_CACHE_16:
		rw.kind = VSCSI_RW_SYNC_CACHE;
		break;
	default:
		return VSCSI_NOT_HANDLED;
	}
	need = cdb_group_len(rw.opcode);
	if (need == 0 || cdb_len < need)
		return VSCSI_INVALID_FIELD_CDB;

	/* LBA and length by CDB size (SBC-4 4.2.2 and the CDB formats of 5.x) */
	switch (need) {
	case 6:
		rw.lba = (uint64_t)(cdb[1] & 0x1f) << 16 | vscsi_get_be16(&cdb[2]);
		rw.nblocks = cdb[4] ? cdb[4] : 256; /* READ/WRITE(6): 0 means 256 */
		break;
	case 10:
		rw.lba = vscsi_get_be32(&cdb[2]);
		rw.nblocks = vscsi_get_be16(&cdb[7]);
		break;
	case 12:
		rw.lba = vscsi_get_be32(&cdb[2]);
		rw.nblocks = vscsi_get_be32(&cdb[6]);
		break;
	case 16:
		rw.lba = vscsi_get_be64(&cdb[2]);
		rw.nblocks = rw.opcode == VSCSI_COMPARE_AND_WRITE ? cdb[13] : vscsi_get_be32(&cdb[10]);
		break;
	}

	if (need != 6) {
		uint8_t b1 = cdb[1];

		switch (rw.kind) {
		case VSCSI_RW_READ:
		case VSCSI_RW_WRITE:
		case VSCSI_RW_COMPARE_AND_WRITE:
			rw.protect = b1 >> 5;
			rw.dpo = b1 & 0x10;
			rw.fua = b1 & 0x08;
			break;
		case VSCSI_RW_WRITE_VERIFY:
		case VSCSI_RW_VERIFY:
			rw.protect = b1 >> 5;
			rw.dpo = b1 & 0x10;
			rw.bytchk = (b1 >> 1) & 0x3;
			break;
		case VSCSI_RW_WRITE_SAME:
			rw.protect = b1 >> 5;
			rw.anchor = b1 & 0x10;
			rw.unmap = b1 & 0x08;
			rw.ndob = rw.opcode == VSCSI_WRITE_SAME_16 && (b1 & 0x01);
			break;
		case VSCSI_RW_SYNC_CACHE:
			rw.immed = b1 & 0x02;
			break;
		}
	}
	*ret = rw;
	return VSCSI_OK;
}

bool vscsi_opcode_writes(uint8_t opcode)
{
	switch (opcode) {
	case VSCSI_WRITE_6: case VSCSI_WRITE_10: case VSCSI_WRITE_12: case VSCSI_WRITE_16:
	case VSCSI_WRITE_VERIFY_10: case VSCSI_WRITE_VERIFY_12: case VSCSI_WRITE_VERIFY_16:
	case VSCSI_WRITE_SAME_10: case VSCSI_WRITE_SAME_16:
	case VSCSI_COMPARE_AND_WRITE: case VSCSI_UNMAP:
		return true;
	default:
		return false;
	}
}

enum vscsi_status vscsi_check_rw(const struct vscsi_lu *lu, const struct vscsi_rw *rw)
{
	/* SBC-4 4.22.1: the LU reports PROT_EN=0 in READ CAPACITY(16), so any
	 * nonzero RDPROTECT/WRPROTECT/VRPROTECT is an invalid field. */
	if (rw->protect)
		return VSCSI_INVALID_FIELD_CDB;

	if (rw->kind == VSCSI_RW_WRITE_SAME) {
		/* SBC-4 5.48/5.49: ANCHOR needs ANC_SUP (we report 0); UNMAP
		 * needs LBPWS/LBPWS10 — only thin disks advertise them. */
		if (rw->anchor)
			return VSCSI_INVALID_FIELD_CDB;
		if (rw->unmap && !lu->thin)
			return VSCSI_INVALID_FIELD_CDB;
	}
	if (rw->kind == VSCSI_RW_VERIFY && rw->bytchk == 2)
		return VSCSI_INVALID_FIELD_CDB; /* BYTCHK 10b is reserved (SBC-4 5.33) */

	if (lu->read_only && vscsi_opcode_writes(rw->opcode))
		return VSCSI_WRITE_PROTECTED;

	/* The runner checks the range of what it emulates; VERIFY is ours. */
	if (rw->kind == VSCSI_RW_VERIFY &&
	    (rw->lba > lu->num_lbas || rw->nblocks > lu->num_lbas - rw->lba))
		return VSCSI_LBA_OUT_OF_RANGE;
	return VSCSI_OK;
}

bool vscsi_cdb_write_fua(const uint8_t *cdb, size_t cdb_len)
{
	if (!cdb || cdb_len < 2)
		return false;
	switch (cdb[0]) {
	case VSCSI_WRITE_10: case VSCSI_WRITE_12: case VSCSI_WRITE_16:
	case VSCSI_COMPARE_AND_WRITE:
		return cdb[1] & 0x08;
	case VSCSI_WRITE_VERIFY_10: case VSCSI_WRITE_VERIFY_12: case VSCSI_WRITE_VERIFY_16:
		return true; /* verifying what is on the medium implies it is there */
	default:
		return false;
	}
}

enum vscsi_status vscsi_check_unmap(const struct vscsi_lu *lu, const uint8_t *cdb, size_t cdb_len)
{
	if (cdb_len < 10)
		return VSCSI_INVALID_FIELD_CDB;
	/* Without logical block provisioning UNMAP is not supported at all
	 * (LBPU=0), like LIO with emulate_tpu=0. */
	if (!lu->thin)
		return VSCSI_INVALID_OPCODE;
	if (cdb[1] & 0x01) /* ANCHOR, ANC_SUP=0 */
		return VSCSI_INVALID_FIELD_CDB;
	if (lu->read_only)
		return VSCSI_WRITE_PROTECTED;
	return VSCSI_OK;
}

/* ------------------------------------------------------ EXTENDED COPY */

enum vscsi_status vscsi_xcopy_check_segments(const uint8_t *par, size_t len, uint64_t num_lbas)
{
	uint32_t tdll, sdll;
	size_t off, end;

	if (len < VSCSI_XCOPY_HDR_LEN)
		return VSCSI_NOT_HANDLED;
	tdll = vscsi_get_be16(&par[2]);
	sdll = vscsi_get_be32(&par[8]);
	if (tdll % 32 || (uint64_t)VSCSI_XCOPY_HDR_LEN + tdll + sdll > len)
		return VSCSI_NOT_HANDLED;
	off = VSCSI_XCOPY_HDR_LEN + tdll;
	end = off + sdll;
	while (end - off >= 4) {
		const uint8_t *d = &par[off];
		size_t dlen = (size_t)vscsi_get_be16(&d[2]) + 4;

		if (d[0] != 0x02) /* block device to block device */
			return VSCSI_UNSUPP_SEG_DESC_TYPE;
		if (dlen != 28 || dlen > end - off)
			return VSCSI_NOT_HANDLED;
		/* NUMBER OF BLOCKS (bytes 10-11), SOURCE and DESTINATION
		 * BLOCK DEVICE LOGICAL BLOCK ADDRESS (12-19, 20-27) */
		uint64_t n = vscsi_get_be16(&d[10]);
		uint64_t src = vscsi_get_be64(&d[12]), dst = vscsi_get_be64(&d[20]);

		if (src > num_lbas || n > num_lbas - src || dst > num_lbas || n > num_lbas - dst)
			return VSCSI_COPY_ABORTED;
		off += dlen;
	}
	return VSCSI_NOT_HANDLED;
}

enum vscsi_status vscsi_xcopy_fix_list_id(const uint8_t *cdb, size_t cdb_len, uint8_t *hdr,
					  size_t hdr_len, bool *ret_changed)
{
	uint32_t param_len;
	uint8_t usage;

	*ret_changed = false;
	if (!cdb || cdb_len < 16 || cdb[0] != VSCSI_EXTENDED_COPY || (cdb[1] & 0x1f) != 0x00)
		return VSCSI_NOT_HANDLED;
	param_len = vscsi_get_be32(&cdb[10]);
	/* a list shorter than its header is a length error: the runner's */
	if (param_len < VSCSI_XCOPY_HDR_LEN || hdr_len < VSCSI_XCOPY_HDR_LEN)
		return VSCSI_NOT_HANDLED;
	usage = (hdr[1] >> 3) & 0x3; /* SPC-4 table 103 */
	switch (usage) {
	case 0x0: /* hold the list id (for COPY STATUS, which we do not keep) */
	case 0x2: /* list id held for the abort/status of this copy only */
		hdr[0] = 0;
		hdr[1] |= 0x18;
		*ret_changed = true;
		return VSCSI_NOT_HANDLED;
	case 0x1: /* reserved */
		return VSCSI_INVALID_FIELD_PARAM;
	default: /* 11b: what the runner implements */
		return VSCSI_NOT_HANDLED;
	}
}

/* ----------------------------------------------------------- INQUIRY */

enum vscsi_status vscsi_decode_inquiry(const uint8_t *cdb, size_t cdb_len, struct vscsi_inquiry *ret)
{
	struct vscsi_inquiry inq = { 0 };

	if (cdb_len < 6 || cdb[0] != VSCSI_INQUIRY)
		return VSCSI_INVALID_FIELD_CDB;
	inq.evpd = cdb[1] & 0x01;
	inq.page = cdb[2];
	inq.alloc_len = vscsi_get_be16(&cdb[3]);
	/* SPC-5 6.7.1: PAGE CODE must be zero when EVPD is zero; CMDDT
	 * (obsolete bit 1) set is invalid. */
	if ((!inq.evpd && inq.page) || (cdb[1] & 0x02))
		return VSCSI_INVALID_FIELD_CDB;
	*ret = inq;
	return VSCSI_OK;
}

static void put_ascii(uint8_t *dst, size_t width, const char *s)
{
	size_t n = strlen(s);

	memset(dst, ' ', width);
	memcpy(dst, s, n < width ? n : width);
}

size_t vscsi_build_std_inquiry(uint8_t *buf, size_t len, const struct vscsi_lu *lu)
{
	uint8_t d[VSCSI_STD_INQUIRY_LEN] = { 0 };

	d[0] = 0x00;           /* peripheral qualifier 0, direct access block device */
	d[2] = 0x06;           /* VERSION: SPC-4 */
	d[3] = 0x02;           /* RESPONSE DATA FORMAT 2 */
	d[4] = sizeof(d) - 5;  /* ADDITIONAL LENGTH */
	d[5] = (uint8_t)((lu->tpgs & 0x3) << 4) | 0x08; /* TPGS, 3PC (EXTENDED COPY is emulated) */
	d[7] = 0x02;           /* CMDQUE */
	put_ascii(&d[8], 8, "LIO-ORG");
	put_ascii(&d[16], 16, "vlun");
	put_ascii(&d[32], 4, "0001");
	/* VERSION DESCRIPTORS (SPC-5 table 174): SAM-5, SPC-4, SBC-3 */
	vscsi_put_be16(&d[58], 0x00a0);
	vscsi_put_be16(&d[60], 0x0460);
	vscsi_put_be16(&d[62], 0x04c0);
	memcpy(buf, d, len < sizeof(d) ? len : sizeof(d));
	return sizeof(d);
}

size_t vscsi_build_vpd_b2(uint8_t *buf, size_t len, const struct vscsi_lu *lu)
{
	uint8_t d[VSCSI_VPD_B2_LEN] = { 0 };

	d[1] = 0xb2;
	vscsi_put_be16(&d[2], sizeof(d) - 4);
	if (lu->thin) {
		/* byte 5: LBPU(7) LBPWS(6) LBPWS10(5) LBPRZ(4:2)=001b ANC_SUP(1)=0 DP(0)=0 */
		d[5] = 0x80 | 0x40 | 0x20 | 0x04;
		d[6] = 0x02; /* PROVISIONING TYPE: thin provisioned */
	}
	memcpy(buf, d, len < sizeof(d) ? len : sizeof(d));
	return sizeof(d);
}

/* ------------------------------------------------------- READ CAPACITY */

size_t vscsi_build_read_capacity16(uint8_t *buf, size_t len, const struct vscsi_lu *lu)
{
	uint8_t d[VSCSI_RC16_LEN] = { 0 };

	vscsi_put_be64(&d[0], lu->num_lbas ? lu->num_lbas - 1 : 0);
	vscsi_put_be32(&d[8], lu->block_size);
	if (lu->thin)
		d[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	memcpy(buf, d, len < sizeof(d) ? len : sizeof(d));
	return sizeof(d);
}

uint32_t vscsi_sai16_alloc_len(const uint8_t *cdb)
{
	return vscsi_get_be32(&cdb[10]);
}

/* ---------------------------------------------------------- MODE SENSE */

enum vscsi_status vscsi_decode_mode_sense(const uint8_t *cdb, size_t cdb_len,
					  struct vscsi_mode_sense *ret)
{
	struct vscsi_mode_sense ms = { 0 };

	if (cdb_len < 6)
		return VSCSI_INVALID_FIELD_CDB;
	if (cdb[0] == VSCSI_MODE_SENSE_6) {
		ms.alloc_len = cdb[4];
	} else if (cdb[0] == VSCSI_MODE_SENSE_10) {
		if (cdb_len < 10)
			return VSCSI_INVALID_FIELD_CDB;
		ms.ten = true;
		ms.llbaa = cdb[1] & 0x10;
		ms.alloc_len = vscsi_get_be16(&cdb[7]);
	} else {
		return VSCSI_NOT_HANDLED;
	}
	ms.dbd = cdb[1] & 0x08;
	ms.pc = cdb[2] >> 6;
	ms.page = cdb[2] & 0x3f;
	ms.subpage = cdb[3];
	*ret = ms;
	return VSCSI_OK;
}

/* Mode pages (SPC-5 7.5, SBC-4 6.5). changeable: nothing can be changed,
 * so the changeable mask is all zeros. */
static size_t page_rw_recovery(uint8_t *p, const struct vscsi_lu *lu, bool changeable)
{
	memset(p, 0, 12);
	p[0] = 0x01;
	p[1] = 0x0a;
	return 12;
}

static size_t page_caching(uint8_t *p, const struct vscsi_lu *lu, bool changeable)
{
	memset(p, 0, 20);
	p[0] = 0x08;
	p[1] = 0x12;
	if (!changeable && lu->wce)
		p[2] = 0x04; /* WCE */
	return 20;
}

static size_t page_control(uint8_t *p, const struct vscsi_lu *lu, bool changeable)
{
	memset(p, 0, 12);
	p[0] = 0x0a;
	p[1] = 0x0a;
	if (!changeable) {
		p[2] = 0x02;  /* GLTSD: log parameters are not saved implicitly */
		p[5] = 0x40;  /* TAS */
		p[8] = 0xff;  /* BUSY TIMEOUT PERIOD: unlimited */
		p[9] = 0xff;
	}
	return 12;
}

static const struct {
	uint8_t page;
	size_t (*build)(uint8_t *p, const struct vscsi_lu *lu, bool changeable);
} mode_pages[] = {
	{ 0x01, page_rw_recovery },
	{ 0x08, page_caching },
	{ 0x0a, page_control },
};

enum vscsi_status vscsi_build_mode_sense(const struct vscsi_mode_sense *ms,
					 const struct vscsi_lu *lu, uint8_t *buf, size_t len,
					 size_t *ret_full)
{
	uint8_t d[8 + 12 + 20 + 12] = { 0 };
	size_t hdr = ms->ten ? 8 : 4, used = hdr;
	bool found = false;

	if (ms->pc == 3)
		return VSCSI_SAVING_PARAMS_UNSUP; /* SPC-5 6.14.1: no saved pages */
	/* We have no subpages: 3Fh/FFh means "all pages and subpages". */
	if (ms->subpage != 0 && !(ms->page == 0x3f && ms->subpage == 0xff))
		return VSCSI_INVALID_FIELD_CDB;

	for (size_t i = 0; i < sizeof(mode_pages) / sizeof(mode_pages[0]); i++) {
		if (ms->page != 0x3f && ms->page != mode_pages[i].page)
			continue;
		used += mode_pages[i].build(&d[used], lu, ms->pc == 1);
		found = true;
	}
	if (!found)
		return VSCSI_INVALID_FIELD_CDB;

	/* Device-specific parameter (SBC-4 6.5.1): WP, DPOFUA (we honour FUA). */
	if (ms->ten) {
		vscsi_put_be16(&d[0], (uint16_t)(used - 2));
		d[3] = (lu->read_only ? 0x80 : 0) | 0x10;
	} else {
		d[0] = (uint8_t)(used - 1);
		d[2] = (lu->read_only ? 0x80 : 0) | 0x10;
	}
	memcpy(buf, d, len < used ? len : used);
	*ret_full = used;
	return VSCSI_OK;
}

/* ----------------------------------------------------- GET LBA STATUS */

enum vscsi_status vscsi_decode_get_lba_status(const uint8_t *cdb, size_t cdb_len,
					      const struct vscsi_lu *lu,
					      struct vscsi_get_lba_status *ret)
{
	struct vscsi_get_lba_status g;

	if (cdb_len < 16 || cdb[0] != VSCSI_SERVICE_ACTION_IN_16 ||
	    (cdb[1] & 0x1f) != VSCSI_SA_GET_LBA_STATUS)
		return VSCSI_INVALID_FIELD_CDB;
	g.lba = vscsi_get_be64(&cdb[2]);
	g.alloc_len = vscsi_get_be32(&cdb[10]);
	/* SBC-4 5.7.1: a STARTING LBA beyond the last LBA is out of range. */
	if (g.lba >= lu->num_lbas)
		return VSCSI_LBA_OUT_OF_RANGE;
	*ret = g;
	return VSCSI_OK;
}

enum vscsi_status vscsi_build_lba_status(const struct vscsi_get_lba_status *req,
					 const struct vscsi_lu *lu, vscsi_lba_status_fn fn,
					 void *userdata, uint8_t *buf, size_t len, size_t *ret_used)
{
	size_t maxdesc, n = 0;
	uint64_t lba = req->lba;
	uint8_t *desc_prev = NULL;
	bool prev_mapped = false;

	if (len < 8) {
		*ret_used = 0;
		return VSCSI_OK;
	}
	maxdesc = (len - 8) / 16;
	if (maxdesc > VSCSI_LBA_STATUS_MAX_DESC)
		maxdesc = VSCSI_LBA_STATUS_MAX_DESC;
	/* At least one descriptor's worth of work even if it does not fit, so
	 * the header's PARAMETER DATA LENGTH tells the client what it missed. */
	memset(buf, 0, len < 8 + maxdesc * 16 ? len : 8 + maxdesc * 16);

	while (lba < lu->num_lbas && n < maxdesc) {
		bool mapped = false;
		uint64_t nb = 0, room;
		int r;

		r = fn(userdata, lba, lu->num_lbas - lba, &mapped, &nb);
		if (r < 0 || nb == 0)
			return VSCSI_INTERNAL_FAILURE;
		if (nb > lu->num_lbas - lba)
			nb = lu->num_lbas - lba;
		/* Merge with the previous descriptor while its 32-bit count has room. */
		if (desc_prev && prev_mapped == mapped) {
			uint32_t cur = vscsi_get_be32(&desc_prev[8]);

			room = UINT32_MAX - cur;
			if (room) {
				uint64_t take = nb < room ? nb : room;

				vscsi_put_be32(&desc_prev[8], (uint32_t)(cur + take));
				lba += take;
				continue;
			}
		}
		uint8_t *d = &buf[8 + n * 16];

		if (nb > UINT32_MAX)
			nb = UINT32_MAX;
		vscsi_put_be64(&d[0], lba);
		vscsi_put_be32(&d[8], (uint32_t)nb);
		d[12] = mapped ? 0x0 : 0x1; /* PROVISIONING STATUS: mapped / deallocated */
		desc_prev = d;
		prev_mapped = mapped;
		lba += nb;
		n++;
	}
	/* PARAMETER DATA LENGTH: bytes after itself (SBC-4 5.7.2). */
	vscsi_put_be32(&buf[0], (uint32_t)(4 + n * 16));
	*ret_used = 8 + n * 16;
	return VSCSI_OK;
}
