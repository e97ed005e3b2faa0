/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_seeds DIR — writes seed inputs for every fuzz target into
 * DIR/<target>/seed-*: valid encodings made with the library itself
 * (checkpoint payloads, a pool on memory disks), the cfgstrings, sizes
 * and control requests of the documentation, and CDB sequences for the
 * handler. scripts/fuzz --regen-corpus merges them with what fuzzing found
 * into tests/fuzz/corpus/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_pool.h"
#include "internal.h"
#include "scsi_cdb.h"

static const char *outdir;
static unsigned nfiles;

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "fuzz_seeds: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	nfiles++;
}

static void put_str(const char *target, const char *name, const char *s)
{
	put(target, name, s, strlen(s));
}

/* ------------------------------------------------------------ metadata */

static void meta_seeds(void)
{
	struct fp_pool fp;
	struct vlun_pool_desc *d = NULL, empty = { 0 };
	uint8_t *b = NULL, *x;
	size_t len = 0;

	if (fp_make(&fp, true, &d) < 0 || vlun_meta_encode(d, &b, &len) < 0)
		exit(1);
	put("fuzz_meta_decode", "pool", b, len);
	/* the same with an optional record of an unknown type before END
	 * (END counts it): readers must skip it */
	x = malloc(len + 12);
	if (!x)
		exit(1);
	memcpy(x, b, len - 16);
	vlun_put_le16(x + len - 16, 99);
	vlun_put_le16(x + len - 14, 0);
	vlun_put_le32(x + len - 12, 4);
	memcpy(x + len - 8, "opt!", 4);
	memcpy(x + len - 4, b + len - 16, 16);
	vlun_put_le32(x + len + 4, vlun_get_le32(b + len - 8) + 1);
	put("fuzz_meta_decode", "pool-optional-record", x, len + 12);
	free(x);
	free(b);
	memcpy(empty.uuid, fp.pool_uuid, VLUN_UUID_LEN);
	snprintf(empty.name, sizeof(empty.name), "empty");
	if (vlun_meta_encode(&empty, &b, &len) < 0)
		exit(1);
	put("fuzz_meta_decode", "empty-pool", b, len);
	free(b);
	vlun_pool_desc_free(d);
	fp_close(&fp);

	/* fuzz_meta_load: patch lists (op, offset u32 BE, len, bytes) */
	static const uint8_t none[1] = { 0 };
	static const uint8_t payload_byte[] = { 0x02, 0, 0, 0, 40, 1, 0x42 };      /* slot A payload */
	static const uint8_t journal_byte[] = { 0x05, 0, 0, 0, 140, 1, 0x03 };     /* first delta */
	static const uint8_t journal2[] = { 0x05, 0, 0, 0x10, 60, 4, 2, 0, 0, 0 }; /* 2nd record: ndeltas */
	static const uint8_t label_name[] = { 0x08, 0, 0, 0, 72, 2, 'x', 0 };        /* member 1's pool name */
	static const uint8_t slot_b_seq[] = { 0x03, 0, 0, 0, 56, 1, 9 };            /* slot B header seq */
	static const uint8_t torn[] = { 0x85, 0, 0, 0, 200, 1, 0xff };               /* journal, crc kept */

	put("fuzz_meta_load", "no-patch", none, 0);
	put("fuzz_meta_load", "payload-byte", payload_byte, sizeof(payload_byte));
	put("fuzz_meta_load", "journal-delta", journal_byte, sizeof(journal_byte));
	put("fuzz_meta_load", "journal-second", journal2, sizeof(journal2));
	put("fuzz_meta_load", "label-name", label_name, sizeof(label_name));
	put("fuzz_meta_load", "slot-b-seq", slot_b_seq, sizeof(slot_b_seq));
	put("fuzz_meta_load", "journal-torn", torn, sizeof(torn));
}

/* ----------------------------------------------------------- strings */

