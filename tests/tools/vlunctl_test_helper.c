/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_test_helper — what the vlunctl tests need from the library
 * besides vlunctl itself:
 *
 *   vlunctl_test_helper hold <ready-file> <pool-spec> [<vdisk>...]
 *       opens the pool the way the handler does (with the pool lock, so it
 *       also serves the pool's control channel), opens the vdisks for I/O,
 *       then creates <ready-file> and waits until it is killed (SIGTERM).
 *   vlunctl_test_helper busy <ready-file> <pool-spec> <vdisk>...
 *       like hold, and does I/O on the first vdisk: 32 writes and 32 reads
 *       of 4 KiB and a flush before <ready-file> exists, then a write and a
 *       read every 10 ms until killed (for vlunctl stats).
 *   vlunctl_test_helper lock <ready-file> <member>...
 *       takes the pool lock on the members the way the handler does but
 *       serves no control channel (like a holder running an older vlun, or
 *       on another host), creates <ready-file> and waits for SIGTERM.
 *   vlunctl_test_helper write <pool-spec> <vdisk> <offset> <length> [<seed>]
 *       writes <length> bytes (a pattern) at <offset> of the vdisk, flushes,
 *       and exits 0 when all completed OK (allocates thin chunks). Without
 *       <seed> every byte is 0xa5; with it, each 8-byte word depends on the
 *       seed and its offset in the vdisk (data that moved shows).
 *   vlunctl_test_helper read <pool-spec> <vdisk> [<offset> <length>]
 *       reads the vdisk (or the range) and writes it to stdout.
 *
 * Exit: 0 ok, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vlun.h"

static int open_pool(const char *spec, unsigned flags, struct vlun_pool **ret)
{
	char **paths = NULL, *reason = NULL;
	size_t n = 0;
	int r;

	r = vlun_pool_spec_expand(spec, &paths, &n, &reason);
	if (r < 0) {
		fprintf(stderr, "helper: pool spec '%s': %s\n", spec, reason ? reason : strerror(-r));
		free(reason);
		return r;
	}
	r = vlun_pool_open(paths, n, flags, ret, &reason);
	if (r < 0)
		fprintf(stderr, "helper: opening pool '%s': %s\n", spec, reason ? reason : strerror(-r));
	free(reason);
	vlun_strv_free(paths, n);
	return r;
}

struct busy {
	struct vlun_vdisk *vd;
	atomic_bool stop;
	int failed;
};
static int do_io(struct vlun_vdisk *vd, unsigned n);
static void *busy_loop(void *arg)
{
	struct busy *b = arg;
	struct timespec ts = { .tv_nsec = 10000000 };

	while (!atomic_load(&b->stop)) {
		if (do_io(b->vd, 1) < 0)
			b->failed++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int hold(const char *ready, const char *spec, char **vdisks, int nvdisks, bool busy)
{
	struct busy bz = { .vd = NULL };
	pthread_t busy_thread;
	bool busy_started = false;
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vds[16] = { NULL };
	char *reason = NULL;
	sigset_t set;
	int sig, fd, r;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (nvdisks > 16) {
		fprintf(stderr, "helper: at most 16 vdisks\n");
		return 2;
	}
	if (open_pool(spec, 0, &p) < 0)
		return 1;
	for (int i = 0; i < nvdisks; i++) {
		r = vlun_vdisk_open(p, vdisks[i], 0, &vds[i], &reason);
		if (r < 0) {
			fprintf(stderr, "helper: opening vdisk '%s': %s\n", vdisks[i], reason ? reason : strerror(-r));
			free(reason);
			goto fail;
		}
	}
	if (busy) {
		bz.vd = vds[0];
		r = do_io(vds[0], 32);
		if (r < 0) {
			fprintf(stderr, "helper: I/O on vdisk '%s': %s\n", vdisks[0], strerror(-r));
			goto fail;
		}
		if (pthread_create(&busy_thread, NULL, busy_loop, &bz) != 0)
			goto fail;
		busy_started = true;
	}
	fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "helper: creating '%s': %m\n", ready);
		goto fail;
	}
	close(fd);
	sigwait(&set, &sig);
	if (busy_started) {
		atomic_store(&bz.stop, true);
		pthread_join(busy_thread, NULL);
	}
	for (int i = 0; i < nvdisks; i++)
		vlun_vdisk_close(vds[i]);
	vlun_pool_close(p);
	return bz.failed ? 1 : 0;
fail:
	if (busy_started) {
		atomic_store(&bz.stop, true);
		pthread_join(busy_thread, NULL);
	}
	for (int i = 0; i < nvdisks; i++)
		vlun_vdisk_close(vds[i]);
	vlun_pool_close(p);
	return 1;
}

static int lock_only(const char *ready, char **members, int n)
{
	sigset_t set;
	int sig, fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < n; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 4096 };

		fd = open(members[i], O_RDWR | O_CLOEXEC);
		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0) {
			fprintf(stderr, "helper: locking '%s': %m\n", members[i]);
			return 1;
		}
		/* kept open: the lock lives as long as the descriptor */
	}
	fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "helper: creating '%s': %m\n", ready);
		return 1;
	}
	close(fd);
	sigwait(&set, &sig);
	return 0;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;
	int failed;
};

