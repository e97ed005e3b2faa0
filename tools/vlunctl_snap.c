/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_snap.c — copy-on-first-write snapshot sessions:
 *
 *   vlunctl snapshot create POOL SOURCE NAME [--reserve SIZE] [--chunk SIZE]
 *                                            [--on-full fail-snapshot|fail-write]
 *   vlunctl snapshot list POOL [SOURCE] [--json]
 *   vlunctl snapshot delete POOL SOURCE NAME
 *   vlunctl snapshot rollback POOL SOURCE NAME
 *   vlunctl snapshot reserve POOL SOURCE [--size SIZE] [--on-full POLICY]
 *
 * and the snapshot part of `pool show` / `vdisk list` (reserve vdisks are
 * marked with the source they belong to).
 *
 * Like the mirror commands, a change is made by the process holding the
 * pool when one does (control channel, lib/ctl.h: verbs snapshot-create,
 * snapshot-delete, snapshot-rollback, snapshot-reserve, snapshot-list);
 * otherwise vlunctl opens the pool with the lock and calls the library
 * itself. `snapshot list` asks the holder (it knows which sessions are open
 * and what the reserve holds); with no holder it opens the pool with the
 * lock like a change (the library reads the reserves' tables only then)
 * and asks the library; if that fails, it shows what the metadata records
 * (usage "?").
 *
 * Rollback copies the session's saved chunks back onto the source and can
 * take a while; the library lists it as a job (VLUN_JOB_ROLLBACK). Here it
 * runs on a thread of its own while this one shows the job's progress line
 * (as `vlunctl migrate` does: done / total, %, MiB/s, ETA) from
 * vlun_jobs_list(); a holder is asked with wait=0 (it rolls back on a
 * thread of its own and answers at once with the job id) and its "jobs"
 * are polled until the job is done or failed. The line is refreshed in
 * place on a terminal, else printed every 2 seconds, and the last one.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl.h"
#include "vlun.h"
#include "vlunctl_common.h"
#include "vlunctl_mirror.h"
#include "vlunctl_snap.h"

/* enum vlunctl_exit of vlunctl.c */
#define SX_EXIT_FAIL 1
#define SX_EXIT_USAGE 2
#define SX_EXIT_NOTFOUND 3
#define SX_EXIT_INUSE 4

#define PROGRESS_PIPE_SECONDS 2.0 /* stdout not a terminal: a line this often (as migrate) */

/* ------------------------------------------------------------ helpers */

static const char *policy_name(uint32_t p)
{
	return p == VLUN_SNAP_FULL_FAIL_WRITE ? "fail-write" : "fail-snapshot";
}

static const struct vlun_vdisk_desc *vdisk_by_name(const struct vlun_pool_desc *d, const char *name)
{
	for (uint32_t i = 0; d && i < d->nvdisks; i++)
		if (strcmp(d->vdisks[i].name, name) == 0)
			return &d->vdisks[i];
	return NULL;
}

static const struct vlun_vdisk_desc *vdisk_by_id(const struct vlun_pool_desc *d, uint32_t id)
{
	for (uint32_t i = 0; d && i < d->nvdisks; i++)
		if (d->vdisks[i].id == id)
			return &d->vdisks[i];
	return NULL;
}

static const struct vlun_snap_store_desc *store_of(const struct vlun_pool_desc *d, uint32_t source_id)
{
	for (uint32_t i = 0; d && i < d->nsnap_stores; i++)
		if (d->snap_stores[i].source_id == source_id)
			return &d->snap_stores[i];
	return NULL;
}

static const struct vlun_snap_desc *snap_by_name(const struct vlun_pool_desc *d, uint32_t source_id,
						 const char *name)
{
	for (uint32_t i = 0; d && i < d->nsnaps; i++)
		if (d->snaps[i].source_id == source_id && strcmp(d->snaps[i].name, name) == 0)
			return &d->snaps[i];
	return NULL;
}

const char *vlunctl_snap_reserve_of(const struct vlun_pool_desc *d, const struct vlun_vdisk_desc *v)
{
	if (!(v->flags & VLUN_VDISK_SNAP_RESERVE))
		return NULL;
	for (uint32_t i = 0; i < d->nsnap_stores; i++)
		if (d->snap_stores[i].reserve_id == v->id) {
			const struct vlun_vdisk_desc *s = vdisk_by_id(d, d->snap_stores[i].source_id);

			return s ? s->name : "?";
		}
	return "?";
}

uint32_t vlunctl_snap_count(const struct vlun_pool_desc *d, uint32_t source_id)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < d->nsnaps; i++)
		n += d->snaps[i].source_id == source_id;
	return n;
}

static void when(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || !gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "?");
}

/* --on-full POLICY */
static int parse_policy(const char *s, int *ret)
{
	if (strcmp(s, "fail-snapshot") == 0)
		*ret = VLUN_SNAP_FULL_FAIL_SNAPSHOT;
	else if (strcmp(s, "fail-write") == 0)
		*ret = VLUN_SNAP_FULL_FAIL_WRITE;
	else
		return fail(SX_EXIT_USAGE, "not a policy",
			    "Say --on-full fail-snapshot (the sessions fail, source writes go on; the default) or --on-full fail-write (source writes fail, the sessions stay)",
			    "invalid --on-full '%s'", s);
	return 0;
}

