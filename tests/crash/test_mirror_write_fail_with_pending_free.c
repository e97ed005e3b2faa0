/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A write to a mirrored disk whose member fails must complete (on the
 * good copy) even when a free is waiting for the next commit.
 *
 * Found by the mirror crash sweep (crash_harness --mirror --mode fail,
 * seed 1, 30 ops, around point 127; the point numbers move with the job
 * thread's timing): the workload hung for good. The controller thread was
 * in pool_commit_locked -> after_commit_locked -> pool_epoch_drain (frees
 * were pending, so the commit waits for every I/O of the old epoch), and
 * io_active[old] stayed 4: the four mirrored write pieces that had failed
 * on the injected member. Those pieces are handed to the controller
 * (CTL_WFAIL, vdisk.c piece_pio_done) while still counted in their epoch,
 * and only the controller can end them — which waits for them to drain.
 * The job thread then blocks on ctl_lock and every later request hangs.
 *
 * Here: a mirrored linear disk (resynced), a thin disk with one chunk
 * unmapped (the free is pending until the next commit), then the member
 * holding the alternate fails (injected) under a write to the mirrored
 * disk. The write must complete within 20 s. Exit 0 pass, 1 hang/failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sync_io.h"
#include "vlun.h"

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: the write to the mirrored disk did not complete within 20 s after its "
				  "alternate's member failed (controller stuck in pool_epoch_drain?)\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

static bool resynced(struct vlun_pool *p)
{
	struct vlun_pool_desc *d = NULL;
	bool clean = true, mirrored = false;

	if (vlun_pool_describe(p, &d) < 0)
		return false;
	for (uint32_t i = 0; i < d->nvdisks; i++)
		for (uint32_t k = 0; k < d->vdisks[i].nextents; k++) {
			mirrored |= (d->vdisks[i].extents[k].flags & VLUN_EXT_ALT_EXISTS) != 0;
			clean &= !(d->vdisks[i].extents[k].flags & VLUN_EXT_ALT_DIRTY);
		}
	vlun_pool_desc_free(d);
	return mirrored && clean;
}

int main(void)
{
	const char *v = getenv("VLUN_UNDER_VALGRIND");
	char dir[] = "/tmp/vlun-mwf-XXXXXX", *paths[2];
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *m = NULL, *t = NULL;
	char *why = NULL;
	uint8_t *buf;
	int rc = 1;

	if (v && !strcmp(v, "1"))
		return 77; /* io_uring */
	if (!mkdtemp(dir) || posix_memalign((void **)&buf, 4096, 65536))
		return 2;
	for (int i = 0; i < 2; i++) {
		if (asprintf(&paths[i], "%s/m%d", dir, i) < 0)
			return 2;
		int fd = open(paths[i], O_RDWR | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, 32 << 20) < 0)
			return 2;
		close(fd);
	}
	vlun_set_log(NULL, VLUN_LOG_ERR, NULL);
	signal(SIGALRM, on_alarm);
	alarm(20);
	struct vlun_pool_create_opts co = { .name = "mwf", .meta_bytes = 1 << 20 };
	struct vlun_vdisk_create_opts om = { .name = "m", .layout = VLUN_LAYOUT_LINEAR, .size_bytes = 1 << 20 };
	struct vlun_vdisk_create_opts ot = { .name = "t", .layout = VLUN_LAYOUT_THIN, .size_bytes = 4 << 20,
					     .chunk_bytes = 65536 };
	if (vlun_pool_create(&co, paths, 2, false, &why) < 0 || vlun_pool_open(paths, 2, 0, &p, &why) < 0 ||
	    vlun_vdisk_create(p, &om, &why) < 0 || vlun_vdisk_create(p, &ot, &why) < 0 ||
	    vlun_vdisk_open(p, "m", 0, &m, &why) < 0 || vlun_vdisk_open(p, "t", 0, &t, &why) < 0 ||
	    vlun_mirror_add(p, "m", 0, 0, NULL, 0, &why) < 0) {
		fprintf(stderr, "setup: %s\n", why ? why : "?");
		return 2;
	}
	for (int i = 0; i < 1000 && !resynced(p); i++) /* the job thread fills the new copy */
		usleep(5000);
	if (!resynced(p)) {
		fprintf(stderr, "setup: the mirror did not resync\n");
		return 2;
	}
	memset(buf, 0x5a, 65536);
	if (sync_io(t, VLUN_OP_WRITE, 0, 0, buf, 65536) || sync_io(t, VLUN_OP_UNMAP, 0, 0, NULL, 65536)) {
		fprintf(stderr, "setup: thin write/unmap failed\n");
		return 2;
	}
	/* the unmapped chunk's free now waits for the next commit */
	struct vlun_pool_desc *d = NULL;
	uint32_t alt = 1;
	if (vlun_pool_describe(p, &d) == 0) {
		for (uint32_t i = 0; i < d->nvdisks; i++)
			if (!strcmp(d->vdisks[i].name, "m"))
				alt = d->vdisks[i].extents[0].alt_member;
		vlun_pool_desc_free(d);
	}
	vlun_pool_inject_member_fault(p, alt, true);
	memset(buf, 0xa5, 4096);
	int st = sync_io(m, VLUN_OP_WRITE, 0, 0, buf, 4096);
	alarm(0);
	if (st)
		fprintf(stderr, "FAIL: the write to the mirrored disk failed (status %d) although the primary "
			"copy is healthy\n", st);
	else
		rc = 0;
	vlun_pool_inject_member_fault(p, alt, false);
	vlun_vdisk_close(m);
	vlun_vdisk_close(t);
	vlun_pool_close(p);
	for (int i = 0; i < 2; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	rmdir(dir);
	free(buf);
	return rc;
}
