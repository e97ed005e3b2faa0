/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A FUA write must be durable with its allocation before it completes
 * (vlun.h: VLUN_REQ_FUA "durable (data and its allocation)").
 *
 * Found by the crash sweep (drop mode, seed 2, 120 ops): a plain write
 * allocates thin chunk 0 (the allocation is a pending delta, durable at the
 * next FLUSH); a FUA write to another block of the same chunk then finds
 * the chunk installed in the map, goes down the fast path with RWF_DSYNC
 * and completes — without the commit of the chunk's allocation. If the
 * process dies now, the reassembled pool has chunk 0 unallocated and the
 * acknowledged FUA data reads as zeros.
 *
 * The child does exactly that and _exit()s right after the FUA write
 * completed (a kill -9 of tcmu-runner); the parent reassembles the pool
 * and reads the FUA block back. Exit 0 when the FUA data is there.
 * Fixed in 031e607 ("FUA now waits for any pending map change"); this
 * test keeps it fixed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../sync_io.h"
#include "vlun.h"

int main(void)
{
	const char *v = getenv("VLUN_UNDER_VALGRIND");
	char dir[] = "/tmp/vlun-fua-XXXXXX", *paths[2];
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	uint8_t *buf;
	int status, ok;

	if (v && !strcmp(v, "1"))
		return 77; /* io_uring */
	if (!mkdtemp(dir) || posix_memalign((void **)&buf, 4096, 4096))
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
	struct vlun_pool_create_opts co = { .name = "fua", .meta_bytes = 1 << 20 };
	if (vlun_pool_create(&co, paths, 2, false, &why) < 0) {
		fprintf(stderr, "pool create: %s\n", why);
		return 2;
	}
	pid_t pid = fork();
	if (pid == 0) {
		struct vlun_vdisk_create_opts o = { .name = "t", .layout = VLUN_LAYOUT_THIN, .size_bytes = 4 << 20,
						    .chunk_bytes = 1 << 20 };
		if (vlun_pool_open(paths, 2, 0, &p, &why) < 0 || vlun_vdisk_create(p, &o, &why) < 0 ||
		    vlun_vdisk_open(p, "t", 0, &vd, &why) < 0)
			_exit(2);
		memset(buf, 0x11, 4096);
		if (sync_io(vd, VLUN_OP_WRITE, 0, 0, buf, 4096)) /* allocates chunk 0, not durable yet */
			_exit(2);
		memset(buf, 0x22, 4096);
		if (sync_io(vd, VLUN_OP_WRITE, VLUN_REQ_FUA, 65536, buf, 4096)) /* same chunk, FUA */
			_exit(2);
		_exit(0); /* killed right after the FUA write was acknowledged */
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "the writer failed\n");
		return 2;
	}
	/* its io_uring may hold the lock a moment */
	if (vlun_pool_open(paths, 2, VLUN_OPEN_WAIT_LOCK, &p, &why) < 0 || vlun_vdisk_open(p, "t", 0, &vd, &why) < 0) {
		fprintf(stderr, "reassembly: %s\n", why ? why : "?");
		return 1;
	}
	memset(buf, 0, 4096);
	if (sync_io(vd, VLUN_OP_READ, 0, 65536, buf, 4096)) {
		fprintf(stderr, "read back failed\n");
		return 1;
	}
	ok = buf[0] == 0x22 && !memcmp(buf, buf + 1, 4095);
	if (!ok)
		fprintf(stderr, "FAIL: the acknowledged FUA write reads back as 0x%02x, not 0x22: its chunk's "
			"allocation was not committed before the FUA write completed\n", buf[0]);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	for (int i = 0; i < 2; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	rmdir(dir);
	free(buf);
	return ok ? 0 : 1;
}
