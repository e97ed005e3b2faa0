/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * snap_crash_sweep — crash-point sweep of the snapshot engine (issue 5).
 *
 * A fixed workload on a pool of member files in /dev/shm: a linear source
 * of 8 chunks, session creates and deletes between writes that need
 * copies (first writes after a create), a write through a writable
 * snapshot. Every metadata write/flush (blkdev.c) and every write the
 * snapshot engine makes to its reserve (slot copy, table block, header,
 * strip; snap.c res_write) is a crash point. For each point k (modes exit
 * and tear) a child runs the workload armed at k and records in shared
 * memory which step it began and which it completed; the parent then
 * reopens the pool and checks: every session whose create completed (and
 * whose delete did not begin) exists, none whose delete completed does, a
 * session whose create was interrupted may exist; every existing session
 * reads exactly its recorded image (the source at its creation, plus its
 * own acknowledged snapshot writes); the source holds every completed
 * write (an interrupted one: each byte old or new). Then the surviving
 * pool takes one more copy-on-write and still verifies.
 * Usage: snap_crash_sweep [--mode exit|tear] [--every K] [-v]. Exit 0 =
 * no failures, 1 = failures, 77 = skipped. Prints the point count.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blkdev.h"
#include "../sync_io.h"
#include "../sync_io.h"
#include "vlun.h"

#define CB (64u << 10)
#define NCH 8u
#define SZ (NCH * CB)

enum { S_WRITE, S_CREATE, S_DELETE, S_VWRITE };
struct step {
	int op;
	const char *name;   /* session */
	uint32_t off, len;  /* write */
};
static const struct step steps[] = {
	{ S_WRITE, NULL, 0, SZ },
	{ S_CREATE, "a", 0, 0 },
	{ S_WRITE, NULL, 0, 4096 },
	{ S_WRITE, NULL, 2 * CB + 512, CB },
	{ S_CREATE, "b", 0, 0 },
	{ S_WRITE, NULL, 0, 2 * CB },
	{ S_VWRITE, "b", CB + 4096, 8192 },
	{ S_DELETE, "a", 0, 0 },
	{ S_WRITE, NULL, 4 * CB, 1024 },
	{ S_CREATE, "c", 0, 0 },
	{ S_WRITE, NULL, 3 * CB, 2 * CB },
	{ S_DELETE, "b", 0, 0 },
	{ S_WRITE, NULL, 7 * CB, 512 },
};
#define NSTEPS (int)(sizeof(steps) / sizeof(steps[0]))

struct shared {
	volatile int begun, done;
};

static char dir[256], *paths[2];
static bool verbose;

static uint8_t pat(int step, uint64_t i)
{
	return (uint8_t)(step * 31 + i * 7 + (i >> 9) * 13 + 1);
}

static void fill(uint8_t *b, int step, uint64_t off, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		b[i] = pat(step, off + i);
}

/* The reference: source and per-session images after steps [0, n). */
struct model {
	uint8_t src[SZ];
	uint8_t img[3][SZ];
	bool exists[3];
};

static int sidx(const char *n)
{
	return n[0] - 'a';
}

static void model_apply(struct model *m, int k)
{
	const struct step *s = &steps[k];
	switch (s->op) {
	case S_WRITE:
		fill(m->src + s->off, k, s->off, s->len);
		break;
	case S_CREATE:
		memcpy(m->img[sidx(s->name)], m->src, SZ);
		m->exists[sidx(s->name)] = true;
		break;
	case S_DELETE:
		m->exists[sidx(s->name)] = false;
		break;
	case S_VWRITE:
		fill(m->img[sidx(s->name)] + s->off, k, s->off, s->len);
		break;
	}
}

static void model_at(struct model *m, int n)
{
	memset(m, 0, sizeof(*m));
	for (int k = 0; k < n; k++)
		model_apply(m, k);
}

static int setup_pool(void)
{
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, 16 << 20) < 0)
			return -1;
		close(fd);
	}
	struct vlun_pool_create_opts o = { .name = "snapcrash", .meta_bytes = 1 << 20 };
	if (vlun_pool_create(&o, paths, 2, true, NULL) < 0)
		return -1;
	struct vlun_pool *p = NULL;
	if (vlun_pool_open(paths, 2, VLUN_OPEN_NO_DIRECT, &p, NULL) < 0)
		return -1;
	struct vlun_vdisk_create_opts vo = { .name = "src", .layout = VLUN_LAYOUT_LINEAR, .size_bytes = SZ };
	int r = vlun_vdisk_create(p, &vo, NULL);
	vlun_pool_close(p);
	return r;
}

