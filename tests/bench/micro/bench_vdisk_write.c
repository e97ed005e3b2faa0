/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench_vdisk_write — writes through vlun_vdisk_submit (libvlun only) to a
 * linear disk and to an allocated thin disk of the same pool, side by side,
 * with the lab's shape (tests/e2e/bench_fio.sh): a pool of two member files,
 * disks "linear", "thin" (1 MiB chunks, region prefilled with 1 MiB writes)
 * and "thinft" (thin, its region discarded and rewritten by a neighbour).
 *
 *   bench_vdisk_write [--ops N] [--only CASE] [--bs BYTES] [--qd N]
 *                     [--buffered] [--neighbour] [--mirror]
 *
 * Cases: linear, thin (random BS writes at QD in a 64 MiB region).
 *   --buffered   members opened without O_DIRECT (VLUN_OPEN_NO_DIRECT), as
 *                the lab's tmpfs members are on kernels < 6.6
 *   --neighbour  while a case runs, a thread UNMAPs thinft's region and
 *                rewrites it with 1 MiB writes at QD8 (first touch: the
 *                controller allocates, commits, frees), in a loop
 *   --mirror     the linear disk's region is mirrored on the other member
 *                (resynced first): every write to it is two pieces
 * Prints per case: wall and CPU (all threads) ns per write, p50/p99/max
 * completion latency in µs. $VLUN_BENCH_DIR as the other benchmarks;
 * VLUN_IO_BACKEND selects the engine's I/O backend.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "bench.h"
#include "vlun.h"

#define REGION (64ull << 20)
#define VDISK (128ull << 20)
#define MEMBER (256ull << 20)
#define CHUNK (1ull << 20)
#define QD_MAX 64

struct breq {
	struct vlun_req req;
	struct iovec iov;
	uint64_t t0;
	struct breq *next;
};

struct lane {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight, errors;
	struct breq *free;
	uint64_t *lat;          /* completion latencies (ns), or NULL */
	uint64_t nlat, maxlat;
};

static void done_cb(struct vlun_req *req, enum vlun_status st)
{
	struct breq *b = req->priv;
	struct lane *l = (struct lane *)b->next; /* the lane while in flight */
	uint64_t d = bench_wall() - b->t0;
	pthread_mutex_lock(&l->lock);
	if (st != VLUN_OK)
		l->errors++;
	if (l->lat && l->nlat < l->maxlat)
		l->lat[l->nlat++] = d;
	b->next = l->free;
	l->free = b;
	l->inflight--;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static int submit(struct lane *l, struct vlun_vdisk *vd, uint32_t op, uint64_t off, uint64_t len, unsigned qd)
{
	struct breq *b;

	pthread_mutex_lock(&l->lock);
	while (l->inflight >= qd)
		pthread_cond_wait(&l->cond, &l->lock);
	b = l->free;
	l->free = b->next;
	l->inflight++;
	pthread_mutex_unlock(&l->lock);
	b->next = (struct breq *)l;
	b->iov.iov_len = len;
	b->req = (struct vlun_req){
		.op = op, .offset = off, .length = op == VLUN_OP_FLUSH ? 0 : len,
		.iov = op == VLUN_OP_WRITE ? &b->iov : NULL, .iovcnt = op == VLUN_OP_WRITE ? 1 : 0,
		.done = done_cb, .priv = b,
	};
	b->t0 = bench_wall();
	return vlun_vdisk_submit(vd, &b->req);
}

static int drain(struct lane *l)
{
	pthread_mutex_lock(&l->lock);
	while (l->inflight)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return l->errors ? -1 : 0;
}

static int lane_init(struct lane *l, unsigned n, uint64_t bufsize)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct breq *b = calloc(1, sizeof(*b));
		if (!b || posix_memalign(&b->iov.iov_base, 4096, bufsize)) {
			free(b);
			return -ENOMEM;
		}
		memset(b->iov.iov_base, 0xa5, bufsize);
		b->next = l->free;
		l->free = b;
	}
	return 0;
}

static void lane_free(struct lane *l)
{
	while (l->free) {
		struct breq *b = l->free;
		l->free = b->next;
		free(b->iov.iov_base);
		free(b);
	}
	free(l->lat);
}

