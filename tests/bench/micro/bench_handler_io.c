/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench_handler_io — what handler_vlun.so + libvlun cost per 4 KiB command,
 * next to raw preadv/pwritev on the same member file.
 *
 * The handler is loaded by the fake runner (tests/handler/fake_runner.c,
 * which provides the runner's exported symbols); commands go straight to
 * its read/write callouts as tcmu-runner's generic path would send them
 * (a tcmur_cmd with a READ(10)/WRITE(10) CDB, one iovec) and complete
 * through tcmur_cmd_complete on the engine's threads. The pool is one
 * member file in tmpfs ($VLUN_BENCH_DIR, default /dev/shm), a linear
 * vdisk, 64 MiB region written once before measuring.
 *
 * Cases (4 KiB, random offsets in the region):
 *   raw      preadv/pwritev on the member file, one thread, in a loop
 *   qd1      one command in flight: submit, wait for its completion
 *   qd32     32 commands in flight (a new one as each completes)
 * ns_per_op is wall time / ops; cpu_ns_per_op is the CPU time of all the
 * process's threads (the engine's included) / ops; overhead_* subtract raw.
 * VLUN_IO_BACKEND selects the engine's I/O backend (uring, threads).
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/uio.h>

#include "bench.h"
#include "fake_runner.h"
#include "vlun.h"

#define BS 4096u
#define REGION (64ull << 20)
#define VDISK (256ull << 20)
#define QD_MAX 32

struct bcmd {
	struct tcmur_cmd r;
	struct tcmulib_cmd lc;
	uint8_t cdb[16];
	struct iovec iov;
	struct iovec liov;
	uint8_t *buf;
	int sts;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned inflight, errors;
static struct bcmd *free_cmds[QD_MAX];
static unsigned nfree;

static void done_cb(struct tcmu_device *dev, struct tcmur_cmd *r, int rc)
{
	struct bcmd *c = (struct bcmd *)r;

	(void)dev;
	pthread_mutex_lock(&lock);
	if (rc != TCMU_STS_OK)
		errors++;
	free_cmds[nfree++] = c;
	inflight--;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static int start(struct tcmu_device *dev, struct bcmd *c, bool write, uint64_t off, uint32_t len)
{
	struct tcmur_handler *h = fr_handler();
	int rc;

	memset(c->cdb, 0, sizeof(c->cdb));
	c->cdb[0] = write ? 0x2a : 0x28;
	put_be(&c->cdb[2], off / 512, 4);
	put_be(&c->cdb[7], len / 512, 2);
	c->iov.iov_base = c->buf;
	c->iov.iov_len = len;
	c->liov = c->iov;
	memset(&c->r, 0, sizeof(c->r));
	c->lc.cdb = c->cdb;
	c->lc.iovec = &c->liov;
	c->lc.iov_cnt = 1;
	c->r.lib_cmd = &c->lc;
	c->r.done = done_cb;
	rc = write ? h->write(dev, &c->r, &c->iov, 1, len, (off_t)off)
		   : h->read(dev, &c->r, &c->iov, 1, len, (off_t)off);
	return rc;
}

/* keeps qd commands in flight until ops completed */
__attribute__((noinline)) static int bench_region_handler(struct tcmu_device *dev, unsigned qd,
							  bool write, uint64_t ops, uint64_t *seed)
{
	for (uint64_t i = 0; i < ops; i++) {
		struct bcmd *c;
		uint64_t off = (bench_rand(seed) % (REGION / BS)) * BS;
		int rc;

		pthread_mutex_lock(&lock);
		while (inflight >= qd)
			pthread_cond_wait(&cond, &lock);
		c = free_cmds[--nfree];
		inflight++;
		pthread_mutex_unlock(&lock);
		rc = start(dev, c, write, off, BS);
		if (rc != TCMU_STS_OK) {
			fprintf(stderr, "bench_handler_io: callout returned %d\n", rc);
			return -1;
		}
	}
	pthread_mutex_lock(&lock);
	while (inflight > 0)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return errors ? -1 : 0;
}

__attribute__((noinline)) static int bench_region_raw(int fd, bool write, uint8_t *buf, uint64_t ops,
						      uint64_t *seed)
{
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t off = (bench_rand(seed) % (REGION / BS)) * BS;
		struct iovec iov = { .iov_base = buf, .iov_len = BS };
		ssize_t n = write ? pwritev(fd, &iov, 1, (off_t)off) : preadv(fd, &iov, 1, (off_t)off);

		if (n != BS)
			return -1;
	}
	return 0;
}

static void report(const char *mode, bool write, uint64_t ops, uint64_t wall, uint64_t cpu,
		   double raw_wall, double raw_cpu)
{
	double w = (double)wall / (double)ops, c = (double)cpu / (double)ops;
	const char *be = getenv("VLUN_IO_BACKEND");

	printf("bench=handler_io\tmode=%s\top=%s\tio_bytes=%u\tops=%" PRIu64 "\tns_per_op=%.1f\tcpu_ns_per_op=%.1f",
	       mode, write ? "write" : "read", BS, ops, w, c);
	if (raw_wall > 0)
		printf("\toverhead_ns_per_op=%.1f\toverhead_cpu_ns_per_op=%.1f", w - raw_wall, c - raw_cpu);
	printf("\tio_backend=%s\n", be && *be ? be : "auto");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t ops = bench_ops_arg(argc, argv, 200000), seed = 42;
	const char *only = bench_only_arg(argc, argv);
	char dir[PATH_MAX], cfg[PATH_MAX + 64], member[PATH_MAX + 32];
	struct bcmd cmds[QD_MAX];
	struct tcmu_device *dev = NULL;
	uint8_t *rawbuf = NULL;
	int fd = -1, rc = 1, r;

	r = fr_load();
	if (r == FR_SKIP)
		return 77;
	if (r < 0)
		return 1;
	setenv("TMPDIR", bench_dir(), 1);
	r = fr_pool_make(dir, 1, VDISK + (64ull << 20), "lin", VLUN_LAYOUT_LINEAR, VDISK, 0);
	if (r < 0) {
		fprintf(stderr, "bench_handler_io: cannot make a pool in %s: %s\n", bench_dir(), strerror(-r));
		return 1;
	}
	snprintf(cfg, sizeof(cfg), "vlun/%s/lin", dir);
	snprintf(member, sizeof(member), "%s/member0.img", dir);
	dev = fr_dev_new(cfg, VDISK / 512, 512);
	if (!dev || fr_dev_open(dev) != 0) {
		fprintf(stderr, "bench_handler_io: the handler did not open %s\n", cfg);
		goto out;
	}
	for (unsigned i = 0; i < QD_MAX; i++) {
		if (posix_memalign((void **)&cmds[i].buf, 4096, 1u << 20))
			goto out;
		memset(cmds[i].buf, 0xa5, 1u << 20);
		free_cmds[nfree++] = &cmds[i];
	}
	if (posix_memalign((void **)&rawbuf, 4096, BS))
		goto out;
	memset(rawbuf, 0x5a, BS);
	/* fill the region once (tmpfs pages exist for raw and handler alike) */
	for (uint64_t off = 0; off < REGION; off += 1u << 20) {
		pthread_mutex_lock(&lock);
		struct bcmd *c = free_cmds[--nfree];
		inflight++;
		pthread_mutex_unlock(&lock);
		if (start(dev, c, true, off, 1u << 20) != TCMU_STS_OK)
			goto out;
		pthread_mutex_lock(&lock);
		while (inflight)
			pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);
	}
	fd = open(member, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bench_handler_io: open %s: %s\n", member, strerror(errno));
		goto out;
	}

