/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_mirror.h — `vlunctl mirror add|remove|split`, `migrate`,
 * `resync`, `jobs`, `job cancel`, `member fault` and the mirror/job part of
 * `pool show` (vlunctl_mirror.c), and what they use from vlunctl.c.
 */
#ifndef VLUNCTL_MIRROR_H
#define VLUNCTL_MIRROR_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "vlun.h"

/* The options of these commands (vlunctl.c's parse_args fills them). */
struct vlunctl_mirror_opts {
	const char *range;      /* --range OFF:LEN */
	const char *members;    /* --members I,J (mirror add; vlunctl.c's own option) */
	const char *member;     /* --member I (mirror remove) */
	const char *off_member; /* --off-member I (migrate) */
	const char *to;         /* --to I,J (migrate) */
	const char *rate;       /* --rate SIZE (per second) */
	bool wait;              /* --wait */
	bool watch;             /* --watch */
	bool json;              /* --json */
};

struct ctx; /* vlunctl.c's command context, opaque here */

/* What a command of vlunctl_mirror.c gets from vlunctl.c. The pool fields
 * point into the context: they are set by open_pool() and replaced by
 * refresh_desc(). */
struct vlunctl_mirror_env {
	struct ctx *ctx;
	const char *group, *verb;     /* the command words */
	char **args;                  /* positional arguments after the pool spec */
	int nargs;
	const struct vlunctl_mirror_opts *o;
	struct vlun_pool **pool;      /* locked pool, or a read-only view when remote */
	struct vlun_pool_desc **desc;
	const bool *remote;           /* held: the holder makes the changes */
	const char *pool_label;       /* "pool 'p0'" */
	char ***paths;                /* expanded pool spec (set by open_pool) */
	const size_t *npaths;
};

/* Runs one of the commands above; returns vlunctl's exit status. */
int vlunctl_mirror_run(const struct vlunctl_mirror_env *e);

/* pool show: per vdisk its generation, mirrored/behind bytes and members
 * (failed ones marked), then the persistent jobs; as text, or added to the
 * JSON object of pool show (fields of "vdisks" entries, and "jobs"). */
void vlunctl_mirror_show_text(const struct vlun_pool_desc *d);
void vlunctl_mirror_show_json(const struct vlun_pool_desc *d, json_object *pool);

/* A job's progress line as `vlunctl jobs` and `migrate --wait` print it:
 * "job 3 rollback 'src' from snapshot 's1': running  42.0%  420 MiB /
 * 1.0 GiB, 48.2 MiB/s, ETA 0:12" (vlunctl_snap.c's rollback uses it). */
void vlunctl_job_line(const struct vlun_job_info *j, char *buf, size_t len);
/* Parses the payload of the holder's "jobs" reply (lib/ctl.h) into *ret
 * (caller frees). 0 or -ENOMEM. */
int vlunctl_parse_jobs(const char *payload, struct vlun_job_info **ret, size_t *ret_n);

/* ---- vlunctl.c, used here */
int fail(int code, const char *why, const char *todo, const char *what_fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *lib_why(const char *reason, int r);
int exit_for_errno(int r);
const char *hint_for_errno(int r);
/* Opens the pool of the command: locked when it is free, a read-only view
 * (and *remote set) when a holder answers on the control channel. Exit
 * status after a message, 0 ok. */
int open_pool(struct ctx *c, const char *action);
/* Sends request to the holder; *ret_payload (when not NULL) gets a query's
 * payload. 0, or an exit status after "<what>: <the holder's reason>...";
 * busy_todo: what to do on EBUSY (NULL: the general hint). */
int remote_query(struct ctx *c, const char *request, const char *what, const char *busy_todo,
		 char **ret_payload);
/* Re-reads the description (from the newest committed metadata when the
 * pool is held elsewhere). 0 or negative errno. */
int refresh_desc(struct ctx *c);
/* " (done by the running tcmu-runner, pid N)" after a change the holder
 * made, "" otherwise. */
const char *done_by(const struct ctx *c, char *buf, size_t len);

#endif
