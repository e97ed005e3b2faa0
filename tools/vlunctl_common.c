/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_common.c — helpers shared by vlunctl_mirror.c and vlunctl_snap.c
 * (see vlunctl_common.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vlun.h"
#include "vlunctl_common.h"

char *vlunctl_fmt(uint64_t bytes, char *buf, size_t len)
{
	vlun_format_size(bytes, buf, len);
	return buf;
}

double vlunctl_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vlunctl_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void vlunctl_copy_str(char *dst, size_t len, const char *src)
{
	size_t l = strlen(src);

	if (l >= len)
		l = len - 1;
	memcpy(dst, src, l);
	dst[l] = '\0';
}

uint64_t vlunctl_to_u64(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	return errno || *end ? 0 : v;
}

/* %XX decoding of a reply value; %00 ends it (stats.c: "never empty"). */
static void unescape(const char *s, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < len; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = { s[i + 1], s[i + 2], '\0' };
			int ch = (int)strtol(hex, NULL, 16);

			if (ch == 0)
				break;
			out[o++] = (char)ch;
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
}

int vlunctl_parse_records(const char *payload, const char *prefix, size_t rec_size, void (*init)(void *rec),
			  void (*field)(void *rec, const char *key, const char *val), void **ret, size_t *ret_n)
{
	size_t plen = strlen(prefix);
	char *v = NULL;
	size_t n = 0;
	const char *line = payload;

	while (*line) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);

		if (ll > plen && strncmp(line, prefix, plen) == 0) {
			const char *w = line + plen, *end = line + ll;
			char *nv = realloc(v, (n + 1) * rec_size);
			void *rec;

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			rec = v + n * rec_size;
			init(rec);
			while (w < end) {
				const char *sp = memchr(w, ' ', (size_t)(end - w));
				const char *we = sp ? sp : end;
				const char *eq = memchr(w, '=', (size_t)(we - w));
				char key[24], val[256];

				if (eq && (size_t)(eq - w) < sizeof(key)) {
					memcpy(key, w, (size_t)(eq - w));
					key[eq - w] = '\0';
					unescape(eq + 1, (size_t)(we - eq - 1), val, sizeof(val));
					field(rec, key, val);
				}
				w = sp ? sp + 1 : end;
			}
			n++;
		}
		if (!eol)
			break;
		line = eol + 1;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
