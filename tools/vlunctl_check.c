/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_check.c — `vlunctl pool check` and `vlunctl pool repair`.
 *
 * check reads every copy of the metadata on every member (the label, both
 * checkpoint slots, the journal chain after the member's newest checkpoint;
 * lib/meta.c: vlun_meta_inspect) and says of each: valid or why not, its
 * seq, and which is the newest. The pool's newest state is the one
 * vlun_meta_load assembles (newest valid checkpoint + its journal). A member
 * whose newest copy is older than that is stale. Read-only; exit 0 when
 * everything is valid and current, 1 otherwise.
 *
 * repair writes one checkpoint of the newest state to every present member
 * (vlun_meta_commit): it goes to each member's slot that does NOT hold its
 * newest valid copy, so a bad copy is replaced and a good one is never
 * written over by anything but newer metadata. It refuses while a running
 * handler holds the pool (only one process may commit) and, without
 * --force, when members are missing (their copies would stay behind).
 * A member whose label is bad cannot be repaired here (the label says
 * which member it is); repair says so and exits 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"
#include "meta.h"
#include "vlun.h"
#include "vlunctl_check.h"

enum { X_OK = 0, X_FAIL = 1, X_USAGE = 2, X_NOTFOUND = 3, X_INUSE = 4 }; /* vlunctl's exit codes */

