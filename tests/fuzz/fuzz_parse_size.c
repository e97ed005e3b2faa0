/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_parse_size — vlun_parse_size against an independent model of the
 * grammar at the top of lib/util.c (digits, optional fraction, unit), in
 * 128-bit arithmetic: the parser accepts exactly what the model accepts,
 * with the same value, and tells overflow (-ERANGE) from junk (-EINVAL).
 * Also: vlun_format_size never overflows its buffer.
 */
#include <string.h>

#include "fuzz.h"
#include "vlun.h"

typedef unsigned __int128 u128;

/* The model: 0 and *ret, -EINVAL or -ERANGE; EITHER when the number
 * is both too large and not a whole number of bytes (the grammar does not
 * rank the two). */
#define EITHER 1
static int model(const char *s, uint64_t *ret)
{
	const char *p = s, *u;
	u128 whole = 0, frac = 0, div = 1, v;
	bool big = false, have_frac = false, whole_only = false;
	unsigned shift = 0, nfrac = 0;
	char c;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (u128)(*p - '0');
		if (whole > UINT64_MAX)
			big = true, whole = (u128)UINT64_MAX + 1; /* stays "too big" */
	}
	if (*p == '.') {
		have_frac = true;
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (++nfrac > 18)
				return -EINVAL;
			frac = frac * 10 + (u128)(*p - '0');
			div *= 10;
		}
	}
	/* unit */
	u = p;
	c = (char)(*u >= 'A' && *u <= 'Z' ? *u + 32 : *u);
	if (*u == '\0' || (c == 'b' && u[1] == '\0')) {
		whole_only = true;
	} else if (c == 's' && u[1] == '\0') {
		shift = 9;
		whole_only = true;
	} else {
		const char *pre = "kmgtpe", *q = c ? strchr(pre, c) : NULL;

		if (!q)
			return -EINVAL;
		shift = 10u * (unsigned)(q - pre + 1);
		u++;
		if (*u == 'i' || *u == 'I')
			u++;
		if (*u == 'b' || *u == 'B')
			u++;
		if (*u)
			return -EINVAL;
	}
	if (have_frac && whole_only)
		return -EINVAL;
	bool inexact = have_frac && ((frac << shift) % div) != 0;

	/* whole <= 2^64 and shift <= 60: fits in 128 bits */
	v = (whole << shift) + (have_frac ? (frac << shift) / div : 0);
	if (big || v > UINT64_MAX)
		return inexact ? EITHER : -ERANGE;
	if (inexact)
		return -EINVAL;
	*ret = (uint64_t)v;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[128], buf[32];
	uint64_t got = 0, want = 0;
	int r, m;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	r = vlun_parse_size(s, &got);
	m = model(s, &want);
	if (m == EITHER)
		FUZZ_CHECK(r == -EINVAL || r == -ERANGE, "'%s': parser says %d, expected -EINVAL or -ERANGE", s, r);
	else
		FUZZ_CHECK(r == m, "'%s': parser says %d, model %d", s, r, m);
	if (r == 0)
		FUZZ_CHECK(got == want, "'%s': parser %llu, model %llu", s, (unsigned long long)got,
			   (unsigned long long)want);
	if (size >= 8) {
		uint64_t v;

		memcpy(&v, data, 8);
		memset(buf, 0x5a, sizeof(buf));
		vlun_format_size(v, buf, (size_t)(data[0] % 24) + 1);
		FUZZ_CHECK(buf[24] == 0x5a, "format_size wrote past its length");
	}
	return 0;
}