static void req_done(struct vlun_req *req, enum vlun_status st)
{
	struct waiter *w = req->priv;

	pthread_mutex_lock(&w->lock);
	if (st != VLUN_OK)
		w->failed++;
	w->pending--;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int run_req(struct vlun_vdisk *vd, struct waiter *w, struct vlun_req *req)
{
	int r;

	w->pending = 1;
	w->failed = 0;
	req->done = req_done;
	req->priv = w;
	r = vlun_vdisk_submit(vd, req);
	if (r < 0)
		return r;
	pthread_mutex_lock(&w->lock);
	while (w->pending > 0)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return w->failed ? -EIO : 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

/* n writes and n reads of 4 KiB at the start of vd, then a flush. */
static int do_io(struct vlun_vdisk *vd, unsigned n)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct vlun_req req;
	struct iovec iov;
	void *buf = NULL;
	int r = 0;

	if (posix_memalign(&buf, 4096, 4096) != 0)
		return -ENOMEM;
	memset(buf, 0x5a, 4096);
	iov.iov_base = buf;
	iov.iov_len = 4096;
	for (unsigned i = 0; i < 2 * n && r == 0; i++) {
		memset(&req, 0, sizeof(req));
		req.op = i < n ? VLUN_OP_WRITE : VLUN_OP_READ;
		req.offset = (uint64_t)(i % n) * 4096;
		req.length = 4096;
		req.iov = &iov;
		req.iovcnt = 1;
		r = run_req(vd, &w, &req);
	}
	if (r == 0) {
		memset(&req, 0, sizeof(req));
		req.op = VLUN_OP_FLUSH;
		r = run_req(vd, &w, &req);
	}
	free(buf);
	return r;
}

/* The seeded pattern: word at vdisk offset a = mix(seed, a). */
static void fill_seeded(uint8_t *buf, uint64_t off, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i + 8 <= len; i += 8) {
		uint64_t z = seed * 0x9e3779b97f4a7c15ull ^ (off + i);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(buf + i, &z, 8);
	}
}

