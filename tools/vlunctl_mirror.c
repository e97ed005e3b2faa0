/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_mirror.c — mirrors, migration and jobs:
 *
 *   vlunctl mirror add POOL VDISK [--range OFF:LEN] [--members I,J]
 *   vlunctl mirror remove POOL VDISK [--range OFF:LEN] [--member I]
 *   vlunctl mirror split POOL VDISK NEWNAME
 *   vlunctl migrate POOL [VDISK] [--range OFF:LEN] [--off-member I] [--to I,J] [--rate R] [--wait]
 *   vlunctl resync POOL [--rate R] [--wait]
 *   vlunctl jobs POOL [--json] [--watch]
 *   vlunctl job cancel POOL ID
 *   vlunctl member fault POOL IDX on|off
 *
 * and the mirror/job part of `pool show`.
 *
 * Like every change, these are made by the process holding the pool when
 * one does (over the control channel, lib/ctl.h: verbs mirror-add,
 * mirror-remove, mirror-split, migrate, resync, jobs, job-cancel,
 * member-fault); the copies then run on its job thread. When nothing holds
 * the pool, vlunctl opens it with the lock, makes the change itself and —
 * since nobody else would — runs migrations and the resync to the end in
 * this process (vlun_jobs_run()), showing the same progress as --wait.
 * An interrupted run resumes with the next holder or `vlunctl resync`,
 * which runs every pending job (migrations are recorded in the metadata;
 * the resync's work list is the map's behind extents).
 *
 * Progress: one line per job, "<what>: 42.0%  420 MiB / 1.0 GiB, 48.2
 * MiB/s, ETA 0:12", refreshed in place when stdout is a terminal, else a
 * line about every 2 seconds and the last one.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
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

/* enum vlunctl_exit of vlunctl.c */
#define MX_EXIT_OK 0
#define MX_EXIT_FAIL 1
#define MX_EXIT_USAGE 2
#define MX_EXIT_NOTFOUND 3
#define MX_EXIT_INUSE 4
#define MX_EXIT_EXISTS 7

#define PROGRESS_PIPE_SECONDS 2.0 /* stdout not a terminal: a line this often */
#define POLL_MS 1000              /* asking the holder for progress */

/* ------------------------------------------------------------ parsing */

/* Strict index below limit ("0", "12"; no sign, no junk). */
static int parse_index(const char *s, uint32_t limit, uint32_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v >= limit)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

/* "0,2,3": distinct member indexes. */
static int parse_list(const char *opt, const char *s, uint32_t *out, size_t *ret_n)
{
	size_t n = 0;
	const char *q = s;

	for (;;) {
		const char *comma = strchr(q, ',');
		size_t l = comma ? (size_t)(comma - q) : strlen(q);
		char item[16];
		uint32_t v;

		if (l == 0 || l >= sizeof(item) || n == VLUN_MAX_MEMBERS)
			goto bad;
		memcpy(item, q, l);
		item[l] = '\0';
		if (parse_index(item, VLUN_MAX_MEMBERS, &v) < 0)
			goto bad;
		for (size_t i = 0; i < n; i++)
			if (out[i] == v)
				return fail(MX_EXIT_USAGE, "a member index is given twice", "List every member once",
					    "invalid %s '%s'", opt, s);
		out[n++] = v;
		if (!comma)
			break;
		q = comma + 1;
	}
	*ret_n = n;
	return 0;
bad:
	return fail(MX_EXIT_USAGE, "not a comma-separated list of member indexes",
		    "Give indexes as shown by 'vlunctl pool show', e.g. 0,2", "invalid %s '%s'", opt, s);
}

/* A size for --range: whole sectors. */
static int parse_sectors(const char *opt, const char *whole, const char *s, uint64_t *ret)
{
	uint64_t v;
	int r = vlun_parse_size(s, &v);

	if (r < 0)
		return fail(MX_EXIT_USAGE, r == -ERANGE ? "too large" : "not OFFSET:LENGTH with two sizes",
			    "Give e.g. --range 0:64M or --range 1G:512K (LENGTH 0: to the end of the vdisk)",
			    "invalid %s '%s'", opt, whole);
	if (v % VLUN_SECTOR_SIZE)
		return fail(MX_EXIT_USAGE, "not a multiple of 512 bytes", "Round it to whole 512-byte sectors",
			    "invalid %s '%s'", opt, whole);
	*ret = v;
	return 0;
}

/* --range OFF:LEN (bytes with units; LEN 0 = to the end). */
static int parse_range(const char *s, uint64_t *ret_off, uint64_t *ret_len)
{
	const char *colon = strchr(s, ':');
	char off[64];
	int r;

	if (!colon || (size_t)(colon - s) >= sizeof(off) || colon == s || !colon[1])
		return fail(MX_EXIT_USAGE, "not OFFSET:LENGTH",
			    "Give e.g. --range 0:64M or --range 1G:512K (LENGTH 0: to the end of the vdisk)",
			    "invalid --range '%s'", s);
	memcpy(off, s, (size_t)(colon - s));
	off[colon - s] = '\0';
	r = parse_sectors("--range", s, off, ret_off);
	if (r)
		return r;
	return parse_sectors("--range", s, colon + 1, ret_len);
}

/* --rate SIZE[/s]: bytes per second, 0 = unlimited. */
static int parse_rate(const char *s, uint64_t *ret)
{
	char buf[64];
	size_t l = strlen(s);
	int r;

	if (l >= sizeof(buf))
		l = sizeof(buf) - 1;
	memcpy(buf, s, l);
	buf[l] = '\0';
	if (l > 2 && strcmp(buf + l - 2, "/s") == 0)
		buf[l - 2] = '\0';
	r = vlun_parse_size(buf, ret);
	if (r < 0)
		return fail(MX_EXIT_USAGE, r == -ERANGE ? "too large" : "not a size per second",
			    "Give bytes per second with a binary unit, e.g. --rate 50M (0: unlimited)",
			    "invalid --rate '%s'", s);
	return 0;
}

/* ------------------------------------------------------------ formatting */

static const char *kind_name(uint32_t kind)
{
	return kind == VLUN_JOB_RESYNC ? "resync" : kind == VLUN_JOB_MIGRATE ? "migrate" :
	       kind == VLUN_JOB_ROLLBACK ? "rollback" : "unknown";
}

static const char *const state_names[] = {
	[VLUN_JOB_QUEUED] = "queued", [VLUN_JOB_RUNNING] = "running", [VLUN_JOB_DONE] = "done",
	[VLUN_JOB_FAILED] = "failed", [VLUN_JOB_CANCELLED] = "cancelled", [VLUN_JOB_WAITING] = "waiting",
};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

static const char *state_name(uint32_t state)
{
	return state < N_STATES && state_names[state] ? state_names[state] : "unknown";
}

static bool job_active(const struct vlun_job_info *j)
{
	return j->state == VLUN_JOB_QUEUED || j->state == VLUN_JOB_RUNNING || j->state == VLUN_JOB_WAITING;
}

