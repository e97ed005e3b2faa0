/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_scsi_cdb — the handler's pure CDB code (handler/scsi_cdb.c) on
 * arbitrary CDBs, parameter lists and logical units: every decoder, check
 * and response builder. Never a crash; statuses stay inside the
 * vocabulary and those with sense build exactly 18 bytes with the table's
 * key/ASC/ASCQ; builders never write past the length they are given (the
 * buffers are exactly that long, so ASan sees any overrun); GET LBA STATUS
 * descriptors are in order, inside the LU and within the length.
 *
 * Input: lu bytes (14), then the CDB (up to 32 bytes, its length from the
 * first byte), then a parameter list (the rest).
 */
#include <string.h>

#include "fuzz.h"
#include "scsi_cdb.h"

static void check_status(enum vscsi_status st)
{
	struct vscsi_sense_code sc;
	uint8_t sense[18];

	FUZZ_CHECK((unsigned)st < VSCSI_STATUS_MAX, "status %d outside the vocabulary", st);
	if (vscsi_sense_code(st, &sc)) {
		FUZZ_CHECK(vscsi_sense_build(sense, sizeof(sense), st, true, 7) == 18, "sense length");
		FUZZ_CHECK(sense[0] == 0xf0 && (sense[2] & 0xf) == sc.key && sense[12] == sc.asc &&
			   sense[13] == sc.ascq, "sense bytes do not match the table");
	} else {
		FUZZ_CHECK(st == VSCSI_OK || st == VSCSI_NOT_HANDLED, "status %d without sense", st);
	}
}

/* A deterministic provisioning map for GET LBA STATUS: runs of
 * 1 + (lba % 37) blocks, mapped when (lba / 64) is odd. */
static int lba_status(void *userdata, uint64_t lba, uint64_t max_blocks, bool *ret_mapped, uint64_t *ret_n)
{
	uint64_t n = 1 + lba % 37;

	(void)userdata;
	if (n > max_blocks)
		n = max_blocks;
	*ret_mapped = (lba / 64) & 1;
	*ret_n = n;
	return 0;
}