static int parse_size_opt(const char *opt, const char *s, bool allow_zero, uint64_t *ret)
{
	uint64_t v;
	int r = vlun_parse_size(s, &v);

	if (r < 0)
		return fail(SX_EXIT_USAGE, r == -ERANGE ? "too large" : "not a size",
			    "Give bytes with a binary unit, e.g. 512M, 2G, 64K", "invalid %s '%s'", opt, s);
	if (!allow_zero && v == 0)
		return fail(SX_EXIT_USAGE, "zero", "Give a size above zero", "invalid %s '%s'", opt, s);
	if (v % VLUN_SECTOR_SIZE)
		return fail(SX_EXIT_USAGE, "not a multiple of 512 bytes", "Round it to whole 512-byte sectors",
			    "invalid %s '%s'", opt, s);
	*ret = v;
	return 0;
}

static int check_name(const char *what, const char *name)
{
	if (!vlun_name_valid(name))
		return fail(SX_EXIT_USAGE, "invalid name", "Use 1 to 63 characters from A-Z a-z 0-9 . _ -",
			    "%s '%s'", what, name);
	return 0;
}

/* The source vdisk by name, or NULL after a message (exit code in *ret_code). */
static const struct vlun_vdisk_desc *need_source(const struct vlunctl_snap_env *e, const char *name,
						 const char *action, int *ret_code)
{
	const struct vlun_vdisk_desc *v = vdisk_by_name(*e->desc, name);

	if (!v) {
		*ret_code = fail(SX_EXIT_NOTFOUND, "no such vdisk", "'vlunctl vdisk list <pool-spec>' shows the vdisks",
				 "%s in %s", action, e->pool_label);
		return NULL;
	}
	if (v->flags & VLUN_VDISK_SNAP_RESERVE) {
		*ret_code = fail(SX_EXIT_USAGE, "it is the snapshot reserve of another vdisk",
				 "Name the source vdisk itself ('vlunctl snapshot list <pool-spec>')", "%s in %s", action,
				 e->pool_label);
		return NULL;
	}
	return v;
}

static const struct vlun_snap_desc *need_snap(const struct vlunctl_snap_env *e, const struct vlun_vdisk_desc *src,
					      const char *name, const char *action, int *ret_code)
{
	const struct vlun_snap_desc *s = snap_by_name(*e->desc, src->id, name);

	if (!s)
		*ret_code = fail(SX_EXIT_NOTFOUND, "no such snapshot",
				 "'vlunctl snapshot list <pool-spec> <source>' shows the snapshots of a vdisk",
				 "%s: vdisk '%s' in %s", action, src->name, e->pool_label);
	return s;
}

/* A failed library call (local) with what to do, by errno. */
static int lib_failed(const struct vlunctl_snap_env *e, int r, char *reason, const char *action, const char *busy_todo)
{
	const char *todo = hint_for_errno(r);

	if (r == -EBUSY && busy_todo)
		todo = busy_todo;
	r = fail(exit_for_errno(r), lib_why(reason, r), todo, "%s in %s", action, e->pool_label);
	free(reason);
	return r;
}

/* The pool opened for action and the source vdisk looked up. 0, or an
 * exit status after a message. */
static int open_source(const struct vlunctl_snap_env *e, const char *source, const char *action,
		       const struct vlun_vdisk_desc **ret_src)
{
	const struct vlun_vdisk_desc *src;
	int r;

	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (!(src = need_source(e, source, action, &r)))
		return r;
	*ret_src = src;
	return 0;
}

/* The start of delete and rollback: the names checked, the pool opened for
 * action, the source and its snapshot looked up. 0, or an exit status
 * after a message; ret_snap may be NULL. */
static int open_session(const struct vlunctl_snap_env *e, const char *source, const char *name, const char *action,
			const struct vlun_vdisk_desc **ret_src, const struct vlun_snap_desc **ret_snap)
{
	const struct vlun_vdisk_desc *src = NULL;
	const struct vlun_snap_desc *snap;
	int r;

	if ((r = check_name("source vdisk", source)) || (r = check_name("snapshot name", name)))
		return r;
	r = open_source(e, source, action, &src);
	if (r)
		return r;
	if (!(snap = need_snap(e, src, name, action, &r)))
		return r;
	*ret_src = src;
	if (ret_snap)
		*ret_snap = snap;
	return 0;
}

/* ------------------------------------------------------------ list payload */

static void snap_init(void *rec)
{
	memset(rec, 0, sizeof(struct vlun_snapshot_info));
}

