/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The io engine writes and reads back data exactly: aligned vectors on an
 * O_DIRECT file, buffered I/O on tmpfs, FUA writes, FSYNC, and multi-iovec
 * requests whose pieces land at the right offsets.
 */
#include "io_test.h"

static void roundtrip(const char *dir, bool want_direct)
{
	const uint64_t size = 8 << 20;
	char *path = et_tmpfile(dir, "io", size);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, want_direct, &direct);
	assert_true(fd >= 0);
	if (want_direct && !direct)
		print_message("note: %s refuses O_DIRECT, testing buffered\n", dir);

	struct vlun_io_engine *e = io_test_engine(8);

	/* 3 aligned pieces of different sizes, one write. */
	uint8_t *a, *b, *c;
	a = et_alloc(4096);
	b = et_alloc(65536);
	c = et_alloc(512);
	et_fill(a, 4096, 1, 0);
	et_fill(b, 65536, 1, 4096);
	et_fill(c, 512, 1, 4096 + 65536);
	struct iovec iov[3] = { { a, 4096 }, { b, 65536 }, { c, 512 } };
	const uint64_t off = 1 << 20, len = 4096 + 65536 + 512;
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_WRITE, false, off, len, iov, 3), 0);
	/* FUA write of another block. */
	uint8_t *f;
	f = et_alloc(8192);
	et_fill(f, 8192, 2, 0);
	struct iovec fiov = { f, 8192 };
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_WRITE, true, 4 << 20, 8192, &fiov, 1), 0);
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_FSYNC, false, 0, 0, NULL, 0), 0);

	/* Read back through the engine into one buffer. */
	uint8_t *r;
	r = et_alloc(len);
	memset(r, 0xee, len);
	struct iovec riov = { r, len };
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_READ, false, off, len, &riov, 1), 0);
	for (uint64_t i = 0; i < len; i++)
		if (r[i] != et_pat(1, i))
			fail_msg("byte %llu differs after round trip", (unsigned long long)i);

	/* And independently with pread: the data is really in the file. */
	uint8_t *chk = malloc(8192);
	assert_int_equal(et_pread_all(path, chk, 8192, 4 << 20), 0);
	assert_memory_equal(chk, f, 8192);
	/* Untouched ranges stay zero. */
	assert_int_equal(et_pread_all(path, chk, 8192, 0), 0);
	assert_true(et_all_zero(chk, 8192));

	/* Reading past the end of the file is an error, never silent zeros. */
	struct iovec piov = { r, 4096 };
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_READ, false, size - 2048, 4096, &piov, 1), -EIO);

	vlun_io_engine_free(e);
	close(fd);
	unlink(path);
	free(path);
	free(a), free(b), free(c), free(f), free(r), free(chk);
}

static void test_direct_file(void **state)
{
	roundtrip(NULL, true);
}

static void test_buffered_tmpfs(void **state)
{
	struct stat st;
	if (stat("/dev/shm", &st) < 0)
		skip();
	roundtrip("/dev/shm", false);
	roundtrip("/dev/shm", true); /* O_DIRECT on tmpfs where the kernel allows it */
}

static void test_buffered_file(void **state)
{
	roundtrip(NULL, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_file),
		cmocka_unit_test(test_buffered_file),
		cmocka_unit_test(test_buffered_tmpfs),
	};
	return io_test_run_on_backends(tests);
}
