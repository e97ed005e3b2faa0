/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stats.c — lock-free I/O counters (stats.h) and the text payload of the
 * control channel's "stats" verb.
 *
 * Every fast-path update is a relaxed atomic operation: the counters are
 * statistics, not synchronisation, and no reader derives anything about
 * other memory from them.
 *
 * The "stats" payload (pool_stats_collect), one line per object, words
 * separated by one space, values %XX-escaped like control requests
 * (space, '%' and bytes outside printable ASCII):
 *
 *   pool name=N uuid=U pid=P time_ns=T realtime_ns=R uptime_ns=X members=M vdisks=V
 *   member idx=I path=P state=ok|missing|failed <counters>
 *   vdisk name=N id=I <counters>
 *
 * time_ns is CLOCK_MONOTONIC of the holder when the sample was taken (the
 * clock of since_ns; rates = difference of two samples / difference of
 * time_ns), realtime_ns the wall clock, uptime_ns how long the members have
 * been counted. members lists every member slot of the pool, vdisks only
 * the vdisks open in the holder (their counters start when opened).
 * <counters>, all decimal integers:
 *
 *   reads writes others                 completed I/Os (errors included)
 *   read_bytes write_bytes other_bytes  bytes of the successful ones
 *   errors faults outstanding max_outstanding
 *   lat_count lat_sum_ns                latency samples and their sum
 *   p50_ns p90_ns p99_ns p999_ns max_ns percentiles (bucket upper bounds)
 *   recent_ns                           moving average (read balancing)
 *   since_ns                            CLOCK_MONOTONIC when counting began
 *   hist=B:C[,B:C]...                   non-empty histogram buckets
 *                                       (index:count; "-" when none), for
 *                                       percentiles over an interval
 *
 * Clients ignore keys they do not know: later versions may add some.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "internal.h"
#include "pool_priv.h"
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

uint64_t vlun_iostat_percentile(const uint64_t hist[VLUN_IOSTAT_NBUCKETS], unsigned q_per100k)
{
	uint64_t count = 0;
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++)
		count += hist[i];
	if (count == 0)
		return 0;
	if (q_per100k > 100000u)
		q_per100k = 100000u;
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
	o.p50_ns = vlun_iostat_percentile(hist, 50000);
	o.p90_ns = vlun_iostat_percentile(hist, 90000);
	o.p99_ns = vlun_iostat_percentile(hist, 99000);
	o.p999_ns = vlun_iostat_percentile(hist, 99900);
	*ret = o;
}

/* ------------------------------------------------------------ payload */

static void put_escaped(FILE *f, const char *s)
{
	if (!*s) {
		fputs("%00", f); /* never empty; decodes to "" for clients that stop at NUL */
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch <= 0x20 || ch >= 0x7f || ch == '%')
			fprintf(f, "%%%02X", ch);
		else
			fputc(ch, f);
	}
}

static void put_counters(FILE *f, const struct vlun_iostat *s)
{
	struct vlun_iostat_snap o;
	vlun_iostat_snapshot(s, &o);
	fprintf(f, " reads=%llu writes=%llu others=%llu read_bytes=%llu write_bytes=%llu other_bytes=%llu"
		" errors=%llu faults=%llu outstanding=%llu max_outstanding=%llu lat_count=%llu lat_sum_ns=%llu"
		" p50_ns=%llu p90_ns=%llu p99_ns=%llu p999_ns=%llu max_ns=%llu recent_ns=%llu since_ns=%llu"
		" hist=",
		(unsigned long long)o.ops[VLUN_IOSTAT_READ], (unsigned long long)o.ops[VLUN_IOSTAT_WRITE],
		(unsigned long long)o.ops[VLUN_IOSTAT_OTHER], (unsigned long long)o.bytes[VLUN_IOSTAT_READ],
		(unsigned long long)o.bytes[VLUN_IOSTAT_WRITE], (unsigned long long)o.bytes[VLUN_IOSTAT_OTHER],
		(unsigned long long)o.errors, (unsigned long long)o.faults, (unsigned long long)o.outstanding,
		(unsigned long long)o.max_outstanding, (unsigned long long)o.lat_count,
		(unsigned long long)o.lat_sum_ns, (unsigned long long)o.p50_ns, (unsigned long long)o.p90_ns,
		(unsigned long long)o.p99_ns, (unsigned long long)o.p999_ns, (unsigned long long)o.max_ns,
		(unsigned long long)o.recent_ns, (unsigned long long)o.init_ns);
	bool any = false;
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&s->hist[i], RLX);
		if (c) {
			fprintf(f, "%s%u:%llu", any ? "," : "", i, (unsigned long long)c);
			any = true;
		}
	}
	fputs(any ? "\n" : "-\n", f);
}

static const char *member_state(const struct vlun_pool *p, uint32_t m)
{
	if (m >= p->desc->nmembers)
		return "missing";
	switch (p->desc->members[m].state) {
	case VLUN_MEMBER_OK: return p->members[m].dev ? "ok" : "missing";
	case VLUN_MEMBER_MISSING: return "missing";
	case VLUN_MEMBER_FAILED: return "failed";
	default: return "unknown";
	}
}

int pool_stats_collect(struct vlun_pool *p, char **ret_text)
{
	char *buf = NULL;
	size_t len = 0;
	char u[37];
	struct timespec rt;

	if (!p || !ret_text)
		return -EINVAL;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &rt);
	vlun_uuid_format(p->uuid, u);

	pthread_mutex_lock(&p->ctl_lock);
	uint64_t now = vlun_iostat_now_ns(), since = now;
	for (uint32_t m = 0; m < p->nmembers; m++)
		if (p->members[m].stats.init_ns && p->members[m].stats.init_ns < since)
			since = p->members[m].stats.init_ns;
	fputs("pool name=", f);
	put_escaped(f, p->desc->name);
	fprintf(f, " uuid=%s pid=%d time_ns=%llu realtime_ns=%llu uptime_ns=%llu members=%u vdisks=%zu\n", u,
		(int)getpid(), (unsigned long long)now,
		(unsigned long long)rt.tv_sec * 1000000000ull + (unsigned long long)rt.tv_nsec,
		(unsigned long long)(now - since), p->nmembers, p->nopen);
	for (uint32_t m = 0; m < p->nmembers; m++) {
		const char *path = p->members[m].dev ? p->members[m].dev->name :
				   m < p->desc->nmembers ? p->desc->members[m].path_hint : "";
		fprintf(f, "member idx=%u path=", m);
		put_escaped(f, path);
		fprintf(f, " state=%s", member_state(p, m));
		put_counters(f, &p->members[m].stats);
	}
	for (size_t i = 0; i < p->nopen; i++) {
		uint32_t id = vdisk_id_of(p->open[i]);
		const char *name = "";
		for (uint32_t v = 0; v < p->desc->nvdisks; v++)
			if (p->desc->vdisks[v].id == id)
				name = p->desc->vdisks[v].name;
		fputs("vdisk name=", f);
		put_escaped(f, name);
		fprintf(f, " id=%u", id);
		put_counters(f, vdisk_stats_of(p->open[i]));
	}
	pthread_mutex_unlock(&p->ctl_lock);

	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret_text = buf;
	return 0;
}
