/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_check_helper — for test_vlunctl_check.sh:
 *
 *   vlunctl_check_helper journal <member>... -- <vdisk>
 *       opens the pool, writes 4 KiB of 0xa5 at 0 and flushes (the first
 *       commit after an open is a checkpoint), then writes 4 KiB of 0xa5 at
 *       the vdisk's second MiB and flushes again: that allocation is a
 *       journal record. Exit 0 when all completed OK.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vlun.h"
#include "../sync_io.h"

/* 0, or a negative errno (a failed status is -EIO) */
static int io(struct vlun_vdisk *vd, uint32_t op, uint64_t off, void *buf, uint64_t len)
{
	int st = sync_io(vd, op, 0, off, buf, len);

	return st < 0 ? st : st ? -EIO : 0;
}

int main(int argc, char **argv)
{
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	char *why = NULL;
	void *buf;
	int sep = -1, r;

	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--"))
			sep = i;
	if (argc < 5 || strcmp(argv[1], "journal") || sep < 3 || sep != argc - 2) {
		fprintf(stderr, "usage: vlunctl_check_helper journal <member>... -- <vdisk>\n");
		return 2;
	}
	r = vlun_pool_open(argv + 2, (size_t)(sep - 2), 0, &p, &why);
	if (r < 0) {
		fprintf(stderr, "helper: open: %s\n", why ? why : strerror(-r));
		return 1;
	}
	r = vlun_vdisk_open(p, argv[argc - 1], 0, &vd, &why);
	if (r < 0) {
		fprintf(stderr, "helper: vdisk open: %s\n", why ? why : strerror(-r));
		return 1;
	}
	if (posix_memalign(&buf, 4096, 4096))
		return 1;
	memset(buf, 0xa5, 4096);
	r = io(vd, VLUN_OP_WRITE, 0, buf, 4096);
	if (!r)
		r = io(vd, VLUN_OP_FLUSH, 0, NULL, 0);
	if (!r)
		r = io(vd, VLUN_OP_WRITE, 1 << 20, buf, 4096);
	if (!r)
		r = io(vd, VLUN_OP_FLUSH, 0, NULL, 0);
	if (r)
		fprintf(stderr, "helper: I/O failed: %s\n", strerror(-r));
	free(buf);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	return r ? 1 : 0;
}