static void snap_field(void *rec, const char *key, const char *val)
{
	struct vlun_snapshot_info *s = rec;

	if (strcmp(key, "id") == 0)
		s->d.id = (uint32_t)vlunctl_to_u64(val);
	else if (strcmp(key, "source") == 0)
		vlunctl_copy_str(s->source, sizeof(s->source), val);
	else if (strcmp(key, "name") == 0)
		vlunctl_copy_str(s->d.name, sizeof(s->d.name), val);
	else if (strcmp(key, "bit") == 0)
		s->d.bit = (uint32_t)vlunctl_to_u64(val);
	else if (strcmp(key, "state") == 0)
		s->d.state = strcmp(val, "failed") == 0 ? VLUN_SNAP_FAILED : VLUN_SNAP_ACTIVE;
	else if (strcmp(key, "flags") == 0)
		s->d.flags = (uint32_t)vlunctl_to_u64(val);
	else if (strcmp(key, "created") == 0)
		s->d.created = vlunctl_to_u64(val);
	else if (strcmp(key, "chunk") == 0)
		s->chunk_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "saved") == 0)
		s->saved_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "shared") == 0)
		s->shared_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "reserve_used") == 0)
		s->reserve_used_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "reserve_total") == 0)
		s->reserve_total_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "policy") == 0)
		s->full_policy = strcmp(val, "fail-write") == 0 ? VLUN_SNAP_FULL_FAIL_WRITE : VLUN_SNAP_FULL_FAIL_SNAPSHOT;
	else if (strcmp(key, "open") == 0)
		s->open = strcmp(val, "1") == 0;
	else if (strcmp(key, "why") == 0)
		vlunctl_copy_str(s->d.why, sizeof(s->d.why), val);
}

/* Parses the payload of "snapshot-list" (lib/ctl.h) into *ret. */
static int parse_list(const char *payload, struct vlun_snapshot_info **ret, size_t *ret_n)
{
	void *v;
	int r = vlunctl_parse_records(payload, "snapshot ", sizeof(**ret), snap_init, snap_field, &v, ret_n);

	if (r == 0)
		*ret = v;
	return r;
}

