/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fr_test.h — cmocka glue for the handler tests. Include after cmocka.h. */
#ifndef VLUN_FR_TEST_H
#define VLUN_FR_TEST_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fake_runner.h"
#include "vlun.h"

#define KEY_MEDIUM_ERROR 0x3
#define KEY_HARDWARE_ERROR 0x4
#define KEY_ILLEGAL_REQUEST 0x5
#define KEY_DATA_PROTECT 0x7
#define KEY_MISCOMPARE 0xe

/* The command completed with GOOD status. */
#define EXPECT_GOOD(res)                                                                  \
	do {                                                                              \
		if ((res).sts != TCMU_STS_OK)                                            \
			print_error("status %d, sense %x/%02x/%02x\n", (res).sts, (res).key, \
				    (res).asc, (res).ascq);                               \
		assert_int_equal((res).sts, TCMU_STS_OK);                                 \
	} while (0)

/* The command ended in CHECK CONDITION with exactly this sense. */
#define EXPECT_SENSE(res, k, a, q)                                                        \
	do {                                                                              \
		if (!(res).check || (res).key != (k) || (res).asc != (a) || (res).ascq != (q)) \
			print_error("expected sense %x/%02x/%02x, got sts %d check %d %x/%02x/%02x\n", \
				    (unsigned)(k), (unsigned)(a), (unsigned)(q), (res).sts,   \
				    (res).check, (res).key, (res).asc, (res).ascq);       \
		assert_true((res).check);                                                 \
		assert_int_equal((res).key, (k));                                         \
		assert_int_equal((res).asc, (a));                                         \
		assert_int_equal((res).ascq, (q));                                        \
	} while (0)

/* Obsolete: tests used to skip under valgrind because valgrind 3.19
 * cannot follow io_uring; the engine now runs on its worker-thread backend
 * there (lib/io.h), so every test runs under valgrind. Kept as a no-op
 * until the last caller drops it. */
static inline void fr_skip_under_valgrind(void)
{
}

/* Loads the handler or exits 77 (skip) when it was not built. */
static inline void fr_load_or_skip(void)
{
	int r = fr_load();

	if (r == FR_SKIP)
		exit(77);
	if (r != 0)
		exit(1);
}

/* xorshift64: the tests' reproducible random numbers (*x not 0). */
static inline uint64_t fr_rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A control request to the pool's holder (this process: the handler);
 * fails the test when it is refused. */
static inline void fr_ctl(const uint8_t *uuid, const char *req)
{
	char *why = NULL;
	int r = vlun_ctl_request(uuid, req, &why);

	if (r < 0)
		fail_msg("control request '%s': %s (%s)", req, strerror(-r), why ? why : "");
	free(why);
}

/* Opens vdisk name ("src", "src@s1;rw") of the pool in dir as a LUN of
 * num_lbas blocks of block_size; fails the test when open fails. */
static inline struct tcmu_device *fr_lun_open(const char *dir, const char *name, uint64_t num_lbas,
					      uint32_t block_size)
{
	char cfg[PATH_MAX + 96];
	struct tcmu_device *d;

	snprintf(cfg, sizeof(cfg), "vlun/%s/%s", dir, name);
	d = fr_dev_new(cfg, num_lbas, block_size);
	assert_non_null(d);
	if (fr_dev_open(d) != 0)
		fail_msg("opening '%s' failed", cfg);
	return d;
}

static inline void fr_lun_close(struct tcmu_device *d)
{
	fr_dev_close(d);
	fr_dev_free(d);
}

/* The uuid of the pool in dir, from a read-only view (the handler may hold
 * the pool: same process, same object). */
static inline void fr_pool_uuid(const char *dir, uint8_t *uuid)
{
	char **paths = NULL, *why = NULL;
	size_t np = 0;
	struct vlun_pool *p = NULL;
	struct vlun_pool_desc *d = NULL;

	assert_int_equal(vlun_pool_spec_expand(dir, &paths, &np, &why), 0);
	assert_int_equal(vlun_pool_open(paths, np, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK, &p, &why), 0);
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	memcpy(uuid, d->uuid, VLUN_UUID_LEN);
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	vlun_strv_free(paths, np);
}

#endif
