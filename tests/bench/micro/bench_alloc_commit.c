/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench_alloc_commit — thin allocation and metadata commit rate through
 * vlun_vdisk_submit (libvlun only, no handler).
 *
 * A pool of one member file in tmpfs ($VLUN_BENCH_DIR, default /dev/shm),
 * a thin vdisk with 64 KiB chunks. Every write is 4 KiB to a chunk never
 * written before (first touch: the controller allocates the chunk, zeroes
 * the rest, publishes the map entry, records a metadata delta).
 *   qd32_flush_end   ops first-touch writes, 32 in flight, then one FLUSH
 *                    (one group commit): ns per allocation
 *   qd1_flush_each   write + FLUSH, one at a time: ns per allocation that
 *                    is durable before the next starts (a commit each)
 *   qd32_overwrite   the same chunks written again (allocated: fast path
 *                    only), for comparison
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench.h"
#include "vlun.h"

#define BS 4096u
#define CHUNK (64u << 10)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned inflight, errors;

struct breq {
	struct vlun_req req;
	struct iovec iov;
	struct breq *next;
};
static struct breq *free_reqs;

static void done_cb(struct vlun_req *req, enum vlun_status st)
{
	struct breq *b = req->priv;

	pthread_mutex_lock(&lock);
	if (st != VLUN_OK)
		errors++;
	b->next = free_reqs;
	free_reqs = b;
	inflight--;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static int submit(struct vlun_vdisk *vd, uint32_t op, uint64_t off, unsigned qd)
{
	struct breq *b;

	pthread_mutex_lock(&lock);
	while (inflight >= qd)
		pthread_cond_wait(&cond, &lock);
	b = free_reqs;
	free_reqs = b->next;
	inflight++;
	pthread_mutex_unlock(&lock);
	b->req = (struct vlun_req){
		.op = op, .offset = off, .length = op == VLUN_OP_FLUSH ? 0 : BS,
		.iov = op == VLUN_OP_FLUSH ? NULL : &b->iov, .iovcnt = op == VLUN_OP_FLUSH ? 0 : 1,
		.done = done_cb, .priv = b,
	};
	return vlun_vdisk_submit(vd, &b->req);
}

static int drain(void)
{
	pthread_mutex_lock(&lock);
	while (inflight)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return errors ? -1 : 0;
}

/* chunk k of the permutation: distinct chunks in a scattered order */
static uint64_t chunk_off(uint64_t base, uint64_t k, uint64_t nchunks)
{
	return base + ((k * 2654435761ull) % nchunks) * CHUNK;
}

__attribute__((noinline)) static int bench_region_alloc(struct vlun_vdisk *vd, uint64_t base,
							uint64_t ops, unsigned qd, bool flush_each)
{
	for (uint64_t k = 0; k < ops; k++) {
		if (submit(vd, VLUN_OP_WRITE, chunk_off(base, k, ops), qd) < 0)
			return -1;
		if (flush_each && (drain() < 0 || submit(vd, VLUN_OP_FLUSH, 0, 1) < 0 || drain() < 0))
			return -1;
	}
	if (drain() < 0 || submit(vd, VLUN_OP_FLUSH, 0, 1) < 0)
		return -1;
	return drain();
}

static void report(const char *mode, uint64_t ops, uint64_t wall, uint64_t cpu)
{
	printf("bench=alloc_commit\tmode=%s\tchunk_bytes=%u\tops=%" PRIu64 "\tns_per_op=%.1f\tcpu_ns_per_op=%.1f\tops_per_s=%.0f\n",
	       mode, CHUNK, ops, (double)wall / (double)ops, (double)cpu / (double)ops,
	       (double)ops * 1e9 / (double)wall);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t ops = bench_ops_arg(argc, argv, 4096);
	const char *only = bench_only_arg(argc, argv);
	uint64_t n1 = ops, n2 = ops / 8 + 1;
	uint64_t vbytes = (n1 + n2 + 16) * CHUNK;
	char dir[PATH_MAX], path[PATH_MAX + 32], *paths[1], *why = NULL;
	struct vlun_pool_create_opts po = { .name = "benchpool", .meta_bytes = 16ull << 20 };
	struct vlun_vdisk_create_opts vo = {
		.name = "thin", .layout = VLUN_LAYOUT_THIN, .size_bytes = vbytes, .chunk_bytes = CHUNK,
	};
	struct vlun_pool *pool = NULL;
	struct vlun_vdisk *vd = NULL;
	struct breq reqs[32];
	uint8_t *buf = NULL;
	uint64_t t0, c0;
	int fd, r, rc = 1;

	snprintf(dir, sizeof(dir), "%s/vlun-bench-XXXXXX", bench_dir());
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_alloc_commit: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/member0.img", dir);
	paths[0] = path;
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(vbytes + (64ull << 20))) < 0) {
		fprintf(stderr, "bench_alloc_commit: cannot make %s: %s\n", path, strerror(errno));
		goto out;
	}
	close(fd);
	vlun_set_log(NULL, VLUN_LOG_WARN, NULL);
	if ((r = vlun_pool_create(&po, paths, 1, false, &why)) < 0 ||
	    (r = vlun_pool_open(paths, 1, 0, &pool, &why)) < 0 ||
	    (r = vlun_vdisk_create(pool, &vo, &why)) < 0 ||
	    (r = vlun_vdisk_open(pool, "thin", 0, &vd, &why)) < 0) {
		fprintf(stderr, "bench_alloc_commit: pool/vdisk in %s: %s\n", dir, why ? why : strerror(-r));
		goto out;
	}
	if (posix_memalign((void **)&buf, 4096, BS))
		goto out;
	memset(buf, 0xa5, BS);
	for (unsigned i = 0; i < 32; i++) {
		reqs[i].iov = (struct iovec){ .iov_base = buf, .iov_len = BS };
		reqs[i].next = free_reqs;
		free_reqs = &reqs[i];
	}

	if (bench_wanted(only, "qd32_flush_end")) {
		t0 = bench_wall();
		c0 = bench_cpu();
		if (bench_region_alloc(vd, 0, n1, 32, false) < 0)
			goto out;
		report("qd32_flush_end", n1, bench_wall() - t0, bench_cpu() - c0);
	}
	if (bench_wanted(only, "qd1_flush_each")) {
		t0 = bench_wall();
		c0 = bench_cpu();
		if (bench_region_alloc(vd, (n1 + 8) * CHUNK, n2, 1, true) < 0)
			goto out;
		report("qd1_flush_each", n2, bench_wall() - t0, bench_cpu() - c0);
	}
	if (bench_wanted(only, "qd32_overwrite")) {
		t0 = bench_wall();
		c0 = bench_cpu();
		if (bench_region_alloc(vd, 0, n1, 32, false) < 0)
			goto out;
		report("qd32_overwrite", n1, bench_wall() - t0, bench_cpu() - c0);
	}
	rc = 0;
out:
	if (errors)
		fprintf(stderr, "bench_alloc_commit: %u requests failed\n", errors);
	vlun_vdisk_close(vd);
	vlun_pool_close(pool);
	free(buf);
	free(why);
	unlink(path);
	rmdir(dir);
	return rc;
}
