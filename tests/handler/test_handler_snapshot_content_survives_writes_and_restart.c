/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot sessions seen through the handler (issue 5): a source vdisk
 * and two snapshots of it exported as their own LUNs
 * ("<pool>/src@s1", read-only, and "<pool>/src@s2;rw", writable). Random
 * writes go to the source and to the writable snapshot; every LUN must
 * read exactly what a model says — the source its writes, each snapshot
 * the image recorded when it was created (plus, for s2, its own writes) —
 * and again after a restart (every device closed, so the pool is closed,
 * then reopened). The read-only snapshot refuses writes with DATA PROTECT
 * (07/27/00), deleting an exported snapshot is refused, and the sessions
 * are created, listed and deleted over the holder's control channel as
 * vlunctl does. Run for a linear and a thin source.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl.h"
#include "fr_test.h"
#include "vlun.h"

#define MIB (1024ull * 1024ull)
#define VSIZE (16 * MIB)
#define BS 512u

static void write_at(struct tcmu_device *d, uint64_t off, const uint8_t *b, uint64_t len)
{
	uint8_t cdb[16];
	struct fr_result res;

	fr_cdb_rw16(cdb, 0x8a, off / BS, (uint32_t)(len / BS), 0);
	assert_int_equal(fr_exec(d, cdb, 16, (void *)b, len, &res), 0);
	EXPECT_GOOD(res);
}

/* For the failure message: the source's model and the image of s2 at its
 * creation (which of them a wrong byte came from). */
static const uint8_t *diag_model, *diag_created;

/* The whole LUN equals img (first differing byte reported). */
static void expect_image(struct tcmu_device *d, const uint8_t *img, const char *what)
{
	uint8_t *b = malloc(VSIZE), cdb[16];
	struct fr_result res;

	assert_non_null(b);
	for (uint64_t off = 0; off < VSIZE; off += 2 * MIB) {
		fr_cdb_rw16(cdb, 0x88, off / BS, (uint32_t)(2 * MIB / BS), 0);
		assert_int_equal(fr_exec(d, cdb, 16, b + off, 2 * MIB, &res), 0);
		EXPECT_GOOD(res);
	}
	for (uint64_t i = 0; i < VSIZE; i++)
		if (b[i] != img[i])
			fail_msg("%s: byte %llu is 0x%02x, expected 0x%02x (source now 0x%02x, s2 at its creation 0x%02x)",
				 what, (unsigned long long)i, b[i], img[i], diag_model ? diag_model[i] : 0,
				 diag_created ? diag_created[i] : 0);
	free(b);
}

/* n random writes (4 KiB .. 128 KiB, 4 KiB aligned) to d, applied to img. */
static void random_writes(struct tcmu_device *d, uint8_t *img, unsigned n, uint64_t *x)
{
	uint8_t *b = malloc(128 * 1024);

	assert_non_null(b);
	for (unsigned k = 0; k < n; k++) {
		uint64_t len = (1 + fr_rnd(x) % 32) * 4096;
		uint64_t off = (fr_rnd(x) % ((VSIZE - len) / 4096 + 1)) * 4096;

		for (uint64_t i = 0; i < len; i++)
			b[i] = (uint8_t)(fr_rnd(x) >> 29);
		write_at(d, off, b, len);
		memcpy(img + off, b, len);
	}
	free(b);
}

/* The holder's sessions of src: count, and every one active and open as expected. */
static void expect_listed(const uint8_t *uuid, unsigned n, bool open)
{
	char *payload = NULL, *why = NULL, *p;
	unsigned lines = 0;
	int r = vlun_ctl_query(uuid, "snapshot-list source=src", &payload, &why);

	if (r < 0)
		fail_msg("snapshot-list: %s (%s)", strerror(-r), why ? why : "");
	for (p = payload; *p;) {
		char *eol = strchr(p, '\n');

		assert_non_null(eol);
		*eol = '\0';
		if (strncmp(p, "snapshot ", 9) == 0) {
			if (!strstr(p, " state=active") || !strstr(p, open ? " open=1" : " open=0"))
				fail_msg("unexpected session line: %s", p);
			lines++;
		}
		p = eol + 1;
	}
	assert_int_equal(lines, n);
	free(payload);
	free(why);
}

