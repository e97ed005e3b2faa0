/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_snap.h — `vlunctl snapshot create|list|delete|rollback|reserve`
 * and the snapshot part of `pool show` / `vdisk list` (vlunctl_snap.c).
 * The helpers vlunctl.c gives these commands are declared in
 * vlunctl_mirror.h (open_pool, remote_query, fail, ...).
 */
#ifndef VLUNCTL_SNAP_H
#define VLUNCTL_SNAP_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "vlun.h"

/* The options of these commands (vlunctl.c's parse_args fills them). */
struct vlunctl_snap_opts {
	const char *reserve;  /* --reserve SIZE (create) */
	const char *chunk;    /* --chunk SIZE (create; vlunctl.c's own option) */
	const char *on_full;  /* --on-full fail-snapshot|fail-write (create, reserve) */
	const char *size;     /* --size SIZE (reserve; vlunctl.c's own option) */
	bool json;            /* --json (list) */
};

struct ctx; /* vlunctl.c's command context, opaque here */

/* What a command of vlunctl_snap.c gets from vlunctl.c (the pool fields
 * point into the context, as for vlunctl_mirror_env). */
struct vlunctl_snap_env {
	struct ctx *ctx;
	const char *verb;             /* create, list, delete, rollback, reserve */
	char **args;                  /* positional arguments after the pool spec */
	int nargs;
	const struct vlunctl_snap_opts *o;
	struct vlun_pool **pool;      /* locked pool, or a read-only view when remote */
	struct vlun_pool_desc **desc;
	const bool *remote;           /* held: the holder makes the changes */
	const char *pool_label;       /* "pool 'p0'" */
	char ***paths;
	const size_t *npaths;
};

/* Runs one of the commands above; returns vlunctl's exit status. */
int vlunctl_snap_run(const struct vlunctl_snap_env *e);

/* The source whose snapshot reserve v is (NULL: v is not a reserve). */
const char *vlunctl_snap_reserve_of(const struct vlun_pool_desc *d, const struct vlun_vdisk_desc *v);
/* Sessions of the vdisk with id source_id in the description. */
uint32_t vlunctl_snap_count(const struct vlun_pool_desc *d, uint32_t source_id);
/* pool show: the snapshot sessions per source (text), or "snapshots" added
 * to the JSON object of pool show. */
void vlunctl_snap_show_text(const struct vlun_pool_desc *d);
void vlunctl_snap_show_json(const struct vlun_pool_desc *d, json_object *pool);

#endif
