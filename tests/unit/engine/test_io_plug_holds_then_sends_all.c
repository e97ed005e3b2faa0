/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlun_io_plug / vlun_io_unplug: on io_uring, what a plugged thread
 * submits is held back until the outermost unplug (nested plugs included),
 * then all of it completes with the right data; a plugged thread that
 * submits more than the engine's depth does not deadlock (what it holds
 * is sent before it waits for room). On the threads backend the plug has
 * no effect and everything completes just the same.
 */
#include "io_test.h"

#define NP 24
#define BS 4096u

struct many {
	struct vlun_pio pio[NP];
	struct iovec iov[NP];
	struct et_waiter w;
	int res[NP];
};

static void many_done(struct vlun_pio *pio, int res)
{
	struct many *m = pio->priv;
	m->res[pio - m->pio] = res;
	et_waiter_signal(&m->w);
}

static void submit_write(struct vlun_io_engine *e, struct many *m, unsigned i, int fd, bool direct)
{
	m->pio[i] = (struct vlun_pio){
		.op = VLUN_PIO_WRITE, .fd = fd, .direct = direct, .offset = (uint64_t)i * BS, .length = BS,
		.iov = &m->iov[i], .iovcnt = 1, .done = many_done, .priv = m,
	};
	assert_int_equal(vlun_io_submit(e, &m->pio[i]), 0);
}

static unsigned done_now(struct many *m)
{
	pthread_mutex_lock(&m->w.lock);
	unsigned d = m->w.done;
	pthread_mutex_unlock(&m->w.lock);
	return d;
}

static void test_plug(void **state)
{
	char *path = et_tmpfile(NULL, "plug", NP * BS);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, true, &direct);
	assert_true(fd >= 0);
	struct vlun_io_engine *e = io_test_engine(4);
	bool uring = strcmp(vlun_io_engine_backend(e), "uring") == 0;
	struct many *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	et_waiter_init(&m->w);
	for (unsigned i = 0; i < NP; i++) {
		m->iov[i].iov_base = et_alloc(BS);
		m->iov[i].iov_len = BS;
		et_fill(m->iov[i].iov_base, BS, 7, (uint64_t)i * BS);
	}

	/* Nested plugs hold 2 writes until the outer unplug. */
	vlun_io_plug(e);
	vlun_io_plug(e);
	submit_write(e, m, 0, fd, direct);
	submit_write(e, m, 1, fd, direct);
	vlun_io_unplug(e);
	usleep(100 * 1000);
	if (uring)
		assert_int_equal(done_now(m), 0);
	vlun_io_unplug(e);
	et_waiter_wait(&m->w, 2);

	/* More than the depth (4) from one plugged thread: no deadlock. */
	vlun_io_plug(e);
	for (unsigned i = 2; i < NP; i++)
		submit_write(e, m, i, fd, direct);
	vlun_io_unplug(e);
	et_waiter_wait(&m->w, NP);
	for (unsigned i = 0; i < NP; i++)
		assert_int_equal(m->res[i], 0);

	uint8_t *chk = malloc(NP * BS);
	assert_non_null(chk);
	assert_int_equal(et_pread_all(path, chk, NP * BS, 0), 0);
	for (uint64_t i = 0; i < NP * BS; i++)
		if (chk[i] != et_pat(7, i))
			fail_msg("byte %llu differs after plugged writes", (unsigned long long)i);

	/* An unplug without a plug does nothing harmful. */
	vlun_io_unplug(e);
	vlun_io_engine_free(e);
	close(fd);
	unlink(path);
	free(path);
	for (unsigned i = 0; i < NP; i++)
		free(m->iov[i].iov_base);
	free(m);
	free(chk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plug),
	};
	return io_test_run_on_backends(tests);
}
