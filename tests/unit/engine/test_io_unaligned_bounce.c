/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unaligned user buffers on an O_DIRECT member go through a bounce buffer:
 * the data written and read back is exact, neighbours are untouched, and an
 * unaligned offset on an O_DIRECT fd is refused (-EINVAL) rather than
 * silently read-modify-written.
 */
#include "io_test.h"

static void test_unaligned_buffers(void **state)
{
	char *path = et_tmpfile(NULL, "bounce", 4 << 20);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, true, &direct);
	assert_true(fd >= 0);
	if (!direct)
		skip();

	struct vlun_io_engine *e = io_test_engine(4);

	/* Buffer at an odd address, and pieces of odd lengths. */
	uint8_t *raw = malloc(3 * 8192 + 64);
	uint8_t *p = raw + 7;
	et_fill(p, 3 * 8192, 5, 0);
	struct iovec iov[3] = { { p, 1000 }, { p + 1000, 8192 * 2 - 1000 + 13 }, { p + 8192 * 2 + 13, 8192 - 13 } };
	assert_int_equal(run_pio(e, fd, true, VLUN_PIO_WRITE, false, 8192, 3 * 8192, iov, 3), 0);

	uint8_t *chk = malloc(5 * 8192);
	assert_int_equal(et_pread_all(path, chk, 5 * 8192, 0), 0);
	assert_true(et_all_zero(chk, 8192));
	assert_memory_equal(chk + 8192, p, 3 * 8192);
	assert_true(et_all_zero(chk + 4 * 8192, 8192));

	/* Read back into another unaligned buffer with odd pieces. */
	uint8_t *raw2 = malloc(3 * 8192 + 64);
	uint8_t *q = raw2 + 3;
	memset(q, 0xaa, 3 * 8192);
	struct iovec riov[2] = { { q, 511 }, { q + 511, 3 * 8192 - 511 } };
	assert_int_equal(run_pio(e, fd, true, VLUN_PIO_READ, false, 8192, 3 * 8192, riov, 2), 0);
	assert_memory_equal(q, p, 3 * 8192);

	/* Unaligned offset / length on O_DIRECT: refused at submit. */
	struct iovec one = { p, 512 };
	assert_int_equal(run_pio(e, fd, true, VLUN_PIO_WRITE, false, 100, 512, &one, 1), -EINVAL);
	struct iovec odd = { p, 700 };
	assert_int_equal(run_pio(e, fd, true, VLUN_PIO_WRITE, false, 0, 700, &odd, 1), -EINVAL);

	vlun_io_engine_free(e);
	close(fd);
	unlink(path);
	free(path);
	free(raw), free(raw2), free(chk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unaligned_buffers),
	};
	return io_test_run_on_backends(tests);
}