/* What the metadata alone says (no usage). */
static int desc_list(const struct vlun_pool_desc *d, const char *source, struct vlun_snapshot_info **ret,
		     size_t *ret_n)
{
	struct vlun_snapshot_info *v = calloc(d->nsnaps ? d->nsnaps : 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->nsnaps; i++) {
		const struct vlun_vdisk_desc *src = vdisk_by_id(d, d->snaps[i].source_id);
		const struct vlun_snap_store_desc *st = store_of(d, d->snaps[i].source_id);
		const struct vlun_vdisk_desc *res = st ? vdisk_by_id(d, st->reserve_id) : NULL;
		struct vlun_snapshot_info *s = &v[n];

		if (source && (!src || strcmp(src->name, source) != 0))
			continue;
		s->d = d->snaps[i];
		vlunctl_copy_str(s->source, sizeof(s->source), src ? src->name : "?");
		s->chunk_bytes = st ? st->chunk_sectors << VLUN_SECTOR_SHIFT : 0;
		s->reserve_total_bytes = res ? res->size_sectors << VLUN_SECTOR_SHIFT : 0;
		s->full_policy = st ? st->full_policy : VLUN_SNAP_FULL_FAIL_SNAPSHOT;
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The sessions with their usage: from the holder, else the library on our
 * view, else the metadata (*ret_usage false). Exit status after a message,
 * or 0. */
static int get_list(const struct vlunctl_snap_env *e, const char *source, struct vlun_snapshot_info **ret,
		    size_t *ret_n, bool *ret_held, bool *ret_usage)
{
	char req[128], *payload = NULL, *reason = NULL;
	int r;

	*ret_held = false;
	*ret_usage = true;
	snprintf(req, sizeof(req), "snapshot-list%s%s", source ? " source=" : "", source ? source : "");
	r = vlun_ctl_query((*e->desc)->uuid, req, &payload, &reason);
	if (r == 0) {
		*ret_held = true;
		r = parse_list(payload, ret, ret_n);
		free(payload);
		if (r < 0)
			return fail(SX_EXIT_FAIL, strerror(-r), NULL, "cannot list the snapshots of %s", e->pool_label);
		return 0;
	}
	if (r != -ECONNREFUSED) {
		int code = r == -ECONNRESET || r == -ETIMEDOUT || r == -EPROTO ? SX_EXIT_INUSE : exit_for_errno(r);

		r = fail(code, reason ? reason : strerror(-r),
			 r == -EACCES ? "Run vlunctl as root or as the user running tcmu-runner" :
			 r == -EOPNOTSUPP ? "The process holding the pool runs an older vlun without snapshots; update it" :
			 "The process holding the pool did not answer on its control channel; retry",
			 "cannot list the snapshots of %s", e->pool_label);
		free(reason);
		return r;
	}
	free(reason);
	/* nobody serves the pool: the library on our (locked) pool */
	r = vlun_snapshot_list(*e->pool, source, ret, ret_n);
	if (r == 0)
		return 0;
	*ret_usage = false;
	r = desc_list(*e->desc, source, ret, ret_n);
	if (r < 0)
		return fail(SX_EXIT_FAIL, strerror(-r), NULL, "cannot list the snapshots of %s", e->pool_label);
	return 0;
}

/* ------------------------------------------------------------ list */

static json_object *info_json(const struct vlun_snapshot_info *s, bool usage)
{
	json_object *o = json_object_new_object();
	char t[32];

	when(s->d.created, t, sizeof(t));
	json_object_object_add(o, "id", json_object_new_uint64(s->d.id));
	json_object_object_add(o, "source", json_object_new_string(s->source));
	json_object_object_add(o, "name", json_object_new_string(s->d.name));
	json_object_object_add(o, "state", json_object_new_string(s->d.state == VLUN_SNAP_FAILED ? "failed" : "active"));
	json_object_object_add(o, "why", s->d.why[0] ? json_object_new_string(s->d.why) : NULL);
	json_object_object_add(o, "written", json_object_new_boolean(s->d.flags & VLUN_SNAP_WRITTEN));
	json_object_object_add(o, "bit", json_object_new_uint64(s->d.bit));
	json_object_object_add(o, "created", json_object_new_uint64(s->d.created));
	json_object_object_add(o, "created_utc", json_object_new_string(t));
	json_object_object_add(o, "chunk_bytes", json_object_new_uint64(s->chunk_bytes));
	json_object_object_add(o, "saved_bytes", usage ? json_object_new_uint64(s->saved_bytes) : NULL);
	json_object_object_add(o, "shared_bytes", usage ? json_object_new_uint64(s->shared_bytes) : NULL);
	json_object_object_add(o, "reserve_used_bytes", usage ? json_object_new_uint64(s->reserve_used_bytes) : NULL);
	json_object_object_add(o, "reserve_total_bytes", json_object_new_uint64(s->reserve_total_bytes));
	json_object_object_add(o, "on_full", json_object_new_string(policy_name(s->full_policy)));
	json_object_object_add(o, "open", usage ? json_object_new_boolean(s->open) : NULL);
	return o;
}

static int cmd_list(const struct vlunctl_snap_env *e)
{
	const char *source = e->nargs > 0 ? e->args[0] : NULL;
	struct vlun_snapshot_info *v = NULL;
	size_t n = 0;
	bool held, usage;
	char action[128];
	int r;

	if (source) {
		if ((r = check_name("source vdisk", source)))
			return r;
		snprintf(action, sizeof(action), "cannot list the snapshots of vdisk '%s'", source);
	} else
		snprintf(action, sizeof(action), "cannot list snapshots");
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (source && !need_source(e, source, action, &r))
		return r;
	r = get_list(e, source, &v, &n, &held, &usage);
	if (r)
		return r;
	if (e->o->json) {
		json_object *o = json_object_new_object(), *a = json_object_new_array();

		json_object_object_add(o, "pool", json_object_new_string((*e->desc)->name));
		json_object_object_add(o, "held", json_object_new_boolean(held));
		json_object_object_add(o, "usage_known", json_object_new_boolean(usage));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, info_json(&v[i], usage));
		json_object_object_add(o, "snapshots", a);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		free(v);
		return 0;
	}
	if (n == 0) {
		if (source)
			printf("vdisk '%s' in %s has no snapshots ('vlunctl snapshot create' makes one)\n", source,
			       e->pool_label);
		else
			printf("no snapshots in %s\n", e->pool_label);
		free(v);
		return 0;
	}
	printf("%-16s %-16s %-7s %-19s %-10s %-10s %-23s %-13s %s\n", "SOURCE", "NAME", "STATE", "CREATED (UTC)",
	       "SAVED", "SHARED", "RESERVE USED/TOTAL", "ON-FULL", "OPEN");
	for (size_t i = 0; i < n; i++) {
		const struct vlun_snapshot_info *s = &v[i];
		char t[32], s1[32], s2[32], s3[32], s4[32], res[64];

		when(s->d.created, t, sizeof(t));
		if (usage)
			snprintf(res, sizeof(res), "%s/%s", vlunctl_fmt(s->reserve_used_bytes, s3, sizeof(s3)),
				 vlunctl_fmt(s->reserve_total_bytes, s4, sizeof(s4)));
		else
			snprintf(res, sizeof(res), "?/%s", vlunctl_fmt(s->reserve_total_bytes, s4, sizeof(s4)));
		printf("%-16s %-16s %-7s %-19s %-10s %-10s %-23s %-13s %s\n", s->source, s->d.name,
		       s->d.state == VLUN_SNAP_FAILED ? "FAILED" : "active", t,
		       usage ? vlunctl_fmt(s->saved_bytes, s1, sizeof(s1)) : "?", usage ? vlunctl_fmt(s->shared_bytes, s2, sizeof(s2)) : "?",
		       res, policy_name(s->full_policy), !usage ? "?" : s->open ? "yes" : "no");
		if (s->d.state == VLUN_SNAP_FAILED)
			printf("    failed: %s ('vlunctl snapshot delete' frees what it holds)\n",
			       s->d.why[0] ? s->d.why : "no reason recorded");
		if (s->d.flags & VLUN_SNAP_WRITTEN)
			printf("    written through a writable export: no longer the source's past\n");
	}
	if (!usage)
		printf("(usage unknown: %s; the numbers come from the metadata)\n",
		       held ? "the holder did not report it" : "this libvlun cannot read the reserve without holding the pool");
	free(v);
	return 0;
}

/* ------------------------------------------------------------ create */

static int cmd_create(const struct vlunctl_snap_env *e)
{
	const char *source = e->args[0], *name = e->args[1];
	struct vlun_snapshot_create_opts o = { .source = source, .name = name, .full_policy = -1 };
	const struct vlun_vdisk_desc *src = NULL;
	const struct vlun_snap_store_desc *st;
	char action[192], req[512], by[128], s1[32], s2[32];
	char *reason = NULL;
	size_t off;
	int r;

	snprintf(action, sizeof(action), "cannot create snapshot '%s' of vdisk '%s'", name, source);
	if ((r = check_name("source vdisk", source)) || (r = check_name("snapshot name", name)))
		return r;
	if (e->o->reserve && (r = parse_size_opt("--reserve", e->o->reserve, false, &o.reserve_bytes)))
		return r;
	if (e->o->chunk && (r = parse_size_opt("--chunk", e->o->chunk, false, &o.chunk_bytes)))
		return r;
	if (o.chunk_bytes && (o.chunk_bytes & (o.chunk_bytes - 1)))
		return fail(SX_EXIT_USAGE, "not a power of two", "Give e.g. --chunk 64K (the default) or 256K",
			    "invalid --chunk '%s'", e->o->chunk);
	if (e->o->on_full && (r = parse_policy(e->o->on_full, &o.full_policy)))
		return r;
	r = open_source(e, source, action, &src);
	if (r)
		return r;
	if (snap_by_name(*e->desc, src->id, name))
		return fail(exit_for_errno(-EEXIST), "a snapshot of that name exists",
			    "Choose another name, or delete the old one first ('vlunctl snapshot delete')", "%s in %s",
			    action, e->pool_label);
	if (vlunctl_snap_count(*e->desc, src->id) >= VLUN_MAX_SNAPSHOTS)
		return fail(exit_for_errno(-ENOSPC), "the vdisk has the most sessions it may have",
			    "Delete a snapshot of it first (at most 64 per vdisk)", "%s in %s", action, e->pool_label);
	st = store_of(*e->desc, src->id);
	if (st && o.chunk_bytes && o.chunk_bytes != st->chunk_sectors << VLUN_SECTOR_SHIFT)
		return fail(SX_EXIT_USAGE, "the chunk size of a vdisk's snapshots is fixed by its first snapshot",
			    "Leave --chunk out (its snapshots use chunks of the size its first one chose)",
			    "%s: its chunks are %s, not %s", action, vlunctl_fmt(st->chunk_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
			    vlunctl_fmt(o.chunk_bytes, s2, sizeof(s2)));
	if (*e->remote) {
		off = (size_t)snprintf(req, sizeof(req), "snapshot-create source=%s name=%s", source, name);
		if (o.reserve_bytes && off < sizeof(req))
			off += (size_t)snprintf(req + off, sizeof(req) - off, " reserve=%" PRIu64, o.reserve_bytes);
		if (o.chunk_bytes && off < sizeof(req))
			off += (size_t)snprintf(req + off, sizeof(req) - off, " chunk=%" PRIu64, o.chunk_bytes);
		if (o.full_policy >= 0 && off < sizeof(req))
			snprintf(req + off, sizeof(req) - off, " policy=%s", policy_name((uint32_t)o.full_policy));
		r = remote_query(e->ctx, req, action, "The holder is busy with this vdisk (a rollback?); retry when it is done",
				 NULL);
		if (r)
			return r;
	} else {
		r = vlun_snapshot_create(*e->pool, &o, &reason);
		if (r < 0)
			return lib_failed(e, r, reason, action,
					  "The vdisk is being rolled back or changed; retry when that is done");
	}
	printf("created snapshot '%s' of vdisk '%s' in %s%s\n", name, source, e->pool_label,
	       done_by(e->ctx, by, sizeof(by)));
	if (refresh_desc(e->ctx) == 0 && (src = vdisk_by_name(*e->desc, source)) && (st = store_of(*e->desc, src->id))) {
		const struct vlun_vdisk_desc *res = vdisk_by_id(*e->desc, st->reserve_id);

		printf("reserve %s, chunks of %s, when the reserve is full: %s\n",
		       res ? vlunctl_fmt(res->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)) : "?",
		       vlunctl_fmt(st->chunk_sectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)), policy_name(st->full_policy));
	}
	printf("export it as cfgstring=<pool-spec>/%s@%s (read-only; add ';rw' for a writable export)\n", source, name);
	return 0;
}

