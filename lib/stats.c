/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stats.c — lock-free I/O counters (stats.h) and the text payload of the
 * control channel's "stats" verb.
 *
 * Every fast-path update is a relaxed atomic operation: the counters are
 * statistics, not synchronisation, and no reader derives anything about
 * other memory from them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "stats.h"

#define RLX memory_order_relaxed
#define EWMA_SHIFT 3 /* weight of a new sample: 1/8 */

uint64_t vlun_iostat_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void vlun_iostat_init(struct vlun_iostat *s)
{
	for (unsigned d = 0; d < VLUN_IOSTAT_NDIR; d++) {
		atomic_init(&s->ops[d], 0);
		atomic_init(&s->bytes[d], 0);
	}
	atomic_init(&s->errors, 0);
	atomic_init(&s->faults, 0);
	atomic_init(&s->outstanding, 0);
	atomic_init(&s->max_outstanding, 0);
	atomic_init(&s->lat_sum_ns, 0);
	atomic_init(&s->recent_ns, 0);
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++)
		atomic_init(&s->hist[i], 0);
	s->init_ns = vlun_iostat_now_ns();
}

unsigned vlun_iostat_bucket(uint64_t ns)
{
	if (ns < VLUN_IOSTAT_SUB)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= SUB_BITS */
	unsigned sub = (unsigned)(ns >> (e - VLUN_IOSTAT_SUB_BITS)) & (VLUN_IOSTAT_SUB - 1);
	return VLUN_IOSTAT_SUB + (e - VLUN_IOSTAT_SUB_BITS) * VLUN_IOSTAT_SUB + sub;
}

uint64_t vlun_iostat_bucket_upper(unsigned i)
{
	if (i < VLUN_IOSTAT_SUB)
		return i;
	if (i >= VLUN_IOSTAT_NBUCKETS)
		return UINT64_MAX;
	unsigned shift = (i - VLUN_IOSTAT_SUB) / VLUN_IOSTAT_SUB;
	uint64_t sub = (i - VLUN_IOSTAT_SUB) % VLUN_IOSTAT_SUB;
	uint64_t next = (VLUN_IOSTAT_SUB + sub + 1) << shift; /* first value of bucket i+1 */
	if (i == VLUN_IOSTAT_NBUCKETS - 1)
		return UINT64_MAX; /* (16 << 60) wraps */
	return next - 1;
}

uint64_t vlun_iostat_begin(struct vlun_iostat *s)
{
	uint64_t cur = atomic_fetch_add_explicit(&s->outstanding, 1, RLX) + 1;
	uint64_t max = atomic_load_explicit(&s->max_outstanding, RLX);
	while (cur > max &&
	       !atomic_compare_exchange_weak_explicit(&s->max_outstanding, &max, cur, RLX, RLX))
		;
	return vlun_iostat_now_ns();
}

void vlun_iostat_record_latency(struct vlun_iostat *s, uint64_t ns)
{
	atomic_fetch_add_explicit(&s->hist[vlun_iostat_bucket(ns)], 1, RLX);
	atomic_fetch_add_explicit(&s->lat_sum_ns, ns, RLX);

	/* EWMA: avg += (sample - avg) / 8, the first sample taken as is. A
	 * lost race only means one sample weighs a little less. */
	uint64_t old = atomic_load_explicit(&s->recent_ns, RLX), upd;
	do {
		if (old == 0)
			upd = ns ? ns : 1;
		else if (ns >= old)
			upd = old + ((ns - old) >> EWMA_SHIFT);
		else
			upd = old - ((old - ns) >> EWMA_SHIFT);
		if (upd == 0)
			upd = 1;
	} while (!atomic_compare_exchange_weak_explicit(&s->recent_ns, &old, upd, RLX, RLX));
}

void vlun_iostat_end(struct vlun_iostat *s, unsigned dir, uint64_t bytes, uint64_t t0_ns, int res)
{
	uint64_t now = vlun_iostat_now_ns();
	if (dir >= VLUN_IOSTAT_NDIR)
		dir = VLUN_IOSTAT_OTHER;
	atomic_fetch_sub_explicit(&s->outstanding, 1, RLX);
	atomic_fetch_add_explicit(&s->ops[dir], 1, RLX);
	if (res < 0)
		atomic_fetch_add_explicit(&s->errors, 1, RLX);
	else
		atomic_fetch_add_explicit(&s->bytes[dir], bytes, RLX);
	vlun_iostat_record_latency(s, now > t0_ns ? now - t0_ns : 0);
}

void vlun_iostat_fault(struct vlun_iostat *s)
{
	atomic_fetch_add_explicit(&s->faults, 1, RLX);
}

uint64_t vlun_iostat_outstanding(const struct vlun_iostat *s)
{
	return atomic_load_explicit(&s->outstanding, RLX);
}

uint64_t vlun_iostat_recent_ns(const struct vlun_iostat *s)
{
	return atomic_load_explicit(&s->recent_ns, RLX);
}

/* The upper bound of the bucket holding the sample of rank
 * ceil(count * q_per100k / 100000) (1-based) in hist; count = sum of hist. */
static uint64_t percentile(const uint64_t *hist, uint64_t count, unsigned q_per100k)
{
	if (count == 0)
		return 0;
	/* rank = ceil(count * q), computed without overflow for any count */
	uint64_t rank = count / 100000u * q_per100k +
			VLUN_DIV_ROUND_UP(count % 100000u * q_per100k, 100000u);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++) {
		seen += hist[i];
		if (seen >= rank)
			return vlun_iostat_bucket_upper(i);
	}
	return 0; /* not reached: count is the sum of hist */
}

void vlun_iostat_snapshot(const struct vlun_iostat *s, struct vlun_iostat_snap *ret)
{
	/* one read of every bucket, so that count and percentiles agree */
	uint64_t hist[VLUN_IOSTAT_NBUCKETS];
	struct vlun_iostat_snap o = { 0 };

	for (unsigned d = 0; d < VLUN_IOSTAT_NDIR; d++) {
		o.ops[d] = atomic_load_explicit(&s->ops[d], RLX);
		o.bytes[d] = atomic_load_explicit(&s->bytes[d], RLX);
	}
	o.errors = atomic_load_explicit(&s->errors, RLX);
	o.faults = atomic_load_explicit(&s->faults, RLX);
	o.outstanding = atomic_load_explicit(&s->outstanding, RLX);
	o.max_outstanding = atomic_load_explicit(&s->max_outstanding, RLX);
	o.lat_sum_ns = atomic_load_explicit(&s->lat_sum_ns, RLX);
	o.recent_ns = atomic_load_explicit(&s->recent_ns, RLX);
	o.init_ns = s->init_ns;
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++) {
		hist[i] = atomic_load_explicit(&s->hist[i], RLX);
		o.lat_count += hist[i];
		if (hist[i])
			o.max_ns = vlun_iostat_bucket_upper(i);
	}
	o.p50_ns = percentile(hist, o.lat_count, 50000);
	o.p90_ns = percentile(hist, o.lat_count, 90000);
	o.p99_ns = percentile(hist, o.lat_count, 99000);
	o.p999_ns = percentile(hist, o.lat_count, 99900);
	*ret = o;
}
