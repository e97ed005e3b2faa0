/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Verified random I/O through the handler (WRITE 16 / READ 16, some FUA,
 * SYNCHRONIZE CACHE) against a reference model while the holder — the
 * handler's own engine, driven over its control channel as vlunctl does —
 * mirrors the disk, loses a member (fault injection), gets it back and
 * resyncs, then migrates everything off member 0. No command may fail,
 * every read must equal the model, and the whole disk must equal it at the
 * end, also after the device is reopened.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctl.h"
#include "fr_test.h"
#include "vlun.h"

#define MIB (1024ull * 1024ull)
#define VSIZE (24 * MIB)
#define BS 512u

static uint8_t *model;
static struct tcmu_device *dev;
static atomic_bool stop_io;
static atomic_ulong ios, failures;

static void *io_thread(void *arg)
{
	(void)arg;
	uint64_t x = 0x2545F4914F6CDD1Dull;
	uint8_t *b = malloc(256 * 1024), cdb[16];
	struct fr_result res;
	while (!atomic_load(&stop_io)) {
		uint64_t len = (1 + fr_rnd(&x) % 64) * 4096;
		uint64_t off = (fr_rnd(&x) % ((VSIZE - len) / 4096)) * 4096;
		unsigned k = (unsigned)(fr_rnd(&x) % 8);
		if (k < 4) {
			for (uint64_t i = 0; i < len; i++)
				b[i] = (uint8_t)(fr_rnd(&x) >> 24);
			fr_cdb_rw16(cdb, 0x8a, off / BS, (uint32_t)(len / BS), k == 0 ? 0x08 : 0);
			if (fr_exec(dev, cdb, 16, b, len, &res) != 0 || res.sts != TCMU_STS_OK) {
				atomic_fetch_add(&failures, 1);
				continue;
			}
			memcpy(model + off, b, len);
		} else if (k < 7) {
			fr_cdb_rw16(cdb, 0x88, off / BS, (uint32_t)(len / BS), 0);
			if (fr_exec(dev, cdb, 16, b, len, &res) != 0 || res.sts != TCMU_STS_OK ||
			    memcmp(b, model + off, len) != 0) {
				print_error("read of %llu bytes at %llu failed or differs from the model\n",
					    (unsigned long long)len, (unsigned long long)off);
				atomic_fetch_add(&failures, 1);
			}
		} else {
			fr_cdb_sync16(cdb);
			if (fr_exec(dev, cdb, 16, NULL, 0, &res) != 0 || res.sts != TCMU_STS_OK)
				atomic_fetch_add(&failures, 1);
		}
		atomic_fetch_add(&ios, 1);
	}
	free(b);
	return NULL;
}

/* The committed state as another process sees it. */
static struct vlun_pool_desc *look(const char *dir)
{
	char **paths = NULL;
	size_t n = 0;
	struct vlun_pool *p = NULL;
	char *why = NULL;
	assert_int_equal(vlun_pool_spec_expand(dir, &paths, &n, &why), 0);
	int r = vlun_pool_open(paths, n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK, &p, &why);
	vlun_strv_free(paths, n);
	if (r < 0)
		fail_msg("read-only open: %s (%s)", strerror(-r), why ? why : "");
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	vlun_pool_close(p);
	free(why);
	return d;
}