static void run(uint32_t layout)
{
	char dir[PATH_MAX], req[256];
	struct tcmu_device *src, *s1, *s2;
	uint8_t *model = malloc(VSIZE), *img1 = malloc(VSIZE), *img2 = malloc(VSIZE), *created2 = malloc(VSIZE), cdb[16];
	uint8_t uuid[VLUN_UUID_LEN];
	struct fr_result res;
	char *why = NULL;
	uint64_t x = 0x9E3779B97F4A7C15ull + layout;
	int r;

	assert_non_null(model);
	assert_non_null(img1);
	assert_non_null(img2);
	assert_non_null(created2);
	assert_int_equal(fr_pool_make(dir, 2, 64 * MIB, "src", layout, VSIZE, layout == VLUN_LAYOUT_THIN ? MIB : 0), 0);
	src = fr_lun_open(dir, "src", VSIZE / BS, BS);

	/* the pool's uuid (the handler holds it: same process, same object) */
	fr_pool_uuid(dir, uuid);

	/* the source's first content: the whole disk written */
	for (uint64_t i = 0; i < VSIZE; i++)
		model[i] = (uint8_t)(i * 13 + (i >> 11));
	for (uint64_t off = 0; off < VSIZE; off += 2 * MIB)
		write_at(src, off, model + off, 2 * MIB);

	/* s1 now, with a reserve big enough for every chunk of the source */
	snprintf(req, sizeof(req), "snapshot-create source=src name=s1 reserve=%llu chunk=65536",
		 (unsigned long long)(2 * VSIZE));
	fr_ctl(uuid, req);
	memcpy(img1, model, VSIZE);
	random_writes(src, model, 150, &x);

	/* s2 after some writes */
	fr_ctl(uuid, "snapshot-create source=src name=s2");
	memcpy(img2, model, VSIZE);
	memcpy(created2, model, VSIZE);
	diag_model = model;
	diag_created = created2;
	random_writes(src, model, 150, &x);
	expect_listed(uuid, 2, false);

	s1 = fr_lun_open(dir, "src@s1", VSIZE / BS, BS);
	s2 = fr_lun_open(dir, "src@s2;rw", VSIZE / BS, BS);
	expect_listed(uuid, 2, true);

	/* s1 is read-only */
	fr_cdb_rw16(cdb, 0x8a, 0, 8, 0);
	assert_int_equal(fr_exec(s1, cdb, 16, model, 4096, &res), 0);
	EXPECT_SENSE(res, KEY_DATA_PROTECT, 0x27, 0x00);

	/* deleting an exported session is refused */
	r = vlun_ctl_request(uuid, "snapshot-delete source=src name=s1", &why);
	assert_int_equal(r, -EBUSY);
	free(why);
	why = NULL;

	/* writes to the source and to s2, interleaved */
	for (int round = 0; round < 4; round++) {
		random_writes(src, model, 60, &x);
		random_writes(s2, img2, 30, &x);
	}
	expect_image(src, model, "source");
	expect_image(s1, img1, "snapshot s1 (read-only)");
	expect_image(s2, img2, "snapshot s2 (writable)");

	/* restart: every device closed (the pool with the last), reopened */
	fr_lun_close(s2);
	fr_lun_close(s1);
	fr_lun_close(src);
	src = fr_lun_open(dir, "src", VSIZE / BS, BS);
	s1 = fr_lun_open(dir, "src@s1", VSIZE / BS, BS);
	s2 = fr_lun_open(dir, "src@s2;rw", VSIZE / BS, BS);
	expect_image(src, model, "source after the restart");
	expect_image(s1, img1, "snapshot s1 after the restart");
	expect_image(s2, img2, "snapshot s2 after the restart");
	expect_listed(uuid, 2, true);

	/* more source writes after the restart still leave s1 alone */
	random_writes(src, model, 80, &x);
	expect_image(s1, img1, "snapshot s1 after writes following the restart");
	expect_image(src, model, "source after writes following the restart");

	/* deleting s2 (unexported) keeps s1 intact */
	fr_lun_close(s2);
	fr_ctl(uuid, "snapshot-delete source=src name=s2");
	expect_listed(uuid, 1, true);
	expect_image(s1, img1, "snapshot s1 after s2 was deleted");

	fr_lun_close(s1);
	fr_ctl(uuid, "snapshot-delete source=src name=s1");
	expect_listed(uuid, 0, false);
	expect_image(src, model, "source after both snapshots were deleted");
	fr_lun_close(src);
	assert_int_equal(fr_violations(), 0);
	fr_rmrf(dir);
	free(model);
	free(img1);
	free(img2);
	free(created2);
	diag_model = diag_created = NULL;
}

static void test_linear_source(void **state)
{
	(void)state;
	run(VLUN_LAYOUT_LINEAR);
}

static void test_thin_source(void **state)
{
	(void)state;
	run(VLUN_LAYOUT_THIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_source),
		cmocka_unit_test(test_thin_source),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
