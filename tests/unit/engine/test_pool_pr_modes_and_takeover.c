/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pool members through prmap (lib/node.c), against prmap's model of a
 * target (tests/unit/prmap/prtest.h) plugged in as the transport of the
 * file members; the model lives in a shared file mapping so that this test
 * run again as a child process ("node2" argument) can be node 2 (a fork
 * would inherit node 1's open pool from the process registry).
 *
 *  - shared (default): every member registered with the node's key, Write
 *    Exclusive - All Registrants; close unregisters.
 *  - exclusive: Write Exclusive - Registrants Only held by the node's key;
 *    close releases and unregisters.
 *  - none: no PR command at all.
 *  - read-only opens send no PR command.
 *  - takeover: node 2 (child) opens as standby (its writes fail FENCED),
 *    takes the lock: node 1's key is preempted on every member, the map
 *    epoch goes up, node 2 is the owner in the metadata. Node 1 then finds
 *    itself fenced: its writes fail with VLUN_E_FENCED and never reach the
 *    member, it commits nothing; its lock state says FENCED. Taking the
 *    lock back makes node 1 the owner again with a newer epoch.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "vdisk_test.h"
#include "../prmap/prtest.h"
#include "node.h"

static struct pt_target *tgt;
static struct prmap_transport tr;
static char tgt_file[] = "/tmp/vlun-prtarget-XXXXXX";

#define MB (1ull << 20)

static void setup_pool(struct et_pool *tp, uint32_t mode)
{
	et_pool_files(tp, 2, 64 * MB);
	et_pool_create(tp, "prpool");
	memset(tgt, 0, sizeof(*tgt));
	vlun_set_node_id("node1");
	struct vlun_pool *p = et_pool_open(tp);
	et_vdisk_create(p, "d0", VLUN_LAYOUT_LINEAR, 8 * MB, 0, 0);
	/* thin: what a node maps depends on the metadata it loaded */
	et_vdisk_create(p, "t0", VLUN_LAYOUT_THIN, 8 * MB, 1 * MB, 0);
	if (mode != VLUN_PR_SHARED) {
		char *why = NULL;
		assert_int_equal(vlun_pool_set_pr_mode(p, mode, &why), 0);
		free(why);
	}
	vlun_pool_close(p);
	memset(tgt, 0, sizeof(*tgt)); /* the creation's own registrations are gone with its close */
}

static void test_shared_registers_every_member_and_close_unregisters(void **state)
{
	struct et_pool tp;
	uint64_t k1;

	(void)state;
	setup_pool(&tp, VLUN_PR_SHARED);
	assert_int_equal(prmap_key_from_node_id("node1", &k1), 0);
	struct vlun_pool *p = et_pool_open(&tp);
	/* one fake target serves both members: each member is one path */
	assert_int_equal(pt_count(tgt, k1), 2);
	assert_true(tgt->resv);
	assert_int_equal(tgt->resv_type, PRMAP_TYPE_WE_AR);
	assert_int_equal(vlun_pool_lock_state(p), VLUN_LOCK_OWNER);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d0");
	et_write(vd, 0, 64 * 1024, 7);
	et_check(vd, 0, 64 * 1024, 7);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	assert_int_equal(tgt->nreg, 0);
	et_pool_cleanup(&tp);
}

static void test_exclusive_reserves_registrants_only_and_close_releases(void **state)
{
	struct et_pool tp;
	uint64_t k1;

	(void)state;
	setup_pool(&tp, VLUN_PR_EXCLUSIVE);
	assert_int_equal(prmap_key_from_node_id("node1", &k1), 0);
	struct vlun_pool *p = et_pool_open(&tp);
	assert_int_equal(pt_count(tgt, k1), 2);
	assert_true(tgt->resv);
	assert_int_equal(tgt->resv_type, PRMAP_TYPE_WE_RO);
	assert_true(tgt->resv_key == k1);
	vlun_pool_close(p);
	assert_int_equal(tgt->nreg, 0);
	assert_false(tgt->resv);
	et_pool_cleanup(&tp);
}

static void test_none_and_readonly_send_no_pr_command(void **state)
{
	struct et_pool tp;
	struct vlun_pool *p = NULL;
	char *why = NULL;

	(void)state;
	setup_pool(&tp, VLUN_PR_SHARED);
	assert_int_equal(vlun_pool_open(tp.paths, tp.n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK, &p, &why), 0);
	assert_int_equal(tgt->n_out, 0);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);

	setup_pool(&tp, VLUN_PR_NONE);
	p = et_pool_open(&tp);
	assert_int_equal(tgt->n_out, 0);
	assert_int_equal(tgt->nreg, 0);
	assert_int_equal(vlun_pool_lock_state(p), VLUN_LOCK_OWNER);
	vlun_pool_close(p);
	assert_int_equal(tgt->n_out, 0);
	et_pool_cleanup(&tp);
}