static const char *vdisk_name_by_id(const struct vlun_pool_desc *d, uint32_t id)
{
	if (id == UINT32_MAX)
		return NULL;
	for (uint32_t i = 0; d && i < d->nvdisks; i++)
		if (d->vdisks[i].id == id)
			return d->vdisks[i].name;
	return NULL;
}

/* "migrate vdisk 'a' off member 1: running 42.0%  420 MiB / 1.0 GiB,
 * 48.2 MiB/s, ETA 0:12" */
static void progress_line(const struct vlun_job_info *j, char *buf, size_t len)
{
	char s1[32], s2[32], eta[32] = "?";
	double pct = j->total_bytes ? 100.0 * (double)j->done_bytes / (double)j->total_bytes :
				      (j->state == VLUN_JOB_DONE ? 100.0 : 0.0);
	uint64_t left = j->total_bytes > j->done_bytes ? j->total_bytes - j->done_bytes : 0;
	size_t off;

	if (pct > 100.0)
		pct = 100.0;
	if (j->bytes_per_sec > 0) {
		uint64_t s = left / j->bytes_per_sec;

		if (s >= 3600)
			snprintf(eta, sizeof(eta), "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
				 (unsigned)(s % 60));
		else
			snprintf(eta, sizeof(eta), "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
	} else if (left == 0)
		snprintf(eta, sizeof(eta), "0:00");
	off = (size_t)snprintf(buf, len, "job %" PRIu32 " %s: %s %5.1f%%  %s / %s, %.1f MiB/s, ETA %s", j->id,
			       j->what[0] ? j->what : kind_name(j->kind), state_name(j->state), pct,
			       vlunctl_fmt(j->done_bytes, s1, sizeof(s1)), vlunctl_fmt(j->total_bytes, s2, sizeof(s2)),
			       (double)j->bytes_per_sec / (1024.0 * 1024.0), eta);
	if (off < len && j->rate)
		off += (size_t)snprintf(buf + off, len - off, " (limit %s/s)", vlunctl_fmt(j->rate, s1, sizeof(s1)));
	if (off < len && j->error[0])
		snprintf(buf + off, len - off, "; %s", j->error);
}

/* Progress display of one or more jobs (see the top of the file). */
struct progress {
	bool tty;
	double last;      /* when the last block was printed */
	unsigned lines;   /* lines of the last block (tty: redrawn) */
	bool dirty;       /* tty: a block is on the screen without its final newline */
};

static void progress_init(struct progress *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->tty = isatty(STDOUT_FILENO) == 1;
	pr->last = -1e9;
}

/* Shows the jobs; final: whatever the clock says (the last state). */
static void progress_show(struct progress *pr, const struct vlun_job_info *jobs, size_t n, bool final)
{
	double t = vlunctl_now_s();
	char line[512];

	if (!pr->tty && !final && t - pr->last < PROGRESS_PIPE_SECONDS)
		return;
	if (pr->tty && pr->lines > 0) {
		/* back to the first line of the previous block */
		printf("\r");
		if (pr->lines > 1)
			printf("\033[%uA", pr->lines - 1);
	}
	for (size_t i = 0; i < n; i++) {
		progress_line(&jobs[i], line, sizeof(line));
		if (pr->tty)
			printf("%s\033[K%s", line, i + 1 < n ? "\n" : "");
		else
			printf("%s\n", line);
	}
	if (pr->tty && n == 0 && pr->lines > 0)
		printf("\033[K");
	pr->lines = pr->tty ? (unsigned)n : 0;
	pr->dirty = pr->tty && n > 0;
	if (final && pr->dirty) {
		printf("\n");
		pr->dirty = false;
		pr->lines = 0;
	}
	fflush(stdout);
	pr->last = t;
}

static void progress_end(struct progress *pr)
{
	if (pr->dirty) {
		printf("\n");
		fflush(stdout);
	}
	pr->dirty = false;
	pr->lines = 0;
}

/* ------------------------------------------------------------ the jobs payload */

static void job_init(void *rec)
{
	struct vlun_job_info *j = rec;

	memset(j, 0, sizeof(*j));
	j->vdisk_id = UINT32_MAX;
}

static void job_field(void *rec, const char *key, const char *val)
{
	struct vlun_job_info *j = rec;

	if (strcmp(key, "id") == 0)
		j->id = (uint32_t)vlunctl_to_u64(val);
	else if (strcmp(key, "kind") == 0)
		j->kind = strcmp(val, "resync") == 0 ? VLUN_JOB_RESYNC :
			  strcmp(val, "migrate") == 0 ? VLUN_JOB_MIGRATE :
			  strcmp(val, "rollback") == 0 ? VLUN_JOB_ROLLBACK : 0;
	else if (strcmp(key, "state") == 0) {
		j->state = UINT32_MAX;
		for (uint32_t s = 0; s < N_STATES; s++)
			if (state_names[s] && strcmp(val, state_names[s]) == 0)
				j->state = s;
	} else if (strcmp(key, "vdisk") == 0)
		j->vdisk_id = strcmp(val, "all") == 0 ? UINT32_MAX : (uint32_t)vlunctl_to_u64(val);
	else if (strcmp(key, "total") == 0)
		j->total_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "done") == 0)
		j->done_bytes = vlunctl_to_u64(val);
	else if (strcmp(key, "rate") == 0)
		j->rate = vlunctl_to_u64(val);
	else if (strcmp(key, "bps") == 0)
		j->bytes_per_sec = vlunctl_to_u64(val);
	else if (strcmp(key, "started") == 0)
		j->started = vlunctl_to_u64(val);
	else if (strcmp(key, "what") == 0)
		vlunctl_copy_str(j->what, sizeof(j->what), val);
	else if (strcmp(key, "error") == 0)
		vlunctl_copy_str(j->error, sizeof(j->error), val);
}

/* Parses the payload of "jobs" (lib/ctl.h) into *ret (caller frees). */
static int parse_jobs(const char *payload, struct vlun_job_info **ret, size_t *ret_n)
{
	void *v;
	int r = vlunctl_parse_records(payload, "job ", sizeof(**ret), job_init, job_field, &v, ret_n);

	if (r == 0)
		*ret = v;
	return r;
}

void vlunctl_job_line(const struct vlun_job_info *j, char *buf, size_t len)
{
	progress_line(j, buf, len);
}

int vlunctl_parse_jobs(const char *payload, struct vlun_job_info **ret, size_t *ret_n)
{
	return parse_jobs(payload, ret, ret_n);
}

/* The holder's jobs. 0; -ECONNREFUSED when nothing serves the pool; else
 * an exit status after a message. */