static void string_seeds(void)
{
	static const char *const cfgs[] = {
		"/var/lib/vlun/pool0/thin0", "vlun//var/lib/vlun/pool0/thin0;ro;wce=0",
		"/dev/mapper/lun*|thin0", "thin0;members=/dev/sdb,/dev/sdc", "/a,/b/c;wce=1",
		"/dev/disk/by-id/x*|d.1-_;ro",
		"/var/lib/vlun/pool0/src@snap1;rw;wce=0", "src@s.2;members=/dev/sdb;ro",
	};
	static const char *const sizes[] = {
		"4096", "4096B", "2048s", "64k", "10G", "1.5T", "512MiB", "1.5K", "18446744073709551615",
		"15E", "0.5EiB", "0.000000000000000001E",
	};
	static const char *const reqs[] = {
		"ping", "stats",
		"vdisk-create name=a layout=thin size=1048576 chunk=65536",
		"vdisk-create name=s layout=striped size=4096 width=2 members=0,1",
		"vdisk-create name=l layout=linear size=8192",
		"vdisk-resize name=a size=2097152 force=1",
		"vdisk-delete name=a",
		"member-add path=/dev/sd%62%20x force=0\n",
		"snapshot-create source=a name=s1 reserve=1048576 chunk=65536 policy=fail-snapshot",
		"snapshot-list source=a", "snapshot-delete source=a name=s1",
		"snapshot-rollback source=a name=s1", "snapshot-reserve source=a size=2097152 policy=fail-write",
	};
	char name[32];

	for (size_t i = 0; i < VLUN_ARRAY_SIZE(cfgs); i++) {
		snprintf(name, sizeof(name), "%zu", i);
		put_str("fuzz_cfg_parse", name, cfgs[i]);
	}
	for (size_t i = 0; i < VLUN_ARRAY_SIZE(sizes); i++) {
		snprintf(name, sizeof(name), "%zu", i);
		put_str("fuzz_parse_size", name, sizes[i]);
	}
	for (size_t i = 0; i < VLUN_ARRAY_SIZE(reqs); i++) {
		snprintf(name, sizeof(name), "%zu", i);
		put_str("fuzz_ctl_request", name, reqs[i]);
	}
}

/* --------------------------------------------------------------- CDBs */

struct buf {
	uint8_t b[8192];
	size_t n;
};

static void add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->b))
		exit(1);
	if (n)
		memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void add8(struct buf *b, uint8_t v) { add(b, &v, 1); }

static void cdb_rw16(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n, uint8_t b1)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = b1;
	vscsi_put_be64(&c[2], lba);
	vscsi_put_be32(&c[10], n);
}

/* fuzz_scsi_cdb: lu (14 bytes), then cdb_len, the CDB, then the list */
static void scsi_seed(const char *name, bool thin, const uint8_t *cdb, size_t cdb_len, const uint8_t *par,
		      size_t plen)
{
	struct buf b = { .n = 0 };
	static const uint8_t lu_thin[14] = { 0, 0, 0x20, 0, 0, 0, 0x05, 0, 0, 0, 0x80, 0x01, 0x00, 0 };
	static const uint8_t lu_full[14] = { 0, 0, 0x20, 0, 0, 1, 0x0c, 0, 0, 0, 0, 0x01, 0x00, 0 };

	/* lu: u32 lbas, u8 shift, u8 bs, u8 flags, u32 gran, 2 bytes olen */
	add(&b, thin ? lu_thin : lu_full, 13);
	add8(&b, (uint8_t)cdb_len);
	add(&b, cdb, cdb_len);
	add(&b, par, plen);
	put("fuzz_scsi_cdb", name, b.b, b.n);
}

/* fuzz_handler_cdb: one command */
static void hcmd(struct buf *b, uint8_t dev, const uint8_t *cdb, size_t cdb_len, const void *data, size_t n)
{
	add8(b, dev);
	add8(b, (uint8_t)cdb_len);
	add(b, cdb, cdb_len);
	add(b, data, n);
}