/* The workload (child). */
static int workload(struct shared *sh)
{
	struct vlun_pool *p = NULL;
	char *why = NULL;
	if (vlun_pool_open(paths, 2, VLUN_OPEN_NO_DIRECT, &p, &why) < 0) {
		fprintf(stderr, "workload: open: %s\n", why);
		return 2;
	}
	struct vlun_vdisk *vd = NULL;
	if (vlun_vdisk_open(p, "src", 0, &vd, &why) < 0)
		return 2;
	static uint8_t buf[SZ];
	for (int k = 0; k < NSTEPS; k++) {
		const struct step *s = &steps[k];
		sh->begun = k;
		int r = 0;
		if (s->op == S_WRITE) {
			fill(buf, k, s->off, s->len);
			r = sync_io(vd, VLUN_OP_WRITE, 0, s->off, buf, s->len);
		} else if (s->op == S_CREATE) {
			struct vlun_snapshot_create_opts o = { .source = "src", .name = s->name,
							       .reserve_bytes = k == 1 ? 4u << 20 : 0, .chunk_bytes = CB,
							       .full_policy = -1 };
			r = vlun_snapshot_create(p, &o, &why);
		} else if (s->op == S_DELETE) {
			r = vlun_snapshot_delete(p, "src", s->name, &why);
		} else {
			char n[16];
			snprintf(n, sizeof(n), "src@%s", s->name);
			struct vlun_vdisk *v = NULL;
			r = vlun_vdisk_open(p, n, VLUN_VDISK_OPEN_WRITABLE, &v, &why);
			if (r == 0) {
				fill(buf, k, s->off, s->len);
				r = sync_io(v, VLUN_OP_WRITE, 0, s->off, buf, s->len);
				vlun_vdisk_close(v);
			}
		}
		if (r != 0) {
			fprintf(stderr, "workload: step %d failed: %d (%s)\n", k, r, why ? why : "");
			return 3;
		}
		sh->done = k + 1;
	}
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	return 0;
}

static int check_bytes(const uint8_t *got, const uint8_t *a, const uint8_t *b, const char *what)
{
	for (uint64_t i = 0; i < SZ; i++)
		if (got[i] != a[i] && (!b || got[i] != b[i])) {
			fprintf(stderr, "  %s: byte %llu is 0x%02x, want 0x%02x%s\n", what, (unsigned long long)i, got[i],
				a[i], b ? " or the interrupted write's" : "");
			return 1;
		}
	return 0;
}

