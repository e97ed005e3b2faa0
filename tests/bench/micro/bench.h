/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench.h — small helpers of the native micro benchmarks (tests/bench/micro).
 *
 * Every benchmark prints one result per line, tab-separated key=value pairs
 * starting with "bench=<name>", so scripts/bench can collect them:
 *     bench=map_lookup  extents=1048576  ops=2000000  ns_per_op=61.2 ...
 * Options common to all: --ops N (operations per measured case; scripts/bench
 * runs callgrind with two values of N and takes the difference of the
 * instruction counts, so set-up cost cancels out).
 */
#ifndef VLUN_BENCH_H
#define VLUN_BENCH_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_wall(void) { return bench_ns(CLOCK_MONOTONIC); }
/* CPU time of every thread of the process (the engine's too) */
static inline uint64_t bench_cpu(void) { return bench_ns(CLOCK_PROCESS_CPUTIME_ID); }

/* xorshift64*: cheap, deterministic */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* --ops N from argv (strict), else def. Exits 2 on a bad value. */
static inline uint64_t bench_ops_arg(int argc, char **argv, uint64_t def)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--ops") == 0) {
			char *end = NULL;
			unsigned long long v;

			errno = 0;
			v = strtoull(argv[i + 1], &end, 10);
			if (errno || !end || *end || v == 0) {
				fprintf(stderr, "%s: --ops wants a positive integer, not '%s'\n", argv[0],
					argv[i + 1]);
				exit(2);
			}
			return v;
		}
	}
	return def;
}

/* --only NAME: run one case (the others print nothing) */
static inline const char *bench_only_arg(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--only") == 0)
			return argv[i + 1];
	return NULL;
}

static inline int bench_wanted(const char *only, const char *name)
{
	return !only || strcmp(only, name) == 0;
}

/* Where scratch files go: $VLUN_BENCH_DIR, else /dev/shm (tmpfs), else /tmp. */
static inline const char *bench_dir(void)
{
	const char *d = getenv("VLUN_BENCH_DIR");

	if (d && *d)
		return d;
	return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

#endif