/* node 2 in a child process: opens as standby, checks its writes are
 * refused, takes the lock. Exit status 0 = all as expected. */
static int node2_takeover(struct et_pool *tp)
{
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	uint8_t *buf = et_alloc(4096);

	vlun_set_node_id("node2");
	if (vlun_pool_open(tp->paths, tp->n, VLUN_OPEN_NO_LOCK, &p, &why) < 0)
		return 10;
	if (vlun_pool_lock_state(p) != VLUN_LOCK_UNLOCKED)
		return 11;
	if (vlun_vdisk_open(p, "d0", 0, &vd, &why) < 0)
		return 12;
	memset(buf, 0x22, 4096);
	if (et_io(vd, VLUN_OP_WRITE, 0, 0, 4096, buf, NULL) != VLUN_E_FENCED)
		return 13;
	if (vlun_pool_lock(p, 0xffff, &why) < 0) {
		fprintf(stderr, "node2 lock: %s\n", why ? why : "?");
		return 14;
	}
	if (vlun_pool_lock_state(p) != VLUN_LOCK_OWNER)
		return 15;
	memset(buf, 0x22, 4096);
	if (et_io(vd, VLUN_OP_WRITE, 0, 1 * MB, 4096, buf, NULL) != VLUN_OK)
		return 16;
	/* a chunk of the thin disk allocated by node 2 only */
	struct vlun_vdisk *t0 = NULL;
	if (vlun_vdisk_open(p, "t0", 0, &t0, &why) < 0)
		return 17;
	memset(buf, 0x33, 4096);
	if (et_io(t0, VLUN_OP_WRITE, 0, 3 * MB, 4096, buf, NULL) != VLUN_OK ||
	    et_io(t0, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL) != VLUN_OK)
		return 18;
	vlun_vdisk_close(t0);
	vlun_vdisk_close(vd);
	pool_ha_keep_on_close(p, true);
	vlun_pool_close(p);
	free(buf);
	free(why);
	return 0;
}

