/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A full snapshot reserve as the hosts see it (issue 5):
 *
 * fail-snapshot (the default): the source keeps accepting writes and
 * reads them back; the session fails — its exported LUN answers reads
 * with CHECK CONDITION — and the holder lists it as failed with a reason.
 *
 * fail-write: the source write that would need a copy the reserve cannot
 * take fails with DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT
 * (07/27/07); the session stays active and still reads the image recorded
 * when it was created; chunks already saved can be written again.
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
#define RESERVE (2 * MIB)   /* at most 32 saved chunks of 64 KiB, less its table */
#define CHUNK (64 * 1024ull)
#define BS 512u

static void rw(struct tcmu_device *d, uint8_t op, uint64_t off, uint8_t *b, uint64_t len, struct fr_result *res)
{
	uint8_t cdb[16];

	fr_cdb_rw16(cdb, op, off / BS, (uint32_t)(len / BS), 0);
	assert_int_equal(fr_exec(d, cdb, 16, b, len, res), 0);
}

/* The holder's line for src@name ("" if none), in out. */
static void session_line(const uint8_t *uuid, const char *name, char *out, size_t len)
{
	char *payload = NULL, *why = NULL, key[96], *l;
	int r = vlun_ctl_query(uuid, "snapshot-list source=src", &payload, &why);

	if (r < 0)
		fail_msg("snapshot-list: %s (%s)", strerror(-r), why ? why : "");
	out[0] = '\0';
	snprintf(key, sizeof(key), " name=%s ", name);
	l = strstr(payload, key);
	if (l) {
		char *bol = l, *eol = strchr(l, '\n');

		while (bol > payload && bol[-1] != '\n')
			bol--;
		snprintf(out, len, "%.*s", (int)(eol ? eol - bol : (long)strlen(bol)), bol);
	}
	free(payload);
	free(why);
}

static void fill(uint8_t *b, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		b[i] = (uint8_t)((i + seed) * 31 + (seed >> 3));
}

/* A pool in dir with a linear source "src" written whole with fill(seed)
 * (kept in model), and a session s1 of it with a RESERVE reserve, CHUNK
 * chunks and the reserve-full policy; the source's LUN, s1's in *ret_snap. */
static struct tcmu_device *setup(char *dir, uint8_t *uuid, uint8_t *model, uint64_t seed, const char *policy,
				 struct tcmu_device **ret_snap)
{
	char req[256];
	struct tcmu_device *src;
	struct fr_result res;

	assert_int_equal(fr_pool_make(dir, 2, 64 * MIB, "src", VLUN_LAYOUT_LINEAR, VSIZE, 0), 0);
	src = fr_lun_open(dir, "src", VSIZE / BS, BS);
	fr_pool_uuid(dir, uuid);
	fill(model, VSIZE, seed);
	rw(src, 0x8a, 0, model, VSIZE / 2, &res);
	EXPECT_GOOD(res);
	rw(src, 0x8a, VSIZE / 2, model + VSIZE / 2, VSIZE / 2, &res);
	EXPECT_GOOD(res);
	snprintf(req, sizeof(req), "snapshot-create source=src name=s1 reserve=%llu chunk=%llu policy=%s",
		 (unsigned long long)RESERVE, (unsigned long long)CHUNK, policy);
	fr_ctl(uuid, req);
	*ret_snap = fr_lun_open(dir, "src@s1", VSIZE / BS, BS);
	return src;
}

/* The source reads model (b: VSIZE bytes of scratch). */
static void expect_source(struct tcmu_device *src, uint8_t *b, const uint8_t *model)
{
	struct fr_result res;

	rw(src, 0x88, 0, b, VSIZE / 2, &res);
	EXPECT_GOOD(res);
	assert_memory_equal(b, model, VSIZE / 2);
	rw(src, 0x88, VSIZE / 2, b, VSIZE / 2, &res);
	EXPECT_GOOD(res);
	assert_memory_equal(b, model + VSIZE / 2, VSIZE / 2);
}