/* ------------------------------------------------------------ delete */

static int cmd_delete(const struct vlunctl_snap_env *e)
{
	const char *source = e->args[0], *name = e->args[1];
	const struct vlun_vdisk_desc *src = NULL;
	const char *busy = "The snapshot is exported (open for I/O): delete its backstore with targetcli first, then retry";
	char action[192], req[256], by[128];
	char *reason = NULL;
	bool last;
	int r;

	snprintf(action, sizeof(action), "cannot delete snapshot '%s' of vdisk '%s'", name, source);
	r = open_session(e, source, name, action, &src, NULL);
	if (r)
		return r;
	last = vlunctl_snap_count(*e->desc, src->id) == 1;
	if (*e->remote) {
		snprintf(req, sizeof(req), "snapshot-delete source=%s name=%s", source, name);
		r = remote_query(e->ctx, req, action, busy, NULL);
		if (r)
			return r;
	} else {
		r = vlun_snapshot_delete(*e->pool, source, name, &reason);
		if (r < 0)
			return lib_failed(e, r, reason, action, busy);
	}
	printf("deleted snapshot '%s' of vdisk '%s' in %s%s\n", name, source, e->pool_label, done_by(e->ctx, by, sizeof(by)));
	printf(last ? "it was the last one: the reserve was deleted and its space is free\n" :
	       "chunks no other snapshot needs went back to the reserve ('vlunctl snapshot list' shows the usage)\n");
	return 0;
}

/* ------------------------------------------------------------ rollback */

