/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vlun_blkdev on regular files: size from fstat, O_DIRECT where the
 * filesystem allows it and buffered I/O where it refuses (tmpfs), aligned
 * and unaligned reads, writes that read back, read-only refuses writes,
 * out-of-range I/O refused; and a pool label + commit + load on files. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metatest.h"

static char *make_file(const char *dir, uint64_t size)
{
	char *path;
	int fd;

	if (asprintf(&path, "%s/vlun-blkdev-XXXXXX", dir) < 0)
		return NULL;
	fd = mkstemp(path);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

static void exercise(const char *dir)
{
	struct vlun_blkdev *d = NULL, *ro = NULL;
	uint8_t *w, *r;
	char *path = make_file(dir, 16ull << 20);

	if (!path) {
		print_message("cannot create a file in %s, skipping it\n", dir);
		return;
	}
	assert_int_equal(vlun_blkdev_open(path, false, true, &d), 0);
	assert_int_equal(d->size, 16ull << 20);
	assert_int_equal(d->lbs, 512);
	assert_false(d->is_blockdev);
	print_message("%s: direct=%d\n", dir, d->direct);

	w = malloc(70000);
	r = malloc(70000);
	for (int i = 0; i < 70000; i++)
		w[i] = (uint8_t)(i * 7 + 3);
	/* aligned offset, unaligned buffer address (malloc) */
	assert_int_equal(vlun_blkdev_pwrite(d, w, 65536, 1 << 20), 0);
	assert_int_equal(vlun_blkdev_flush(d), 0);
	memset(r, 0, 70000);
	assert_int_equal(vlun_blkdev_pread(d, r, 65536, 1 << 20), 0);
	assert_memory_equal(r, w, 65536);
	/* unaligned read inside */
	assert_int_equal(vlun_blkdev_pread(d, r, 1001, (1 << 20) + 77), 0);
	assert_memory_equal(r, w + 77, 1001);
	/* out of range */
	assert_int_equal(vlun_blkdev_pread(d, r, 4096, (16ull << 20) - 512), -EINVAL);

	assert_int_equal(vlun_blkdev_open(path, true, true, &ro), 0);
	assert_int_equal(vlun_blkdev_pwrite(ro, w, 4096, 0), -EROFS);
	assert_int_equal(vlun_blkdev_pread(ro, r, 4096, 1 << 20), 0);
	assert_memory_equal(r, w, 4096);
	vlun_blkdev_close(ro);

	/* a whole pool on a file */
	{
		struct vlun_meta_member m = { .dev = d };
		struct vlun_meta *st = NULL;
		struct vlun_pool_desc *desc = calloc(1, sizeof(*desc)), *got = NULL;
		uint8_t pu[16], mu[16];
		char why[512];

		vlun_uuid_generate(pu);
		vlun_uuid_generate(mu);
		assert_int_equal(vlun_meta_label_write(d, pu, mu, "filepool", MT_META_BYTES, false, &m.label), 0);
		memcpy(desc->uuid, pu, 16);
		snprintf(desc->name, sizeof(desc->name), "filepool");
		desc->next_vdisk_id = 1;
		desc->nmembers = 1;
		desc->members = calloc(1, sizeof(*desc->members));
		memcpy(desc->members[0].uuid, mu, 16);
		desc->members[0].size_bytes = d->size;
		desc->members[0].data_start = m.label.data_start;
		desc->members[0].data_sectors = d->size / 512 - m.label.data_start;
		assert_int_equal(vlun_meta_init(&m, 1, &st), 0);
		assert_int_equal(vlun_meta_commit(st, &m, 1, desc), 0);
		vlun_blkdev_close(d);
		assert_int_equal(vlun_blkdev_open(path, false, true, &d), 0);
		m.dev = d;
		assert_int_equal(vlun_meta_label_read(d, &m.label, why, sizeof(why)), 0);
		assert_int_equal(vlun_meta_load(&m, 1, &got, NULL, why, sizeof(why)), 0);
		assert_true(mt_desc_equal(desc, got, false));
		vlun_pool_desc_free(got);
		vlun_pool_desc_free(desc);
		vlun_meta_free(st);
	}
	vlun_blkdev_close(d);
	unlink(path);
	free(path);
	free(w);
	free(r);
}

static void on_tmp(void **state)
{
	exercise(getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp");
}

static void on_tmpfs(void **state)
{
	struct stat st;

	if (stat("/dev/shm", &st) < 0 || !S_ISDIR(st.st_mode)) {
		print_message("no /dev/shm\n");
		return;
	}
	exercise("/dev/shm");
}

static void not_a_device(void **state)
{
	struct vlun_blkdev *d = NULL;

	assert_int_equal(vlun_blkdev_open("/", false, true, &d), -EISDIR);
	assert_int_equal(vlun_blkdev_open("/nonexistent/vlun", false, true, &d), -ENOENT);
	assert_null(d);
	vlun_blkdev_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(on_tmp),
		cmocka_unit_test(on_tmpfs),
		cmocka_unit_test(not_a_device),
	};
	mt_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