	for (int w = 0; w < 2; w++) {
		double raw_wall = 0, raw_cpu = 0;
		uint64_t t0, c0, t1, c1;

		if (bench_wanted(only, "raw")) {
			bench_region_raw(fd, w, rawbuf, ops / 10 + 1, &seed);
			t0 = bench_wall();
			c0 = bench_cpu();
			if (bench_region_raw(fd, w, rawbuf, ops, &seed) < 0)
				goto out;
			c1 = bench_cpu();
			t1 = bench_wall();
			raw_wall = (double)(t1 - t0) / (double)ops;
			raw_cpu = (double)(c1 - c0) / (double)ops;
			report("raw", w, ops, t1 - t0, c1 - c0, 0, 0);
		}
		static const unsigned qds[] = { 1, QD_MAX };
		for (int q = 0; q < 2; q++) {
			const char *mode = qds[q] == 1 ? "qd1" : "qd32";

			if (!bench_wanted(only, mode))
				continue;
			if (bench_region_handler(dev, qds[q], w, ops / 10 + 1, &seed) < 0)
				goto out;
			t0 = bench_wall();
			c0 = bench_cpu();
			if (bench_region_handler(dev, qds[q], w, ops, &seed) < 0)
				goto out;
			c1 = bench_cpu();
			t1 = bench_wall();
			report(mode, w, ops, t1 - t0, c1 - c0, raw_wall, raw_cpu);
		}
	}
	rc = 0;
out:
	if (errors)
		fprintf(stderr, "bench_handler_io: %u commands failed\n", errors);
	if (fd >= 0)
		close(fd);
	if (dev) {
		fr_dev_close(dev);
		fr_dev_free(dev);
	}
	for (unsigned i = 0; i < nfree; i++)
		free(free_cmds[i]->buf);
	free(rawbuf);
	fr_rmrf(dir);
	return rc;
}