struct rollback_run {
	const struct vlunctl_snap_env *e;
	const char *source, *name;
	int r;
	char *reason;
	bool done;
	pthread_mutex_t lock;
};

/* In this process: the library call, on a thread of its own. */
static void *rollback_thread(void *arg)
{
	struct rollback_run *rr = arg;
	char *reason = NULL;
	int r;

	r = vlun_snapshot_rollback(*rr->e->pool, rr->source, rr->name, &reason);
	pthread_mutex_lock(&rr->lock);
	rr->r = r;
	rr->reason = reason;
	rr->done = true;
	pthread_mutex_unlock(&rr->lock);
	return NULL;
}

static bool rollback_done(struct rollback_run *rr)
{
	bool d;

	pthread_mutex_lock(&rr->lock);
	d = rr->done;
	pthread_mutex_unlock(&rr->lock);
	return d;
}

/* The rollback job in a job list: id (0: the newest rollback of vdisk_id). */
static bool pick_job(const struct vlun_job_info *jobs, size_t n, uint32_t id, uint32_t vdisk_id,
		     struct vlun_job_info *ret)
{
	bool found = false;

	for (size_t i = 0; i < n; i++)
		if (jobs[i].kind == VLUN_JOB_ROLLBACK && (id ? jobs[i].id == id : jobs[i].vdisk_id == vdisk_id) &&
		    (!found || jobs[i].id > ret->id)) {
			*ret = jobs[i];
			found = true;
		}
	return found;
}

/* Progress of the rollback: a line refreshed in place on a terminal, else
 * one every PROGRESS_PIPE_SECONDS and the last one (final). */
struct rb_show {
	bool tty, dirty;
	double t0, last;
};

static void rb_show(struct rb_show *s, const struct vlun_job_info *j, bool final)
{
	char line[512];
	double t = vlunctl_now_s();

	if (!final && t - s->last < (s->tty ? 1.0 : PROGRESS_PIPE_SECONDS))
		return;
	s->last = t;
	if (j)
		vlunctl_job_line(j, line, sizeof(line));
	else
		snprintf(line, sizeof(line), "%.0f s", t - s->t0);
	if (s->tty) {
		printf("\r  %s\033[K%s", line, final ? "\n" : "");
		s->dirty = !final;
	} else
		printf("  %s\n", line);
	fflush(stdout);
}

static void rb_show_end(struct rb_show *s)
{
	if (s->dirty)
		printf("\n");
	s->dirty = false;
}

/* vlunctl holds the pool: the library call on a thread, its job's progress
 * here. 0, or negative errno with *ret_reason. */
static int rollback_local(const struct vlunctl_snap_env *e, const char *source, const char *name, uint32_t src_id,
			  struct rb_show *s, char **ret_reason)
{
	struct rollback_run rr = { .e = e, .source = source, .name = name };
	struct vlun_job_info j;
	bool have = false;
	pthread_t th;
	int r;

	pthread_mutex_init(&rr.lock, NULL);
	r = pthread_create(&th, NULL, rollback_thread, &rr);
	if (r != 0) {
		pthread_mutex_destroy(&rr.lock);
		*ret_reason = strdup("cannot start a thread");
		return -r;
	}
	for (bool done = false; !done;) {
		struct vlun_job_info *jobs = NULL;
		size_t n = 0;

		done = rollback_done(&rr);
		if (!done)
			vlunctl_sleep_ms(200);
		if (vlun_jobs_list(*e->pool, &jobs, &n) == 0) {
			have = pick_job(jobs, n, 0, src_id, &j);
			free(jobs);
		}
		if (done && have && j.state == VLUN_JOB_RUNNING)
			have = false; /* cannot be: the call has returned */
		if (have || !done)
			rb_show(s, have ? &j : NULL, done);
	}
	pthread_join(th, NULL);
	pthread_mutex_destroy(&rr.lock);
	rb_show_end(s);
	*ret_reason = rr.reason;
	return rr.r;
}

/* A holder has the pool: it rolls back on a thread of its own (wait=0) and
 * its "jobs" tell the progress. 0; an exit status after a message when the
 * request fails; *ret_failed (with the job's error in *ret_reason) when the
 * job failed. */
