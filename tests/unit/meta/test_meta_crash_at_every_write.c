/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Crash at every write of a sequence of checkpoints and journal records:
 * after the crash exactly the old or the new state of the interrupted
 * commit loads — never an older one, never a mix, never nothing.
 *  - drop: member i loses every write after N_i (a different point per
 *    member): the newest state any member completed must load.
 *    A volatile cache loses what was not flushed.
 *  - tear: every member tears its (N+1)th write and dies; the torn part
 *    stays: state N or N+1 loads. */
#include "metatest.h"

#define STEPS 24

/* Step j of the scenario: checkpoints at 0, 7, 8 and 15, journal else. */
static bool is_checkpoint(int j)
{
	return j == 0 || j == 7 || j == 8 || j == 15;
}

static int run_step(struct mt_pool *p, struct vlun_meta *st, struct vlun_pool_desc *d, int j)
{
	struct vlun_vdisk_desc *v = &d->vdisks[(uint32_t)j % d->nvdisks];
	uint64_t len = VLUN_MIN(v->size_sectors, (uint64_t)(j % 5) + 1);
	uint64_t vs = ((uint64_t)j * 7919) % (v->size_sectors - len + 1);
	struct vlun_extent x = { .vsector = vs, .nsectors = len, .member = VLUN_NO_MEMBER,
				 .alt_member = VLUN_NO_MEMBER, .flags = j % 2 ? VLUN_EXT_INVALID : VLUN_EXT_ZERO };
	struct vlun_meta_delta dl = { .vdisk_id = v->id, .vsector = vs, .nsectors = len, .nextents = 1,
				      .extents = &x, .generation = v->generation + 1 };

	assert_int_equal(vlun_meta_apply_delta(d, &dl), 0);
	d->generation++;
	if (is_checkpoint(j)) {
		d->map_epoch++;
		return vlun_meta_commit(st, p->m, p->n, d);
	}
	return vlun_meta_commit_delta(st, p->m, p->n, d, &dl, 1);
}

/* Runs the scenario with faults armed by arm(); states[j] = d after step j
 * (states[0] is the state before the first faulted step). */
typedef void (*arm_fn)(struct mt_pool *p, void *arg);

static struct vlun_pool_desc *run(struct mt_pool *p, arm_fn arm, void *arg, struct vlun_pool_desc **states)
{
	struct vlun_meta *st = NULL;
	struct vlun_pool_desc *d, *got = NULL;
	char why[1024];
	int r;

	mt_pool_create(p, 3, MT_DISK_BYTES, MT_META_BYTES);
	d = mt_desc_random(p, 3, 40);
	assert_int_equal(vlun_meta_init(p->m, p->n, &st), 0);
	assert_int_equal(vlun_meta_commit(st, p->m, p->n, d), 0);
	assert_int_equal(vlun_pool_desc_dup(d, &states[0]), 0);
	arm(p, arg);
	for (int j = 0; j < STEPS; j++) {
		r = run_step(p, st, d, j);
		assert_true(r == 0 || r == -EIO);
		assert_int_equal(vlun_pool_desc_dup(d, &states[j + 1]), 0);
	}
	mt_crash_all(p);
	r = mt_load(p, &got, NULL, why, sizeof(why));
	if (r < 0)
		fail_msg("load after crash failed: %s", why);
	vlun_meta_free(st);
	vlun_pool_desc_free(d);
	return got;
}

static int find_state(struct vlun_pool_desc *got, struct vlun_pool_desc **states)
{
	for (int j = 0; j <= STEPS; j++)
		if (mt_desc_equal(got, states[j], true))
			return j;
	return -1;
}

static void free_states(struct vlun_pool_desc **states)
{
	for (int j = 0; j <= STEPS; j++) {
		vlun_pool_desc_free(states[j]);
		states[j] = NULL;
	}
}

struct drop_arg {
	int64_t n[3];
};

static void arm_drop(struct mt_pool *p, void *arg)
{
	struct drop_arg *a = arg;

	for (size_t i = 0; i < p->n; i++) {
		struct vlun_memdisk_faults f = { .drop_after_n = a->n[i], .volatile_cache = true };

		vlun_memdisk_set_faults(p->m[i].dev, &f);
	}
}

static void drop_at_every_point(void **state)
{
	static const int spread[][3] = { { 0, 0, 0 }, { 0, 1, 2 }, { 2, 0, 1 }, { 3, 0, 0 } };

	for (int64_t n = 1; n <= STEPS; n++) {
		for (size_t s = 0; s < VLUN_ARRAY_SIZE(spread); s++) {
			struct vlun_pool_desc *states[STEPS + 1] = { 0 }, *got;
			struct drop_arg a;
			struct mt_pool p;
			int64_t max = 0;
			int j;

			for (int i = 0; i < 3; i++) {
				a.n[i] = n + spread[s][i];
				max = VLUN_MAX(max, a.n[i]);
			}
			got = run(&p, arm_drop, &a, states);
			j = find_state(got, states);
			if (j != VLUN_MIN(max, STEPS))
				fail_msg("drop after %lld/%lld/%lld writes: loaded state %d, expected %lld",
					 (long long)a.n[0], (long long)a.n[1], (long long)a.n[2], j,
					 (long long)VLUN_MIN(max, STEPS));
			vlun_pool_desc_free(got);
			free_states(states);
			mt_pool_destroy(&p);
		}
	}
}

struct tear_arg {
	int64_t n;
	uint32_t bytes;
};

static void arm_tear(struct mt_pool *p, void *arg)
{
	struct tear_arg *a = arg;

	for (size_t i = 0; i < p->n; i++) {
		/* no volatile cache: the torn part stays on the medium */
		struct vlun_memdisk_faults f = { .tear_write_n = a->n, .tear_bytes = a->bytes };

		vlun_memdisk_set_faults(p->m[i].dev, &f);
	}
}

static void tear_at_every_point(void **state)
{
	static const uint32_t bytes[] = { 0, 100, 300, 2000, 4095 };

	for (int64_t n = 1; n <= STEPS; n++) {
		for (size_t b = 0; b < VLUN_ARRAY_SIZE(bytes); b++) {
			struct vlun_pool_desc *states[STEPS + 1] = { 0 }, *got;
			struct tear_arg a = { .n = n, .bytes = bytes[b] };
			struct mt_pool p;
			int j;

			got = run(&p, arm_tear, &a, states);
			j = find_state(got, states);
			/* write n belongs to step n (one write per member per step) */
			if (j != n - 1 && j != n)
				fail_msg("tear of write %lld after %u bytes: loaded state %d, expected %lld or %lld",
					 (long long)n, bytes[b], j, (long long)n - 1, (long long)n);
			if (bytes[b] < 100)
				assert_int_equal(j, n - 1); /* too little landed to complete anything */
			vlun_pool_desc_free(got);
			free_states(states);
			mt_pool_destroy(&p);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drop_at_every_point),
		cmocka_unit_test(tear_at_every_point),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
