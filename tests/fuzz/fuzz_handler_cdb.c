/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_handler_cdb — handler_vlun.so's command handling (handle_cmd, and
 * the read/write/flush/unmap callouts behind the runner's generic path)
 * driven through the fake runner of tests/handler on small real pools in
 * a temporary directory ($TMPDIR, default /dev/shm or /tmp): arbitrary CDB
 * bytes and Data-Out contents, on three devices — a thin vdisk (512-byte
 * blocks), a linear vdisk (512) and a read-only thin export (4096).
 *
 * Every command must complete (no hang: fr_cmd_wait gives up after 30 s),
 * exactly once (fr_violations), with GOOD or CHECK CONDITION carrying a
 * sense from the handler's and the runner's vocabulary — never HARDWARE
 * ERROR or a MEDIUM ERROR on these healthy pools. Data is checked against
 * a model of each disk: a GOOD READ returns what GOOD WRITEs left there
 * (an unmapped block may read as its old data or zeros; a block whose
 * write failed may hold anything until rewritten), a GOOD VERIFY with
 * BYTCHK=01b matched the model, GET LBA STATUS never calls a block with
 * known non-zero data deallocated, and the read-only export never changes.
 *
 * Input: commands until the input ends (at most 64), each
 *     dev u8         bits 0-1 device, bit 2 explicit Data length,
 *                    bits 3-7 iovec split (0: one iovec, else n*512 bytes)
 *     cdb_len u8     (mod 33)  then cdb_len CDB bytes
 *     [len u16]      with bit 2: the Data-In/Out length (max 64 KiB);
 *                    otherwise the length the CDB implies (commands whose
 *                    transfer is over 256 KiB are skipped: LIO refuses
 *                    them above hw_max_sectors before the handler)
 *     Data-Out bytes taken from the input, a pattern once it runs out.
 * The devices stay open across inputs (the models too).
 */
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "fake_runner.h"
#include "fuzz.h"
#include "scsi_cdb.h"
#include "vlun.h"

#define MIB (1024ull * 1024ull)
#define MAX_XFER (256u * 1024u)
#define MAX_CMDS 64

enum { EXACT = 0, OLD_OR_ZERO = 1, UNKNOWN = 2 };

struct fdev {
	const char *vdisk;
	uint32_t layout;
	uint64_t bytes;
	uint32_t bs;
	bool ro;
	char dir[PATH_MAX];
	struct tcmu_device *dev;
	uint64_t nlbas;
	uint8_t *model;  /* bytes of the disk as the model knows them */
	uint8_t *state;  /* per block: EXACT, OLD_OR_ZERO, UNKNOWN */
};

static struct fdev devs[3] = {
	{ .vdisk = "thin0", .layout = VLUN_LAYOUT_THIN, .bytes = 4 * MIB, .bs = 512 },
	{ .vdisk = "lin0", .layout = VLUN_LAYOUT_LINEAR, .bytes = 4 * MIB, .bs = 512 },
	{ .vdisk = "ro0", .layout = VLUN_LAYOUT_THIN, .bytes = 1 * MIB, .bs = 4096, .ro = true },
};
static uint8_t *iobuf;
static uint32_t gen;

