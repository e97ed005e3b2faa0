/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stats.h — I/O statistics of a member or a virtual disk, kept by the
 * fast path and read by the control channel's "stats" verb.
 *
 * A struct vlun_iostat is a block of C11 atomic counters: no lock and no
 * allocation per I/O, only relaxed atomic adds (and a short CAS loop for
 * the maximum outstanding count and the latency average). Readers take a
 * snapshot at any time; it is consistent per counter, not across counters
 * (an I/O may be counted in ops but not yet in the histogram, for example).
 *
 * Use on the fast path, per I/O:
 *
 *     uint64_t t0 = vlun_iostat_begin(&s);      outstanding++, returns now
 *     ... submit, wait for the completion ...
 *     vlun_iostat_end(&s, VLUN_IOSTAT_READ, bytes, t0, res);
 *
 * and vlun_iostat_fault(&s) when an I/O is handed to the controller.
 *
 * Latency histogram: log2 buckets of nanoseconds, each split into
 * VLUN_IOSTAT_SUB linear sub-buckets (values below VLUN_IOSTAT_SUB have a
 * bucket each). A percentile is reported as the upper bound of the bucket
 * it falls in, so it is at most 1/VLUN_IOSTAT_SUB (12.5 %) above the true
 * value and never below it.
 *
 * Recent latency: an exponentially weighted moving average of completed
 * I/Os' latency (weight 1/8 for each new sample), for read balancing
 * between mirror legs. It is not decayed while no I/O completes: pair it
 * with vlun_iostat_outstanding() and probe an idle leg now and then.
 */
#ifndef VLUN_STATS_H
#define VLUN_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vlun_iostat_dir {
	VLUN_IOSTAT_READ = 0,
	VLUN_IOSTAT_WRITE = 1,
	VLUN_IOSTAT_OTHER = 2, /* flush, unmap, write-zeroes */
	VLUN_IOSTAT_NDIR = 3,
};

#define VLUN_IOSTAT_SUB_BITS 3
#define VLUN_IOSTAT_SUB (1u << VLUN_IOSTAT_SUB_BITS)
/* VLUN_IOSTAT_SUB exact buckets for 0..SUB-1, then SUB buckets for each
 * power of two from 2^SUB_BITS to 2^63. */
#define VLUN_IOSTAT_NBUCKETS (VLUN_IOSTAT_SUB + (64 - VLUN_IOSTAT_SUB_BITS) * VLUN_IOSTAT_SUB)

struct vlun_iostat {
	_Atomic uint64_t ops[VLUN_IOSTAT_NDIR];   /* completed, including errors */
	_Atomic uint64_t bytes[VLUN_IOSTAT_NDIR]; /* of successful I/Os */
	_Atomic uint64_t errors;                  /* completed with res < 0 */
	_Atomic uint64_t faults;                  /* handed to the controller */
	_Atomic uint64_t outstanding;             /* begun, not yet ended */
	_Atomic uint64_t max_outstanding;
	_Atomic uint64_t lat_sum_ns;              /* of all completed I/Os */
	_Atomic uint64_t recent_ns;               /* EWMA latency, 0 = no sample yet */
	uint64_t init_ns;                         /* CLOCK_MONOTONIC at init */
	_Atomic uint64_t hist[VLUN_IOSTAT_NBUCKETS];
};

struct vlun_iostat_snap {
	uint64_t ops[VLUN_IOSTAT_NDIR];
	uint64_t bytes[VLUN_IOSTAT_NDIR];
	uint64_t errors;
	uint64_t faults;
	uint64_t outstanding;
	uint64_t max_outstanding;
	uint64_t lat_count;   /* samples in the histogram */
	uint64_t lat_sum_ns;
	uint64_t p50_ns, p90_ns, p99_ns, p999_ns; /* 0 when no sample */
	uint64_t max_ns;      /* upper bound of the highest non-empty bucket */
	uint64_t recent_ns;
	uint64_t init_ns;     /* CLOCK_MONOTONIC when counting began */
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t vlun_iostat_now_ns(void);

void vlun_iostat_init(struct vlun_iostat *s);
/* outstanding++, maximum updated; returns the start time (ns, monotonic). */
uint64_t vlun_iostat_begin(struct vlun_iostat *s);
/* outstanding--; counts the I/O in dir (an unknown dir counts as OTHER):
 * ops, bytes (when res >= 0), errors (res < 0), latency now - t0_ns. */
void vlun_iostat_end(struct vlun_iostat *s, unsigned dir, uint64_t bytes, uint64_t t0_ns, int res);
void vlun_iostat_fault(struct vlun_iostat *s);
uint64_t vlun_iostat_outstanding(const struct vlun_iostat *s);
uint64_t vlun_iostat_recent_ns(const struct vlun_iostat *s);
void vlun_iostat_snapshot(const struct vlun_iostat *s, struct vlun_iostat_snap *ret);

/* Histogram geometry (exposed for tests): the bucket of a latency and the
 * largest value that falls in bucket i. */
unsigned vlun_iostat_bucket(uint64_t ns);
uint64_t vlun_iostat_bucket_upper(unsigned i);
/* The upper bound of the bucket holding the sample of rank
 * ceil(count * q_per100k / 100000) (1-based), count = the sum of hist: the
 * q-quantile (q_per100k 99900 = p99.9); 0 for an empty histogram. */
uint64_t vlun_iostat_percentile(const uint64_t hist[VLUN_IOSTAT_NBUCKETS], unsigned q_per100k);
/* Records one latency sample (what vlun_iostat_end does besides counting). */
void vlun_iostat_record_latency(struct vlun_iostat *s, uint64_t ns);

/* The text payload of the control channel's "stats" verb for a pool
 * (format in stats.c). Takes ctl_lock only to walk the members and the
 * open vdisks. *ret_text is malloc'd. 0 or negative errno. */
struct vlun_pool;
int pool_stats_collect(struct vlun_pool *p, char **ret_text);

#ifdef __cplusplus
}
#endif
#endif
