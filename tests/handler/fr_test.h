/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fr_test.h — cmocka glue for the handler tests. Include after cmocka.h. */
#ifndef VLUN_FR_TEST_H
#define VLUN_FR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_runner.h"

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

#endif