static int query_jobs(const struct vlunctl_mirror_env *e, struct vlun_job_info **ret, size_t *ret_n)
{
	char *payload = NULL, *reason = NULL;
	int r;

	r = vlun_ctl_query((*e->desc)->uuid, "jobs", &payload, &reason);
	if (r == -ECONNREFUSED) {
		free(reason);
		return r;
	}
	if (r < 0) {
		int code = r == -ECONNRESET || r == -ETIMEDOUT || r == -EPROTO ? MX_EXIT_INUSE : exit_for_errno(r);

		r = fail(code, reason ? reason : strerror(-r),
			 r == -EACCES ? "Run vlunctl as root or as the user running tcmu-runner" :
			 "The process holding the pool did not answer on its control channel; retry",
			 "cannot read the jobs of %s", e->pool_label);
		free(reason);
		return r;
	}
	r = parse_jobs(payload, ret, ret_n);
	free(payload);
	if (r < 0)
		return fail(MX_EXIT_FAIL, strerror(-r), NULL, "cannot read the jobs of %s", e->pool_label);
	return 0;
}

/* The persistent jobs of the description, as job infos (queued: nothing
 * runs them while no process holds the pool). */
static int desc_jobs(const struct vlun_pool_desc *d, struct vlun_job_info **ret, size_t *ret_n)
{
	struct vlun_job_info *v = calloc(d->njobs ? d->njobs : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->njobs; i++) {
		const struct vlun_job_desc *jd = &d->jobs[i];
		struct vlun_job_info *j = &v[i];
		const char *vn = vdisk_name_by_id(d, jd->vdisk_id);
		size_t off;

		j->id = jd->id;
		j->kind = jd->kind;
		j->state = VLUN_JOB_QUEUED;
		j->vdisk_id = jd->vdisk_id;
		j->rate = jd->rate;
		j->started = jd->created;
		off = (size_t)snprintf(j->what, sizeof(j->what), "%s %s%s%s", kind_name(jd->kind),
				       vn ? "vdisk '" : "every vdisk", vn ? vn : "", vn ? "'" : "");
		if (jd->from_member != VLUN_NO_MEMBER && off < sizeof(j->what))
			snprintf(j->what + off, sizeof(j->what) - off, " off member %" PRIu32, jd->from_member);
	}
	*ret = v;
	*ret_n = d->njobs;
	return 0;
}

/* ------------------------------------------------------------ mirror state */

struct vdisk_mirror_state {
	uint64_t mirrored_sectors, behind_sectors, allocated_sectors;
	bool on[VLUN_MAX_MEMBERS];
};

static void vdisk_state(const struct vlun_vdisk_desc *v, struct vdisk_mirror_state *st)
{
	memset(st, 0, sizeof(*st));
	for (uint32_t i = 0; i < v->nextents; i++) {
		const struct vlun_extent *e = &v->extents[i];

		if (e->member != VLUN_NO_MEMBER && !(e->flags & (VLUN_EXT_INVALID | VLUN_EXT_ZERO))) {
			st->allocated_sectors += e->nsectors;
			if (e->member < VLUN_MAX_MEMBERS)
				st->on[e->member] = true;
		}
		if (e->flags & VLUN_EXT_ALT_EXISTS) {
			st->mirrored_sectors += e->nsectors;
			if (e->alt_member < VLUN_MAX_MEMBERS)
				st->on[e->alt_member] = true;
			if (e->flags & VLUN_EXT_ALT_DIRTY)
				st->behind_sectors += e->nsectors;
		}
	}
}

static const char *mirror_state_name(const struct vdisk_mirror_state *st)
{
	if (st->mirrored_sectors == 0)
		return "none";
	return st->behind_sectors ? "behind" : "in-sync";
}

/* Bytes behind over the pool, and whether a member is not OK. */
static uint64_t pool_behind(const struct vlun_pool_desc *d, bool *ret_member_down)
{
	uint64_t s = 0;
	struct vdisk_mirror_state st;

	*ret_member_down = false;
	for (uint32_t i = 0; i < d->nmembers; i++)
		if (d->members[i].state != VLUN_MEMBER_OK)
			*ret_member_down = true;
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		vdisk_state(&d->vdisks[i], &st);
		s += st.behind_sectors;
	}
	return s << VLUN_SECTOR_SHIFT;
}

static bool member_down(const struct vlun_pool_desc *d, uint32_t m)
{
	return m < d->nmembers && d->members[m].state != VLUN_MEMBER_OK;
}

void vlunctl_mirror_show_text(const struct vlun_pool_desc *d)
{
	char s1[32], s2[32], s3[32];

	if (d->nvdisks > 0) {
		printf("Mirrors:    per vdisk: map generation, mirrored and behind bytes, members\n");
		printf("  %-24s %-8s %-24s %-12s %-8s %s\n", "NAME", "GEN", "MIRRORED", "BEHIND", "STATE", "MEMBERS");
	}
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *v = &d->vdisks[i];
		struct vdisk_mirror_state st;
		char mirrored[96], members[512] = "-";
		size_t off = 0;

		vdisk_state(v, &st);
		snprintf(mirrored, sizeof(mirrored), "%s of %s", vlunctl_fmt(st.mirrored_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
			 vlunctl_fmt(st.allocated_sectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)));
		for (uint32_t m = 0; m < VLUN_MAX_MEMBERS && off < sizeof(members); m++)
			if (st.on[m])
				off += (size_t)snprintf(members + off, sizeof(members) - off, "%s%" PRIu32 "%s",
							off ? "," : "", m,
							member_down(d, m) ? (m < d->nmembers && d->members[m].state == VLUN_MEMBER_MISSING ?
									     "(MISSING)" : "(FAILED)") : "");
		printf("  %-24s %-8" PRIu64 " %-24s %-12s %-8s %s%s\n", v->name, v->generation, mirrored,
		       vlunctl_fmt(st.behind_sectors << VLUN_SECTOR_SHIFT, s3, sizeof(s3)),
		       st.mirrored_sectors == 0 ? "-" : st.behind_sectors ? "behind" : "in sync", members,
		       (v->flags & VLUN_VDISK_MIRRORED) ? "  (new chunks mirrored)" : "");
	}
	printf("Jobs:       %" PRIu32 " persistent%s\n", d->njobs,
	       d->njobs ? " ('vlunctl jobs <pool-spec>' shows their progress)" : "");
	if (d->njobs)
		printf("  %-6s %-8s %-24s %-6s %-12s %-26s %s\n", "ID", "KIND", "VDISK", "FROM", "TO", "RANGE", "RATE");
	for (uint32_t i = 0; i < d->njobs; i++) {
		const struct vlun_job_desc *j = &d->jobs[i];
		const char *vn = vdisk_name_by_id(d, j->vdisk_id);
		char from[16] = "-", to[256] = "any", range[96] = "all", rate[48] = "unlimited";
		size_t off = 0;

		if (j->from_member != VLUN_NO_MEMBER)
			snprintf(from, sizeof(from), "%" PRIu32, j->from_member);
		for (uint32_t m = 0; m < VLUN_MAX_MEMBERS && off < sizeof(to); m++)
			if (j->to_mask[m / 64] & (1ull << (m % 64)))
				off += (size_t)snprintf(to + off, sizeof(to) - off, "%s%" PRIu32, off ? "," : "", m);
		if (j->vsector || j->nsectors) {
			if (j->nsectors)
				snprintf(range, sizeof(range), "%s+%s", vlunctl_fmt(j->vsector << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
					 vlunctl_fmt(j->nsectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)));
			else
				snprintf(range, sizeof(range), "%s-end", vlunctl_fmt(j->vsector << VLUN_SECTOR_SHIFT, s1, sizeof(s1)));
		}
		if (j->rate)
			snprintf(rate, sizeof(rate), "%s/s", vlunctl_fmt(j->rate, s1, sizeof(s1)));
		printf("  %-6" PRIu32 " %-8s %-24s %-6s %-12s %-26s %s\n", j->id, kind_name(j->kind),
		       vn ? vn : j->vdisk_id == UINT32_MAX ? "(all)" : "?", from, to, range, rate);
	}
}

