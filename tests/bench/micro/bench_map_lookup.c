/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench_map_lookup — vlun_map_lookup() time at 1 K and 1 M extents.
 *
 * The map is what a thin disk with 1 MiB chunks looks like after random
 * first-touch writes: every extent is one chunk on alternating members, so
 * nothing merges. Lookups are 4 KiB (8 sectors) at random offsets, and
 * 1 MiB at random offsets (one or two extents), single-threaded, RCU read
 * side included. Prints ns/op (wall) per case.
 */
#include "bench.h"
#include "map.h"

#define CHUNK 2048ull /* sectors: 1 MiB */
#define NOFF 65536u   /* random offsets, precomputed */

static struct vlun_map *make_map(uint64_t n)
{
	struct vlun_extent *e = calloc(n, sizeof(*e));
	struct vlun_map *m = NULL;
	int r;

	if (!e)
		return NULL;
	for (uint64_t i = 0; i < n; i++) {
		e[i].vsector = i * CHUNK;
		e[i].nsectors = CHUNK;
		e[i].member = (uint32_t)(i & 1);
		e[i].psector = 2 * i * CHUNK; /* gaps: never contiguous */
		e[i].alt_member = VLUN_NO_MEMBER;
	}
	r = vlun_map_new(e, (uint32_t)n, n * CHUNK, &m);
	free(e);
	if (r < 0) {
		fprintf(stderr, "bench_map_lookup: vlun_map_new(%" PRIu64 " extents): %s\n", n, strerror(-r));
		return NULL;
	}
	return m;
}

/* the measured loop (noinline: callgrind can attribute it) */
__attribute__((noinline)) static uint64_t bench_region_lookup(struct vlun_map *m, const uint64_t *off,
							       uint64_t ops, uint64_t nsect)
{
	struct vlun_extent out[4];
	uint64_t sum = 0;

	for (uint64_t i = 0; i < ops; i++) {
		int n = vlun_map_lookup(m, off[i % NOFF], nsect, out, 4);

		if (n <= 0)
			abort();
		sum += out[0].psector + (uint64_t)n;
	}
	return sum;
}

static int run(uint64_t nextents, uint64_t ops, const char *only)
{
	char name[64];
	uint64_t *off = malloc(NOFF * sizeof(*off)), seed = 0x9e3779b97f4a7c15ull;
	struct vlun_map *m;

	snprintf(name, sizeof(name), "%" PRIu64, nextents);
	if (!bench_wanted(only, name)) {
		free(off);
		return 0;
	}
	m = make_map(nextents);
	if (!m || !off) {
		free(off);
		vlun_map_free(m);
		return 1;
	}
	static const uint64_t sizes[] = { 8, CHUNK };
	for (size_t s = 0; s < 2; s++) {
		uint64_t nsect = sizes[s], t0, t1, c0, c1, sum;

		for (uint32_t i = 0; i < NOFF; i++)
			off[i] = bench_rand(&seed) % (nextents * CHUNK - nsect + 1);
		sum = bench_region_lookup(m, off, ops / 10 + 1, nsect); /* warm */
		t0 = bench_wall();
		c0 = bench_cpu();
		sum += bench_region_lookup(m, off, ops, nsect);
		c1 = bench_cpu();
		t1 = bench_wall();
		printf("bench=map_lookup\textents=%" PRIu64 "\tio_bytes=%" PRIu64 "\tops=%" PRIu64
		       "\tns_per_op=%.1f\tcpu_ns_per_op=%.1f\tpages=%" PRIu64 "\tchk=%" PRIu64 "\n",
		       nextents, nsect * 512, ops, (double)(t1 - t0) / (double)ops,
		       (double)(c1 - c0) / (double)ops, vlun_map_page_count(m), sum & 0xff);
	}
	vlun_map_free(m);
	free(off);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t ops = bench_ops_arg(argc, argv, 2000000);
	const char *only = bench_only_arg(argc, argv);
	int rc = 0;

	rc |= run(1000, ops, only);
	rc |= run(1u << 20, ops, only);
	return rc;
}
