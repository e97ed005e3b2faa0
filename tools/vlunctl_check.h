/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_check.h — `vlunctl pool check` and `vlunctl pool repair`
 * (vlunctl_check.c), called by vlunctl.c with the expanded pool spec.
 */
#ifndef VLUNCTL_CHECK_H
#define VLUNCTL_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* check (repair false): reports every metadata copy on every member and
 * returns 0 when all is well, 1 when anything is bad, stale or missing.
 * repair: rewrites bad and stale copies from the newest valid metadata
 * (one checkpoint on every present member); refuses while a running
 * handler holds the pool, and without force when members are missing.
 * Returns vlunctl's exit status. */
int vlunctl_check(char *const *paths, size_t npaths, bool repair, bool force, bool json);

#endif
