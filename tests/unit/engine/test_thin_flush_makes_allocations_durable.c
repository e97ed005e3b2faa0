/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Allocations are durable no later than the next FLUSH or FUA write: a
 * child process writes into new chunks, flushes (or writes FUA), writes
 * more and dies without closing anything; the reopened pool has every
 * flushed / FUA chunk with its data. A clean close keeps everything.
 */
#include <sys/wait.h>

#include "vdisk_test.h"

static const uint64_t chunk = 1 << 20;

static void child(struct et_pool *tp)
{
	struct vlun_pool *p = et_pool_open(tp);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	et_write(vd, 0, 8192, 1);
	et_write(vd, 5 * chunk + 512, 4096, 1);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	/* FUA into a new chunk: durable when it completes. */
	uint8_t *b = et_alloc(4096);
	et_fill(b, 4096, 1, 9 * chunk);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, VLUN_REQ_FUA, 9 * chunk, 4096, b, NULL), VLUN_OK);
	free(b);
	/* Not flushed: may or may not survive. */
	et_write(vd, 12 * chunk, 4096, 1);
	_exit(0); /* "crash": no close, no final commit */
}

static void test_durable_after_flush(void **state)
{
	struct et_pool tp;
	et_pool_files(&tp, 2, 16 << 20);
	et_pool_create(&tp, "thin");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "t", VLUN_LAYOUT_THIN, 32 << 20, chunk, 0);
	vlun_pool_close(p);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(&tp);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	p = et_pool_open(&tp);
	struct vlun_vdisk *vd = et_vdisk_open(p, "t");
	bool mapped;
	uint64_t len;
	et_check(vd, 0, 8192, 1);
	et_check(vd, 5 * chunk + 512, 4096, 1);
	et_check(vd, 9 * chunk, 4096, 1);
	assert_int_equal(vlun_vdisk_lba_status(vd, 5 * chunk, chunk, &mapped, &len), 0);
	assert_true(mapped);
	assert_int_equal(vlun_vdisk_lba_status(vd, 9 * chunk, chunk, &mapped, &len), 0);
	assert_true(mapped);
	et_check_zero(vd, chunk, 4 * chunk);

	/* Clean close without flush keeps allocations too. */
	et_write(vd, 20 * chunk, 4096, 3);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	p = et_pool_open(&tp);
	vd = et_vdisk_open(p, "t");
	et_check(vd, 20 * chunk, 4096, 3);
	et_check(vd, 0, 8192, 1);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durable_after_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