static int cfail(int code, const char *why, const char *todo, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int cfail(int code, const char *why, const char *todo, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vlunctl: %s: %s.%s%s\n", what, why, todo && *todo ? " " : "", todo ? todo : "");
	return code;
}

struct cmem {
	const char *path;
	struct vlun_blkdev *dev;
	struct vlun_label label;
	int label_r;             /* vlun_meta_label_read */
	char label_why[160];
	bool in_pool;            /* of the chosen pool, not a duplicate */
	int mm;                  /* index in mm, -1 */
	struct vlun_meta_copy copies[VLUN_COPY_N];
	uint64_t newest;         /* newest valid seq on this member */
};

struct state {
	struct cmem *m;
	size_t n;
	struct vlun_meta_member *mm;
	size_t nmm;
	uint8_t uuid[VLUN_UUID_LEN];
	char name[VLUN_NAME_MAX + 1];
	struct vlun_pool_desc *desc;
	struct vlun_meta *st;
	char load_why[512];
	uint64_t newest_ckpt;    /* highest valid checkpoint seq anywhere */
	unsigned problems;
	unsigned missing;        /* of problems: members listed but not found */
};

static void state_free(struct state *s)
{
	for (size_t i = 0; i < s->n; i++)
		vlun_blkdev_close(s->m[i].dev);
	free(s->m);
	free(s->mm);
	vlun_pool_desc_free(s->desc);
	vlun_meta_free(s->st);
	memset(s, 0, sizeof(*s));
}

static const char *state_name(uint32_t st)
{
	switch (st) {
	case VLUN_COPY_VALID: return "valid";
	case VLUN_COPY_EMPTY: return "empty";
	case VLUN_COPY_UNSUPPORTED: return "unsupported";
	default: return "INVALID";
	}
}

/* Opens the paths, picks the pool, loads and inspects. 0 or an exit code
 * (after a message). */
static int gather(struct state *s, char *const *paths, size_t npaths, bool rw)
{
	const char *want = NULL;
	bool have = false;

	s->m = calloc(npaths ? npaths : 1, sizeof(*s->m));
	s->mm = calloc(npaths ? npaths : 1, sizeof(*s->mm));
	if (!s->m || !s->mm)
		return cfail(X_FAIL, strerror(ENOMEM), NULL, "checking the pool");
	for (size_t i = 0; i < npaths; i++) {
		struct cmem *c;
		int r;

		if (!strncmp(paths[i], "pool=", 5)) {
			want = paths[i] + 5;
			continue;
		}
		c = &s->m[s->n++];
		c->path = paths[i];
		c->mm = -1;
		r = vlun_blkdev_open(paths[i], !rw, false, &c->dev);
		if (r < 0) {
			c->label_r = r;
			snprintf(c->label_why, sizeof(c->label_why), "cannot open it%s: %s", rw ? " read-write" : "",
				 strerror(-r));
			continue;
		}
		c->label_r = vlun_meta_label_read(c->dev, &c->label, c->label_why, sizeof(c->label_why));
		if (c->label_r < 0 && !c->label_why[0])
			snprintf(c->label_why, sizeof(c->label_why), "%s", strerror(-c->label_r));
	}
	/* the pool: the one named by pool=, else the only one */
	for (size_t i = 0; i < s->n; i++) {
		struct cmem *c = &s->m[i];
		char u[37];

		if (c->label_r < 0)
			continue;
		vlun_uuid_format(c->label.pool_uuid, u);
		if (want && strcmp(want, c->label.pool_name) && strcmp(want, u))
			continue;
		if (have && memcmp(s->uuid, c->label.pool_uuid, VLUN_UUID_LEN))
			return cfail(X_USAGE, "the paths hold members of more than one pool",
				     "Select one with --pool-name NAME or UUID", "cannot check the pool");
		memcpy(s->uuid, c->label.pool_uuid, VLUN_UUID_LEN);
		snprintf(s->name, sizeof(s->name), "%s", c->label.pool_name);
		have = true;
	}
	if (!have) {
		for (size_t i = 0; i < s->n; i++)
			if (s->m[i].label_r != -ENOENT && s->m[i].dev)
				fprintf(stderr, "vlunctl: warning: %s: label unusable: %s\n", s->m[i].path,
					s->m[i].label_why);
		return cfail(X_NOTFOUND, "no member with a valid vlun label found",
			     "Give the pool's members; a member whose label is damaged cannot be identified", "cannot check the pool");
	}
	for (size_t i = 0; i < s->n; i++) {
		struct cmem *c = &s->m[i];
		bool dup = false;

		if (c->label_r < 0 || memcmp(c->label.pool_uuid, s->uuid, VLUN_UUID_LEN))
			continue;
		for (size_t j = 0; j < s->nmm; j++)
			dup |= !memcmp(s->mm[j].label.member_uuid, c->label.member_uuid, VLUN_UUID_LEN);
		if (dup)
			continue;
		c->in_pool = true;
		c->mm = (int)s->nmm;
		s->mm[s->nmm].dev = c->dev;
		s->mm[s->nmm].label = c->label;
		s->nmm++;
	}
	if (vlun_meta_load(s->mm, s->nmm, &s->desc, rw ? &s->st : NULL, s->load_why, sizeof(s->load_why)) < 0)
		s->desc = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct cmem *c = &s->m[i];
		int r;

		if (!c->in_pool)
			continue;
		r = vlun_meta_inspect(&s->mm[c->mm], s->uuid, c->copies);
		if (r < 0)
			return cfail(X_FAIL, strerror(-r), NULL, "cannot inspect '%s'", c->path);
		for (int k = VLUN_COPY_SLOT_A; k <= VLUN_COPY_SLOT_B; k++)
			if (c->copies[k].state == VLUN_COPY_VALID) {
				c->newest = c->copies[k].seq > c->newest ? c->copies[k].seq : c->newest;
				if (c->copies[k].seq > s->newest_ckpt)
					s->newest_ckpt = c->copies[k].seq;
			}
		if (c->copies[VLUN_COPY_JOURNAL].seq > c->newest)
			c->newest = c->copies[VLUN_COPY_JOURNAL].seq;
	}
	return 0;
}

static bool member_present(const struct state *s, const uint8_t uuid[VLUN_UUID_LEN])
{
	for (size_t j = 0; j < s->nmm; j++)
		if (!memcmp(s->mm[j].label.member_uuid, uuid, VLUN_UUID_LEN))
			return true;
	return false;
}

