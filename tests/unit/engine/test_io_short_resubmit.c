/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Short reads and writes are resubmitted for the rest: with every SQE
 * capped at 4 KiB (the engine's short-I/O simulation hook) a 1 MiB
 * multi-iovec write and read still move every byte to the right place, on
 * O_DIRECT (including through a bounce buffer) and buffered fds.
 */
#include "io_test.h"

static void short_io(bool want_direct, bool unaligned)
{
	const uint64_t len = 1 << 20;
	char *path = et_tmpfile(NULL, "short", 4 << 20);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, want_direct, &direct);
	assert_true(fd >= 0);

	struct vlun_io_engine *e = io_test_engine(4);
	vlun_io_engine_set_max_sqe_bytes(e, 4096);

	uint8_t *raw;
	raw = et_alloc(len + 4096);
	uint8_t *p = raw + (unaligned ? 1 : 0);
	et_fill(p, len, 9, 0);
	/* 7 pieces with boundaries that do not fall on 4 KiB. */
	struct iovec iov[7];
	uint64_t cut[8] = { 0, 512, 5120, 70144, 300032, 300544, 900096, len };
	for (int i = 0; i < 7; i++) {
		iov[i].iov_base = p + cut[i];
		iov[i].iov_len = cut[i + 1] - cut[i];
	}
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_WRITE, false, 1 << 20, len, iov, 7), 0);

	uint8_t *chk = malloc(len);
	assert_int_equal(et_pread_all(path, chk, len, 1 << 20), 0);
	assert_memory_equal(chk, p, len);

	memset(p, 0, len);
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_READ, false, 1 << 20, len, iov, 7), 0);
	assert_memory_equal(chk, p, len);

	vlun_io_engine_free(e);
	close(fd);
	unlink(path);
	free(path);
	free(raw), free(chk);
}

static void test_short_direct(void **state) { short_io(true, false); }
static void test_short_direct_bounce(void **state) { short_io(true, true); }
static void test_short_buffered(void **state) { short_io(false, true); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_direct),
		cmocka_unit_test(test_short_direct_bounce),
		cmocka_unit_test(test_short_buffered),
	};
	return io_test_run_on_backends(tests);
}