static void cdb_seeds(void)
{
	uint8_t c[16], par[128], data[1024];
	struct buf b;

	/* pure decoders */
	cdb_rw16(c, VSCSI_READ_16, 8, 8, 0);
	scsi_seed("read16", true, c, 16, NULL, 0);
	cdb_rw16(c, VSCSI_WRITE_16, 8, 8, 0x08);
	scsi_seed("write16-fua", false, c, 16, NULL, 0);
	cdb_rw16(c, VSCSI_VERIFY_16, 0, 4, 0x02);
	scsi_seed("verify16-bytchk", true, c, 16, NULL, 0);
	cdb_rw16(c, VSCSI_WRITE_SAME_16, 0, 64, 0x08);
	scsi_seed("write-same16-unmap", true, c, 16, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_INQUIRY; c[1] = 1; c[2] = 0xb2; c[4] = 0xff;
	scsi_seed("inquiry-b2", true, c, 6, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_MODE_SENSE_10; c[2] = 0x3f; c[3] = 0xff; c[8] = 0xff;
	scsi_seed("mode-sense10-all", false, c, 10, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_MODE_SENSE_6; c[2] = 0x08; c[4] = 0xff;
	scsi_seed("mode-sense6-caching", true, c, 6, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_SERVICE_ACTION_IN_16; c[1] = VSCSI_SA_GET_LBA_STATUS; c[13] = 0xff;
	scsi_seed("get-lba-status", true, c, 16, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_UNMAP; c[8] = 24;
	memset(par, 0, sizeof(par));
	par[1] = 22; par[3] = 16; par[15] = 8; par[19] = 16;
	scsi_seed("unmap", true, c, 10, par, 24);
	memset(c, 0, 16);
	c[0] = VSCSI_EXTENDED_COPY; c[13] = 16 + 32 + 28;
	memset(par, 0, sizeof(par));
	par[1] = 0x00; par[3] = 32; par[11] = 28; /* LIST ID USAGE 00b, one target, one segment */
	par[16] = 0xe4;
	par[48] = 0x02; par[51] = 24; par[59] = 8; par[67] = 0; par[75] = 16;
	scsi_seed("xcopy", false, c, 16, par, 16 + 32 + 28);

	/* handler: write then read back on the thin disk */
	b.n = 0;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	memset(c, 0, 16);
	c[0] = VSCSI_WRITE_10; c[5] = 16; c[8] = 2;
	hcmd(&b, 0, c, 10, data, 1024);
	c[0] = VSCSI_READ_10;
	hcmd(&b, 0, c, 10, NULL, 0);
	put("fuzz_handler_cdb", "thin-write-read", b.b, b.n);
	/* unmap then GET LBA STATUS */
	b.n = 0;
	memset(c, 0, 16);
	c[0] = VSCSI_UNMAP; c[8] = 24;
	memset(par, 0, sizeof(par));
	par[1] = 22; par[3] = 16; par[15] = 0; par[19] = 128;
	hcmd(&b, 0, c, 10, par, 24);
	memset(c, 0, 16);
	c[0] = VSCSI_SERVICE_ACTION_IN_16; c[1] = VSCSI_SA_GET_LBA_STATUS; c[13] = 64;
	hcmd(&b, 0, c, 16, NULL, 0);
	put("fuzz_handler_cdb", "thin-unmap-lba-status", b.b, b.n);
	/* linear: WRITE(16) FUA, VERIFY(16) BYTCHK=01b of the same data, SYNC CACHE(16) */
	b.n = 0;
	cdb_rw16(c, VSCSI_WRITE_16, 100, 2, 0x08);
	hcmd(&b, 1, c, 16, data, 1024);
	cdb_rw16(c, VSCSI_VERIFY_16, 100, 2, 0x02);
	hcmd(&b, 1, c, 16, data, 1024);
	cdb_rw16(c, VSCSI_SYNC_CACHE_16, 0, 0, 0);
	hcmd(&b, 1, c, 16, NULL, 0);
	put("fuzz_handler_cdb", "linear-write-verify-sync", b.b, b.n);
	/* INQUIRY standard and VPD B2, MODE SENSE(10), READ CAPACITY(16) */
	b.n = 0;
	memset(c, 0, 16);
	c[0] = VSCSI_INQUIRY; c[4] = 96;
	hcmd(&b, 0, c, 6, NULL, 0);
	c[1] = 1; c[2] = 0xb2; c[4] = 8;
	hcmd(&b, 0, c, 6, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_MODE_SENSE_10; c[2] = 0x3f; c[8] = 0xff;
	hcmd(&b, 2, c, 10, NULL, 0);
	memset(c, 0, 16);
	c[0] = VSCSI_SERVICE_ACTION_IN_16; c[1] = VSCSI_SA_READ_CAPACITY_16; c[13] = 32;
	hcmd(&b, 1, c, 16, NULL, 0);
	put("fuzz_handler_cdb", "inquiry-mode-capacity", b.b, b.n);
	/* read-only export: WRITE(10) refused, READ(10) of 4096-byte blocks */
	b.n = 0;
	memset(c, 0, 16);
	c[0] = VSCSI_WRITE_10; c[8] = 1;
	hcmd(&b, 2, c, 10, data, 1024);
	c[0] = VSCSI_READ_10;
	hcmd(&b, 2, c, 10, NULL, 0);
	put("fuzz_handler_cdb", "ro-write-read", b.b, b.n);
	/* WRITE SAME(16) UNMAP on thin, READ(6) */
	b.n = 0;
	cdb_rw16(c, VSCSI_WRITE_SAME_16, 128, 128, 0x08);
	hcmd(&b, 0, c, 16, data, 512);
	memset(c, 0, 16);
	c[0] = VSCSI_READ_6; c[3] = 128; c[4] = 8;
	hcmd(&b, 0, c, 6, NULL, 0);
	put("fuzz_handler_cdb", "thin-write-same-unmap", b.b, b.n);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz_seeds: cannot create %s: %s\n", outdir, strerror(errno));
		return 1;
	}
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	meta_seeds();
	string_seeds();
	cdb_seeds();
	printf("fuzz_seeds: %u files in %s\n", nfiles, outdir);
	return 0;
}
