/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * util.c — sizes, names and UUIDs.
 *
 * Size grammar (vlun_parse_size), strict:
 *   size   := digits [ "." digits ] [ unit ]
 *   unit   := "s"                      512-byte sectors (no fraction)
 *           | "b"                      bytes (no fraction), same as no unit
 *           | ( "k"|"m"|"g"|"t"|"p"|"e" ) [ "i" ] [ "b" ]   binary: 2^10..2^60
 * Units are case-insensitive. No sign, no spaces, no empty parts ("1.",
 * ".5"), at most 18 fraction digits. A fraction must give a whole number of
 * bytes ("1.5K" = 1536, "1.1K" is rejected). Overflow of uint64_t is
 * -ERANGE, everything else malformed -EINVAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int unit_shift(const char *u, unsigned *ret_shift, bool *ret_whole_only)
{
	static const char prefixes[] = "kmgtpe";
	const char *p;
	char c = (char)(*u | 0x20);

	if (*u == '\0' || ((c == 'b') && u[1] == '\0')) {
		*ret_shift = 0;
		*ret_whole_only = true;
		return 0;
	}
	if (c == 's' && u[1] == '\0') {
		*ret_shift = VLUN_SECTOR_SHIFT;
		*ret_whole_only = true;
		return 0;
	}
	p = (*u >= 'A' && *u <= 'z') ? strchr(prefixes, c) : NULL;
	if (!p || c == '\0')
		return -EINVAL;
	u++;
	if ((*u | 0x20) == 'i')
		u++;
	if ((*u | 0x20) == 'b')
		u++;
	if (*u != '\0')
		return -EINVAL;
	*ret_shift = 10u * (unsigned)(p - prefixes + 1);
	*ret_whole_only = false;
	return 0;
}

VLUN_EXPORT int vlun_parse_size(const char *s, uint64_t *ret_bytes)
{
	uint64_t whole = 0, frac = 0, frac_div = 1, bytes;
	unsigned shift, nfrac = 0;
	bool whole_only, have_frac = false, too_big = false;
	const char *p = s;
	int r;

	if (!s || !ret_bytes)
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		/* keep going: malformed input is -EINVAL even when its digits overflow */
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
			too_big = true;
	}
	if (*p == '.') {
		have_frac = true;
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (++nfrac > 18)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
			frac_div *= 10;
		}
	}
	r = unit_shift(p, &shift, &whole_only);
	if (r < 0)
		return r;
	if (have_frac && whole_only)
		return -EINVAL;
	if (too_big)
		return -ERANGE;

	if (shift > 0 && (whole >> (64 - shift)) != 0)
		return -ERANGE;
	bytes = whole << shift;
	if (have_frac) {
		unsigned __int128 f = (unsigned __int128)frac << shift;

		if (f % frac_div != 0)
			return -EINVAL; /* not a whole number of bytes */
		f /= frac_div;
		if (f > UINT64_MAX || __builtin_add_overflow(bytes, (uint64_t)f, &bytes))
			return -ERANGE;
	}
	*ret_bytes = bytes;
	return 0;
}

VLUN_EXPORT const char *vlun_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned i = 0;
	uint64_t unit = 1;

	if (!buf || len == 0)
		return buf;
	while (i + 1 < VLUN_ARRAY_SIZE(units) && bytes >= (unit << 10)) {
		unit <<= 10;
		i++;
	}
	if (bytes % unit == 0) {
		snprintf(buf, len, "%llu %s", (unsigned long long)(bytes / unit), units[i]);
	} else {
		/* One decimal, truncated (never shows more than there is). */
		unsigned __int128 tenths = (unsigned __int128)bytes * 10 / unit;

		snprintf(buf, len, "%llu.%u %s", (unsigned long long)(tenths / 10),
			 (unsigned)(tenths % 10), units[i]);
	}
	return buf;
}

/* Names: 1..VLUN_NAME_MAX of [A-Za-z0-9._-]; "." and ".." are refused
 * because names may end up as path components. */
VLUN_EXPORT bool vlun_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strlen(name);
	if (n == 0 || n > VLUN_NAME_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool fill_random(uint8_t *buf, size_t n)
{
	size_t done = 0;
	int fd;

	while (done < n) {
		ssize_t k = getrandom(buf + done, n - done, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		done += (size_t)k;
	}
	if (done == n)
		return true;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	done = 0;
	while (done < n) {
		ssize_t k = read(fd, buf + done, n - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		done += (size_t)k;
	}
	close(fd);
	return done == n;
}

/* Random (version 4) UUID. */
VLUN_EXPORT void vlun_uuid_generate(uint8_t out[VLUN_UUID_LEN])
{
	if (!fill_random(out, VLUN_UUID_LEN)) {
		/* Both getrandom() and /dev/urandom failed: fall back to a
		 * weak source rather than produce a constant UUID. */
		static uint64_t counter;
		struct timespec ts;
		uint64_t a, b;

		clock_gettime(CLOCK_REALTIME, &ts);
		a = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		b = ((uint64_t)getpid() << 32) ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^
		    (uint64_t)(uintptr_t)&ts;
		vlun_put_le64(out, a * 0x9e3779b97f4a7c15ull);
		vlun_put_le64(out + 8, b * 0xc2b2ae3d27d4eb4full ^ a);
		vlun_warn("no random source (getrandom and /dev/urandom failed): UUID from time and pid");
	}
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

VLUN_EXPORT void vlun_uuid_format(const uint8_t u[VLUN_UUID_LEN], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < VLUN_UUID_LEN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 0xf];
	}
	out[o] = '\0';
}

/* The value of one hex digit of either case, -1 for anything else. */
int vlun_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Canonical 8-4-4-4-12 form, exactly 36 characters; hex digits of either
 * case are accepted (vlun_uuid_format writes lower case). */
VLUN_EXPORT int vlun_uuid_parse(const char *s, uint8_t out[VLUN_UUID_LEN])
{
	uint8_t u[VLUN_UUID_LEN];
	size_t o = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = vlun_hexval(s[i]);
		lo = vlun_hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u[o++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(out, u, sizeof(u));
	return 0;
}
