/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_meta_load — assembling a pool's metadata from damaged members:
 * label decoding (vlun_meta_label_read), checkpoint slot headers and
 * payloads, and the journal record parser and replay (vlun_meta_load),
 * on two memory disks holding a valid pool (fuzz_pool.h).
 *
 * The input is a list of patches, each
 *     op u8        bits 0-2 region, bit 3 member (0/1), bit 7 keep crcs
 *     offset u32   inside the region (modulo its size)
 *     len u8       bytes that follow (fewer if the input ends)
 * Regions: 0 label block, 1/2 slot A header/payload, 3/4 slot B
 * header/payload, 5 journal. Unless bit 7 asks to keep them, the patched
 * structures get their crcs recomputed afterwards, so the decoders behind
 * the crc checks are reached. Load must never crash, leak or hang; when it
 * succeeds its description is valid.
 */
#include <string.h>

#include "fuzz.h"
#include "fuzz_pool.h"
#include "internal.h"

#define BLK 4096u
/* on-disk offsets (meta.c's layout comment) */
#define L_CRC 12
#define C_CRC 12
#define C_PAYLOAD_LEN 64
#define C_PAYLOAD_CRC 72
#define J_CRC 12
#define J_LENGTH 56
#define J_HDR 128

static struct fp_pool fp;
static uint8_t *tmpl[FP_MEMBERS]; /* pristine metadata areas (label to end of journal) */
static uint64_t area_end;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	if (fp_make(&fp, true, NULL) < 0) {
		fprintf(stderr, "fuzz_meta_load: cannot build the template pool\n");
		exit(1);
	}
	area_end = fp.m[0].label.journal_offset + fp.m[0].label.journal_bytes;
	for (int i = 0; i < FP_MEMBERS; i++) {
		tmpl[i] = malloc(area_end);
		if (!tmpl[i])
			exit(1);
		memcpy(tmpl[i], vlun_memdisk_data(fp.m[i].dev), area_end);
	}
	return 0;
}

static uint32_t crc_skip(const uint8_t *p, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = vlun_crc32c(0, p, crc_off);

	c = vlun_crc32c(c, zero, 4);
	return vlun_crc32c(c, p + crc_off + 4, len - crc_off - 4);
}

static void fix_slot(uint8_t *disk, const struct vlun_label *l, int s)
{
	uint8_t *h = disk + l->meta_offset + (uint64_t)s * l->slot_bytes;
	uint64_t plen = vlun_get_le64(h + C_PAYLOAD_LEN);

	if (plen > 0 && plen <= l->slot_bytes - BLK)
		vlun_put_le32(h + C_PAYLOAD_CRC, vlun_crc32c(0, h + BLK, (size_t)plen));
	vlun_put_le32(h + C_CRC, crc_skip(h, BLK, C_CRC));
}

static void fix_journal(uint8_t *disk, const struct vlun_label *l)
{
	uint8_t *j = disk + l->journal_offset;
	uint64_t pos = 0;

	while (pos + BLK <= l->journal_bytes && !memcmp(j + pos, "VLUNJRNL", 8)) {
		uint64_t len = vlun_get_le32(j + pos + J_LENGTH);

		if (len < J_HDR || len > l->journal_bytes - pos)
			break;
		vlun_put_le32(j + pos + J_CRC, crc_skip(j + pos, (size_t)len, J_CRC));
		pos += VLUN_ALIGN_UP(len, BLK);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned fix[FP_MEMBERS] = { 0 }; /* bit per region to fix */
	struct vlun_pool_desc *d = NULL;
	struct vlun_meta *st = NULL;
	char why[512] = "";
	int r;

	while (in.left) {
		uint8_t op = fuzz_u8(&in);
		uint32_t off = fuzz_u32(&in);
		size_t len = fuzz_u8(&in);
		int mi = (op >> 3) & 1, region = op & 7;
		const struct vlun_label *l = &fp.m[mi].label;
		uint8_t *disk = vlun_memdisk_data(fp.m[mi].dev);
		uint64_t base, rsize;
		const uint8_t *src;

		switch (region) {
		case 0: base = 4096; rsize = BLK; break;
		case 1: case 3: base = l->meta_offset + (region == 3 ? l->slot_bytes : 0); rsize = BLK; break;
		case 2: case 4:
			base = l->meta_offset + (region == 4 ? l->slot_bytes : 0) + BLK;
			rsize = l->slot_bytes - BLK;
			break;
		default: base = l->journal_offset; rsize = l->journal_bytes; break;
		}
		off %= rsize;
		len = fuzz_take(&in, &src, len);
		if (len > rsize - off)
			len = rsize - off;
		memcpy(disk + base + off, src, len);
		if (!(op & 0x80))
			fix[mi] |= 1u << region;
	}
	for (int i = 0; i < FP_MEMBERS; i++) {
		const struct vlun_label *l = &fp.m[i].label;
		uint8_t *disk = vlun_memdisk_data(fp.m[i].dev);

		if (fix[i] & (1u << 0))
			vlun_put_le32(disk + 4096 + L_CRC, crc_skip(disk + 4096, BLK, L_CRC));
		if (fix[i] & (3u << 1))
			fix_slot(disk, l, 0);
		if (fix[i] & (3u << 3))
			fix_slot(disk, l, 1);
		if (fix[i] & (1u << 5))
			fix_journal(disk, l);
	}

	/* What pool.c does: read every label, then load. */
	struct vlun_meta_member m[FP_MEMBERS];
	size_t n = 0;

	memset(m, 0, sizeof(m));
	for (int i = 0; i < FP_MEMBERS; i++) {
		r = vlun_meta_label_read(fp.m[i].dev, &m[n].label, why, sizeof(why));
		if (r == 0) {
			FUZZ_CHECK(m[n].label.data_start * VLUN_SECTOR_SIZE <= fp.m[i].dev->size,
				   "label accepted with data beyond the device");
			m[n++].dev = fp.m[i].dev;
		} else {
			FUZZ_CHECK(why[0], "label refused (%d) without a reason", r);
		}
	}
	if (n > 0 && (n < 2 || !memcmp(m[0].label.pool_uuid, m[1].label.pool_uuid, VLUN_UUID_LEN))) {
		r = vlun_meta_load(m, n, &d, &st, why, sizeof(why));
		if (r == 0) {
			FUZZ_CHECK(d != NULL, "load succeeded without a description");
			FUZZ_CHECK(vlun_pool_desc_validate(d, why, sizeof(why)) == 0,
				   "load gave an invalid description: %s", why);
		} else {
			FUZZ_CHECK(d == NULL, "output set on failure");
			FUZZ_CHECK(why[0], "load refused (%d) without a reason", r);
		}
		vlun_pool_desc_free(d);
		vlun_meta_free(st);
	}

	/* back to the template (load only reads) */
	for (int i = 0; i < FP_MEMBERS; i++)
		memcpy(vlun_memdisk_data(fp.m[i].dev), tmpl[i], area_end);
	return 0;
}
