/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.c — the only way libvlun reports anything: a callback set with
 * vlun_set_log(). Until one is set, WARN and above go to stderr prefixed
 * with "vlun: ". vlun_set_log(NULL, ...) silences the library.
 *
 * The sink is copied under a mutex on every message that passes the level
 * check; messages are rare (errors, assembly, admin actions), never per I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_custom;                 /* vlun_set_log() was called */
static vlun_log_fn log_fn;              /* NULL with log_custom: silenced */
static void *log_userdata;
static enum vlun_log_level log_max = VLUN_LOG_WARN;

VLUN_EXPORT void vlun_set_log(vlun_log_fn fn, enum vlun_log_level max_level, void *userdata)
{
	pthread_mutex_lock(&log_lock);
	log_custom = true;
	log_fn = fn;
	log_userdata = userdata;
	log_max = max_level;
	pthread_mutex_unlock(&log_lock);
}

static const char *level_name(enum vlun_log_level level)
{
	switch (level) {
	case VLUN_LOG_ERR: return "error";
	case VLUN_LOG_WARN: return "warning";
	case VLUN_LOG_INFO: return "info";
	case VLUN_LOG_DEBUG: return "debug";
	}
	return "log";
}

void vlun_log(enum vlun_log_level level, const char *fmt, ...)
{
	bool custom;
	vlun_log_fn fn;
	void *userdata;
	enum vlun_log_level max;
	char buf[1024];
	va_list ap;
	int saved_errno = errno;

	pthread_mutex_lock(&log_lock);
	custom = log_custom;
	fn = log_fn;
	userdata = log_userdata;
	max = log_max;
	pthread_mutex_unlock(&log_lock);

	if (level > max || (custom && !fn))
		goto out;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	if (custom)
		fn(level, buf, userdata);
	else
		fprintf(stderr, "vlun: %s: %s\n", level_name(level), buf);
out:
	errno = saved_errno;
}

void vlun_set_reason(char **ret, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	if (!ret)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	/* On allocation failure the caller still sees that it failed (its
	 * return code); a NULL reason is the documented "no detail". */
	*ret = s;
}
