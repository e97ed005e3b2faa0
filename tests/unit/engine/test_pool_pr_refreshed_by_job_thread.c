/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The owner's PR registrations are refreshed by the pool's job thread
 * every 3 s (lib/job.c -> pool_ha_refresh), with no lock-state query from
 * tcmu-runner and no I/O: against prmap's model of a target
 * (tests/unit/prmap/prtest.h) as the transport of the file members, each
 * member with two paths.
 *
 *  - a path that did not answer at open is registered once it answers
 *    again;
 *  - an idle owner whose key another node preempted finds out by itself:
 *    its next write fails FENCED and never reaches the member, and the
 *    holder's vlun_pool_on_fenced callback runs once (the handler tells
 *    tcmu-runner the lock is lost).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "vdisk_test.h"
#include "../prmap/prtest.h"
#include "node.h"

#define MB (1ull << 20)
#define WAIT_S 30 /* the refresh runs every 3 s; generous for valgrind */

static struct pt_target tgt;
static struct prmap_transport tr;
/* the job thread talks to the model while the test looks at it */
static pthread_mutex_t tgt_lock = PTHREAD_MUTEX_INITIALIZER;

static int locked_in(void *ctx, const char *path, int sa, uint8_t *buf, size_t len, char *err, size_t errlen)
{
	pthread_mutex_lock(&tgt_lock);
	int r = pt_in(ctx, path, sa, buf, len, err, errlen);
	pthread_mutex_unlock(&tgt_lock);
	return r;
}

static int locked_out(void *ctx, const char *path, int sa, enum prmap_type type, uint64_t rk, uint64_t sark,
		      bool aptpl, char *err, size_t errlen)
{
	pthread_mutex_lock(&tgt_lock);
	int r = pt_out(ctx, path, sa, type, rk, sark, aptpl, err, errlen);
	pthread_mutex_unlock(&tgt_lock);
	return r;
}

/* the key path is registered with, 0 when it is not */
static uint64_t key_of(const char *path)
{
	pthread_mutex_lock(&tgt_lock);
	int i = pt_find(&tgt, path);
	uint64_t k = i < 0 ? 0 : tgt.reg[i].key;
	pthread_mutex_unlock(&tgt_lock);
	return k;
}

static size_t count_of(uint64_t key)
{
	pthread_mutex_lock(&tgt_lock);
	size_t n = (size_t)pt_count(&tgt, key);
	pthread_mutex_unlock(&tgt_lock);
	return n;
}

static void setup_pool(struct et_pool *tp)
{
	et_pool_files(tp, 2, 64 * MB);
	et_pool_create(tp, "prpool");
	memset(&tgt, 0, sizeof(tgt));
	vlun_set_node_id("node1");
	struct vlun_pool *p = et_pool_open(tp);
	et_vdisk_create(p, "d0", VLUN_LAYOUT_LINEAR, 8 * MB, 0, 0);
	vlun_pool_close(p);
	memset(&tgt, 0, sizeof(tgt));
}

static char *second_path(const char *file)
{
	char *s = NULL;

	assert_true(asprintf(&s, "%s:p2", file) > 0);
	return s;
}

static void test_returning_path_registered_without_lock_query(void **state)
{
	struct et_pool tp;
	uint64_t k1;
	char *p2;

	(void)state;
	setup_pool(&tp);
	assert_int_equal(prmap_key_from_node_id("node1", &k1), 0);
	p2 = second_path(tp.paths[0]);
	/* member 0's second path does not answer at open */
	snprintf(tgt.offline[0], sizeof(tgt.offline[0]), "%s", p2);
	struct vlun_pool *p = et_pool_open(&tp);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d0"); /* starts the job thread */
	assert_int_equal(count_of(k1), 3);
	assert_true(key_of(p2) == 0);
	/* it answers again; nobody asks for the lock state, nothing is written */
	pthread_mutex_lock(&tgt_lock);
	tgt.offline[0][0] = 0;
	pthread_mutex_unlock(&tgt_lock);
	for (int waited = 0; key_of(p2) == 0 && waited < WAIT_S * 10; waited++)
		usleep(100000);
	assert_true(key_of(p2) == k1);
	assert_int_equal(count_of(k1), 4);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	assert_int_equal(tgt.nreg, 0);
	free(p2);
	et_pool_cleanup(&tp);
}

static atomic_int fenced_calls;
static void *fenced_arg;

static void on_fenced(void *arg)
{
	fenced_arg = arg;
	atomic_fetch_add(&fenced_calls, 1);
}

static void test_idle_owner_learns_it_was_preempted(void **state)
{
	struct et_pool tp;
	uint64_t k1, k2;

	(void)state;
	setup_pool(&tp);
	assert_int_equal(prmap_key_from_node_id("node1", &k1), 0);
	assert_int_equal(prmap_key_from_node_id("node2", &k2), 0);
	struct vlun_pool *p = et_pool_open(&tp);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d0");
	vlun_pool_on_fenced(p, on_fenced, &tp);
	et_write(vd, 0, 64 * 1024, 1);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	assert_int_equal(atomic_load(&fenced_calls), 0);
	/* another node preempts node 1's key on every path (the model's
	 * state after PREEMPT AND ABORT by node 2) */
	pthread_mutex_lock(&tgt_lock);
	for (size_t i = 0; i < tgt.nreg; i++)
		tgt.reg[i].key = k2;
	pthread_mutex_unlock(&tgt_lock);
	/* the file members do not enforce PR: only node 1 itself can stop
	 * its writes, and only the job thread's refresh tells it */
	uint8_t *buf = et_alloc(4096);
	memset(buf, 0x11, 4096);
	int st = VLUN_OK;
	for (int waited = 0; waited < WAIT_S * 10; waited++) {
		usleep(100000);
		/* a read is not refused and does not refresh: wait for the job thread */
		assert_int_equal(et_io(vd, VLUN_OP_READ, 0, 0, 4096, buf, NULL), VLUN_OK);
		st = et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL);
		if (st != VLUN_OK)
			break;
	}
	assert_int_equal(st, VLUN_E_FENCED);
	assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, 0, 4096, buf, NULL), VLUN_E_FENCED);
	et_check(vd, 0, 64 * 1024, 1);
	/* the job thread told the holder, once: not again at the next
	 * refresh (3 s later) */
	for (int waited = 0; atomic_load(&fenced_calls) == 0 && waited < WAIT_S * 10; waited++)
		usleep(100000);
	assert_int_equal(atomic_load(&fenced_calls), 1);
	assert_ptr_equal(fenced_arg, &tp);
	usleep(3500000);
	assert_int_equal(atomic_load(&fenced_calls), 1);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(buf);
	et_pool_cleanup(&tp);
}

int main(void)
{
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	tr = (struct prmap_transport){ .path_in = locked_in, .path_out = locked_out, .ctx = &tgt };
	pool_ha_set_test_transport(&tr);
	pool_ha_set_test_paths(2);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_returning_path_registered_without_lock_query),
		cmocka_unit_test(test_idle_owner_learns_it_was_preempted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