static int verify(struct shared *sh, int point)
{
	static struct model m0, m1;
	int done = sh->done, begun = sh->begun;
	model_at(&m0, done);
	model_at(&m1, begun + 1 > done ? begun + 1 : done);
	bool inflight = begun >= done;
	struct vlun_pool *p = NULL;
	char *why = NULL;
	/* the workload's io_uring may hold the members' lock a moment after
	 * it exited, as after a kill of tcmu-runner */
	if (vlun_pool_open(paths, 2, VLUN_OPEN_NO_DIRECT | VLUN_OPEN_WAIT_LOCK, &p, &why) < 0) {
		fprintf(stderr, "point %d: pool does not open: %s\n", point, why);
		return 1;
	}
	int bad = 0;
	static uint8_t got[SZ];
	struct vlun_snapshot_info *inf = NULL;
	size_t n = 0;
	if (vlun_snapshot_list(p, "src", &inf, &n) < 0)
		bad = 1;
	for (int s = 0; s < 3 && !bad; s++) {
		bool present = false;
		for (size_t i = 0; i < n; i++)
			present |= inf[i].d.name[0] == 'a' + s && inf[i].d.name[1] == 0;
		bool may_differ = inflight && steps[begun].name && sidx(steps[begun].name) == s &&
				  steps[begun].op != S_VWRITE;
		if (present != m0.exists[s] && !(may_differ && present == m1.exists[s])) {
			fprintf(stderr, "point %d (step %d/%d): session %c %s\n", point, begun, done, 'a' + s,
				present ? "exists but must not" : "is missing");
			bad = 1;
			break;
		}
		if (!present)
			continue;
		char name[16];
		snprintf(name, sizeof(name), "src@%c", 'a' + s);
		struct vlun_vdisk *v = NULL;
		if (vlun_vdisk_open(p, name, 0, &v, &why) < 0 || sync_io(v, VLUN_OP_READ, 0, 0, got, SZ) != 0) {
			fprintf(stderr, "point %d: cannot read %s: %s\n", point, name, why ? why : "");
			bad = 1;
			break;
		}
		vlun_vdisk_close(v);
		const uint8_t *alt = inflight && steps[begun].op != S_WRITE ? m1.img[s] : NULL;
		char what[64];
		snprintf(what, sizeof(what), "point %d (step %d/%d) session %c", point, begun, done, 'a' + s);
		bad |= check_bytes(got, m0.exists[s] ? m0.img[s] : m1.img[s], alt, what);
	}
	free(inf);
	struct vlun_vdisk *vd = NULL;
	if (!bad && (vlun_vdisk_open(p, "src", 0, &vd, &why) < 0 || sync_io(vd, VLUN_OP_READ, 0, 0, got, SZ) != 0)) {
		fprintf(stderr, "point %d: cannot read the source: %s\n", point, why ? why : "");
		bad = 1;
	}
	if (!bad) {
		char what[64];
		snprintf(what, sizeof(what), "point %d (step %d/%d) source", point, begun, done);
		bad |= check_bytes(got, m0.src, inflight ? m1.src : NULL, what);
		/* the surviving pool still copies on write */
		static uint8_t w[4096];
		memset(w, 0xee, sizeof(w));
		if (!bad && sync_io(vd, VLUN_OP_WRITE, 0, 6 * CB, w, sizeof(w)) != 0) {
			fprintf(stderr, "point %d: write after reopen failed\n", point);
			bad = 1;
		}
	}
	if (vd)
		vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(why);
	if (verbose)
		fprintf(stderr, "point %d: step %d begun, %d done: %s\n", point, begun, done, bad ? "FAIL" : "ok");
	return bad;
}

int main(int argc, char **argv)
{
	enum vlun_crash_mode mode = VLUN_CRASH_EXIT;
	int every = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			i++;
			mode = !strcmp(argv[i], "tear") ? VLUN_CRASH_TEAR : VLUN_CRASH_EXIT;
		} else if (!strcmp(argv[i], "--every") && i + 1 < argc) {
			every = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "-v")) {
			verbose = true;
		}
	}
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/snapcrash.XXXXXX", base);
	if (!mkdtemp(dir))
		return 77;
	for (int i = 0; i < 2; i++)
		if (asprintf(&paths[i], "%s/m%d", dir, i) < 0)
			return 1;
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;

	/* enumeration: how many points the workload passes */
	if (setup_pool() < 0)
		return 77;
	uint64_t before = vlun_crash_points();
	pid_t pid = fork();
	if (pid == 0) {
		int r = workload(sh);
		printf("%llu\n", (unsigned long long)(vlun_crash_points() - before));
		_exit(r);
	}
	int wst;
	waitpid(pid, &wst, 0);
	if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0 || sh->done != NSTEPS) {
		fprintf(stderr, "the workload itself fails (status %d)\n", wst);
		return 1;
	}
	int fails = 0, points = 0, fired = 0;
	for (int k = 1;; k += every) {
		if (setup_pool() < 0)
			return 1;
		sh->begun = sh->done = 0;
		pid = fork();
		if (pid == 0) {
			vlun_crash_arm((uint64_t)k, mode);
			_exit(workload(sh));
		}
		waitpid(pid, &wst, 0);
		if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0)
			break; /* past the last point */
		if (!WIFEXITED(wst) || WEXITSTATUS(wst) != VLUN_CRASH_EXIT_CODE) {
			fprintf(stderr, "point %d: workload ended with status %d\n", k, wst);
			fails++;
			continue;
		}
		points++;
		fired++;
		fails += verify(sh, k);
	}
	printf("snap crash sweep (%s): %d points crashed, %d failures\n", mode == VLUN_CRASH_TEAR ? "tear" : "exit",
	       points, fails);
	for (int i = 0; i < 2; i++)
		unlink(paths[i]);
	rmdir(dir);
	return fails ? 1 : 0;
}
