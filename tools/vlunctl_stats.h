/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_stats.h — `vlunctl stats` (vlunctl_stats.c), called by vlunctl.c
 * once the pool is open read-only, and what it uses from vlunctl.c.
 */
#ifndef VLUNCTL_STATS_H
#define VLUNCTL_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "vlun.h"

struct vlunctl_stats_opts {
	const char *vdisk;    /* --vdisk NAME: only this vdisk */
	bool json;            /* --json */
	bool prometheus;      /* --prometheus */
	const char *interval; /* --interval S: rates over S seconds; NULL = cumulative */
	const char *count;    /* --count N: N reports (with --interval); NULL = until interrupted */
};

/* Asks the process holding the pool (paths: its members) for its I/O
 * statistics and prints them. Returns vlunctl's exit status, after a
 * one-line message on failure. */
int vlunctl_stats(const struct vlun_pool_desc *desc, char *const *paths, size_t npaths,
		  const struct vlunctl_stats_opts *o);

/* vlunctl.c: prints "vlunctl: <what>: <why>. <todo>" and returns code. */
int fail(int code, const char *why, const char *todo, const char *what_fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
