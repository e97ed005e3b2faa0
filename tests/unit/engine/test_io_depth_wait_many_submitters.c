/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Back-pressure with several submitters: 4 threads write 400 pios each
 * through an engine of depth 2, so submitters keep waiting for room while
 * completions free it. Every pio completes exactly once with its data in
 * place (a lost wake-up hangs the test until meson's timeout), and
 * vlun_io_engine_free drains right after the last submit returns.
 */
#include "io_test.h"

#define NT 4
#define PER 400
#define BS 4096u

struct w {
	struct vlun_pio pio;
	struct iovec iov;
	int res;
	int calls;
};

struct sub {
	struct vlun_io_engine *e;
	struct w *ws;
	int fd;
	bool direct;
	int rc;
};

static void w_done(struct vlun_pio *pio, int res)
{
	struct w *w = pio->priv;
	w->res = res;
	__atomic_add_fetch(&w->calls, 1, __ATOMIC_SEQ_CST);
}

static void *submitter(void *arg)
{
	struct sub *s = arg;
	for (unsigned i = 0; i < PER; i++) {
		struct w *w = &s->ws[i];
		int r = vlun_io_submit(s->e, &w->pio);
		if (r < 0) {
			s->rc = r;
			break;
		}
	}
	return NULL;
}

static void test_many_submitters(void **state)
{
	const uint64_t size = (uint64_t)NT * PER * BS;
	char *path = et_tmpfile(NULL, "depth", size);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, true, &direct);
	assert_true(fd >= 0);
	struct vlun_io_engine *e = io_test_engine(2);
	uint8_t *buf = et_alloc(size);
	et_fill(buf, size, 5, 0);
	struct w *ws = calloc(NT * PER, sizeof(*ws));
	assert_non_null(ws);
	for (unsigned i = 0; i < NT * PER; i++) {
		ws[i].iov = (struct iovec){ buf + (uint64_t)i * BS, BS };
		ws[i].res = 1;
		ws[i].pio = (struct vlun_pio){ .op = VLUN_PIO_WRITE, .fd = fd, .direct = direct,
					       .offset = (uint64_t)i * BS, .length = BS, .iov = &ws[i].iov,
					       .iovcnt = 1, .done = w_done, .priv = &ws[i] };
	}
	struct sub subs[NT];
	pthread_t th[NT];
	for (unsigned t = 0; t < NT; t++) {
		subs[t] = (struct sub){ .e = e, .ws = ws + t * PER, .fd = fd, .direct = direct };
		assert_int_equal(pthread_create(&th[t], NULL, submitter, &subs[t]), 0);
	}
	for (unsigned t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(subs[t].rc, 0);
	}
	vlun_io_engine_free(e); /* waits for every pio */
	for (unsigned i = 0; i < NT * PER; i++) {
		assert_int_equal(__atomic_load_n(&ws[i].calls, __ATOMIC_SEQ_CST), 1);
		assert_int_equal(ws[i].res, 0);
	}
	uint8_t *chk = malloc(size);
	assert_non_null(chk);
	assert_int_equal(et_pread_all(path, chk, size, 0), 0);
	assert_memory_equal(chk, buf, size);
	close(fd);
	unlink(path);
	free(path);
	free(ws), free(buf), free(chk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_submitters),
	};
	return io_test_run_on_backends(tests);
}