static int write_range(const char *spec, const char *name, const char *off_s, const char *len_s,
		       const char *seed_s)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	struct vlun_req req;
	struct iovec iov;
	uint64_t off, len, seed = 0;
	char *reason = NULL;
	void *buf = NULL;
	int r, ret = 1;

	if (seed_s && parse_u64(seed_s, &seed) < 0) {
		fprintf(stderr, "helper: bad seed '%s'\n", seed_s);
		return 2;
	}
	if (parse_u64(off_s, &off) < 0 || parse_u64(len_s, &len) < 0 || len == 0 || len > (64u << 20)) {
		fprintf(stderr, "helper: bad offset/length '%s' '%s'\n", off_s, len_s);
		return 2;
	}
	if (open_pool(spec, 0, &p) < 0)
		return 1;
	r = vlun_vdisk_open(p, name, 0, &vd, &reason);
	if (r < 0) {
		fprintf(stderr, "helper: opening vdisk '%s': %s\n", name, reason ? reason : strerror(-r));
		goto out;
	}
	if (posix_memalign(&buf, 4096, len) != 0)
		goto out;
	if (seed_s)
		fill_seeded(buf, off, len, seed);
	else
		memset(buf, 0xa5, len);
	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&req, 0, sizeof(req));
	req.op = VLUN_OP_WRITE;
	req.offset = off;
	req.length = len;
	req.iov = &iov;
	req.iovcnt = 1;
	r = run_req(vd, &w, &req);
	if (r < 0) {
		fprintf(stderr, "helper: write %s+%s: %s\n", off_s, len_s, strerror(-r));
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.op = VLUN_OP_FLUSH;
	r = run_req(vd, &w, &req);
	if (r < 0) {
		fprintf(stderr, "helper: flush: %s\n", strerror(-r));
		goto out;
	}
	ret = 0;
out:
	free(buf);
	free(reason);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	return ret;
}

/* The vdisk's bytes [off, off+len) (len 0: to the end) to stdout. */
static int read_range(const char *spec, const char *name, const char *off_s, const char *len_s)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	const uint64_t step = 1u << 20;
	uint64_t off = 0, len = 0;
	char *reason = NULL;
	void *buf = NULL;
	int r, ret = 1;

	if ((off_s && parse_u64(off_s, &off) < 0) || (len_s && parse_u64(len_s, &len) < 0)) {
		fprintf(stderr, "helper: bad offset/length '%s' '%s'\n", off_s, len_s);
		return 2;
	}
	if (open_pool(spec, 0, &p) < 0)
		return 1;
	r = vlun_vdisk_open(p, name, 0, &vd, &reason);
	if (r < 0) {
		fprintf(stderr, "helper: opening vdisk '%s': %s\n", name, reason ? reason : strerror(-r));
		goto out;
	}
	if (len == 0)
		len = off < vlun_vdisk_size(vd) ? vlun_vdisk_size(vd) - off : 0;
	if (posix_memalign(&buf, 4096, step) != 0)
		goto out;
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < step ? len - done : step;
		struct vlun_req req;
		struct iovec iov = { .iov_base = buf, .iov_len = n };

		memset(&req, 0, sizeof(req));
		req.op = VLUN_OP_READ;
		req.offset = off + done;
		req.length = n;
		req.iov = &iov;
		req.iovcnt = 1;
		r = run_req(vd, &w, &req);
		if (r < 0) {
			fprintf(stderr, "helper: read at %llu: %s\n", (unsigned long long)(off + done), strerror(-r));
			goto out;
		}
		if (fwrite(buf, 1, n, stdout) != n) {
			fprintf(stderr, "helper: writing stdout: %m\n");
			goto out;
		}
		done += n;
	}
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	free(buf);
	free(reason);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "hold") == 0)
		return hold(argv[2], argv[3], argv + 4, argc - 4, false);
	if (argc >= 5 && strcmp(argv[1], "busy") == 0)
		return hold(argv[2], argv[3], argv + 4, argc - 4, true);
	if (argc >= 4 && strcmp(argv[1], "lock") == 0)
		return lock_only(argv[2], argv + 3, argc - 3);
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "write") == 0)
		return write_range(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
	if ((argc == 4 || argc == 6) && strcmp(argv[1], "read") == 0)
		return read_range(argv[2], argv[3], argc == 6 ? argv[4] : NULL, argc == 6 ? argv[5] : NULL);
	fprintf(stderr, "usage: %s hold <ready-file> <pool-spec> [<vdisk>...] | busy <ready-file> <pool-spec> <vdisk>... | lock <ready-file> <member>... | write <pool-spec> <vdisk> <offset> <length> [<seed>] | read <pool-spec> <vdisk> [<offset> <length>]\n",
		argv[0]);
	return 2;
}