/* Prints the report (human or JSON) and counts the problems. */
static void report(struct state *s, bool json)
{
	json_object *jo = json ? json_object_new_object() : NULL, *jm = json ? json_object_new_array() : NULL;
	json_object *jp = json ? json_object_new_array() : NULL, *jmiss = json ? json_object_new_array() : NULL;
	char u[37], line[1024];

	s->problems = 0;
	s->missing = 0;
#define PROBLEM(...)                                                              \
	do {                                                                      \
		snprintf(line, sizeof(line), __VA_ARGS__);                        \
		s->problems++;                                                    \
		if (json)                                                         \
			json_object_array_add(jp, json_object_new_string(line));  \
	} while (0)

	vlun_uuid_format(s->uuid, u);
	if (!json) {
		if (s->desc)
			printf("pool '%s' (uuid %s): newest metadata seq %" PRIu64 " (checkpoint seq %" PRIu64 "%s), %zu member(s) found\n",
			       s->name, u, s->desc->seq, s->newest_ckpt,
			       s->desc->seq > s->newest_ckpt ? " + journal" : "", s->nmm);
		else
			printf("pool '%s' (uuid %s): NO valid metadata: %s\n", s->name, u, s->load_why);
	}
	if (!s->desc)
		PROBLEM("no valid metadata: %s", s->load_why);
	for (size_t i = 0; i < s->n; i++) {
		struct cmem *c = &s->m[i];
		json_object *o = NULL, *cps = NULL;

		if (!c->in_pool) {
			if (c->label_r == -ENOENT || (c->label_r == 0 && memcmp(c->label.pool_uuid, s->uuid, VLUN_UUID_LEN)))
				continue; /* not a member of this pool */
			if (c->label_r == 0)
				continue; /* a duplicate path of a member */
			PROBLEM("%s: label invalid: %s", c->path, c->label_why);
			if (!json)
				printf("%s:\n  label    INVALID: %s\n", c->path, c->label_why);
			else {
				o = json_object_new_object();
				json_object_object_add(o, "path", json_object_new_string(c->path));
				json_object_object_add(o, "label_problem", json_object_new_string(c->label_why));
				json_object_array_add(jm, o);
			}
			continue;
		}
		int index = -1;
		if (s->desc)
			for (uint32_t k = 0; k < s->desc->nmembers; k++)
				if (!memcmp(s->desc->members[k].uuid, c->label.member_uuid, VLUN_UUID_LEN))
					index = (int)k;
		vlun_uuid_format(c->label.member_uuid, u);
		bool stale = s->desc && c->newest < s->desc->seq;
		if (!json) {
			printf("member %d %s (uuid %s)%s\n", index, c->path, u,
			       stale ? ": STALE" : index < 0 && s->desc ? ": not in the metadata" : "");
		} else {
			o = json_object_new_object();
			cps = json_object_new_array();
			json_object_object_add(o, "path", json_object_new_string(c->path));
			json_object_object_add(o, "index", json_object_new_int(index));
			json_object_object_add(o, "uuid", json_object_new_string(u));
			json_object_object_add(o, "newest_seq", json_object_new_int64((int64_t)c->newest));
			json_object_object_add(o, "stale", json_object_new_boolean(stale));
		}
		if (stale)
			PROBLEM("%s: stale: its newest valid copy is seq %" PRIu64 ", the pool is at seq %" PRIu64, c->path,
				c->newest, s->desc->seq);
		if (index < 0 && s->desc)
			PROBLEM("%s: carries the pool's label but is not in its metadata (interrupted add-member?)", c->path);
		for (int k = 0; k < VLUN_COPY_N; k++) {
			const struct vlun_meta_copy *x = &c->copies[k];
			bool newest = k == VLUN_COPY_JOURNAL ? x->records > 0 && s->desc && x->seq == s->desc->seq
							     : x->state == VLUN_COPY_VALID && x->seq == s->newest_ckpt;
			bool bad = x->state == VLUN_COPY_BAD || x->state == VLUN_COPY_UNSUPPORTED;

			if (bad)
				PROBLEM("%s: %s: %s", c->path, vlun_meta_copy_name(k), x->why);
			if (json) {
				json_object *e = json_object_new_object();
				json_object_object_add(e, "copy", json_object_new_string(vlun_meta_copy_name(k)));
				json_object_object_add(e, "state", json_object_new_string(state_name(x->state)));
				json_object_object_add(e, "offset", json_object_new_int64((int64_t)x->offset));
				json_object_object_add(e, "seq", json_object_new_int64((int64_t)x->seq));
				if (k == VLUN_COPY_JOURNAL)
					json_object_object_add(e, "records", json_object_new_int64(x->records));
				json_object_object_add(e, "newest", json_object_new_boolean(newest));
				json_object_object_add(e, "why", json_object_new_string(x->why));
				json_object_array_add(cps, e);
				continue;
			}
			printf("  %-8s %-7s", vlun_meta_copy_name(k), state_name(x->state));
			if (k == VLUN_COPY_LABEL)
				printf(" at %" PRIu64, x->offset);
			else if (k == VLUN_COPY_JOURNAL && x->state != VLUN_COPY_EMPTY)
				printf(" %u record(s) after checkpoint seq %" PRIu64 ", up to seq %" PRIu64,
				       x->records, x->seq - x->records, x->seq);
			else if (x->seq)
				printf(" seq %" PRIu64, x->seq);
			if (newest)
				printf(" (newest)");
			if (bad)
				printf(": %s", x->why);
			printf("\n");
		}
		if (json) {
			json_object_object_add(o, "copies", cps);
			json_object_array_add(jm, o);
		}
	}
	for (uint32_t k = 0; s->desc && k < s->desc->nmembers; k++) {
		const struct vlun_member_desc *md = &s->desc->members[k];
		if (member_present(s, md->uuid))
			continue;
		vlun_uuid_format(md->uuid, u);
		PROBLEM("member %u (uuid %s, last seen at '%s') is missing", k, u, md->path_hint);
		s->missing++;
		if (!json)
			printf("member %u (uuid %s, last seen at '%s'): MISSING\n", k, u, md->path_hint);
		else
			json_object_array_add(jmiss, json_object_new_string(md->path_hint));
	}
	if (json) {
		vlun_uuid_format(s->uuid, u);
		json_object_object_add(jo, "pool", json_object_new_string(s->name));
		json_object_object_add(jo, "uuid", json_object_new_string(u));
		json_object_object_add(jo, "seq", json_object_new_int64(s->desc ? (int64_t)s->desc->seq : 0));
		json_object_object_add(jo, "checkpoint_seq", json_object_new_int64((int64_t)s->newest_ckpt));
		json_object_object_add(jo, "ok", json_object_new_boolean(s->problems == 0));
		json_object_object_add(jo, "members", jm);
		json_object_object_add(jo, "missing", jmiss);
		json_object_object_add(jo, "problems", jp);
		printf("%s\n", json_object_to_json_string_ext(jo, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
		json_object_put(jo);
	} else if (s->problems) {
		printf("%u problem(s); 'vlunctl pool repair' rewrites bad and stale copies from the newest valid one\n",
		       s->problems);
	} else {
		printf("ok: every copy is valid and current\n");
	}
#undef PROBLEM
}

static int do_repair(struct state *s, char *const *paths, size_t npaths, bool force)
{
	size_t missing = 0, badlabel = 0;
	int pid = 0, r;
	char u[37];

	r = vlun_pool_paths_in_use(paths, npaths, &pid);
	if (r > 0) {
		char why[128];
		snprintf(why, sizeof(why), "the pool is held by a running handler%s%d%s", pid ? " (pid " : "",
			 pid, pid ? ")" : "");
		if (!pid)
			snprintf(why, sizeof(why), "the pool is held by a running handler");
		return cfail(X_INUSE, why, "Stop the process that holds it (tcmu-runner) first; only one process may write the metadata",
			     "cannot repair pool '%s'", s->name);
	}
	if (!s->desc)
		return cfail(X_FAIL, s->load_why, "Nothing valid to repair from; restore the members from a backup",
			     "cannot repair pool '%s'", s->name);
	for (uint32_t k = 0; k < s->desc->nmembers; k++)
		missing += !member_present(s, s->desc->members[k].uuid);
	for (size_t i = 0; i < s->n; i++)
		badlabel += !s->m[i].in_pool && s->m[i].label_r != -ENOENT && s->m[i].label_r < 0;
	if (missing && !force)
		return cfail(X_NOTFOUND, "members are missing; their copies would stay behind",
			     "Give all members, or re-run with --force to repair the ones present",
			     "cannot repair pool '%s' (%zu of %u members missing)", s->name, missing, s->desc->nmembers);
	report(s, false);
	if (s->problems == missing + badlabel) {
		printf("pool '%s': nothing to repair on the members present (seq %" PRIu64 ")\n", s->name, s->desc->seq);
		return s->problems ? X_FAIL : X_OK;
	}
	/* Take the pool's lock on every member written, as a handler does:
	 * the check above leaves a window in which tcmu-runner could open
	 * the pool and commit while the repair writes its checkpoint. */
	size_t locked = 0;
	for (; locked < s->nmm; locked++) {
		r = vlun_pool_member_lock(s->mm[locked].dev->fd, true);
		if (r < 0)
			break;
	}
	if (locked < s->nmm) {
		const char *path = s->mm[locked].dev->name;
		for (size_t i = 0; i < locked; i++)
			vlun_pool_member_lock(s->mm[i].dev->fd, false);
		if (r == -EAGAIN || r == -EACCES)
			return cfail(X_INUSE, "another process took the pool's lock on a member",
				     "Stop the process that holds it (tcmu-runner) first; only one process may write the metadata",
				     "cannot repair pool '%s' (member %s)", s->name, path);
		return cfail(X_FAIL, strerror(-r), "Check that the member is writable",
			     "cannot repair pool '%s': locking member %s", s->name, path);
	}
	uint64_t before = s->desc->seq;
	r = vlun_meta_commit(s->st, s->mm, s->nmm, s->desc);
	for (size_t i = 0; i < s->nmm; i++)
		vlun_pool_member_lock(s->mm[i].dev->fd, false);
	if (r < 0)
		return cfail(X_FAIL, strerror(-r), "See the messages above for the member that failed",
			     "cannot repair pool '%s': writing a checkpoint", s->name);
	vlun_uuid_format(s->uuid, u);
	printf("repaired pool '%s': wrote checkpoint seq %" PRIu64 " (state of seq %" PRIu64 ") to %zu member(s)\n",
	       s->name, s->desc->seq, before, s->nmm);
	return 0;
}

int vlunctl_check(char *const *paths, size_t npaths, bool repair, bool force, bool json)
{
	struct state s = { 0 };
	int r;

	r = gather(&s, paths, npaths, repair);
	if (r) {
		state_free(&s);
		return r;
	}
	if (!repair) {
		report(&s, json);
		r = s.problems ? X_FAIL : X_OK;
		state_free(&s);
		return r;
	}
	r = do_repair(&s, paths, npaths, force);
	state_free(&s);
	if (r)
		return r;
	/* check again, from the disks; with --force, missing members are
	 * what the user accepted */
	r = gather(&s, paths, npaths, false);
	if (r == 0) {
		printf("after repair:\n");
		report(&s, false);
		r = s.problems > (force ? s.missing : 0) ? X_FAIL : X_OK;
	}
	state_free(&s);
	return r;
}
