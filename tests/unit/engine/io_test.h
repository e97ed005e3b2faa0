/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io_test.h — for the io engine tests: a synchronous wrapper around one
 * pio, and running a test group once per I/O backend.
 */
#ifndef IO_TEST_H
#define IO_TEST_H

#include <liburing.h>

#include "engine_test.h"
#include "io.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define IO_TEST_ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef IO_TEST_ON_VALGRIND
#define IO_TEST_ON_VALGRIND() false
#endif

/* The backend the group being run must use ("uring" / "threads"). */
static const char *io_test_backend;

/* A new engine of depth; fails the test unless it runs on the backend
 * under test. */
static inline struct vlun_io_engine *io_test_engine(unsigned depth)
{
	struct vlun_io_engine *e = NULL;
	assert_int_equal(vlun_io_engine_new(depth, &e), 0);
	assert_non_null(e);
	if (io_test_backend)
		assert_string_equal(vlun_io_engine_backend(e), io_test_backend);
	return e;
}

/* Whether this process can run io_uring: the kernel sets up a ring, and
 * valgrind (which hangs in io_uring_enter) is not in the way. */
static inline bool io_test_uring_usable(const char **why)
{
	if (IO_TEST_ON_VALGRIND()) {
		*why = "valgrind cannot follow io_uring";
		return false;
	}
	struct io_uring ring;
	int r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		*why = "the kernel refuses to set up an io_uring";
		return false;
	}
	io_uring_queue_exit(&ring);
	return true;
}

/* Runs tests once with VLUN_IO_BACKEND=uring and once with =threads (each
 * test's engine is checked to be on that backend); uring is skipped, with
 * a note, where it cannot run. Returns the number of failures. */
static inline int io_test_run_backends(const struct CMUnitTest *tests, size_t n)
{
	static const char *const backends[] = { "uring", "threads" };
	int failed = 0;
	for (size_t i = 0; i < 2; i++) {
		const char *why = NULL;
		if (i == 0 && !io_test_uring_usable(&why)) {
			printf("note: backend uring not tested: %s\n", why);
			continue;
		}
		setenv("VLUN_IO_BACKEND", backends[i], 1);
		io_test_backend = backends[i];
		failed += _cmocka_run_group_tests(backends[i], tests, n, NULL, NULL);
	}
	unsetenv("VLUN_IO_BACKEND");
	io_test_backend = NULL;
	return failed;
}
#define io_test_run_on_backends(tests) io_test_run_backends(tests, sizeof(tests) / sizeof((tests)[0]))

struct sync_pio {
	struct vlun_pio pio;
	struct et_waiter w;
	int res;
};

static inline void sync_pio_done(struct vlun_pio *pio, int res)
{
	struct sync_pio *s = pio->priv;
	s->res = res;
	et_waiter_signal(&s->w);
}

/* Runs one pio and waits for it; returns its result. */
static inline int run_pio(struct vlun_io_engine *e, int fd, bool direct, uint32_t op, bool fua,
			  uint64_t off, uint64_t len, struct iovec *iov, int iovcnt)
{
	struct sync_pio s;
	memset(&s, 0, sizeof(s));
	et_waiter_init(&s.w);
	s.pio.op = op;
	s.pio.fd = fd;
	s.pio.direct = direct;
	s.pio.fua = fua;
	s.pio.offset = off;
	s.pio.length = len;
	s.pio.iov = iov;
	s.pio.iovcnt = iovcnt;
	s.pio.done = sync_pio_done;
	s.pio.priv = &s;
	int r = vlun_io_submit(e, &s.pio);
	if (r < 0)
		return r;
	et_waiter_wait(&s.w, 1);
	assert_false(pthread_equal(s.w.thread_seen, pthread_self()));
	return s.res;
}

/* Opens path O_DIRECT if the filesystem allows it; *direct says. */
static inline int open_member(const char *path, bool want_direct, bool *direct)
{
	int fd = -1;
	if (want_direct) {
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd >= 0) {
			*direct = true;
			return fd;
		}
	}
	*direct = false;
	return open(path, O_RDWR | O_CLOEXEC);
}

#endif