static int rollback_remote(const struct vlunctl_snap_env *e, const char *source, const char *name,
			   const char *action, const char *busy, struct rb_show *s, bool *ret_failed, char **ret_reason)
{
	char req[256], *payload = NULL, *reason = NULL, *end;
	const char *p;
	unsigned long long id;
	int r;

	snprintf(req, sizeof(req), "snapshot-rollback source=%s name=%s wait=0", source, name);
	r = remote_query(e->ctx, req, action, busy, &payload);
	if (r)
		return r;
	p = payload ? strstr(payload, "id=") : NULL;
	errno = 0;
	id = p ? strtoull(p + 3, &end, 10) : 0;
	if (!p || errno || id == 0 || id > UINT32_MAX || (*end != '\n' && *end != '\0')) {
		r = fail(SX_EXIT_FAIL, "the holder's reply names no job", "Upgrade the handler and vlunctl together",
			 "%s in %s (asked the process holding it)", action, e->pool_label);
		free(payload);
		return r;
	}
	free(payload);
	for (;;) {
		struct vlun_job_info *jobs = NULL, j;
		size_t n = 0;

		r = vlun_ctl_query((*e->desc)->uuid, "jobs", &payload, &reason);
		if (r == 0) {
			r = vlunctl_parse_jobs(payload, &jobs, &n);
			free(payload);
		}
		if (r < 0) {
			rb_show_end(s);
			r = fail(SX_EXIT_INUSE, reason ? reason : strerror(-r),
				 "The holder may still be rolling back: 'vlunctl jobs' and its log tell; do not retry before it is done",
				 "%s in %s: cannot read the holder's jobs", action, e->pool_label);
			free(reason);
			return r;
		}
		if (!pick_job(jobs, n, (uint32_t)id, 0, &j)) {
			free(jobs);
			rb_show_end(s);
			return fail(SX_EXIT_FAIL, "the holder no longer lists the rollback's job (restarted?)",
				    "The source may be partly restored: run the rollback again",
				    "%s in %s: job %llu", action, e->pool_label, id);
		}
		free(jobs);
		if (j.state != VLUN_JOB_RUNNING && j.state != VLUN_JOB_QUEUED && j.state != VLUN_JOB_WAITING) {
			rb_show(s, &j, true);
			if (j.state != VLUN_JOB_DONE) {
				*ret_failed = true;
				*ret_reason = strdup(j.error[0] ? j.error : "the rollback failed");
			}
			return 0;
		}
		rb_show(s, &j, false);
		vlunctl_sleep_ms(500);
	}
}

static int cmd_rollback(const struct vlunctl_snap_env *e)
{
	const char *source = e->args[0], *name = e->args[1];
	const char *busy = "The source or the snapshot is exported (open for I/O), or another rollback runs: delete their "
			   "backstores with targetcli (the hosts must not see the source change under them), or wait for "
			   "the other rollback ('vlunctl jobs'), then retry";
	const struct vlun_vdisk_desc *src = NULL;
	const struct vlun_snap_desc *snap;
	struct rb_show s = { .tty = isatty(STDOUT_FILENO) == 1 };
	char action[192], by[128], *reason = NULL;
	bool remote, failed = false;
	int r;

	snprintf(action, sizeof(action), "cannot roll vdisk '%s' back to snapshot '%s'", source, name);
	r = open_session(e, source, name, action, &src, &snap);
	if (r)
		return r;
	remote = *e->remote;
	if (snap->state == VLUN_SNAP_FAILED)
		return fail(SX_EXIT_FAIL, snap->why[0] ? snap->why : "the snapshot has failed",
			    "A failed snapshot no longer holds the source's past; delete it ('vlunctl snapshot delete')",
			    "%s in %s", action, e->pool_label);
	s.t0 = vlunctl_now_s();
	s.last = s.t0;
	printf("rolling vdisk '%s' back to snapshot '%s'%s\n", source, name, done_by(e->ctx, by, sizeof(by)));
	fflush(stdout);
	if (remote) {
		r = rollback_remote(e, source, name, action, busy, &s, &failed, &reason);
		if (r)
			return r;
		if (failed) {
			r = fail(SX_EXIT_FAIL, reason, "See the holder's log; the source is partly restored: run the rollback again",
				 "%s in %s (asked the process holding it)", action, e->pool_label);
			free(reason);
			return r;
		}
	} else {
		r = rollback_local(e, source, name, src->id, &s, &reason);
		if (r < 0)
			return lib_failed(e, r, reason, action, busy);
		free(reason);
	}
	printf("rolled vdisk '%s' back to snapshot '%s' in %.1f s; the snapshot stays (delete it with 'vlunctl snapshot delete' when no longer needed)\n",
	       source, name, vlunctl_now_s() - s.t0);
	return 0;
}

/* ------------------------------------------------------------ reserve */