/* the neighbour: discard thinft's region, rewrite it, again */
static struct vlun_vdisk *nb_vd;
static atomic_bool nb_stop;
static uint64_t nb_rounds;

static void *neighbour_main(void *arg)
{
	struct lane *l = arg;

	while (!atomic_load(&nb_stop)) {
		if (submit(l, nb_vd, VLUN_OP_UNMAP, 0, REGION, 1) < 0 || drain(l) < 0)
			break;
		for (uint64_t off = 0; off < REGION && !atomic_load(&nb_stop); off += CHUNK)
			if (submit(l, nb_vd, VLUN_OP_WRITE, off, CHUNK, 8) < 0)
				break;
		if (drain(l) < 0)
			break;
		nb_rounds++;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t parse_u64(int argc, char **argv, const char *name, uint64_t def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0) {
			char *end = NULL;
			errno = 0;
			unsigned long long v = strtoull(argv[i + 1], &end, 10);
			if (errno || !end || *end || v == 0) {
				fprintf(stderr, "bench_vdisk_write: %s wants a positive integer, not '%s'\n", name,
					argv[i + 1]);
				exit(2);
			}
			return v;
		}
	return def;
}

static bool has_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

__attribute__((noinline)) static int bench_region_writes(struct lane *l, struct vlun_vdisk *vd, uint64_t ops,
							 uint64_t bs, unsigned qd, uint64_t *seed)
{
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t off = (bench_rand(seed) % (REGION / bs)) * bs;
		if (submit(l, vd, VLUN_OP_WRITE, off, bs, qd) < 0)
			return -1;
	}
	return drain(l);
}