static json_object *json_u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

void vlunctl_mirror_show_json(const struct vlun_pool_desc *d, json_object *pool)
{
	json_object *vs = NULL, *js = json_object_new_array();

	if (json_object_object_get_ex(pool, "vdisks", &vs) && json_object_is_type(vs, json_type_array))
		for (uint32_t i = 0; i < d->nvdisks && i < json_object_array_length(vs); i++) {
			json_object *o = json_object_array_get_idx(vs, i), *ms = json_object_new_array(),
				    *fs = json_object_new_array();
			struct vdisk_mirror_state st;

			vdisk_state(&d->vdisks[i], &st);
			json_object_object_add(o, "mirrored_bytes", json_u64(st.mirrored_sectors << VLUN_SECTOR_SHIFT));
			json_object_object_add(o, "behind_bytes", json_u64(st.behind_sectors << VLUN_SECTOR_SHIFT));
			json_object_object_add(o, "mirror_state", json_object_new_string(mirror_state_name(&st)));
			json_object_object_add(o, "mirror_new_chunks",
					       json_object_new_boolean(d->vdisks[i].flags & VLUN_VDISK_MIRRORED));
			for (uint32_t m = 0; m < VLUN_MAX_MEMBERS; m++)
				if (st.on[m]) {
					json_object_array_add(ms, json_u64(m));
					if (member_down(d, m))
						json_object_array_add(fs, json_u64(m));
				}
			json_object_object_add(o, "members", ms);
			json_object_object_add(o, "failed_members", fs);
		}
	for (uint32_t i = 0; i < d->njobs; i++) {
		const struct vlun_job_desc *j = &d->jobs[i];
		json_object *o = json_object_new_object(), *to = json_object_new_array();
		const char *vn = vdisk_name_by_id(d, j->vdisk_id);

		json_object_object_add(o, "id", json_u64(j->id));
		json_object_object_add(o, "kind", json_object_new_string(kind_name(j->kind)));
		json_object_object_add(o, "vdisk_id", j->vdisk_id == UINT32_MAX ? NULL : json_u64(j->vdisk_id));
		json_object_object_add(o, "vdisk", vn ? json_object_new_string(vn) : NULL);
		json_object_object_add(o, "from_member",
				       j->from_member == VLUN_NO_MEMBER ? NULL : json_u64(j->from_member));
		for (uint32_t m = 0; m < VLUN_MAX_MEMBERS; m++)
			if (j->to_mask[m / 64] & (1ull << (m % 64)))
				json_object_array_add(to, json_u64(m));
		json_object_object_add(o, "to_members", to);
		json_object_object_add(o, "offset_bytes", json_u64(j->vsector << VLUN_SECTOR_SHIFT));
		json_object_object_add(o, "length_bytes", json_u64(j->nsectors << VLUN_SECTOR_SHIFT));
		json_object_object_add(o, "rate_bytes_per_sec", json_u64(j->rate));
		json_object_object_add(o, "created", json_u64(j->created));
		json_object_array_add(js, o);
	}
	json_object_object_add(pool, "jobs", js);
}

/* ------------------------------------------------------------ running jobs */

/* Local run: the latest info per job, shown together. */
struct local_run {
	struct progress pr;
	struct vlun_job_info jobs[16];
	size_t n;
	struct vlun_job_info last_failed;
	bool failed;
};

static void local_progress(const struct vlun_job_info *info, void *arg)
{
	struct local_run *lr = arg;
	size_t i;

	for (i = 0; i < lr->n; i++)
		if (lr->jobs[i].id == info->id && lr->jobs[i].kind == info->kind)
			break;
	if (i == lr->n) {
		if (lr->n == sizeof(lr->jobs) / sizeof(lr->jobs[0]))
			i = lr->n - 1; /* the display keeps the first 15 */
		else
			lr->n++;
	}
	lr->jobs[i] = *info;
	if (info->state == VLUN_JOB_FAILED) {
		lr->last_failed = *info;
		lr->failed = true;
	}
	progress_show(&lr->pr, lr->jobs, lr->n, false);
}

/* Runs the pool's jobs in this process (nothing else holds it); todo:
 * what to do when it fails. */
static int run_local(const struct vlunctl_mirror_env *e, const char *what, const char *todo)
{
	struct local_run lr;
	int r;

	memset(&lr, 0, sizeof(lr));
	progress_init(&lr.pr);
	r = vlun_jobs_run(*e->pool, local_progress, &lr);
	if (lr.n > 0) {
		if (r == 0)
			for (size_t i = 0; i < lr.n; i++)
				if (job_active(&lr.jobs[i])) {
					lr.jobs[i].state = VLUN_JOB_DONE;
					lr.jobs[i].done_bytes = lr.jobs[i].total_bytes;
				}
		progress_show(&lr.pr, lr.jobs, lr.n, true);
	}
	progress_end(&lr.pr);
	if (r < 0)
		return fail(MX_EXIT_FAIL,
			    lr.failed && lr.last_failed.error[0] ? lr.last_failed.error : lib_why(NULL, r),
			    todo, "%s failed", what);
	return 0;
}

/* Waits for a job of the holder: id, or the resync when resync is set.
 * 0 when it is done, else an exit status after a message. */
