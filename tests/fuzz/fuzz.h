/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h — shared bits of the libFuzzer targets (see docs/fuzzing.md).
 *
 * A target is LLVMFuzzerTestOneInput() plus, where it needs state, an
 * LLVMFuzzerInitialize(). A broken invariant is reported with FUZZ_CHECK,
 * which prints what failed and aborts, so libFuzzer saves the input as a
 * crash artifact like any sanitizer report.
 */
#ifndef VLUN_FUZZ_H
#define VLUN_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                             \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz: %s:%d: invariant '%s' broken: ", __FILE__,  \
				__LINE__, #cond);                                         \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* A reader over the fuzz input: takes bytes from the front, zeros once it
 * runs out (so every input means something). */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | fuzz_u8(in);
	return v;
}

/* Up to n bytes (fewer when the input ends); returns how many. */
static inline size_t fuzz_take(struct fuzz_in *in, const uint8_t **ret, size_t n)
{
	if (n > in->left)
		n = in->left;
	*ret = in->p;
	in->p += n;
	in->left -= n;
	return n;
}

#endif