int main(int argc, char **argv)
{
	uint64_t ops = bench_ops_arg(argc, argv, 100000), seed = 42;
	const char *only = bench_only_arg(argc, argv);
	uint64_t bs = parse_u64(argc, argv, "--bs", 4096);
	unsigned qd = (unsigned)parse_u64(argc, argv, "--qd", 32);
	bool buffered = has_flag(argc, argv, "--buffered"), neighbour = has_flag(argc, argv, "--neighbour");
	bool mirror = has_flag(argc, argv, "--mirror");
	char dir[PATH_MAX], path[2][PATH_MAX + 32] = { "", "" }, *paths[2], *why = NULL;
	struct vlun_pool_create_opts po = { .name = "benchpool", .meta_bytes = 16ull << 20 };
	static const char *const names[] = { "linear", "thin", "thinft" };
	struct vlun_pool *pool = NULL;
	struct vlun_vdisk *vds[3] = { NULL };
	struct lane lane, nbl;
	pthread_t nbt;
	bool nb_running = false;
	int r, rc = 1;

	if (bs % 512 || bs > CHUNK || REGION % bs || qd > QD_MAX) {
		fprintf(stderr, "bench_vdisk_write: --bs must be a multiple of 512 dividing 1 MiB, --qd <= %u\n",
			QD_MAX);
		return 2;
	}
	memset(&nbl, 0, sizeof(nbl));
	if (lane_init(&lane, QD_MAX, CHUNK) < 0 || lane_init(&nbl, 8, CHUNK) < 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s/vlun-bench-XXXXXX", bench_dir());
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_vdisk_write: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/member%d.img", dir, i);
		paths[i] = path[i];
		int fd = open(path[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)MEMBER) < 0) {
			fprintf(stderr, "bench_vdisk_write: cannot make %s: %s\n", path[i], strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	}
	vlun_set_log(NULL, VLUN_LOG_WARN, NULL);
	if ((r = vlun_pool_create(&po, paths, 2, false, &why)) < 0 ||
	    (r = vlun_pool_open(paths, 2, buffered ? VLUN_OPEN_NO_DIRECT : 0, &pool, &why)) < 0) {
		fprintf(stderr, "bench_vdisk_write: pool in %s: %s\n", dir, why ? why : strerror(-r));
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		struct vlun_vdisk_create_opts vo = {
			.name = names[i], .layout = i ? VLUN_LAYOUT_THIN : VLUN_LAYOUT_LINEAR,
			.size_bytes = VDISK, .chunk_bytes = i ? CHUNK : 0,
		};
		if ((r = vlun_vdisk_create(pool, &vo, &why)) < 0) {
			fprintf(stderr, "bench_vdisk_write: vdisk %s: %s\n", names[i], why ? why : strerror(-r));
			goto out;
		}
	}
	/* --mirror: the linear disk's region gets a second copy, resynced
	 * before the disks open (a write is then two pieces) */
	if (mirror && ((r = vlun_mirror_add(pool, "linear", 0, REGION, NULL, 0, &why)) < 0 ||
		       (r = vlun_jobs_run(pool, NULL, NULL)) < 0)) {
		fprintf(stderr, "bench_vdisk_write: mirror of linear: %s\n", why ? why : strerror(-r));
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if ((r = vlun_vdisk_open(pool, names[i], 0, &vds[i], &why)) < 0) {
			fprintf(stderr, "bench_vdisk_write: vdisk %s: %s\n", names[i], why ? why : strerror(-r));
			goto out;
		}
	/* prefill linear and thin (thin: every chunk of the region allocated) */
	for (int i = 0; i < 2; i++) {
		for (uint64_t off = 0; off < REGION; off += CHUNK)
			if (submit(&lane, vds[i], VLUN_OP_WRITE, off, CHUNK, 8) < 0)
				goto out;
		if (drain(&lane) < 0 || submit(&lane, vds[i], VLUN_OP_FLUSH, 0, 0, 1) < 0 || drain(&lane) < 0)
			goto out;
	}
	if (neighbour) {
		nb_vd = vds[2];
		if (pthread_create(&nbt, NULL, neighbour_main, &nbl) != 0)
			goto out;
		nb_running = true;
	}
	lane.maxlat = ops;
	lane.lat = calloc(ops, sizeof(uint64_t));
	if (!lane.lat)
		goto out;
	for (int i = 0; i < 2; i++) {
		if (!bench_wanted(only, names[i]))
			continue;
		lane.nlat = 0;
		lane.maxlat = 0; /* warm-up: not recorded */
		if (bench_region_writes(&lane, vds[i], ops / 10 + 1, bs, qd, &seed) < 0)
			goto out;
		lane.maxlat = ops;
		uint64_t t0 = bench_wall(), c0 = bench_cpu();
		if (bench_region_writes(&lane, vds[i], ops, bs, qd, &seed) < 0)
			goto out;
		uint64_t c1 = bench_cpu(), t1 = bench_wall();
		qsort(lane.lat, lane.nlat, sizeof(uint64_t), cmp_u64);
		printf("bench=vdisk_write\tmode=%s\top=write\tdisk=%s\tio_bytes=%" PRIu64 "\tqd=%u\tmembers=%s\tneighbour=%d\tmirror=%d\tops=%" PRIu64
		       "\tns_per_op=%.1f\tcpu_ns_per_op=%.1f\tp50_us=%.1f\tp99_us=%.1f\tmax_us=%.1f\tio_backend=%s\n",
		       names[i], names[i], bs, qd, buffered ? "buffered" : "direct", neighbour, mirror, ops,
		       (double)(t1 - t0) / (double)ops, (double)(c1 - c0) / (double)ops,
		       lane.nlat ? (double)lane.lat[lane.nlat / 2] / 1e3 : 0,
		       lane.nlat ? (double)lane.lat[lane.nlat * 99 / 100] / 1e3 : 0,
		       lane.nlat ? (double)lane.lat[lane.nlat - 1] / 1e3 : 0,
		       getenv("VLUN_IO_BACKEND") ? getenv("VLUN_IO_BACKEND") : "auto");
		fflush(stdout);
	}
	rc = 0;
out:
	if (nb_running) {
		atomic_store(&nb_stop, true);
		pthread_join(nbt, NULL);
		fprintf(stderr, "bench_vdisk_write: neighbour rounds (unmap + rewrite of %llu MiB): %llu\n",
			(unsigned long long)(REGION >> 20), (unsigned long long)nb_rounds);
	}
	if (lane.errors || nbl.errors)
		fprintf(stderr, "bench_vdisk_write: %u requests failed\n", lane.errors + nbl.errors);
	for (int i = 0; i < 3; i++)
		vlun_vdisk_close(vds[i]);
	vlun_pool_close(pool);
	lane_free(&lane);
	lane_free(&nbl);
	free(why);
	for (int i = 0; i < 2; i++)
		if (path[i][0])
			unlink(path[i]);
	rmdir(dir);
	return rc;
}