static void cleanup(void)
{
	for (size_t i = 0; i < 3; i++) {
		if (devs[i].dev) {
			fr_dev_close(devs[i].dev);
			fr_dev_free(devs[i].dev);
		}
		fr_rmrf(devs[i].dir);
		free(devs[i].model);
		free(devs[i].state);
	}
	free(iobuf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char exe[PATH_MAX], root[PATH_MAX + 16];

	/* the handler sits at <build>/handler/handler_vlun.so; we are <build>/tests/fuzz/x */
	if (!getenv("VLUN_BUILD_ROOT") && *argc > 0 && realpath((*argv)[0], exe)) {
		snprintf(root, sizeof(root), "%s/../..", dirname(exe));
		setenv("VLUN_BUILD_ROOT", root, 1);
	}
	if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	if (fr_load() != 0) {
		fprintf(stderr, "fuzz_handler_cdb: cannot load the handler (%s)\n", fr_handler_path());
		exit(1);
	}
	iobuf = malloc(MAX_XFER);
	if (!iobuf)
		exit(1);
	atexit(cleanup);
	for (size_t i = 0; i < 3; i++) {
		struct fdev *f = &devs[i];
		char cfg[PATH_MAX + 64];

		if (fr_pool_make(f->dir, 1, 64 * MIB, f->vdisk, f->layout, f->bytes, 64 * 1024) < 0)
			exit(1);
		snprintf(cfg, sizeof(cfg), "vlun/%s/%s%s", f->dir, f->vdisk, f->ro ? ";ro" : "");
		f->nlbas = f->bytes / f->bs;
		f->dev = fr_dev_new(cfg, f->nlbas, f->bs);
		if (!f->dev || fr_dev_open(f->dev) != 0) {
			fprintf(stderr, "fuzz_handler_cdb: cannot open %s\n", cfg);
			exit(1);
		}
		f->model = calloc(1, f->bytes);
		f->state = calloc(1, f->nlbas);
		if (!f->model || !f->state)
			exit(1);
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool sense_allowed(const struct fr_result *r, bool explicit_len)
{
	static const uint8_t ok[][3] = {
		{ 0x5, 0x20, 0x00 }, { 0x5, 0x21, 0x00 }, { 0x5, 0x24, 0x00 }, { 0x5, 0x26, 0x00 },
		{ 0x5, 0x1a, 0x00 }, { 0x5, 0x39, 0x00 }, { 0x7, 0x27, 0x00 }, { 0x7, 0x27, 0x07 },
		{ 0xe, 0x1d, 0x00 }, { 0x5, 0x26, 0x09 }, { 0xa, 0x00, 0x00 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (r->key == ok[i][0] && r->asc == ok[i][1] && r->ascq == ok[i][2])
			return true;
	/* a Data buffer that does not match the CDB: the runner's "iov len
	 * mismatch" (HARDWARE ERROR) — only possible with an explicit length */
	return explicit_len && r->key == 0x4 && r->asc == 0x44;
}

/* The Data length a CDB implies (as LIO would size the buffer). */
static size_t natural_len(const struct fdev *f, const uint8_t *cdb, size_t cdb_len, bool *ret_skip)
{
	struct vscsi_rw rw;
	uint64_t n = 0;

	*ret_skip = false;
	switch (cdb[0]) {
	case VSCSI_INQUIRY: return vscsi_get_be16(&cdb[3]);
	case VSCSI_MODE_SENSE_6: return cdb[4];
	case VSCSI_MODE_SENSE_10: return vscsi_get_be16(&cdb[7]);
	case VSCSI_READ_CAPACITY_10: return 8;
	case VSCSI_UNMAP: return vscsi_get_be16(&cdb[7]);
	case VSCSI_SERVICE_ACTION_IN_16: n = vscsi_get_be32(&cdb[10]); break;
	case VSCSI_EXTENDED_COPY: case VSCSI_RECEIVE_COPY_RESULTS: n = vscsi_get_be32(&cdb[10]); break;
	case VSCSI_MAINTENANCE_IN: n = vscsi_get_be32(&cdb[6]); break;
	default:
		if (vscsi_decode_rw(cdb, cdb_len, &rw) != VSCSI_OK)
			return 0;
		switch (rw.kind) {
		case VSCSI_RW_SYNC_CACHE: return 0;
		case VSCSI_RW_VERIFY:
			n = rw.bytchk == 1 ? (uint64_t)rw.nblocks * f->bs : rw.bytchk == 3 ? f->bs : 0;
			break;
		case VSCSI_RW_WRITE_SAME: n = rw.ndob ? 0 : f->bs; break;
		case VSCSI_RW_COMPARE_AND_WRITE: n = 2ull * rw.nblocks * f->bs; break;
		default: n = (uint64_t)rw.nblocks * f->bs; break;
		}
	}
	if (n > MAX_XFER)
		*ret_skip = true;
	return n > MAX_XFER ? 0 : (size_t)n;
}

static void mark(struct fdev *f, uint64_t lba, uint64_t n, int st)
{
	for (uint64_t b = lba; b < lba + n && b < f->nlbas; b++) {
		f->state[b] = (uint8_t)st;
		if (st == OLD_OR_ZERO && all_zero(&f->model[b * f->bs], f->bs))
			f->state[b] = EXACT; /* zero either way */
	}
}

/* A GOOD read of [lba, lba+n) returned buf: compare and learn. */
static void check_read(struct fdev *f, uint64_t lba, uint64_t n, const uint8_t *buf, const uint8_t *cdb)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = lba + i;
		const uint8_t *got = buf + i * f->bs;
		uint8_t *want = &f->model[b * f->bs];

		switch (f->state[b]) {
		case EXACT:
			FUZZ_CHECK(!memcmp(got, want, f->bs), "%s: READ %02x: block %llu differs from the model",
				   f->vdisk, cdb[0], (unsigned long long)b);
			break;
		case OLD_OR_ZERO:
			FUZZ_CHECK(!memcmp(got, want, f->bs) || all_zero(got, f->bs),
				   "%s: READ %02x: unmapped block %llu is neither its old data nor zeros",
				   f->vdisk, cdb[0], (unsigned long long)b);
			/* now we know */
			__attribute__((fallthrough));
		default:
			memcpy(want, got, f->bs);
			f->state[b] = EXACT;
			break;
		}
	}
}

static void check_lba_status(struct fdev *f, const uint8_t *buf, size_t len)
{
	uint64_t plen;

	if (len < 8)
		return;
	plen = vscsi_get_be32(buf) + 4ull;
	if (plen > len)
		plen = len;
	for (size_t o = 8; o + 16 <= plen; o += 16) {
		uint64_t lba = vscsi_get_be64(&buf[o]);
		uint32_t n = vscsi_get_be32(&buf[o + 8]);

		FUZZ_CHECK(lba < f->nlbas && n > 0 && n <= f->nlbas - lba, "%s: GET LBA STATUS descriptor %llu+%u",
			   f->vdisk, (unsigned long long)lba, n);
		if ((buf[o + 12] & 0xf) != 1)
			continue;
		/* deallocated: reads zeros (LBPRZ=1) */
		for (uint64_t b = lba; b < lba + n; b++) {
			uint8_t *want = &f->model[b * f->bs];

			FUZZ_CHECK(f->state[b] != EXACT || all_zero(want, f->bs),
				   "%s: block %llu holds written data but is reported deallocated", f->vdisk,
				   (unsigned long long)b);
			memset(want, 0, f->bs);
			f->state[b] = EXACT;
		}
	}
}

static void run_one(struct fuzz_in *in)
{
	uint8_t hdr = fuzz_u8(in), cdb[32] = { 0 };
	struct fdev *f = &devs[(hdr & 3) % 3];
	bool explicit_len = hdr & 4, skip = false;
	size_t iov_max = (size_t)(hdr >> 3) * 512, cdb_len, len, n;
	const uint8_t *p;
	struct fr_result res;
	struct fr_cmd *c;
	struct vscsi_rw rw;
	bool is_rw;

	cdb_len = fuzz_take(in, &p, fuzz_u8(in) % 33);
	memcpy(cdb, p, cdb_len);
	if (explicit_len) {
		len = (size_t)fuzz_u8(in) << 8;
		len |= fuzz_u8(in);
	} else {
		len = natural_len(f, cdb, sizeof(cdb), &skip);
		if (skip)
			return;
	}
	/* Data-Out from the input, then a pattern (Data-In commands overwrite it) */
	n = fuzz_take(in, &p, len);
	memcpy(iobuf, p, n);
	fr_fill(iobuf + n, len - n, n, ++gen);

	c = fr_cmd_new(cdb, sizeof(cdb), len ? iobuf : NULL, len);
	FUZZ_CHECK(c != NULL, "out of memory");
	if (iov_max)
		fr_cmd_set_iov_max(c, iov_max);
	unsigned before = fr_violations();
	fr_cmd_start(f->dev, c);
	FUZZ_CHECK(fr_cmd_wait(c, &res) == 0, "%s: command %02x did not complete (hang)", f->vdisk, cdb[0]);
	fr_cmd_free(c);
	FUZZ_CHECK(fr_violations() == before, "%s: command %02x broke the completion protocol", f->vdisk, cdb[0]);

	if (res.sts != TCMU_STS_OK) {
		FUZZ_CHECK(res.check || res.sts == TCMU_STS_BUSY || res.sts == TCMU_STS_NO_RESOURCE,
			   "%s: command %02x ended with status %d without sense", f->vdisk, cdb[0], res.sts);
		if (res.check)
			FUZZ_CHECK(sense_allowed(&res, explicit_len),
				   "%s: command %02x (%zu bytes of data) got sense %x/%02x/%02x", f->vdisk, cdb[0],
				   len, res.key, res.asc, res.ascq);
	}

	is_rw = vscsi_decode_rw(cdb, sizeof(cdb), &rw) == VSCSI_OK;
	bool in_range = is_rw && rw.lba < f->nlbas && rw.nblocks <= f->nlbas - rw.lba;
	bool plain = is_rw && (cdb[0] == VSCSI_READ_6 || cdb[0] == VSCSI_READ_10 || cdb[0] == VSCSI_READ_12 ||
			       cdb[0] == VSCSI_READ_16 || cdb[0] == VSCSI_WRITE_6 || cdb[0] == VSCSI_WRITE_10 ||
			       cdb[0] == VSCSI_WRITE_12 || cdb[0] == VSCSI_WRITE_16);

	/* a well-formed READ/WRITE inside the disk must work (thin: unless the
	 * pool is full) */
	if (plain && in_range && !rw.protect && len == (size_t)rw.nblocks * f->bs &&
	    (rw.kind == VSCSI_RW_READ || !f->ro))
		FUZZ_CHECK(res.sts == TCMU_STS_OK || res.sts == TCMU_STS_BUSY ||
			   (res.check && res.key == 0x7 && res.asc == 0x27 && res.ascq == 0x07),
			   "%s: %02x of %u blocks at %llu failed: sts %d sense %x/%02x/%02x", f->vdisk, cdb[0],
			   rw.nblocks, (unsigned long long)rw.lba, res.sts, res.key, res.asc, res.ascq);
	if (f->ro && is_rw && vscsi_opcode_writes(cdb[0]))
		FUZZ_CHECK(res.sts != TCMU_STS_OK, "%s: write %02x succeeded on a read-only export", f->vdisk, cdb[0]);

	if (res.sts == TCMU_STS_OK && plain) {
		FUZZ_CHECK(in_range, "%s: %02x past the end succeeded", f->vdisk, cdb[0]);
		FUZZ_CHECK(len == (size_t)rw.nblocks * f->bs, "%s: %02x with a mismatched buffer succeeded",
			   f->vdisk, cdb[0]);
		if (rw.kind == VSCSI_RW_READ) {
			check_read(f, rw.lba, rw.nblocks, iobuf, cdb);
		} else {
			memcpy(&f->model[rw.lba * f->bs], iobuf, len);
			mark(f, rw.lba, rw.nblocks, EXACT);
		}
	} else if (res.sts != TCMU_STS_OK && plain && rw.kind == VSCSI_RW_WRITE && in_range && !f->ro &&
		   len == (size_t)rw.nblocks * f->bs) {
		/* a failed write may have landed in part */
		if (!(res.check && res.key == 0x5))
			mark(f, rw.lba, rw.nblocks, UNKNOWN);
	} else if (res.sts == TCMU_STS_OK && is_rw && rw.kind == VSCSI_RW_VERIFY && rw.bytchk == 1 && len) {
		/* GOOD: the Data-Out matched the medium */
		FUZZ_CHECK(in_range, "%s: VERIFY past the end succeeded", f->vdisk);
		check_read(f, rw.lba, rw.nblocks, iobuf, cdb);
	} else if (is_rw && rw.kind == VSCSI_RW_WRITE_SAME && rw.unmap && res.sts == TCMU_STS_OK) {
		FUZZ_CHECK(f->layout == VLUN_LAYOUT_THIN, "%s: WRITE SAME/UNMAP on a linear disk", f->vdisk);
		if (in_range)
			mark(f, rw.lba, rw.nblocks, OLD_OR_ZERO);
	} else if (cdb[0] == VSCSI_UNMAP && res.sts == TCMU_STS_OK && len >= 8) {
		uint64_t bddl = vscsi_get_be16(&iobuf[2]);

		for (uint64_t o = 8; o + 16 <= 8 + bddl && o + 16 <= len; o += 16) {
			uint64_t lba = vscsi_get_be64(&iobuf[o]);
			uint32_t k = vscsi_get_be32(&iobuf[o + 8]);

			FUZZ_CHECK(!f->ro, "%s: UNMAP succeeded on a read-only export", f->vdisk);
			if (lba < f->nlbas && k <= f->nlbas - lba)
				mark(f, lba, k, OLD_OR_ZERO);
		}
	} else if (cdb[0] == VSCSI_SERVICE_ACTION_IN_16 && (cdb[1] & 0x1f) == VSCSI_SA_GET_LBA_STATUS &&
		   res.sts == TCMU_STS_OK) {
		check_lba_status(f, iobuf, len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };

	for (int i = 0; i < MAX_CMDS && in.left; i++)
		run_one(&in);
	return 0;
}
