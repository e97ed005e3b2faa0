/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ZERO makes a range read as zeros (fallocate on files, the write-zeros
 * fallback on tmpfs); deferred functions run on the completion thread, in
 * order; QD beyond the engine depth waits instead of failing; freeing the
 * engine drains every in-flight I/O (each done() runs before free returns).
 */
#include "io_test.h"

static void zero_on(const char *dir)
{
	char *path = et_tmpfile(dir, "zero", 4 << 20);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, true, &direct);
	assert_true(fd >= 0);
	struct vlun_io_engine *e = io_test_engine(4);

	uint8_t *b;
	b = et_alloc(1 << 20);
	et_fill(b, 1 << 20, 3, 0);
	struct iovec iov = { b, 1 << 20 };
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_WRITE, false, 0, 1 << 20, &iov, 1), 0);
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_ZERO, false, 4096, 65536, NULL, 0), 0);
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_ZERO, true, 512 * 1000, 512 * 3, NULL, 0), 0);

	uint8_t *chk = malloc(1 << 20);
	assert_int_equal(et_pread_all(path, chk, 1 << 20, 0), 0);
	for (uint64_t i = 0; i < (1 << 20); i++) {
		bool zeroed = (i >= 4096 && i < 4096 + 65536) || (i >= 512000 && i < 512000 + 1536);
		uint8_t want = zeroed ? 0 : et_pat(3, i);
		if (chk[i] != want)
			fail_msg("byte %llu: %u, want %u", (unsigned long long)i, chk[i], want);
	}
	vlun_io_engine_free(e);
	close(fd);
	unlink(path);
	free(path);
	free(b), free(chk);
}

static void test_zero_file(void **state) { zero_on(NULL); }
static void test_zero_tmpfs(void **state) { zero_on("/dev/shm"); }

struct dctx {
	struct et_waiter w;
	int order[16];
	int n;
	pthread_t threads[16];
};
struct ditem { struct dctx *c; int id; };

static void dfn(void *arg)
{
	struct ditem *it = arg;
	pthread_mutex_lock(&it->c->w.lock);
	it->c->threads[it->c->n] = pthread_self();
	it->c->order[it->c->n++] = it->id;
	pthread_mutex_unlock(&it->c->w.lock);
	et_waiter_signal(&it->c->w);
}

static void test_defer(void **state)
{
	struct vlun_io_engine *e = io_test_engine(4);
	struct dctx c;
	memset(&c, 0, sizeof(c));
	et_waiter_init(&c.w);
	struct ditem items[10];
	for (int i = 0; i < 10; i++) {
		items[i].c = &c;
		items[i].id = i;
		assert_int_equal(vlun_io_defer(e, dfn, &items[i]), 0);
	}
	et_waiter_wait(&c.w, 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(c.order[i], i);
		assert_false(pthread_equal(c.threads[i], pthread_self()));
		assert_true(pthread_equal(c.threads[i], c.threads[0]));
	}
	vlun_io_engine_free(e);
}

struct dr {
	struct vlun_pio pio;
	struct iovec iov;
	int *counter;
	int res;
};

static void dr_done(struct vlun_pio *pio, int res)
{
	struct dr *d = pio->priv;
	d->res = res;
	__atomic_add_fetch(d->counter, 1, __ATOMIC_SEQ_CST);
}

static void test_overcommit_and_drain(void **state)
{
	char *path = et_tmpfile(NULL, "drain", 16 << 20);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, true, &direct);
	struct vlun_io_engine *e = io_test_engine(2); /* depth 2, 64 requests */
	enum { N = 64 };
	struct dr *d = calloc(N, sizeof(*d));
	uint8_t *buf;
	buf = et_alloc(N * 65536);
	et_fill(buf, N * 65536, 11, 0);
	int counter = 0;
	for (int i = 0; i < N; i++) {
		d[i].iov.iov_base = buf + i * 65536;
		d[i].iov.iov_len = 65536;
		d[i].counter = &counter;
		d[i].res = 1;
		d[i].pio = (struct vlun_pio){ .op = VLUN_PIO_WRITE, .fd = fd, .direct = direct,
					      .offset = (uint64_t)i * 65536, .length = 65536,
					      .iov = &d[i].iov, .iovcnt = 1, .done = dr_done, .priv = &d[i] };
		assert_int_equal(vlun_io_submit(e, &d[i].pio), 0);
	}
	vlun_io_engine_free(e); /* must wait for all 64 */
	assert_int_equal(__atomic_load_n(&counter, __ATOMIC_SEQ_CST), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(d[i].res, 0);
	uint8_t *chk = malloc(N * 65536);
	assert_int_equal(et_pread_all(path, chk, N * 65536, 0), 0);
	assert_memory_equal(chk, buf, N * 65536);
	close(fd);
	unlink(path);
	free(path);
	free(d), free(buf), free(chk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_file),
		cmocka_unit_test(test_zero_tmpfs),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_overcommit_and_drain),
	};
	return io_test_run_on_backends(tests);
}
