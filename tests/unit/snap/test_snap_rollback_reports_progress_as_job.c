/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A snapshot rollback is a job of the pool's job list (VLUN_JOB_ROLLBACK):
 * while it copies, vlun_jobs_list() shows it running with a total of the
 * session's saved bytes and a done count that only grows; it ends done
 * with done == total, and the source then equals the session's image
 * (another session keeps its own). The same through snap_rollback_start()
 * (the control channel's wait=0: checked, then on a thread of its own):
 * refusals come back at once and list no job; a pool closed in the middle
 * stops it (the job fails) and a second rollback completes the source.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "snap.h"
#include "snap_test.h"

#define SZ (32ull << 20)
#define CB (64ull << 10)

struct samples {
	uint64_t total, last_done;
	unsigned n, between; /* samples seen; of those with 0 < done < total */
	uint32_t id;
};

/* The rollback job of the list (id 0: any), or false. */
static bool rb_job(struct vlun_pool *p, uint32_t id, struct vlun_job_info *ret)
{
	struct vlun_job_info *v = NULL;
	size_t n = 0;
	bool found = false;
	assert_int_equal(vlun_jobs_list(p, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (v[i].kind == VLUN_JOB_ROLLBACK && (id == 0 || v[i].id == id)) {
			*ret = v[i];
			found = true;
		}
	free(v);
	return found;
}

/* One look at a running rollback: the total never changes, done grows. */
static void sample(struct samples *s, const struct vlun_job_info *j)
{
	if (s->id == 0)
		s->id = j->id;
	assert_int_equal(j->id, s->id);
	assert_int_equal(j->kind, VLUN_JOB_ROLLBACK);
	if (s->n == 0)
		s->total = j->total_bytes;
	assert_int_equal(j->total_bytes, s->total);
	if (j->done_bytes < s->last_done)
		fail_msg("done went back from %llu to %llu", (unsigned long long)s->last_done,
			 (unsigned long long)j->done_bytes);
	assert_true(j->done_bytes <= j->total_bytes);
	s->last_done = j->done_bytes;
	s->between += j->done_bytes > 0 && j->done_bytes < j->total_bytes;
	s->n++;
}

struct sync_run {
	struct vlun_pool *p;
	const char *name;
	int r;
	atomic_bool done;
};

static void *sync_thread(void *arg)
{
	struct sync_run *sr = arg;
	sr->r = vlun_snapshot_rollback(sr->p, "src", sr->name, NULL);
	atomic_store(&sr->done, true);
	return NULL;
}

static void nap_us(long us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000 };
	nanosleep(&ts, NULL);
}

/* The job after it ended: done, everything copied, described. */
static void expect_done(struct vlun_pool *p, const struct samples *s, uint64_t total)
{
	struct vlun_job_info j;
	assert_true(rb_job(p, s->id, &j));
	assert_int_equal(j.state, VLUN_JOB_DONE);
	assert_int_equal(j.total_bytes, total);
	assert_int_equal(j.done_bytes, total);
	assert_true(j.done_bytes >= s->last_done);
	assert_string_equal(j.error, "");
}

static void test_rollback_progress(void **state)
{
	(void)state;
	struct et_pool tp;
	et_pool_files(&tp, 2, 64 << 20);
	et_pool_create(&tp, "snaprbp");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "src", VLUN_LAYOUT_LINEAR, SZ, 0, 0);
	struct vlun_vdisk *vd = et_vdisk_open(p, "src");
	uint8_t *model = et_alloc(SZ), *ia = et_alloc(SZ), *ib = et_alloc(SZ);
	st_write(vd, model, 0, SZ, 1);
	memcpy(ia, model, SZ);
	assert_int_equal(st_create(p, "src", "a", 72 << 20, CB, -1), 0);
	st_write(vd, model, 0, SZ, 2);          /* a saves every chunk */
	memcpy(ib, model, SZ);
	assert_int_equal(st_create(p, "src", "b", 0, 0, -1), 0);
	st_write(vd, model, 5 * CB, 3 * CB, 3); /* b saves three */
	struct vlun_job_info j;
	assert_false(rb_job(p, 0, &j));         /* no rollback yet */

	/* refused while the source is open: no job */
	char *why = NULL;
	uint32_t id = 0;
	assert_int_equal(snap_rollback_start(p, "src", "a", &id, &why), -EBUSY);
	assert_non_null(strstr(why, "open"));
	free(why);
	why = NULL;
	assert_int_equal(snap_rollback_start(p, "src", "nosuch", &id, &why), -ENOENT);
	free(why);
	assert_false(rb_job(p, 0, &j));
	vlun_vdisk_close(vd);

	/* synchronous, watched from here */
	struct samples s = { 0 };
	struct sync_run sr = { .p = p, .name = "a" };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, sync_thread, &sr), 0);
	while (!atomic_load(&sr.done)) {
		if (rb_job(p, 0, &j) && j.state == VLUN_JOB_RUNNING)
			sample(&s, &j);
		nap_us(200);
	}
	pthread_join(th, NULL);
	assert_int_equal(sr.r, 0);
	print_message("rollback to a: %u samples while running, %u in between\n", s.n, s.between);
	assert_true(s.between >= 1);
	assert_int_equal(s.total, SZ);          /* every chunk was saved for a */
	expect_done(p, &s, SZ);
	assert_true(rb_job(p, s.id, &j));
	assert_non_null(strstr(j.what, "rollback 'src' from snapshot 'a'"));
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(j.vdisk_id, et_find_vdisk(d, "src")->id);
	vlun_pool_desc_free(d);
	st_expect_snap(p, "src@b", ib, SZ);     /* restoring writes copied b's chunks first */
	st_expect_snap(p, "src@a", ia, SZ);
	vd = et_vdisk_open(p, "src");
	st_expect(vd, ia, SZ, "source after rollback to a");
	vlun_vdisk_close(vd);

	/* on its own thread (control channel, wait=0) */
	uint32_t first = s.id;
	struct samples s2 = { 0 };
	assert_int_equal(snap_rollback_start(p, "src", "b", &id, NULL), 0);
	assert_true(id > first);
	int again = vlun_snapshot_rollback(p, "src", "a", NULL);
	assert_true(again == -EBUSY || again == 0); /* -EBUSY while b's still runs */
	for (;;) {
		assert_true(rb_job(p, 0, &j));
		if (j.id == id && j.state != VLUN_JOB_RUNNING)
			break;
		if (j.id == id)
			sample(&s2, &j);
		nap_us(200);
	}
	assert_true(j.id == id);
	expect_done(p, &(struct samples){ .id = id, .last_done = s2.last_done }, j.total_bytes);
	assert_true(j.total_bytes > 0 && j.total_bytes <= SZ);
	if (again == 0) { /* it ran before b's: restore b again */
		assert_int_equal(vlun_snapshot_rollback(p, "src", "b", NULL), 0);
	}
	vd = et_vdisk_open(p, "src");
	st_expect(vd, ib, SZ, "source after rollback to b");
	vlun_vdisk_close(vd);

	/* a pool closed while it runs: stopped, and the next one completes it */
	vd = et_vdisk_open(p, "src");
	st_write(vd, NULL, 0, SZ, 4);
	vlun_vdisk_close(vd);
	assert_int_equal(snap_rollback_start(p, "src", "a", &id, NULL), 0);
	vlun_pool_close(p);
	p = et_pool_open(&tp);
	assert_false(rb_job(p, 0, &j));         /* not persistent */
	assert_int_equal(vlun_snapshot_rollback(p, "src", "a", NULL), 0);
	vd = et_vdisk_open(p, "src");
	st_expect(vd, ia, SZ, "source after an interrupted rollback and another");
	vlun_vdisk_close(vd);
	st_expect_snap(p, "src@a", ia, SZ);
	vlun_pool_close(p);
	et_pool_cleanup(&tp);
	free(model);
	free(ia);
	free(ib);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_rollback_progress) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