static void test_takeover_fences_the_old_owner(void **state)
{
	struct et_pool tp;
	uint64_t k1, k2;
	int status;

	(void)state;
	setup_pool(&tp, VLUN_PR_SHARED);
	assert_int_equal(prmap_key_from_node_id("node1", &k1), 0);
	assert_int_equal(prmap_key_from_node_id("node2", &k2), 0);
	vlun_set_node_id("node1");
	struct vlun_pool *p = et_pool_open(&tp);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d0");
	struct vlun_vdisk *t0 = et_vdisk_open(p, "t0");
	et_write(vd, 0, 64 * 1024, 1);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	uint64_t epoch1 = d->map_epoch;
	vlun_pool_desc_free(d);

	/* The test binary itself, not /proc/self/exe: under valgrind that
	 * names valgrind's tool, which refuses to start as "node2"
	 * (readlink is answered with the client's path). */
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(sl > 0);
	self[sl] = 0;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[4 + 8] = { "node2", tgt_file };
		for (size_t i = 0; i < tp.n; i++)
			argv[2 + i] = tp.paths[i];
		argv[2 + tp.n] = NULL;
		execv(self, argv);
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* node 1's key is gone from every member, node 2's is there */
	assert_int_equal(pt_count(tgt, k1), 0);
	assert_int_equal(pt_count(tgt, k2), 2);
	/* node 1 learns it (here through the periodic refresh; a real write
	 * would meet RESERVATION CONFLICT first) */
	assert_int_equal(pool_ha_refresh(p), -EPERM);
	assert_int_equal(vlun_pool_lock_state(p), VLUN_LOCK_FENCED);
	uint8_t *buf = et_alloc(4096);
	memset(buf, 0x11, 4096);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, 0, 4096, buf, NULL), VLUN_E_FENCED);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_E_FENCED);
	/* the block is what node 1 wrote before the takeover, untouched */
	et_check(vd, 0, 64 * 1024, 1);
	/* node 1's reads follow the new owner (tcmu-runner keeps sending a
	 * fenced gateway reads): the thin chunk node 2 allocated after the
	 * takeover reads node 2's data, not the zeros of node 1's old map */
	assert_int_equal(et_io(t0, VLUN_OP_READ, 0, 3 * MB, 4096, buf, NULL), VLUN_OK);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0x33);
	assert_int_equal(vlun_pool_lock_state(p), VLUN_LOCK_FENCED);
	assert_int_equal(et_io(t0, VLUN_OP_WRITE, 0, 3 * MB, 4096, buf, NULL), VLUN_E_FENCED);

	/* node 1 takes it back: node 2 preempted, epoch newer than node 2's */
	char *why = NULL;
	assert_int_equal(vlun_pool_lock(p, 5, &why), 0);
	free(why);
	assert_int_equal(pt_count(tgt, k1), 2);
	assert_int_equal(pt_count(tgt, k2), 0);
	assert_int_equal(vlun_pool_lock_state(p), VLUN_LOCK_OWNER);
	/* node 2's write after its takeover is visible: the map was reloaded */
	assert_int_equal(et_io(vd, VLUN_OP_READ, 0, 1 * MB, 4096, buf, NULL), VLUN_OK);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0x22);
	et_write(vd, 0, 4096, 3);
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_true(d->map_epoch >= epoch1 + 2);
	const struct vlun_node_desc *n1 = NULL, *n2 = NULL;
	for (uint32_t i = 0; i < d->nnodes; i++) {
		if (!strcmp(d->nodes[i].id, "node1"))
			n1 = &d->nodes[i];
		if (!strcmp(d->nodes[i].id, "node2"))
			n2 = &d->nodes[i];
	}
	assert_non_null(n1);
	assert_non_null(n2);
	assert_int_equal(n1->role, VLUN_NODE_OWNER);
	assert_int_equal(n1->lock_tag, 5);
	assert_int_equal(n2->role, VLUN_NODE_FENCED);
	vlun_pool_desc_free(d);
	uint16_t tag = 0;
	assert_int_equal(vlun_pool_lock_tag(p, &tag), 0);
	assert_int_equal(tag, 5);
	vlun_vdisk_close(t0);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(buf);
	et_pool_cleanup(&tp);
}

int main(int argc, char **argv)
{
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	if (argc >= 3 && !strcmp(argv[0], "node2")) {
		struct et_pool tp = { .n = (size_t)argc - 2 };
		tgt = pt_map_target(argv[1], false);
		if (!tgt)
			return 98;
		for (size_t i = 0; i < tp.n && i < 8; i++)
			tp.paths[i] = argv[2 + i];
		tr = (struct prmap_transport){ .path_in = pt_in, .path_out = pt_out, .ctx = tgt };
		pool_ha_set_test_transport(&tr);
		return node2_takeover(&tp);
	}
	tgt = pt_map_target(tgt_file, true);
	if (!tgt)
		return 1;
	tr = (struct prmap_transport){ .path_in = pt_in, .path_out = pt_out, .ctx = tgt };
	pool_ha_set_test_transport(&tr);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_registers_every_member_and_close_unregisters),
		cmocka_unit_test(test_exclusive_reserves_registrants_only_and_close_releases),
		cmocka_unit_test(test_none_and_readonly_send_no_pr_command),
		cmocka_unit_test(test_takeover_fences_the_old_owner),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(tgt_file);
	return r;
}