/* Copies n bytes into an exact-size heap buffer so ASan catches overruns. */
static uint8_t *exact(const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);

	if (b && n)
		memcpy(b, p, n);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct vscsi_lu lu = { 0 };
	const uint8_t *p;
	uint8_t *cdb, *par, *out;
	size_t cdb_len, plen, olen;
	enum vscsi_status st;

	/* the logical unit */
	lu.num_lbas = (uint64_t)fuzz_u32(&in) << (fuzz_u8(&in) % 33);
	lu.block_size = fuzz_u8(&in) & 1 ? 4096 : 512;
	{
		uint8_t f = fuzz_u8(&in);

		lu.thin = f & 1;
		lu.read_only = f & 2;
		lu.wce = f & 4;
		lu.tpgs = (uint8_t)((f >> 3) & 3);
	}
	lu.unmap_granularity = fuzz_u32(&in);
	olen = (size_t)fuzz_u8(&in) << 4 | (fuzz_u8(&in) & 0xf); /* response allocation, 0..4095 */
	cdb_len = fuzz_u8(&in) % 33;
	cdb_len = fuzz_take(&in, &p, cdb_len);
	cdb = exact(p, cdb_len);
	plen = fuzz_take(&in, &p, in.left);
	par = exact(p, plen);
	out = malloc(olen ? olen : 1);
	if (!cdb || !par || !out)
		goto done;

	/* read/write family */
	{
		struct vscsi_rw rw;

		st = vscsi_decode_rw(cdb, cdb_len, &rw);
		check_status(st);
		if (st == VSCSI_OK) {
			st = vscsi_check_rw(&lu, &rw);
			check_status(st);
			if (st == VSCSI_OK && rw.kind == VSCSI_RW_VERIFY)
				FUZZ_CHECK(rw.lba <= lu.num_lbas && rw.nblocks <= lu.num_lbas - rw.lba,
					   "VERIFY past the end passed the check");
			if (lu.read_only && vscsi_opcode_writes(rw.opcode))
				FUZZ_CHECK(st != VSCSI_OK, "write on a read-only LU passed the check");
		}
		(void)vscsi_cdb_write_fua(cdb, cdb_len);
	}
	if (cdb_len >= 1 && cdb[0] == VSCSI_UNMAP)
		check_status(vscsi_check_unmap(&lu, cdb, cdb_len));

	/* EXTENDED COPY: the header rewrite works on a copy of the list */
	{
		bool changed = false;
		uint8_t *hdr = exact(par, plen);

		if (hdr) {
			st = vscsi_xcopy_fix_list_id(cdb, cdb_len, hdr, plen, &changed);
			check_status(st);
			if (changed)
				FUZZ_CHECK(plen >= VSCSI_XCOPY_HDR_LEN && hdr[0] == 0 && ((hdr[1] >> 3) & 3) == 3,
					   "list id rewrite did not give LIST ID USAGE 11b");
			free(hdr);
		}
		check_status(vscsi_xcopy_check_segments(par, plen, lu.num_lbas));
	}

	/* INQUIRY */
	{
		struct vscsi_inquiry inq;

		st = vscsi_decode_inquiry(cdb, cdb_len, &inq);
		check_status(st);
		FUZZ_CHECK(vscsi_build_std_inquiry(out, olen, &lu) == VSCSI_STD_INQUIRY_LEN, "std inquiry len");
		FUZZ_CHECK(vscsi_build_vpd_b2(out, olen, &lu) == VSCSI_VPD_B2_LEN, "vpd b2 len");
		FUZZ_CHECK(vscsi_build_read_capacity16(out, olen, &lu) == VSCSI_RC16_LEN, "rc16 len");
		if (cdb_len >= 14)
			(void)vscsi_sai16_alloc_len(cdb);
	}

	/* MODE SENSE */
	{
		struct vscsi_mode_sense ms;
		size_t full = 0;

		st = vscsi_decode_mode_sense(cdb, cdb_len, &ms);
		check_status(st);
		if (st == VSCSI_OK) {
			st = vscsi_build_mode_sense(&ms, &lu, out, olen, &full);
			check_status(st);
			if (st == VSCSI_OK)
				FUZZ_CHECK(full >= (ms.ten ? 8u : 4u) && full <= 8 + 12 + 20 + 12,
					   "mode data length %zu", full);
		}
	}

	/* GET LBA STATUS */
	{
		struct vscsi_get_lba_status g;
		size_t used = 0;

		st = vscsi_decode_get_lba_status(cdb, cdb_len, &lu, &g);
		check_status(st);
		if (st == VSCSI_OK) {
			FUZZ_CHECK(g.lba < lu.num_lbas, "starting LBA past the end accepted");
			st = vscsi_build_lba_status(&g, &lu, lba_status, NULL, out, olen, &used);
			FUZZ_CHECK(st == VSCSI_OK, "lba status failed");
			FUZZ_CHECK(used <= olen && (used == 0 || (used - 8) % 16 == 0), "used %zu of %zu", used, olen);
			uint64_t next = g.lba;

			for (size_t o = 8; o + 16 <= used; o += 16) {
				uint64_t lba = vscsi_get_be64(&out[o]);
				uint32_t n = vscsi_get_be32(&out[o + 8]);

				FUZZ_CHECK(lba == next && n > 0 && lba < lu.num_lbas && n <= lu.num_lbas - lba,
					   "descriptor at %zu: lba %llu n %u (expected lba %llu, %llu lbas)", o,
					   (unsigned long long)lba, n, (unsigned long long)next,
					   (unsigned long long)lu.num_lbas);
				next = lba + n;
			}
		}
	}
done:
	free(cdb);
	free(par);
	free(out);
	return 0;
}
