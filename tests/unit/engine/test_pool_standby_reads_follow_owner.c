/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A standby node reads what the owner wrote after the standby opened the
 * pool (lib/node.c pool_ha_standby_sync; docs/pr.md "Standby reads").
 * tcmu-runner does not call the handler's lock for reads, so a standby
 * that kept the maps it loaded at open would read a thin disk's chunks
 * allocated later by the owner as zeros, and chunks the owner unmapped as
 * their old data.
 *
 * Node 1 (this process) owns the pool; node 2 is this test binary run
 * again in a child process ("standby" argument; a fork would inherit node
 * 1's open pool from the process registry), opened while node 1 holds the
 * pool. The two step through the scenario over two pipes:
 *   1. node 2 opens as standby, reads chunk 0 (written before it opened);
 *   2. node 1 allocates and writes chunk 1 (journal commit): node 2 reads it;
 *   3. node 1 writes chunk 2 and unmaps chunk 1: node 2 reads chunk 2 and
 *      zeros in chunk 1;
 *   4. node 1 commits a checkpoint (lock tag), then writes chunk 3 (a
 *      journal record after the new checkpoint): node 2 reads it.
 */
#include <sys/wait.h>

#include "vdisk_test.h"

#define MB (1ull << 20)
#define CHUNK (1 * MB)
#define LEN (64 * 1024)

static int step_send(int fd, char c)
{
	return write(fd, &c, 1) == 1 ? 0 : -1;
}

static int step_wait(int fd, char want)
{
	char c = 0;

	return read(fd, &c, 1) == 1 && c == want ? 0 : -1;
}

/* node 2: 0 when [off, off+len) reads as pattern seed (seed 0: zeros). */
static int standby_check(struct vlun_vdisk *vd, uint64_t off, uint64_t seed)
{
	uint8_t *b = et_alloc(LEN);
	int r = 0;

	memset(b, 0x5a, LEN);
	if (et_io(vd, VLUN_OP_READ, 0, off, LEN, b, NULL) != VLUN_OK)
		r = -1;
	for (uint64_t i = 0; r == 0 && i < LEN; i++)
		if (b[i] != (seed ? et_pat(seed, off + i) : 0)) {
			fprintf(stderr, "standby: byte at %llu is 0x%02x, want 0x%02x\n",
				(unsigned long long)(off + i), b[i], seed ? et_pat(seed, off + i) : 0);
			r = -1;
		}
	free(b);
	return r;
}

static int standby(int rd, int wr, char **paths, size_t n)
{
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	int ret = 0;

	vlun_set_node_id("node2");
	if (vlun_pool_open(paths, n, VLUN_OPEN_NO_LOCK, &p, &why) < 0) {
		fprintf(stderr, "standby: open: %s\n", why ? why : "?");
		return 10;
	}
	if (vlun_pool_lock_state(p) != VLUN_LOCK_UNLOCKED)
		ret = 11;
	else if (vlun_vdisk_open(p, "t0", 0, &vd, &why) < 0)
		ret = 12;
	else if (standby_check(vd, 0, 1) < 0)
		ret = 13;
	else if (step_send(wr, '1') < 0 || step_wait(rd, '2') < 0)
		ret = 14;
	else if (standby_check(vd, CHUNK, 2) < 0)
		ret = 15; /* chunk allocated by the owner after our open */
	else if (step_send(wr, '3') < 0 || step_wait(rd, '4') < 0)
		ret = 16;
	else if (standby_check(vd, 2 * CHUNK, 3) < 0)
		ret = 17;
	else if (standby_check(vd, CHUNK, 0) < 0)
		ret = 18; /* unmapped by the owner */
	else if (standby_check(vd, 0, 1) < 0)
		ret = 19;
	else if (step_send(wr, '5') < 0 || step_wait(rd, '6') < 0)
		ret = 20;
	else if (standby_check(vd, 3 * CHUNK, 4) < 0)
		ret = 21; /* after a checkpoint */
	else if (vlun_pool_lock_state(p) != VLUN_LOCK_UNLOCKED)
		ret = 22; /* reloading did not make node 2 the owner */
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(why);
	return ret;
}

static void test_standby_reads_follow_owner(void **state)
{
	struct et_pool tp;
	int to_child[2], to_parent[2], status;
	char *why = NULL;

	(void)state;
	et_pool_files(&tp, 2, 64 * MB);
	et_pool_create(&tp, "sbpool");
	vlun_set_node_id("node1");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t0", VLUN_LAYOUT_THIN, 16 * MB, CHUNK, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t0");
	et_write(vd, 0, LEN, 1);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);

	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(sl > 0);
	self[sl] = 0;
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char fds[2][16];
		char *argv[4 + 8] = { "standby", fds[0], fds[1] };

		snprintf(fds[0], sizeof(fds[0]), "%d", to_child[0]);
		snprintf(fds[1], sizeof(fds[1]), "%d", to_parent[1]);
		for (size_t i = 0; i < tp.n; i++)
			argv[3 + i] = tp.paths[i];
		argv[3 + tp.n] = NULL;
		execv(self, argv);
		_exit(99);
	}
	close(to_child[0]);
	close(to_parent[1]);
	int rd = to_parent[0], wr = to_child[1];

	assert_int_equal(step_wait(rd, '1'), 0);
	et_write(vd, CHUNK, LEN, 2);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	assert_int_equal(step_send(wr, '2'), 0);

	assert_int_equal(step_wait(rd, '3'), 0);
	et_write(vd, 2 * CHUNK, LEN, 3);
	assert_int_equal(et_io(vd, VLUN_OP_UNMAP, 0, CHUNK, CHUNK, NULL, NULL), VLUN_OK);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	assert_int_equal(step_send(wr, '4'), 0);

	assert_int_equal(step_wait(rd, '5'), 0);
	assert_int_equal(vlun_pool_lock(p, 7, &why), 0); /* lock tag: a checkpoint */
	et_write(vd, 3 * CHUNK, LEN, 4);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	assert_int_equal(step_send(wr, '6'), 0);

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(vlun_pool_lock_state(p), VLUN_LOCK_OWNER);
	close(rd);
	close(wr);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(why);
	et_pool_cleanup(&tp);
}

int main(int argc, char **argv)
{
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	if (argc >= 4 && !strcmp(argv[0], "standby")) {
		int rd = atoi(argv[1]), wr = atoi(argv[2]);
		int r = standby(rd, wr, argv + 3, (size_t)argc - 3);

		if (r)
			(void)step_send(wr, 'x');
		return r;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_standby_reads_follow_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