static void test_fail_snapshot_keeps_source_writing(void **state)
{
	(void)state;
	char dir[PATH_MAX], line[1024];
	uint8_t uuid[VLUN_UUID_LEN], *b = malloc(VSIZE), *model = malloc(VSIZE);
	struct tcmu_device *src, *snap;
	struct fr_result res;

	src = setup(dir, uuid, model, 1, "fail-snapshot", &snap);

	/* one write per chunk over the whole source: far more than the reserve */
	for (uint64_t off = 0; off < VSIZE; off += CHUNK) {
		fill(b, 4096, off + 7);
		rw(src, 0x8a, off, b, 4096, &res);
		EXPECT_GOOD(res); /* the source never fails */
		memcpy(model + off, b, 4096);
	}
	expect_source(src, b, model);

	/* the session failed: its LUN reads fail, the holder says why */
	rw(snap, 0x88, 0, b, 64 * 1024, &res);
	if (!res.check)
		fail_msg("a read of the failed snapshot's LUN answered status %d without sense", res.sts);
	assert_true(res.key == KEY_MEDIUM_ERROR || res.key == KEY_HARDWARE_ERROR || res.key == KEY_DATA_PROTECT ||
		    res.key == 0x2 /* NOT READY */);
	session_line(uuid, "s1", line, sizeof(line));
	if (!strstr(line, "state=failed") || strstr(line, "why=%00"))
		fail_msg("expected a failed session with a reason, got '%s'", line);

	fr_lun_close(snap);
	/* a failed session can be deleted */
	fr_ctl(uuid, "snapshot-delete source=src name=s1");
	fr_lun_close(src);
	assert_int_equal(fr_violations(), 0);
	fr_rmrf(dir);
	free(b);
	free(model);
}

static void test_fail_write_fails_source_write_keeps_session(void **state)
{
	(void)state;
	char dir[PATH_MAX], req[256], line[1024];
	uint8_t uuid[VLUN_UUID_LEN], *b = malloc(VSIZE), *img = malloc(VSIZE), *model = malloc(VSIZE);
	struct tcmu_device *src, *snap;
	struct fr_result res;
	uint64_t refused_at = UINT64_MAX;

	src = setup(dir, uuid, model, 2, "fail-write", &snap);
	memcpy(img, model, VSIZE);

	for (uint64_t off = 0; off < VSIZE; off += CHUNK) {
		fill(b, 4096, off + 11);
		rw(src, 0x8a, off, b, 4096, &res);
		if (res.sts == TCMU_STS_OK) {
			assert_true(refused_at == UINT64_MAX); /* no write succeeds once the reserve is full */
			memcpy(model + off, b, 4096);
			continue;
		}
		EXPECT_SENSE(res, KEY_DATA_PROTECT, 0x27, 0x07);
		if (refused_at == UINT64_MAX)
			refused_at = off;
	}
	if (refused_at == UINT64_MAX)
		fail_msg("a reserve of %llu bytes took a copy of every one of %llu chunks", (unsigned long long)RESERVE,
			 (unsigned long long)(VSIZE / CHUNK));
	assert_true(refused_at > 0); /* some copies fitted */

	/* a chunk already saved takes writes again */
	fill(b, 8192, 99);
	rw(src, 0x8a, 0, b, 8192, &res);
	EXPECT_GOOD(res);
	memcpy(model, b, 8192);

	/* the source reads what was acknowledged; the session is intact */
	expect_source(src, b, model);
	for (uint64_t off = 0; off < VSIZE; off += 2 * MIB) {
		rw(snap, 0x88, off, b, 2 * MIB, &res);
		EXPECT_GOOD(res);
		if (memcmp(b, img + off, 2 * MIB) != 0)
			fail_msg("snapshot differs from its image in the 2 MiB at %llu", (unsigned long long)off);
	}
	session_line(uuid, "s1", line, sizeof(line));
	if (!strstr(line, "state=active") || !strstr(line, "policy=fail-write"))
		fail_msg("expected an active fail-write session, got '%s'", line);

	/* growing the reserve lets the refused writes through */
	snprintf(req, sizeof(req), "snapshot-reserve source=src size=%llu", (unsigned long long)(2 * VSIZE));
	fr_ctl(uuid, req);
	fill(b, 4096, 1234);
	rw(src, 0x8a, refused_at, b, 4096, &res);
	EXPECT_GOOD(res);

	fr_lun_close(snap);
	fr_ctl(uuid, "snapshot-delete source=src name=s1");
	fr_lun_close(src);
	assert_int_equal(fr_violations(), 0);
	fr_rmrf(dir);
	free(b);
	free(img);
	free(model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fail_snapshot_keeps_source_writing),
		cmocka_unit_test(test_fail_write_fails_source_write_keeps_session),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