static void counts(const struct vlun_pool_desc *d, uint64_t *mirrored, uint64_t *behind, uint64_t *on0)
{
	*mirrored = *behind = *on0 = 0;
	const struct vlun_vdisk_desc *v = &d->vdisks[0];
	for (uint32_t k = 0; k < v->nextents; k++) {
		const struct vlun_extent *e = &v->extents[k];
		uint64_t b = e->nsectors * 512;
		if (e->flags & VLUN_EXT_ALT_EXISTS)
			*mirrored += b;
		if (e->flags & VLUN_EXT_ALT_DIRTY)
			*behind += b;
		if (e->member == 0 || ((e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member == 0))
			*on0 += b;
	}
}

/* Waits until the committed state satisfies what; 90 s at most (15 min
 * under valgrind). */
static void wait_for(const char *dir, const char *what, bool (*pred)(const struct vlun_pool_desc *))
{
	const char *vg = getenv("VLUN_UNDER_VALGRIND");
	int limit = vg && !strcmp(vg, "1") ? 9000 : 900;
	for (int i = 0; i < limit; i++) {
		struct vlun_pool_desc *d = look(dir);
		bool ok = pred(d);
		vlun_pool_desc_free(d);
		if (ok)
			return;
		usleep(100000);
	}
	fail_msg("timed out waiting for: %s", what);
}

static bool in_sync(const struct vlun_pool_desc *d)
{
	uint64_t m, b, o;
	counts(d, &m, &b, &o);
	return m == VSIZE && b == 0 && d->members[1].state == VLUN_MEMBER_OK;
}

static bool member1_failed(const struct vlun_pool_desc *d)
{
	return d->members[1].state == VLUN_MEMBER_FAILED;
}

static bool off_member0(const struct vlun_pool_desc *d)
{
	uint64_t m, b, o;
	counts(d, &m, &b, &o);
	return o == 0 && d->njobs == 0;
}

static void verify_all(void)
{
	uint8_t *b = malloc(VSIZE), cdb[16];
	struct fr_result res;
	for (uint64_t off = 0; off < VSIZE; off += 4 * MIB) {
		fr_cdb_rw16(cdb, 0x88, off / BS, (uint32_t)(4 * MIB / BS), 0);
		assert_int_equal(fr_exec(dev, cdb, 16, b + off, 4 * MIB, &res), 0);
		EXPECT_GOOD(res);
	}
	assert_memory_equal(b, model, VSIZE);
	free(b);
}

static void test_verified_io_during_mirror_resync_migration(void **state)
{
	(void)state;
	char dir[PATH_MAX], cfg[PATH_MAX + 32];
	assert_int_equal(fr_pool_make(dir, 3, 64 * MIB, "vd", VLUN_LAYOUT_LINEAR, VSIZE, 0), 0);
	snprintf(cfg, sizeof(cfg), "vlun/%s/vd", dir);
	dev = fr_dev_new(cfg, VSIZE / BS, BS);
	assert_non_null(dev);
	assert_int_equal(fr_dev_open(dev), 0);
	struct vlun_pool_desc *d0 = look(dir);
	uint8_t uuid[VLUN_UUID_LEN];
	memcpy(uuid, d0->uuid, VLUN_UUID_LEN);
	vlun_pool_desc_free(d0);

	/* the model starts as what is on disk: fill it through the handler */
	model = malloc(VSIZE);
	for (uint64_t i = 0; i < VSIZE; i++)
		model[i] = (uint8_t)(i * 7 + (i >> 12));
	uint8_t cdb[16];
	struct fr_result res;
	for (uint64_t off = 0; off < VSIZE; off += 4 * MIB) {
		fr_cdb_rw16(cdb, 0x8a, off / BS, (uint32_t)(4 * MIB / BS), 0);
		assert_int_equal(fr_exec(dev, cdb, 16, model + off, 4 * MIB, &res), 0);
		EXPECT_GOOD(res);
	}

	pthread_t t;
	atomic_store(&stop_io, false);
	assert_int_equal(pthread_create(&t, NULL, io_thread, NULL), 0);

	/* mirror the whole disk; the resync runs under the I/O */
	fr_ctl(uuid, "mirror-add name=vd");
	wait_for(dir, "the mirror in sync", in_sync);

	/* member 1 dies: hosts see nothing; it comes back: resync */
	fr_ctl(uuid, "member-fault idx=1 fail=1");
	wait_for(dir, "member 1 marked FAILED", member1_failed);
	usleep(300000);
	fr_ctl(uuid, "member-fault idx=1 fail=0");
	fr_ctl(uuid, "resync");
	wait_for(dir, "member 1 back and the mirror in sync", in_sync);

	/* retire member 0 while writing */
	fr_ctl(uuid, "migrate from=0");
	wait_for(dir, "nothing left on member 0", off_member0);

	atomic_store(&stop_io, true);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&failures), 0);
	assert_true(atomic_load(&ios) > 0);
	verify_all();

	fr_dev_close(dev);
	fr_dev_free(dev);
	dev = fr_dev_new(cfg, VSIZE / BS, BS);
	assert_int_equal(fr_dev_open(dev), 0);
	verify_all();
	fr_dev_close(dev);
	fr_dev_free(dev);
	assert_int_equal(fr_violations(), 0);
	free(model);
	fr_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verified_io_during_mirror_resync_migration),
	};

	fr_load_or_skip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
