/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Without io_uring (setup fails: EPERM from a seccomp profile, ENOSYS,
 * ENOMEM...) the engine falls back to its worker-thread backend, warns
 * once per process naming the error, and I/O works; VLUN_IO_BACKEND=uring
 * refuses the fallback, =threads chooses the threads backend silently, and
 * an unknown value is refused with an error naming it.
 */
#include "io_test.h"
#include "vlun.h"

struct logcap {
	pthread_mutex_t lock;
	int warns, errs;
	char last_warn[1024];
	char last_err[1024];
};

static struct logcap cap = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void log_fn(enum vlun_log_level level, const char *msg, void *userdata)
{
	struct logcap *c = userdata;
	pthread_mutex_lock(&c->lock);
	if (level == VLUN_LOG_WARN) {
		c->warns++;
		snprintf(c->last_warn, sizeof(c->last_warn), "%s", msg);
	} else if (level == VLUN_LOG_ERR) {
		c->errs++;
		snprintf(c->last_err, sizeof(c->last_err), "%s", msg);
	}
	pthread_mutex_unlock(&c->lock);
}

static void cap_reset(void)
{
	pthread_mutex_lock(&cap.lock);
	cap.warns = cap.errs = 0;
	cap.last_warn[0] = cap.last_err[0] = '\0';
	pthread_mutex_unlock(&cap.lock);
}

/* A write and a read back through e. */
static void io_works(struct vlun_io_engine *e)
{
	char *path = et_tmpfile(NULL, "fallback", 1 << 20);
	assert_non_null(path);
	bool direct;
	int fd = open_member(path, true, &direct);
	assert_true(fd >= 0);
	uint8_t *w = et_alloc(65536), *r = et_alloc(65536);
	et_fill(w, 65536, 5, 0);
	memset(r, 0, 65536);
	struct iovec wiov = { w, 65536 }, riov = { r, 65536 };
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_WRITE, true, 8192, 65536, &wiov, 1), 0);
	assert_int_equal(run_pio(e, fd, direct, VLUN_PIO_READ, false, 8192, 65536, &riov, 1), 0);
	assert_memory_equal(r, w, 65536);
	close(fd);
	unlink(path);
	free(path);
	free(w), free(r);
}

/* Must run first: the warning is once per process. */
static void test_auto_falls_back_and_warns_once(void **state)
{
	unsetenv("VLUN_IO_BACKEND");
	cap_reset();
	vlun_io_test_fail_uring_setup(-EPERM);
	struct vlun_io_engine *e = NULL;
	assert_int_equal(vlun_io_engine_new(16, &e), 0);
	assert_string_equal(vlun_io_engine_backend(e), "threads");
	assert_int_equal(cap.warns, 1);
	assert_int_equal(cap.errs, 0);
	/* Says why and what it costs. */
	assert_non_null(strstr(cap.last_warn, "io_uring is not available"));
	assert_non_null(strstr(cap.last_warn, strerror(EPERM)));
	assert_non_null(strstr(cap.last_warn, "worker threads"));
	assert_non_null(strstr(cap.last_warn, "VLUN_IO_BACKEND=threads"));
	io_works(e);
	vlun_io_engine_free(e);

	/* Another engine, another reason: falls back again, no second warning. */
	vlun_io_test_fail_uring_setup(-ENOSYS);
	assert_int_equal(vlun_io_engine_new(16, &e), 0);
	assert_string_equal(vlun_io_engine_backend(e), "threads");
	io_works(e);
	vlun_io_engine_free(e);
	vlun_io_test_fail_uring_setup(-ENOMEM);
	assert_int_equal(vlun_io_engine_new(0, &e), 0);
	assert_string_equal(vlun_io_engine_backend(e), "threads");
	vlun_io_engine_free(e);
	assert_int_equal(cap.warns, 1);
	assert_int_equal(cap.errs, 0);
	vlun_io_test_fail_uring_setup(0);
}

static void test_forced_uring_refuses_fallback(void **state)
{
	setenv("VLUN_IO_BACKEND", "uring", 1);
	cap_reset();
	vlun_io_test_fail_uring_setup(-EACCES);
	struct vlun_io_engine *e = (struct vlun_io_engine *)&cap; /* untouched on failure */
	assert_int_equal(vlun_io_engine_new(16, &e), -EACCES);
	assert_ptr_equal(e, (struct vlun_io_engine *)&cap);
	assert_int_equal(cap.errs, 1);
	assert_non_null(strstr(cap.last_err, "VLUN_IO_BACKEND=uring"));
	assert_non_null(strstr(cap.last_err, strerror(EACCES)));
	vlun_io_test_fail_uring_setup(0);
	unsetenv("VLUN_IO_BACKEND");
}

static void test_forced_threads_is_silent(void **state)
{
	setenv("VLUN_IO_BACKEND", "threads", 1);
	cap_reset();
	vlun_io_test_fail_uring_setup(-EPERM); /* not even tried */
	struct vlun_io_engine *e = NULL;
	assert_int_equal(vlun_io_engine_new(4, &e), 0);
	assert_string_equal(vlun_io_engine_backend(e), "threads");
	io_works(e);
	vlun_io_engine_free(e);
	assert_int_equal(cap.warns + cap.errs, 0);
	vlun_io_test_fail_uring_setup(0);
	unsetenv("VLUN_IO_BACKEND");
}

static void test_unknown_backend_refused(void **state)
{
	setenv("VLUN_IO_BACKEND", "posix-aio", 1);
	cap_reset();
	struct vlun_io_engine *e = NULL;
	assert_int_equal(vlun_io_engine_new(4, &e), -EINVAL);
	assert_null(e);
	assert_int_equal(cap.errs, 1);
	assert_non_null(strstr(cap.last_err, "'posix-aio'"));
	assert_non_null(strstr(cap.last_err, "'threads'"));
	unsetenv("VLUN_IO_BACKEND");
}

/* Without a forced choice and with a working io_uring, io_uring it is;
 * "auto" means the same as unset. */
static void test_auto_prefers_uring(void **state)
{
	const char *why;
	if (!io_test_uring_usable(&why)) {
		print_message("note: %s\n", why);
		skip();
	}
	const char *vals[] = { NULL, "auto", "" };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		if (vals[i])
			setenv("VLUN_IO_BACKEND", vals[i], 1);
		else
			unsetenv("VLUN_IO_BACKEND");
		cap_reset();
		struct vlun_io_engine *e = NULL;
		assert_int_equal(vlun_io_engine_new(4, &e), 0);
		assert_string_equal(vlun_io_engine_backend(e), "uring");
		io_works(e);
		vlun_io_engine_free(e);
		assert_int_equal(cap.warns + cap.errs, 0);
	}
	unsetenv("VLUN_IO_BACKEND");
}

int main(void)
{
	vlun_set_log(log_fn, VLUN_LOG_DEBUG, &cap);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auto_falls_back_and_warns_once),
		cmocka_unit_test(test_forced_uring_refuses_fallback),
		cmocka_unit_test(test_forced_threads_is_silent),
		cmocka_unit_test(test_unknown_backend_refused),
		cmocka_unit_test(test_auto_prefers_uring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