static int wait_remote(const struct vlunctl_mirror_env *e, uint32_t id, bool resync, const char *what)
{
	struct progress pr;
	bool seen = false;
	int r;

	progress_init(&pr);
	for (;;) {
		struct vlun_job_info *jobs = NULL, *j = NULL;
		size_t n = 0;

		r = query_jobs(e, &jobs, &n);
		if (r == -ECONNREFUSED) {
			progress_end(&pr);
			free(jobs);
			return fail(MX_EXIT_INUSE, "the process holding the pool went away",
				    "The job is recorded in the metadata and resumes with the next holder; 'vlunctl jobs' shows it",
				    "waiting for %s", what);
		}
		if (r) {
			progress_end(&pr);
			return r;
		}
		for (size_t i = 0; i < n && !j; i++)
			if (resync ? jobs[i].kind == VLUN_JOB_RESYNC : (jobs[i].id == id && jobs[i].kind == VLUN_JOB_MIGRATE))
				j = &jobs[i];
		if (j && job_active(j)) {
			seen = true;
			progress_show(&pr, j, 1, false);
			free(jobs);
			vlunctl_sleep_ms(POLL_MS);
			continue;
		}
		if (j && (j->state == VLUN_JOB_FAILED || j->state == VLUN_JOB_CANCELLED)) {
			struct vlun_job_info copy = *j;

			free(jobs);
			progress_show(&pr, &copy, 1, true);
			progress_end(&pr);
			if (copy.state == VLUN_JOB_CANCELLED)
				return fail(MX_EXIT_FAIL, "it was cancelled",
					    "What it copied stays; start it again to finish", "%s", what);
			return fail(MX_EXIT_FAIL, copy.error[0] ? copy.error : "the job failed",
				    "Fix the cause and start it again: it resumes where it stopped", "%s", what);
		}
		/* done, or no longer listed */
		if (resync) {
			bool down;
			uint64_t behind;

			r = refresh_desc(e->ctx);
			if (r < 0) {
				free(jobs);
				progress_end(&pr);
				return fail(MX_EXIT_FAIL, lib_why(NULL, r), hint_for_errno(r), "waiting for %s: reading %s",
					    what, e->pool_label);
			}
			behind = pool_behind(*e->desc, &down);
			if (behind > 0 && !(j && j->state == VLUN_JOB_DONE && seen)) {
				/* not started yet, or a new pass is due */
				free(jobs);
				vlunctl_sleep_ms(POLL_MS);
				continue;
			}
			if (behind > 0) {
				char s1[32];

				free(jobs);
				progress_end(&pr);
				return fail(MX_EXIT_FAIL, "the resync finished but copies are still behind",
					    down ? "A member is failed or missing ('vlunctl pool show'); bring it back and run 'vlunctl resync' again" :
					    "Run 'vlunctl resync' again",
					    "%s: %s behind", what, vlunctl_fmt(behind, s1, sizeof(s1)));
			}
		}
		if (j) {
			struct vlun_job_info copy = *j;

			copy.state = VLUN_JOB_DONE;
			progress_show(&pr, &copy, 1, true);
		}
		free(jobs);
		progress_end(&pr);
		return 0;
	}
}

/* ------------------------------------------------------------ commands */

/* The vdisk named by the first argument, or NULL after a message. */
static const struct vlun_vdisk_desc *need_vdisk(const struct vlunctl_mirror_env *e, const char *name,
						const char *action, int *ret_code)
{
	const struct vlun_pool_desc *d = *e->desc;

	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (strcmp(d->vdisks[i].name, name) == 0)
			return &d->vdisks[i];
	*ret_code = fail(MX_EXIT_NOTFOUND, "no such vdisk", "'vlunctl vdisk list' shows the vdisks of the pool",
			 "%s in %s", action, e->pool_label);
	return NULL;
}

/* Member indexes must exist in the pool. */
static int check_members(const struct vlunctl_mirror_env *e, const char *opt, const uint32_t *idx, size_t n,
			 const char *action)
{
	const struct vlun_pool_desc *d = *e->desc;

	for (size_t i = 0; i < n; i++)
		if (idx[i] >= d->nmembers)
			return fail(MX_EXIT_NOTFOUND, "no such member index",
				    "Use the indexes shown by 'vlunctl pool show'", "%s: %s: %s has no member %" PRIu32
				    " (it has %" PRIu32 ")", action, opt, e->pool_label, idx[i], d->nmembers);
	return 0;
}

static int check_range(const struct vlun_vdisk_desc *v, uint64_t off, uint64_t len, const char *action)
{
	uint64_t size = v->size_sectors << VLUN_SECTOR_SHIFT;
	char s1[32];

	if (off >= size || len > size - off)
		return fail(MX_EXIT_USAGE, "the range is not inside the vdisk",
			    "Give --range OFFSET:LENGTH within its size (LENGTH 0: to the end)",
			    "%s: vdisk '%s' is %s (%" PRIu64 " bytes)", action, v->name, vlunctl_fmt(size, s1, sizeof(s1)), size);
	return 0;
}

static void range_words(uint64_t off, uint64_t len, char *buf, size_t blen)
{
	char s1[32], s2[32];

	if (off == 0 && len == 0)
		snprintf(buf, blen, "the whole of");
	else if (len == 0)
		snprintf(buf, blen, "%s to the end of", vlunctl_fmt(off, s1, sizeof(s1)));
	else
		snprintf(buf, blen, "%s at %s of", vlunctl_fmt(len, s1, sizeof(s1)), vlunctl_fmt(off, s2, sizeof(s2)));
}

/* Adds " start=.. length=.." to a request. */
static size_t req_range(char *req, size_t len, size_t off, uint64_t start, uint64_t length)
{
	if (off < len && start)
		off += (size_t)snprintf(req + off, len - off, " start=%" PRIu64, start);
	if (off < len && length)
		off += (size_t)snprintf(req + off, len - off, " length=%" PRIu64, length);
	return off;
}

static size_t req_list(char *req, size_t len, size_t off, const char *key, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n && off < len; i++)
		off += i ? (size_t)snprintf(req + off, len - off, ",%" PRIu32, v[i]) :
			   (size_t)snprintf(req + off, len - off, " %s=%" PRIu32, key, v[i]);
	return off;
}

/* Makes one change: through the holder (request) or here (the library
 * call's result r, its reason). */
static int change_failed(const struct vlunctl_mirror_env *e, int r, char *reason, const char *action)
{
	const char *todo = hint_for_errno(r);
	int code = exit_for_errno(r);

	if (r == -EBUSY)
		todo = "It would drop the only good copy, or the vdisk is busy; wait for the resync ('vlunctl jobs') or pick the other copy";
	r = fail(code, lib_why(reason, r), todo, "%s in %s", action, e->pool_label);
	free(reason);
	return r;
}