static int cmd_reserve(const struct vlunctl_snap_env *e)
{
	const char *source = e->args[0];
	const struct vlun_vdisk_desc *src = NULL, *res;
	const struct vlun_snap_store_desc *st;
	uint64_t size = 0;
	int policy = -1;
	char action[160], req[256], by[128], s1[32], s2[32];
	char *reason = NULL;
	size_t off;
	int r;

	snprintf(action, sizeof(action), "cannot change the snapshot reserve of vdisk '%s'", source);
	if ((r = check_name("source vdisk", source)))
		return r;
	if (e->o->size && (r = parse_size_opt("--size", e->o->size, false, &size)))
		return r;
	if (e->o->on_full && (r = parse_policy(e->o->on_full, &policy)))
		return r;
	r = open_source(e, source, action, &src);
	if (r)
		return r;
	st = store_of(*e->desc, src->id);
	if (!st)
		return fail(SX_EXIT_NOTFOUND, "it has no snapshots, so no reserve",
			    "'vlunctl snapshot create ... --reserve SIZE --on-full POLICY' makes the first snapshot and its reserve",
			    "%s in %s", action, e->pool_label);
	res = vdisk_by_id(*e->desc, st->reserve_id);
	if (!e->o->size && !e->o->on_full) {
		/* show only */
		printf("vdisk '%s': reserve %s, chunks of %s, when full: %s, %" PRIu32 " snapshot%s\n", source,
		       res ? vlunctl_fmt(res->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)) : "?",
		       vlunctl_fmt(st->chunk_sectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)), policy_name(st->full_policy),
		       vlunctl_snap_count(*e->desc, src->id), vlunctl_snap_count(*e->desc, src->id) == 1 ? "" : "s");
		printf("(--size SIZE grows it, --on-full fail-snapshot|fail-write changes the policy)\n");
		return 0;
	}
	if (size && res && size < res->size_sectors << VLUN_SECTOR_SHIFT)
		return fail(SX_EXIT_USAGE, "a reserve only grows",
			    "Give a size above the current one, or delete snapshots to free reserve space",
			    "%s: it is %s, asked for %s", action, vlunctl_fmt(res->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
			    vlunctl_fmt(size, s2, sizeof(s2)));
	if (*e->remote) {
		off = (size_t)snprintf(req, sizeof(req), "snapshot-reserve source=%s", source);
		if (size && off < sizeof(req))
			off += (size_t)snprintf(req + off, sizeof(req) - off, " size=%" PRIu64, size);
		if (policy >= 0 && off < sizeof(req))
			snprintf(req + off, sizeof(req) - off, " policy=%s", policy_name((uint32_t)policy));
		r = remote_query(e->ctx, req, action, NULL, NULL);
		if (r)
			return r;
	} else {
		r = vlun_snapshot_reserve_set(*e->pool, source, size, policy, &reason);
		if (r < 0)
			return lib_failed(e, r, reason, action, NULL);
	}
	printf("changed the snapshot reserve of vdisk '%s' in %s%s\n", source, e->pool_label, done_by(e->ctx, by, sizeof(by)));
	if (refresh_desc(e->ctx) == 0 && (src = vdisk_by_name(*e->desc, source)) && (st = store_of(*e->desc, src->id))) {
		res = vdisk_by_id(*e->desc, st->reserve_id);
		printf("reserve %s, when full: %s\n", res ? vlunctl_fmt(res->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)) : "?",
		       policy_name(st->full_policy));
	}
	return 0;
}

/* ------------------------------------------------------------ pool show */

void vlunctl_snap_show_text(const struct vlun_pool_desc *d)
{
	char s1[32], s2[32], t[32];

	if (d->nsnap_stores == 0)
		return;
	printf("Snapshots:  %" PRIu32 " session%s on %" PRIu32 " vdisk%s ('vlunctl snapshot list <pool-spec>' shows their usage)\n",
	       d->nsnaps, d->nsnaps == 1 ? "" : "s", d->nsnap_stores, d->nsnap_stores == 1 ? "" : "s");
	for (uint32_t i = 0; i < d->nsnap_stores; i++) {
		const struct vlun_snap_store_desc *st = &d->snap_stores[i];
		const struct vlun_vdisk_desc *src = vdisk_by_id(d, st->source_id), *res = vdisk_by_id(d, st->reserve_id);

		printf("  %s: reserve '%s' %s, chunks %s, when full: %s\n", src ? src->name : "?", res ? res->name : "?",
		       res ? vlunctl_fmt(res->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)) : "?",
		       vlunctl_fmt(st->chunk_sectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)), policy_name(st->full_policy));
		for (uint32_t k = 0; k < d->nsnaps; k++) {
			const struct vlun_snap_desc *s = &d->snaps[k];

			if (s->source_id != st->source_id)
				continue;
			when(s->created, t, sizeof(t));
			printf("    %-24s %-7s created %s UTC%s%s\n", s->name, s->state == VLUN_SNAP_FAILED ? "FAILED" : "active",
			       t, s->state == VLUN_SNAP_FAILED ? ": " : "", s->state == VLUN_SNAP_FAILED ? s->why : "");
		}
	}
}

void vlunctl_snap_show_json(const struct vlun_pool_desc *d, json_object *pool)
{
	json_object *a = json_object_new_array();

	for (uint32_t i = 0; i < d->nsnaps; i++) {
		struct vlun_snapshot_info s;
		const struct vlun_vdisk_desc *src = vdisk_by_id(d, d->snaps[i].source_id);
		const struct vlun_snap_store_desc *st = store_of(d, d->snaps[i].source_id);
		const struct vlun_vdisk_desc *res = st ? vdisk_by_id(d, st->reserve_id) : NULL;

		memset(&s, 0, sizeof(s));
		s.d = d->snaps[i];
		vlunctl_copy_str(s.source, sizeof(s.source), src ? src->name : "?");
		s.chunk_bytes = st ? st->chunk_sectors << VLUN_SECTOR_SHIFT : 0;
		s.reserve_total_bytes = res ? res->size_sectors << VLUN_SECTOR_SHIFT : 0;
		s.full_policy = st ? st->full_policy : 0;
		json_object_array_add(a, info_json(&s, false));
	}
	json_object_object_add(pool, "snapshots", a);
}

int vlunctl_snap_run(const struct vlunctl_snap_env *e)
{
	if (strcmp(e->verb, "create") == 0)
		return cmd_create(e);
	if (strcmp(e->verb, "list") == 0)
		return cmd_list(e);
	if (strcmp(e->verb, "delete") == 0)
		return cmd_delete(e);
	if (strcmp(e->verb, "rollback") == 0)
		return cmd_rollback(e);
	if (strcmp(e->verb, "reserve") == 0)
		return cmd_reserve(e);
	return fail(SX_EXIT_USAGE, "unknown command", "Run 'vlunctl help'", "snapshot %s", e->verb);
}
