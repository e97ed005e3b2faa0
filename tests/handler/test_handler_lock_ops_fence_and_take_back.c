/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handler's HA lock callouts (lock, unlock, get_lock_state,
 * get_lock_tag; docs/pr.md "The engine") on a pool whose file members
 * have persistent reservations through prmap's model of a target
 * (tests/unit/prmap/prtest.h). The model lives in a shared file mapping;
 * this executable exports vlun_test_pr_transport() and sets
 * $VLUN_TEST_PR_TRANSPORT, which makes every copy of libvlun in the
 * process (the handler's own included) use it for file members (node.c).
 *
 * Gateway A: the handler in this process, node id "gwA", owner.
 * Gateway B: this executable run again as "gwB" (a fork would inherit A's
 * open pool): opens the pool through other path names (another I_T nexus
 * on the same files) as a standby, takes the lock with vlun_pool_lock (the
 * handler cannot open it: A's handler holds the advisory lock, which only
 * separate machines do not share), writes and flushes, leaves registered.
 *
 * Then on A: get_lock_state reports unlocked; a WRITE completes with
 * TCMU_STS_FENCED, calls tcmu_notify_lock_lost and does not reach the
 * members; lock(tag) takes the pool back: get_lock_state locked,
 * get_lock_tag the tag, B's write visible (reloaded), writes succeed;
 * unlock gives it up: unlocked, writes fenced again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fr_test.h"
#include "node.h"
#include "../unit/prmap/prtest.h"
#include "../sync_io.h"

#define MIB (1ull << 20)
#define BS 4096u
#define VSIZE (16 * MIB)
#define NLBAS (VSIZE / BS)
#define LBA_A 0u                  /* A's block (chunk 0) */
#define LBA_B ((uint32_t)(4 * MIB / BS)) /* B's block (chunk 4) */
#define NBLK 8u

/* tcmur_device.h's enum, as the handler uses it */
enum { LOCK_UNKNOWN = 0, LOCK_UNLOCKED = 1, LOCK_WRITE_LOCKED = 5 };

static struct pt_target *tgt;
static struct prmap_transport tr;
static char tgt_file[] = "/tmp/vlun-fr-prtarget-XXXXXX";

/* Test hook of lib/node.c (found with dlsym when $VLUN_TEST_PR_TRANSPORT
 * is set): the transport of file members. */
__attribute__((visibility("default"))) const struct prmap_transport *vlun_test_pr_transport(void);
__attribute__((visibility("default"))) const struct prmap_transport *vlun_test_pr_transport(void)
{
	return tgt ? &tr : NULL;
}

/* ------------------------------------------------------------ gateway B */

/* Exit status 0: all as expected. */
static int gateway_b(const char *spec)
{
	char **paths = NULL, *why = NULL;
	size_t np = 0;
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	uint8_t *buf = NULL;
	uint64_t len = NBLK * BS, off = (uint64_t)LBA_B * BS;

	if (vlun_set_node_id("gwB") < 0 || vlun_pool_spec_expand(spec, &paths, &np, &why) < 0)
		return 10;
	if (vlun_pool_open(paths, np, VLUN_OPEN_NO_LOCK, &p, &why) < 0) {
		fprintf(stderr, "gwB open: %s\n", why ? why : "?");
		return 11;
	}
	if (vlun_pool_lock_state(p) != VLUN_LOCK_UNLOCKED)
		return 12;
	if (vlun_vdisk_open(p, "d0", 0, &vd, &why) < 0 || posix_memalign((void **)&buf, BS, len) != 0)
		return 13;
	fr_fill(buf, len, off, 2);
	if (sync_io(vd, VLUN_OP_WRITE, 0, off, buf, len) != VLUN_E_FENCED)
		return 14;
	if (vlun_pool_lock(p, 0xffff, &why) < 0) {
		fprintf(stderr, "gwB lock: %s\n", why ? why : "?");
		return 15;
	}
	if (sync_io(vd, VLUN_OP_WRITE, 0, off, buf, len) != VLUN_OK || sync_io(vd, VLUN_OP_FLUSH, 0, 0, NULL, 0) != VLUN_OK)
		return 16;
	vlun_vdisk_close(vd);
	/* B stays registered and owner, as a running gateway would */
	pool_ha_keep_on_close(p, true);
	vlun_pool_close(p);
	vlun_strv_free(paths, np);
	free(buf);
	free(why);
	return 0;
}

/* ------------------------------------------------------------ gateway A */

static void rw(struct tcmu_device *d, uint8_t op, uint32_t lba, uint8_t *buf, struct fr_result *res)
{
	uint8_t cdb[16];

	fr_cdb_rw16(cdb, op, lba, NBLK, 0);
	assert_int_equal(fr_exec(d, cdb, sizeof(cdb), buf, NBLK * BS, res), 0);
}

static void expect_read(struct tcmu_device *d, uint32_t lba, uint32_t gen)
{
	struct fr_result res;
	uint8_t *buf = malloc(NBLK * BS);

	assert_non_null(buf);
	rw(d, 0x88, lba, buf, &res);
	EXPECT_GOOD(res);
	if (!fr_check(buf, NBLK * BS, (uint64_t)lba * BS, gen))
		fail_msg("LBA %u does not hold generation %u", lba, gen);
	free(buf);
}

static void write_gen(struct tcmu_device *d, uint32_t lba, uint32_t gen, struct fr_result *res)
{
	uint8_t *buf = malloc(NBLK * BS);

	assert_non_null(buf);
	fr_fill(buf, NBLK * BS, (uint64_t)lba * BS, gen);
	rw(d, 0x8a, lba, buf, res);
	free(buf);
}

static void run_gateway_b(const char *spec)
{
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int status;
	pid_t pid;

	assert_true(sl > 0);
	self[sl] = 0;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { "gwB", tgt_file, (char *)spec, NULL };
		execv(self, argv);
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("gateway B failed with status %d", WEXITSTATUS(status));
}

static void test_lock_ops_fence_and_take_back(void **state)
{
	struct tcmur_handler *h = fr_handler();
	char dir[PATH_MAX], link[PATH_MAX + 8];
	struct fr_result res;
	uint64_t ka, kb;
	uint16_t tag = 0;
	uint8_t cdb[16];

	(void)state;
	assert_non_null(h->lock);
	assert_non_null(h->unlock);
	assert_non_null(h->get_lock_state);
	assert_non_null(h->get_lock_tag);
	assert_int_equal(prmap_key_from_node_id("gwA", &ka), 0);
	assert_int_equal(prmap_key_from_node_id("gwB", &kb), 0);
	assert_int_equal(fr_pool_make(dir, 2, 64 * MIB, "d0", VLUN_LAYOUT_THIN, VSIZE, MIB), 0);
	memset(tgt, 0, sizeof(*tgt));
	/* B reaches the same files by other names: another I_T nexus */
	snprintf(link, sizeof(link), "%s-gwB", dir);
	assert_int_equal(symlink(dir, link), 0);

	struct tcmu_device *d = fr_lun_open(dir, "d0", NLBAS, BS);
	assert_int_equal(pt_count(tgt, ka), 2);
	assert_int_equal(h->get_lock_state(d), LOCK_WRITE_LOCKED);
	write_gen(d, LBA_A, 1, &res);
	EXPECT_GOOD(res);
	fr_cdb_sync16(cdb);
	assert_int_equal(fr_exec(d, cdb, sizeof(cdb), NULL, 0, &res), 0);
	EXPECT_GOOD(res);

	run_gateway_b(link);
	assert_int_equal(pt_count(tgt, ka), 0);
	assert_int_equal(pt_count(tgt, kb), 2);

	/* A: preempted */
	assert_int_equal(h->get_lock_state(d), LOCK_UNLOCKED);
	unsigned lost = fr_lock_lost_calls();
	write_gen(d, LBA_A, 3, &res);
	assert_int_equal(res.sts, TCMU_STS_FENCED);
	assert_true(fr_lock_lost_calls() > lost);

	/* A takes it back with a tag */
	assert_int_equal(h->lock(d, 7), TCMU_STS_OK);
	assert_int_equal(pt_count(tgt, ka), 2);
	assert_int_equal(pt_count(tgt, kb), 0);
	assert_int_equal(h->get_lock_state(d), LOCK_WRITE_LOCKED);
	assert_int_equal(h->get_lock_tag(d, &tag), TCMU_STS_OK);
	assert_int_equal(tag, 7);
	/* the fenced write never reached the members; B's write is visible */
	expect_read(d, LBA_A, 1);
	expect_read(d, LBA_B, 2);
	write_gen(d, LBA_A, 4, &res);
	EXPECT_GOOD(res);
	expect_read(d, LBA_A, 4);

	/* unlock: standby, writes fenced again, data kept */
	assert_int_equal(h->unlock(d), TCMU_STS_OK);
	assert_int_equal(h->get_lock_state(d), LOCK_UNLOCKED);
	write_gen(d, LBA_A, 5, &res);
	assert_int_equal(res.sts, TCMU_STS_FENCED);
	expect_read(d, LBA_A, 4);

	fr_lun_close(d);
	assert_int_equal(fr_violations(), 0);
	unlink(link);
	fr_rmrf(dir);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[0], "gwB")) {
		vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
		tgt = pt_map_target(argv[1], false);
		if (!tgt)
			return 98;
		tr = (struct prmap_transport){ .path_in = pt_in, .path_out = pt_out, .ctx = tgt };
		return gateway_b(argv[2]);
	}
	fr_load_or_skip();
	tgt = pt_map_target(tgt_file, true);
	if (!tgt)
		return 1;
	tr = (struct prmap_transport){ .path_in = pt_in, .path_out = pt_out, .ctx = tgt };
	setenv("VLUN_TEST_PR_TRANSPORT", "1", 1);
	setenv("VLUN_NODE_ID", "gwA", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_ops_fence_and_take_back),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(tgt_file);
	return r;
}