static int cmd_mirror_add(const struct vlunctl_mirror_env *e)
{
	const char *name = e->args[0];
	uint32_t idx[VLUN_MAX_MEMBERS];
	size_t nidx = 0;
	uint64_t off = 0, len = 0;
	char action[160], rw[96], by[128], s1[32], req[2048];
	const struct vlun_vdisk_desc *v;
	struct vdisk_mirror_state st;
	char *reason = NULL;
	int r;

	snprintf(action, sizeof(action), "cannot mirror vdisk '%s'", name);
	if (e->o->range && (r = parse_range(e->o->range, &off, &len)))
		return r;
	if (e->o->members && (r = parse_list("--members", e->o->members, idx, &nidx)))
		return r;
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (!(v = need_vdisk(e, name, action, &r)))
		return r;
	if ((r = check_members(e, "--members", idx, nidx, action)) || (r = check_range(v, off, len, action)))
		return r;
	range_words(off, len, rw, sizeof(rw));
	if (*e->remote) {
		size_t o = (size_t)snprintf(req, sizeof(req), "mirror-add name=%s", name);

		o = req_range(req, sizeof(req), o, off, len);
		req_list(req, sizeof(req), o, "members", idx, nidx);
		r = remote_query(e->ctx, req, action, NULL, NULL);
		if (r)
			return r;
	} else {
		r = vlun_mirror_add(*e->pool, name, off, len, nidx ? idx : NULL, nidx, &reason);
		if (r < 0)
			return change_failed(e, r, reason, action);
	}
	printf("mirrored %s vdisk '%s' in %s%s\n", rw, name, e->pool_label, done_by(e->ctx, by, sizeof(by)));
	if (refresh_desc(e->ctx) == 0 && (v = need_vdisk(e, name, action, &r))) {
		vdisk_state(v, &st);
		if (st.behind_sectors)
			printf("%s to copy: %s\n", vlunctl_fmt(st.behind_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
			       *e->remote ? "the holder's resync is filling the new copies ('vlunctl jobs <pool-spec> --watch')" :
			       "run 'vlunctl resync <pool-spec> --wait' to fill the new copies (a running handler does it by itself)");
	}
	return 0;
}

static int cmd_mirror_remove(const struct vlunctl_mirror_env *e)
{
	const char *name = e->args[0];
	uint32_t member = VLUN_NO_MEMBER;
	uint64_t off = 0, len = 0;
	char action[160], rw[96], by[128], which[48], req[512];
	const struct vlun_vdisk_desc *v;
	char *reason = NULL;
	int r;

	snprintf(action, sizeof(action), "cannot remove a mirror copy of vdisk '%s'", name);
	if (e->o->range && (r = parse_range(e->o->range, &off, &len)))
		return r;
	if (e->o->member && parse_index(e->o->member, VLUN_MAX_MEMBERS, &member) < 0)
		return fail(MX_EXIT_USAGE, "not a member index", "Give an index shown by 'vlunctl pool show', e.g. --member 1",
			    "invalid --member '%s'", e->o->member);
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (!(v = need_vdisk(e, name, action, &r)))
		return r;
	if ((member != VLUN_NO_MEMBER && (r = check_members(e, "--member", &member, 1, action))) ||
	    (r = check_range(v, off, len, action)))
		return r;
	range_words(off, len, rw, sizeof(rw));
	if (member == VLUN_NO_MEMBER)
		snprintf(which, sizeof(which), "the second copy");
	else
		snprintf(which, sizeof(which), "the copy on member %" PRIu32, member);
	if (*e->remote) {
		size_t o = (size_t)snprintf(req, sizeof(req), "mirror-remove name=%s", name);

		o = req_range(req, sizeof(req), o, off, len);
		if (member != VLUN_NO_MEMBER)
			snprintf(req + o, sizeof(req) - o, " member=%" PRIu32, member);
		r = remote_query(e->ctx, req, action,
				 "It would drop the only good copy; wait for the resync ('vlunctl jobs') or remove the other copy",
				 NULL);
		if (r)
			return r;
	} else {
		r = vlun_mirror_remove(*e->pool, name, off, len, member, &reason);
		if (r < 0)
			return change_failed(e, r, reason, action);
	}
	printf("removed %s of %s vdisk '%s' in %s%s\n", which, rw, name, e->pool_label, done_by(e->ctx, by, sizeof(by)));
	return 0;
}

static int cmd_mirror_split(const struct vlunctl_mirror_env *e)
{
	const char *name = e->args[0], *new_name = e->args[1];
	const struct vlun_pool_desc *d;
	char action[192], by[128], req[256];
	const struct vlun_vdisk_desc *v;
	char *reason = NULL;
	int r;

	snprintf(action, sizeof(action), "cannot split vdisk '%s'", name);
	if (!vlun_name_valid(new_name))
		return fail(MX_EXIT_USAGE, "invalid name", "Use 1 to 63 characters from A-Z a-z 0-9 . _ -",
			    "%s into '%s'", action, new_name);
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (!(v = need_vdisk(e, name, action, &r)))
		return r;
	d = *e->desc;
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (strcmp(d->vdisks[i].name, new_name) == 0)
			return fail(MX_EXIT_EXISTS, "the name is taken", "Choose another name", "%s into '%s' in %s",
				    action, new_name, e->pool_label);
	if (*e->remote) {
		snprintf(req, sizeof(req), "mirror-split name=%s new=%s", name, new_name);
		r = remote_query(e->ctx, req, action,
				 "It is not fully mirrored and in sync; wait for the resync ('vlunctl jobs --watch')", NULL);
		if (r)
			return r;
	} else {
		r = vlun_mirror_split(*e->pool, name, new_name, &reason);
		if (r < 0) {
			if (r == -EBUSY && !reason)
				return fail(MX_EXIT_INUSE, "it is not fully mirrored and in sync",
					    "Mirror the whole vdisk and run 'vlunctl resync --wait' first", "%s in %s", action,
					    e->pool_label);
			return change_failed(e, r, reason, action);
		}
	}
	printf("split vdisk '%s' in %s: its second copy is now vdisk '%s'%s\n", name, e->pool_label, new_name,
	       done_by(e->ctx, by, sizeof(by)));
	return 0;
}

static int cmd_migrate(const struct vlunctl_mirror_env *e)
{
	const char *name = e->nargs > 0 ? e->args[0] : NULL;
	struct vlun_migrate_opts mo = { .from_member = VLUN_NO_MEMBER };
	uint32_t to[VLUN_MAX_MEMBERS], id = 0;
	size_t nto = 0;
	char action[160], what[192], by[128], req[2048];
	char *reason = NULL;
	int r;

	if (name)
		snprintf(action, sizeof(action), "cannot migrate vdisk '%s'", name);
	else
		snprintf(action, sizeof(action), "cannot migrate");
	if (e->o->range && !name)
		return fail(MX_EXIT_USAGE, "--range needs a vdisk", "Give the vdisk: vlunctl migrate <pool-spec> <vdisk> --range OFF:LEN",
			    "%s", action);
	if (e->o->range && (r = parse_range(e->o->range, &mo.offset, &mo.length)))
		return r;
	if (e->o->off_member && parse_index(e->o->off_member, VLUN_MAX_MEMBERS, &mo.from_member) < 0)
		return fail(MX_EXIT_USAGE, "not a member index", "Give an index shown by 'vlunctl pool show', e.g. --off-member 0",
			    "invalid --off-member '%s'", e->o->off_member);
	if (e->o->to && (r = parse_list("--to", e->o->to, to, &nto)))
		return r;
	for (size_t i = 0; i < nto; i++)
		if (to[i] == mo.from_member)
			return fail(MX_EXIT_USAGE, "--to lists the member that --off-member empties",
				    "Give other members as targets", "%s: member %" PRIu32, action, to[i]);
	if (!name && mo.from_member == VLUN_NO_MEMBER && nto == 0)
		return fail(MX_EXIT_USAGE, "nothing to migrate",
			    "Give a vdisk, --off-member IDX (to empty a member) or --to IDX,... (to move every vdisk there)",
			    "%s", action);
	if (e->o->rate && (r = parse_rate(e->o->rate, &mo.rate)))
		return r;
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (name) {
		const struct vlun_vdisk_desc *v = need_vdisk(e, name, action, &r);

		if (!v)
			return r;
		if (e->o->range && (r = check_range(v, mo.offset, mo.length, action)))
			return r;
	}
	if ((mo.from_member != VLUN_NO_MEMBER && (r = check_members(e, "--off-member", &mo.from_member, 1, action))) ||
	    (r = check_members(e, "--to", to, nto, action)))
		return r;
	mo.vdisk = name;
	mo.to = nto ? to : NULL;
	mo.nto = nto;
	if (*e->remote) {
		size_t o = (size_t)snprintf(req, sizeof(req), "migrate");
		char *payload = NULL;
		struct vlun_job_info *jobs = NULL;
		size_t n = 0;

		if (name)
			o += (size_t)snprintf(req + o, sizeof(req) - o, " name=%s", name);
		o = req_range(req, sizeof(req), o, mo.offset, mo.length);
		if (mo.from_member != VLUN_NO_MEMBER)
			o += (size_t)snprintf(req + o, sizeof(req) - o, " from=%" PRIu32, mo.from_member);
		o = req_list(req, sizeof(req), o, "to", to, nto);
		if (mo.rate && o < sizeof(req))
			snprintf(req + o, sizeof(req) - o, " rate=%" PRIu64, mo.rate);
		r = remote_query(e->ctx, req, action, NULL, &payload);
		if (r)
			return r;
		if (parse_jobs(payload, &jobs, &n) == 0 && n == 1)
			id = jobs[0].id;
		free(jobs);
		free(payload);
		if (n != 1)
			return fail(MX_EXIT_FAIL, "the holder's reply names no job", "Check 'vlunctl jobs <pool-spec>'",
				    "%s", action);
	} else {
		r = vlun_migrate_start(*e->pool, &mo, &id, &reason);
		if (r < 0)
			return change_failed(e, r, reason, action);
	}
	printf("started migration job %" PRIu32 " in %s%s\n", id, e->pool_label, done_by(e->ctx, by, sizeof(by)));
	fflush(stdout);
	snprintf(what, sizeof(what), "migration job %" PRIu32, id);
	if (!*e->remote) {
		char todo[256];

		snprintf(todo, sizeof(todo), "The job stays recorded: fix the cause, then 'vlunctl resync <pool-spec> --wait' (or the next holder) resumes it; 'vlunctl job cancel <pool-spec> %" PRIu32 "' drops it", id);
		r = run_local(e, what, todo);
		if (r)
			return r;
		printf("migration job %" PRIu32 " done\n", id);
		return 0;
	}
	if (!e->o->wait)
		return 0;
	r = wait_remote(e, id, false, what);
	if (r)
		return r;
	printf("migration job %" PRIu32 " done\n", id);
	return 0;
}

static int cmd_resync(const struct vlunctl_mirror_env *e)
{
	uint64_t rate = 0, behind;
	char by[128], req[128], s1[32];
	char *reason = NULL;
	bool down;
	int r;

	if (e->o->rate && (r = parse_rate(e->o->rate, &rate)))
		return r;
	r = open_pool(e->ctx, "cannot resync");
	if (r)
		return r;
	if (*e->remote) {
		snprintf(req, sizeof(req), "resync");
		if (e->o->rate)
			snprintf(req, sizeof(req), "resync rate=%" PRIu64, rate);
		r = remote_query(e->ctx, req, "cannot resync", NULL, NULL);
		if (r)
			return r;
		printf("resync of %s started%s\n", e->pool_label, done_by(e->ctx, by, sizeof(by)));
		fflush(stdout);
		if (!e->o->wait)
			return 0;
		r = wait_remote(e, 0, true, "resync");
		if (r)
			return r;
	} else {
		r = vlun_resync_start(*e->pool, rate, &reason);
		if (r < 0)
			return change_failed(e, r, reason, "cannot resync");
		r = run_local(e, "resync", "Fix the cause ('vlunctl pool show' shows failed members) and run 'vlunctl resync' again: it copies only what is still behind");
		if (r)
			return r;
		r = refresh_desc(e->ctx);
		if (r < 0)
			return fail(MX_EXIT_FAIL, lib_why(NULL, r), hint_for_errno(r), "resync: reading %s", e->pool_label);
		behind = pool_behind(*e->desc, &down);
		if (behind)
			return fail(MX_EXIT_FAIL, "copies are still behind",
				    down ? "A member is failed or missing ('vlunctl pool show'); bring it back and run 'vlunctl resync' again" :
				    "Run 'vlunctl resync' again",
				    "resync of %s: %s behind", e->pool_label, vlunctl_fmt(behind, s1, sizeof(s1)));
	}
	printf("mirrors of %s in sync\n", e->pool_label);
	return 0;
}

static void print_jobs_json(const struct vlunctl_mirror_env *e, const struct vlun_job_info *jobs, size_t n, bool held,
			    bool compact)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	json_object_object_add(o, "pool", json_object_new_string((*e->desc)->name));
	json_object_object_add(o, "held", json_object_new_boolean(held));
	for (size_t i = 0; i < n; i++) {
		const struct vlun_job_info *j = &jobs[i];
		json_object *jo = json_object_new_object();
		const char *vn = vdisk_name_by_id(*e->desc, j->vdisk_id);

		json_object_object_add(jo, "id", json_u64(j->id));
		json_object_object_add(jo, "kind", json_object_new_string(kind_name(j->kind)));
		json_object_object_add(jo, "state", json_object_new_string(state_name(j->state)));
		json_object_object_add(jo, "vdisk_id", j->vdisk_id == UINT32_MAX ? NULL : json_u64(j->vdisk_id));
		json_object_object_add(jo, "vdisk", vn ? json_object_new_string(vn) : NULL);
		json_object_object_add(jo, "total_bytes", json_u64(j->total_bytes));
		json_object_object_add(jo, "done_bytes", json_u64(j->done_bytes));
		json_object_object_add(jo, "rate_bytes_per_sec", json_u64(j->rate));
		json_object_object_add(jo, "bytes_per_sec", json_u64(j->bytes_per_sec));
		json_object_object_add(jo, "started", json_u64(j->started));
		json_object_object_add(jo, "what", json_object_new_string(j->what));
		json_object_object_add(jo, "error", j->error[0] ? json_object_new_string(j->error) : NULL);
		json_object_array_add(a, jo);
	}
	json_object_object_add(o, "jobs", a);
	printf("%s\n", json_object_to_json_string_ext(o, compact ? JSON_C_TO_STRING_PLAIN :
						      JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	fflush(stdout);
}

static int cmd_jobs(const struct vlunctl_mirror_env *e)
{
	struct progress pr;
	bool held = true, locked = false;
	int r, pid = 0;

	r = open_pool(e->ctx, "cannot list jobs");
	if (r)
		return r;
	progress_init(&pr);
	for (;;) {
		struct vlun_job_info *jobs = NULL;
		size_t n = 0, active = 0, failed = 0;

		r = query_jobs(e, &jobs, &n);
		if (r == -ECONNREFUSED) {
			held = false;
			/* locked by a process that does not answer (older vlun, other host)? */
			locked = vlun_pool_paths_in_use(*e->paths, *e->npaths, &pid) > 0;
			if (desc_jobs(*e->desc, &jobs, &n) < 0)
				return fail(MX_EXIT_FAIL, strerror(ENOMEM), NULL, "cannot list jobs");
		} else if (r) {
			progress_end(&pr);
			return r;
		}
		for (size_t i = 0; i < n; i++) {
			active += held && job_active(&jobs[i]);
			failed += jobs[i].state == VLUN_JOB_FAILED;
		}
		if (e->o->json)
			print_jobs_json(e, jobs, n, held, e->o->watch);
		else if (e->o->watch && held)
			progress_show(&pr, jobs, n, active == 0);
		else {
			for (size_t i = 0; i < n; i++) {
				char line[512];

				progress_line(&jobs[i], line, sizeof(line));
				printf("%s\n", line);
			}
			if (n == 0)
				printf("no jobs in %s\n", e->pool_label);
			else if (!held && locked)
				printf("(%s is held by a process that does not answer on the control channel: these are the jobs recorded in the metadata, their progress is unknown)\n",
				       e->pool_label);
			else if (!held)
				printf("(no process holds %s, so nothing runs these: 'vlunctl resync <pool-spec> --wait' runs them here, or the next holder does)\n",
				       e->pool_label);
		}
		if (!e->o->watch || !held || active == 0) {
			struct vlun_job_info f = { 0 };

			for (size_t i = 0; i < n; i++)
				if (jobs[i].state == VLUN_JOB_FAILED && !f.what[0])
					f = jobs[i];
			free(jobs);
			progress_end(&pr);
			if (e->o->watch && failed)
				return fail(MX_EXIT_FAIL, f.error[0] ? f.error : "a job failed",
					    "Fix the cause and start it again", "job %" PRIu32 " (%s)", f.id, f.what);
			return 0;
		}
		free(jobs);
		vlunctl_sleep_ms(POLL_MS);
	}
}

static int cmd_job_cancel(const struct vlunctl_mirror_env *e)
{
	uint32_t id;
	char action[64], req[64], by[128];
	char *reason = NULL;
	int r;

	if (parse_index(e->args[0], UINT32_MAX, &id) < 0)
		return fail(MX_EXIT_USAGE, "not a job id", "Give an id shown by 'vlunctl jobs <pool-spec>'",
			    "invalid job id '%s'", e->args[0]);
	snprintf(action, sizeof(action), "cannot cancel job %" PRIu32, id);
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if (*e->remote) {
		snprintf(req, sizeof(req), "job-cancel id=%" PRIu32, id);
		r = remote_query(e->ctx, req, action, NULL, NULL);
		if (r)
			return r;
	} else {
		r = vlun_job_cancel(*e->pool, id, &reason);
		if (r < 0) {
			if (r == -ENOENT) {
				free(reason);
				return fail(MX_EXIT_NOTFOUND, "no such job", "'vlunctl jobs <pool-spec>' lists them",
					    "%s in %s", action, e->pool_label);
			}
			return change_failed(e, r, reason, action);
		}
	}
	printf("cancelled job %" PRIu32 " in %s%s\n", id, e->pool_label, done_by(e->ctx, by, sizeof(by)));
	return 0;
}

static int cmd_member_fault(const struct vlunctl_mirror_env *e)
{
	uint32_t idx;
	bool on;
	char action[96], req[64], by[128];
	int r;

	if (parse_index(e->args[0], VLUN_MAX_MEMBERS, &idx) < 0)
		return fail(MX_EXIT_USAGE, "not a member index", "Give an index shown by 'vlunctl pool show'",
			    "invalid member index '%s'", e->args[0]);
	if (strcmp(e->args[1], "on") != 0 && strcmp(e->args[1], "off") != 0)
		return fail(MX_EXIT_USAGE, "not on or off", "Say 'on' to make the member fail, 'off' to end it",
			    "member fault: '%s'", e->args[1]);
	on = strcmp(e->args[1], "on") == 0;
	snprintf(action, sizeof(action), "cannot %s a fault on member %" PRIu32, on ? "inject" : "clear", idx);
	r = open_pool(e->ctx, action);
	if (r)
		return r;
	if ((r = check_members(e, "member", &idx, 1, action)))
		return r;
	if (!*e->remote)
		return fail(MX_EXIT_FAIL, "no process holds the pool",
			    "Fault injection acts on the running holder (tcmu-runner's handler); start it first",
			    "%s of %s", action, e->pool_label);
	snprintf(req, sizeof(req), "member-fault idx=%" PRIu32 " fail=%d", idx, on ? 1 : 0);
	r = remote_query(e->ctx, req, action, NULL, NULL);
	if (r)
		return r;
	if (on)
		printf("member %" PRIu32 " of %s now fails every I/O of the holder (a drill; 'vlunctl member fault <pool-spec> %" PRIu32 " off' ends it)%s\n",
		       idx, e->pool_label, idx, done_by(e->ctx, by, sizeof(by)));
	else
		printf("member %" PRIu32 " of %s no longer fails; the holder's probe brings it back and resyncs it%s\n", idx,
		       e->pool_label, done_by(e->ctx, by, sizeof(by)));
	return 0;
}

int vlunctl_mirror_run(const struct vlunctl_mirror_env *e)
{
	const char *g = e->group ? e->group : "";

	if (strcmp(g, "mirror") == 0 && strcmp(e->verb, "add") == 0)
		return cmd_mirror_add(e);
	if (strcmp(g, "mirror") == 0 && strcmp(e->verb, "remove") == 0)
		return cmd_mirror_remove(e);
	if (strcmp(g, "mirror") == 0 && strcmp(e->verb, "split") == 0)
		return cmd_mirror_split(e);
	if (strcmp(e->verb, "migrate") == 0)
		return cmd_migrate(e);
	if (strcmp(e->verb, "resync") == 0)
		return cmd_resync(e);
	if (strcmp(e->verb, "jobs") == 0)
		return cmd_jobs(e);
	if (strcmp(g, "job") == 0 && strcmp(e->verb, "cancel") == 0)
		return cmd_job_cancel(e);
	if (strcmp(g, "member") == 0 && strcmp(e->verb, "fault") == 0)
		return cmd_member_fault(e);
	return fail(MX_EXIT_USAGE, "unknown command", "Run 'vlunctl help'", "%s %s", g, e->verb);
}
