/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * engine_test.h — small helpers shared by the engine unit tests: temp
 * files, waiting for asynchronous completions, deterministic patterns.
 */
#ifndef ENGINE_TEST_H
#define ENGINE_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* Obsolete: tests used to skip under valgrind because valgrind 3.19
 * cannot follow io_uring; the engine now runs on its worker-thread backend
 * there (lib/io.h), so every test runs under valgrind. Kept as a no-op
 * until the last caller drops it. */
static inline void et_skip_under_valgrind(void)
{
}

static inline const char *et_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

/* Creates a sparse file of size bytes in dir (NULL = TMPDIR); returns its
 * malloc'd path. */
static inline char *et_tmpfile(const char *dir, const char *tag, uint64_t size)
{
	char *path = NULL;
	if (asprintf(&path, "%s/vlun-%s-XXXXXX", dir ? dir : et_tmpdir(), tag) < 0)
		return NULL;
	int fd = mkstemp(path);
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

/* A temp directory (malloc'd path). */
static inline char *et_tmpdir_new(const char *tag)
{
	char *path = NULL;
	if (asprintf(&path, "%s/vlun-%s-XXXXXX", et_tmpdir(), tag) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

/* Page-aligned buffer; aborts the test on failure. */
static inline void *et_alloc(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, len ? len : 1) != 0)
		abort();
	return p;
}

/* Byte i of pattern seed. */
static inline uint8_t et_pat(uint64_t seed, uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull ^ seed * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	return (uint8_t)(x >> ((i & 7) * 8));
}

static inline void et_fill(void *buf, uint64_t len, uint64_t seed, uint64_t base)
{
	uint8_t *b = buf;
	for (uint64_t i = 0; i < len; i++)
		b[i] = et_pat(seed, base + i);
}

static inline bool et_all_zero(const void *buf, uint64_t len)
{
	const uint8_t *b = buf;
	for (uint64_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* Completion waiter: a counter protected by a mutex. */
struct et_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned done;
	pthread_t thread_seen;
};

static inline void et_waiter_init(struct et_waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = 0;
}

static inline void et_waiter_signal(struct et_waiter *w)
{
	pthread_mutex_lock(&w->lock);
	w->done++;
	w->thread_seen = pthread_self();
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static inline void et_waiter_wait(struct et_waiter *w, unsigned n)
{
	pthread_mutex_lock(&w->lock);
	while (w->done < n)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static inline int et_pread_all(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t r = pread(fd, buf, len, (off_t)off);
	close(fd);
	if (r < 0)
		return -errno;
	if ((size_t)r < len)
		memset((uint8_t *)buf + r, 0, len - (size_t)r);
	return 0;
}

#endif
