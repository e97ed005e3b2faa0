/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl.c — the control channel of a held pool (protocol in ctl.h): the
 * server thread of a pool opened with the lock, and the client call
 * vlun_ctl_request() that vlunctl uses.
 *
 * The server thread only waits on its sockets (poll) and, to execute a
 * request, calls the public management functions, which take ctl_lock like
 * any other caller. It never touches the fast path.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "internal.h"
#include "pool_priv.h"
#include "snap.h"
#include "stats.h"

#define CTL_BACKLOG 8
#define CTL_REQ_WAIT_MS 5000
#define CTL_MAX_ARGS 8

struct ctl_server {
	struct vlun_pool *pool;
	int listen_fd;
	int stop_fd; /* eventfd: written to stop the thread */
	pthread_t thread;
	char name[VLUN_NAME_MAX + 1];
};

VLUN_EXPORT size_t vlun_ctl_socket_name(const uint8_t pool_uuid[VLUN_UUID_LEN], char *buf, size_t len)
{
	char u[37];

	vlun_uuid_format(pool_uuid, u);
	if (len < 2)
		return 0;
	buf[0] = '\0';
	int n = snprintf(buf + 1, len - 1, "vlun/pool/%s", u);
	if (n < 0 || (size_t)n >= len - 1)
		return 0;
	return (size_t)n + 1;
}

static int ctl_addr(const uint8_t uuid[VLUN_UUID_LEN], struct sockaddr_un *sa, socklen_t *ret_len)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = vlun_ctl_socket_name(uuid, sa->sun_path, sizeof(sa->sun_path));
	if (n == 0)
		return -ENAMETOOLONG;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

/* ------------------------------------------------------------ parsing */

struct ctl_arg {
	const char *key;
	char *value; /* decoded, NUL-terminated, inside the request buffer */
};

struct ctl_parsed {
	const char *verb;
	struct ctl_arg args[CTL_MAX_ARGS];
	size_t nargs;
};

/* Decodes %XX in place; refuses bytes that must have been escaped. */
static int unescape(char *s, char *why, size_t whylen, const char *key)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		unsigned char ch = (unsigned char)*r;
		if (ch == '%') {
			int hi = vlun_hexval(r[1]), lo = hi < 0 ? -1 : vlun_hexval(r[2]);
			if (hi < 0 || lo < 0) {
				snprintf(why, whylen, "value of '%s': '%%' must be followed by two hex digits", key);
				return -EINVAL;
			}
			ch = (unsigned char)(hi << 4 | lo);
			if (ch == 0) {
				snprintf(why, whylen, "value of '%s' contains a NUL byte (%%00)", key);
				return -EINVAL;
			}
			r += 2;
		} else if (ch <= 0x20 || ch >= 0x7f) {
			snprintf(why, whylen, "value of '%s' contains byte 0x%02x unescaped; write it as %%XX",
				 key, ch);
			return -EINVAL;
		}
		*w++ = (char)ch;
	}
	*w = '\0';
	return 0;
}

/* Reasons quote request values, which may hold any byte once %XX is
 * decoded (%0a): keep them one printable line for the log and the reply. */
static void one_line(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* Splits "verb k=v k=v" in place (buf is modified). */
static int parse_request(char *buf, size_t len, struct ctl_parsed *ret, char *why, size_t whylen)
{
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len == 0) {
		snprintf(why, whylen, "empty request");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch < 0x20 || ch == 0x7f) {
			snprintf(why, whylen, "control character 0x%02x at byte %zu of the request", ch, i);
			return -EINVAL;
		}
	}
	if (buf[0] == ' ' || buf[len - 1] == ' ' || strstr(buf, "  ")) {
		snprintf(why, whylen, "words must be separated by exactly one space, without leading or "
			 "trailing spaces");
		return -EINVAL;
	}
	struct ctl_parsed p = { 0 };
	char *save = NULL;
	char *tok = strtok_r(buf, " ", &save);
	p.verb = tok;
	for (size_t i = 0; p.verb[i]; i++)
		if (!((p.verb[i] >= 'a' && p.verb[i] <= 'z') || p.verb[i] == '-')) {
			snprintf(why, whylen, "the verb must be lower-case letters and '-'");
			return -EINVAL;
		}
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || eq[1] == '\0') {
			snprintf(why, whylen, "argument '%.64s' is not key=value with a non-empty value", tok);
			return -EINVAL;
		}
		*eq = '\0';
		for (char *k = tok; *k; k++)
			if (*k < 'a' || *k > 'z') {
				snprintf(why, whylen, "key '%.32s' must be lower-case letters", tok);
				return -EINVAL;
			}
		for (size_t i = 0; i < p.nargs; i++)
			if (strcmp(p.args[i].key, tok) == 0) {
				snprintf(why, whylen, "key '%.32s' is given twice", tok);
				return -EINVAL;
			}
		if (p.nargs == CTL_MAX_ARGS) {
			snprintf(why, whylen, "more than %d arguments", CTL_MAX_ARGS);
			return -EINVAL;
		}
		int r = unescape(eq + 1, why, whylen, tok);
		if (r < 0)
			return r;
		p.args[p.nargs].key = tok;
		p.args[p.nargs].value = eq + 1;
		p.nargs++;
	}
	*ret = p;
	return 0;
}

/* Checks that every key is in allowed and every key of required is given. */
static int check_keys(const struct ctl_parsed *p, const char *const *allowed, const char *const *required,
		      char *why, size_t whylen)
{
	for (size_t i = 0; i < p->nargs; i++) {
		bool ok = false;
		for (size_t k = 0; allowed[k]; k++)
			ok |= strcmp(allowed[k], p->args[i].key) == 0;
		if (!ok) {
			snprintf(why, whylen, "'%s' does not take key '%.32s'", p->verb, p->args[i].key);
			return -EINVAL;
		}
	}
	for (size_t k = 0; required[k]; k++) {
		bool found = false;
		for (size_t i = 0; i < p->nargs; i++)
			found |= strcmp(required[k], p->args[i].key) == 0;
		if (!found) {
			snprintf(why, whylen, "'%s' needs %s=", p->verb, required[k]);
			return -EINVAL;
		}
	}
	return 0;
}

static const char *arg(const struct ctl_parsed *p, const char *key)
{
	for (size_t i = 0; i < p->nargs; i++)
		if (strcmp(p->args[i].key, key) == 0)
			return p->args[i].value;
	return NULL;
}

static int parse_num(const char *key, const char *s, uint64_t max, uint64_t *ret, char *why, size_t whylen)
{
	if (!s || s[0] < '0' || s[0] > '9') {
		snprintf(why, whylen, "%s=%.32s is not a decimal number", key, s ? s : "");
		return -EINVAL;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0') {
		snprintf(why, whylen, "%s=%.32s is not a decimal number", key, s);
		return -EINVAL;
	}
	if (errno == ERANGE || v > max) {
		snprintf(why, whylen, "%s=%.32s is too large", key, s);
		return -ERANGE;
	}
	*ret = v;
	return 0;
}

static int parse_force(const struct ctl_parsed *p, bool *ret, char *why, size_t whylen)
{
	const char *f = arg(p, "force");
	if (!f || strcmp(f, "0") == 0) {
		*ret = false;
		return 0;
	}
	if (strcmp(f, "1") == 0) {
		*ret = true;
		return 0;
	}
	snprintf(why, whylen, "force=%.16s: use force=0 or force=1", f);
	return -EINVAL;
}

static int parse_members(const char *key, const char *s, uint32_t *out, size_t *ret_n, char *why,
			 size_t whylen)
{
	size_t n = 0;
	const char *q = s;
	for (;;) {
		const char *comma = strchr(q, ',');
		size_t l = comma ? (size_t)(comma - q) : strlen(q);
		char item[16];
		uint64_t v;
		if (l == 0 || l >= sizeof(item)) {
			snprintf(why, whylen, "%s=%.64s is not a comma-separated list of member indexes", key, s);
			return -EINVAL;
		}
		memcpy(item, q, l);
		item[l] = '\0';
		int r = parse_num(key, item, VLUN_MAX_MEMBERS - 1, &v, why, whylen);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			if (out[i] == v) {
				snprintf(why, whylen, "%s: index %llu is given twice", key, (unsigned long long)v);
				return -EINVAL;
			}
		if (n == VLUN_MAX_MEMBERS) {
			snprintf(why, whylen, "%s: more than %d indexes", key, VLUN_MAX_MEMBERS);
			return -EINVAL;
		}
		out[n++] = (uint32_t)v;
		if (!comma)
			break;
		q = comma + 1;
	}
	*ret_n = n;
	return 0;
}

/* ------------------------------------------- mirrors, migration, jobs */

/* A reply value with the request's escapes (ctl.h); "" is sent as %00 so
 * that no value is empty (the same convention as lib/stats.c). */
static void put_escaped(FILE *f, const char *s)
{
	if (!*s) {
		fputs("%00", f);
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch <= 0x20 || ch >= 0x7f || ch == '%')
			fprintf(f, "%%%02X", ch);
		else
			fputc(ch, f);
	}
}

/* start= and length= of a range: bytes, whole sectors; absent = 0. */
static int parse_range(const struct ctl_parsed *p, uint64_t *ret_start, uint64_t *ret_length, char *why,
		       size_t whylen)
{
	static const char *const keys[] = { "start", "length" };
	uint64_t v[2] = { 0, 0 };

	for (size_t i = 0; i < 2; i++) {
		if (!arg(p, keys[i]))
			continue;
		int r = parse_num(keys[i], arg(p, keys[i]), UINT64_MAX, &v[i], why, whylen);
		if (r < 0)
			return r;
		if (v[i] % VLUN_SECTOR_SIZE) {
			snprintf(why, whylen, "%s=%llu is not a multiple of %u bytes", keys[i],
				 (unsigned long long)v[i], VLUN_SECTOR_SIZE);
			return -EINVAL;
		}
	}
	if (v[0] + v[1] < v[0]) {
		snprintf(why, whylen, "start= plus length= overflow");
		return -ERANGE;
	}
	*ret_start = v[0];
	*ret_length = v[1];
	return 0;
}

static int parse_index(const struct ctl_parsed *p, const char *key, uint32_t *ret, char *why, size_t whylen)
{
	uint64_t v;
	int r = parse_num(key, arg(p, key), VLUN_MAX_MEMBERS - 1, &v, why, whylen);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

static const char *job_kind_name(uint32_t kind)
{
	return kind == VLUN_JOB_RESYNC ? "resync" : kind == VLUN_JOB_MIGRATE ? "migrate" :
	       kind == VLUN_JOB_ROLLBACK ? "rollback" : "unknown";
}

static const char *job_state_name(uint32_t state)
{
	switch (state) {
	case VLUN_JOB_QUEUED: return "queued";
	case VLUN_JOB_RUNNING: return "running";
	case VLUN_JOB_DONE: return "done";
	case VLUN_JOB_FAILED: return "failed";
	case VLUN_JOB_CANCELLED: return "cancelled";
	case VLUN_JOB_WAITING: return "waiting";
	default: return "unknown";
	}
}

/* The payload of "jobs": one line per job (format in ctl.h). */
static int jobs_payload(struct vlun_pool *pool, char **ret)
{
	struct vlun_job_info *jobs = NULL;
	size_t n = 0, len = 0;
	char *out = NULL;
	int r = vlun_jobs_list(pool, &jobs, &n);
	if (r < 0)
		return r;
	FILE *f = open_memstream(&out, &len);
	if (!f) {
		free(jobs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vlun_job_info *j = &jobs[i];
		char vd[16];
		if (j->vdisk_id == UINT32_MAX)
			snprintf(vd, sizeof(vd), "all");
		else
			snprintf(vd, sizeof(vd), "%u", j->vdisk_id);
		fprintf(f, "job id=%u kind=%s state=%s vdisk=%s total=%llu done=%llu rate=%llu bps=%llu "
			"started=%llu what=", j->id, job_kind_name(j->kind), job_state_name(j->state), vd,
			(unsigned long long)j->total_bytes, (unsigned long long)j->done_bytes,
			(unsigned long long)j->rate, (unsigned long long)j->bytes_per_sec,
			(unsigned long long)j->started);
		put_escaped(f, j->what);
		fputs(" error=", f);
		put_escaped(f, j->error);
		fputc('\n', f);
	}
	free(jobs);
	if (fclose(f) != 0 || !out) {
		free(out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}

/* The verbs of mirrors, migration and jobs (ctl.h); *ret_known = false
 * when the verb is none of them. */
static int execute_mirror(struct vlun_pool *pool, const struct ctl_parsed *p, char **reason, char **payload,
			  char *why, size_t whylen, bool *ret_known)
{
	static const char *const none[] = { NULL };
	static const char *const need_name[] = { "name", NULL };
	uint32_t members[VLUN_MAX_MEMBERS];
	uint64_t start = 0, length = 0, v;
	size_t nmembers = 0;
	int r;

	*ret_known = true;
	if (strcmp(p->verb, "mirror-add") == 0) {
		static const char *const allowed[] = { "name", "start", "length", "members", NULL };
		r = check_keys(p, allowed, need_name, why, whylen);
		if (r == 0)
			r = parse_range(p, &start, &length, why, whylen);
		if (r == 0 && arg(p, "members"))
			r = parse_members("members", arg(p, "members"), members, &nmembers, why, whylen);
		if (r < 0 || !pool)
			return r;
		return vlun_mirror_add(pool, arg(p, "name"), start, length, nmembers ? members : NULL, nmembers,
				       reason);
	}
	if (strcmp(p->verb, "mirror-remove") == 0) {
		static const char *const allowed[] = { "name", "start", "length", "member", NULL };
		uint32_t member = VLUN_NO_MEMBER;
		r = check_keys(p, allowed, need_name, why, whylen);
		if (r == 0)
			r = parse_range(p, &start, &length, why, whylen);
		if (r == 0 && arg(p, "member"))
			r = parse_index(p, "member", &member, why, whylen);
		if (r < 0 || !pool)
			return r;
		return vlun_mirror_remove(pool, arg(p, "name"), start, length, member, reason);
	}
	if (strcmp(p->verb, "mirror-split") == 0) {
		static const char *const allowed[] = { "name", "new", NULL };
		r = check_keys(p, allowed, allowed, why, whylen);
		if (r < 0)
			return r;
		if (!vlun_name_valid(arg(p, "new"))) {
			snprintf(why, whylen, "new=%.64s is not a valid name (1 to %d of A-Z a-z 0-9 . _ -)",
				 arg(p, "new"), VLUN_NAME_MAX);
			return -EINVAL;
		}
		if (!pool)
			return 0;
		return vlun_mirror_split(pool, arg(p, "name"), arg(p, "new"), reason);
	}
	if (strcmp(p->verb, "migrate") == 0) {
		static const char *const allowed[] = { "name", "start", "length", "from", "to", "rate", NULL };
		struct vlun_migrate_opts o = { .from_member = VLUN_NO_MEMBER };
		r = check_keys(p, allowed, none, why, whylen);
		if (r == 0)
			r = parse_range(p, &o.offset, &o.length, why, whylen);
		if (r == 0 && !arg(p, "name") && (arg(p, "start") || arg(p, "length"))) {
			snprintf(why, whylen, "start= and length= need name= (a range of one virtual disk)");
			r = -EINVAL;
		}
		if (r == 0 && arg(p, "from"))
			r = parse_index(p, "from", &o.from_member, why, whylen);
		if (r == 0 && arg(p, "to"))
			r = parse_members("to", arg(p, "to"), members, &nmembers, why, whylen);
		if (r == 0 && arg(p, "rate"))
			r = parse_num("rate", arg(p, "rate"), UINT64_MAX, &o.rate, why, whylen);
		for (size_t i = 0; r == 0 && i < nmembers; i++)
			if (members[i] == o.from_member) {
				snprintf(why, whylen, "to= lists member %u, the member given as from=", members[i]);
				r = -EINVAL;
			}
		if (r < 0 || !pool)
			return r;
		o.vdisk = arg(p, "name");
		o.to = nmembers ? members : NULL;
		o.nto = nmembers;
		uint32_t id = 0;
		r = vlun_migrate_start(pool, &o, &id, reason);
		if (r < 0)
			return r;
		if (asprintf(payload, "job id=%u\n", id) < 0) {
			*payload = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (strcmp(p->verb, "resync") == 0) {
		static const char *const allowed[] = { "rate", NULL };
		uint64_t rate = 0;
		r = check_keys(p, allowed, none, why, whylen);
		if (r == 0 && arg(p, "rate"))
			r = parse_num("rate", arg(p, "rate"), UINT64_MAX, &rate, why, whylen);
		if (r < 0 || !pool)
			return r;
		return vlun_resync_start(pool, rate, reason);
	}
	if (strcmp(p->verb, "jobs") == 0) {
		r = check_keys(p, none, none, why, whylen);
		if (r < 0 || !pool)
			return r;
		return jobs_payload(pool, payload);
	}
	if (strcmp(p->verb, "job-cancel") == 0) {
		static const char *const allowed[] = { "id", NULL };
		r = check_keys(p, allowed, allowed, why, whylen);
		if (r == 0)
			r = parse_num("id", arg(p, "id"), UINT32_MAX, &v, why, whylen);
		if (r < 0 || !pool)
			return r;
		return vlun_job_cancel(pool, (uint32_t)v, reason);
	}
	if (strcmp(p->verb, "member-fault") == 0) {
		static const char *const allowed[] = { "idx", "fail", NULL };
		uint32_t idx;
		r = check_keys(p, allowed, allowed, why, whylen);
		if (r == 0)
			r = parse_index(p, "idx", &idx, why, whylen);
		if (r < 0)
			return r;
		const char *f = arg(p, "fail");
		if (strcmp(f, "0") != 0 && strcmp(f, "1") != 0) {
			snprintf(why, whylen, "fail=%.16s: use fail=0 or fail=1", f);
			return -EINVAL;
		}
		if (!pool)
			return 0;
		r = vlun_pool_inject_member_fault(pool, idx, f[0] == '1');
		if (r == -ENOENT || r == -ENXIO || r == -EINVAL)
			vlun_set_reason(reason, "pool has no member %u", idx);
		return r;
	}
	*ret_known = false;
	return -EOPNOTSUPP;
}

/* ------------------------------------------------------ snapshot sessions */

static const char *snap_policy_name(uint32_t policy)
{
	return policy == VLUN_SNAP_FULL_FAIL_WRITE ? "fail-write" : "fail-snapshot";
}

/* policy=fail-snapshot|fail-write; absent: -1 (keep / default). */
static int parse_policy(const struct ctl_parsed *p, int *ret, char *why, size_t whylen)
{
	const char *v = arg(p, "policy");

	*ret = -1;
	if (!v)
		return 0;
	if (strcmp(v, "fail-snapshot") == 0)
		*ret = VLUN_SNAP_FULL_FAIL_SNAPSHOT;
	else if (strcmp(v, "fail-write") == 0)
		*ret = VLUN_SNAP_FULL_FAIL_WRITE;
	else {
		snprintf(why, whylen, "policy=%.32s: use fail-snapshot or fail-write", v);
		return -EINVAL;
	}
	return 0;
}

/* Every name key given must be a valid name. */
static int check_names(const struct ctl_parsed *p, const char *const *keys, char *why, size_t whylen)
{
	for (size_t k = 0; keys[k]; k++) {
		const char *v = arg(p, keys[k]);
		if (v && !vlun_name_valid(v)) {
			snprintf(why, whylen, "%s=%.64s is not a valid name (1 to %d of A-Z a-z 0-9 . _ -)", keys[k], v,
				 VLUN_NAME_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

/* The payload of "snapshot-list": one line per session,
 *   snapshot id=I source=S name=N bit=B state=active|failed flags=F
 *       created=T chunk=B saved=B shared=B reserve_used=B reserve_total=B
 *       policy=fail-snapshot|fail-write open=0|1 why=W
 * (W escaped, %00 when empty). */
static int snapshots_payload(struct vlun_pool *pool, const char *source, char **ret)
{
	struct vlun_snapshot_info *v = NULL;
	size_t n = 0, len = 0;
	char *out = NULL;
	int r = vlun_snapshot_list(pool, source, &v, &n);
	if (r < 0)
		return r;
	FILE *f = open_memstream(&out, &len);
	if (!f) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vlun_snapshot_info *s = &v[i];
		fprintf(f, "snapshot id=%u source=", s->d.id);
		put_escaped(f, s->source);
		fputs(" name=", f);
		put_escaped(f, s->d.name);
		fprintf(f, " bit=%u state=%s flags=%u created=%llu chunk=%llu saved=%llu shared=%llu "
			"reserve_used=%llu reserve_total=%llu policy=%s open=%d why=", s->d.bit,
			s->d.state == VLUN_SNAP_FAILED ? "failed" : "active", s->d.flags,
			(unsigned long long)s->d.created, (unsigned long long)s->chunk_bytes,
			(unsigned long long)s->saved_bytes, (unsigned long long)s->shared_bytes,
			(unsigned long long)s->reserve_used_bytes, (unsigned long long)s->reserve_total_bytes,
			snap_policy_name(s->full_policy), s->open ? 1 : 0);
		put_escaped(f, s->d.why);
		fputc('\n', f);
	}
	free(v);
	if (fclose(f) != 0 || !out) {
		free(out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}

/* The verbs of snapshot sessions (ctl.h); *ret_known = false when the verb
 * is none of them. */
static int execute_snapshot(struct vlun_pool *pool, const struct ctl_parsed *p, char **reason, char **payload,
			    char *why, size_t whylen, bool *ret_known)
{
	static const char *const source_name[] = { "source", "name", NULL };
	int r, policy = -1;

	*ret_known = true;
	if (strcmp(p->verb, "snapshot-create") == 0) {
		static const char *const allowed[] = { "source", "name", "reserve", "chunk", "policy", NULL };
		struct vlun_snapshot_create_opts o = { .full_policy = -1 };
		r = check_keys(p, allowed, source_name, why, whylen);
		if (r == 0)
			r = check_names(p, source_name, why, whylen);
		if (r == 0 && arg(p, "reserve"))
			r = parse_num("reserve", arg(p, "reserve"), UINT64_MAX, &o.reserve_bytes, why, whylen);
		if (r == 0 && arg(p, "chunk"))
			r = parse_num("chunk", arg(p, "chunk"), UINT32_MAX, &o.chunk_bytes, why, whylen);
		if (r == 0)
			r = parse_policy(p, &policy, why, whylen);
		if (r < 0 || !pool)
			return r;
		o.source = arg(p, "source");
		o.name = arg(p, "name");
		o.full_policy = policy;
		return vlun_snapshot_create(pool, &o, reason);
	}
	if (strcmp(p->verb, "snapshot-delete") == 0) {
		r = check_keys(p, source_name, source_name, why, whylen);
		if (r == 0)
			r = check_names(p, source_name, why, whylen);
		if (r < 0 || !pool)
			return r;
		return vlun_snapshot_delete(pool, arg(p, "source"), arg(p, "name"), reason);
	}
	if (strcmp(p->verb, "snapshot-rollback") == 0) {
		static const char *const allowed[] = { "source", "name", "wait", NULL };
		bool wait = true;
		uint32_t id = 0;
		r = check_keys(p, allowed, source_name, why, whylen);
		if (r == 0)
			r = check_names(p, source_name, why, whylen);
		if (r == 0 && arg(p, "wait")) {
			const char *w = arg(p, "wait");
			wait = strcmp(w, "1") == 0;
			if (!wait && strcmp(w, "0") != 0) {
				snprintf(why, whylen, "wait must be 0 or 1");
				r = -EINVAL;
			}
		}
		if (r < 0 || !pool)
			return r;
		if (wait)
			return vlun_snapshot_rollback(pool, arg(p, "source"), arg(p, "name"), reason);
		r = snap_rollback_start(pool, arg(p, "source"), arg(p, "name"), &id, reason);
		if (r < 0)
			return r;
		if (asprintf(payload, "job id=%u\n", id) < 0) {
			*payload = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (strcmp(p->verb, "snapshot-reserve") == 0) {
		static const char *const allowed[] = { "source", "size", "policy", NULL };
		static const char *const required[] = { "source", NULL };
		uint64_t size = 0;
		r = check_keys(p, allowed, required, why, whylen);
		if (r == 0)
			r = check_names(p, required, why, whylen);
		if (r == 0 && arg(p, "size"))
			r = parse_num("size", arg(p, "size"), UINT64_MAX, &size, why, whylen);
		if (r == 0)
			r = parse_policy(p, &policy, why, whylen);
		if (r == 0 && !arg(p, "size") && !arg(p, "policy")) {
			snprintf(why, whylen, "'snapshot-reserve' needs size= or policy=");
			r = -EINVAL;
		}
		if (r < 0 || !pool)
			return r;
		return vlun_snapshot_reserve_set(pool, arg(p, "source"), size, policy, reason);
	}
	if (strcmp(p->verb, "snapshot-list") == 0) {
		static const char *const allowed[] = { "source", NULL };
		static const char *const none[] = { NULL };
		r = check_keys(p, allowed, none, why, whylen);
		if (r == 0)
			r = check_names(p, allowed, why, whylen);
		if (r < 0 || !pool)
			return r;
		return snapshots_payload(pool, arg(p, "source"), payload);
	}
	*ret_known = false;
	return -EOPNOTSUPP;
}

/* ------------------------------------------------------------ execution */

/* Runs one parsed request; on failure a reason in *reason (malloc'd) or
 * why. A verb that returns data sets *payload (malloc'd text, see ctl.h). */
static int execute(struct vlun_pool *pool, const struct ctl_parsed *p, char **reason, char **payload,
		   char *why, size_t whylen)
{
	static const char *const none[] = { NULL };
	int r;

	if (strcmp(p->verb, "ping") == 0)
		return check_keys(p, none, none, why, whylen);
	if (strcmp(p->verb, "stats") == 0) {
		r = check_keys(p, none, none, why, whylen);
		if (r < 0 || !pool)
			return r;
		return pool_stats_collect(pool, payload);
	}
	if (strcmp(p->verb, "vdisk-create") == 0) {
		static const char *const allowed[] = { "name", "layout", "size", "chunk", "width", "members", NULL };
		static const char *const required[] = { "name", "layout", "size", NULL };
		struct vlun_vdisk_create_opts o = { 0 };
		uint32_t members[VLUN_MAX_MEMBERS];
		uint64_t v;

		r = check_keys(p, allowed, required, why, whylen);
		if (r < 0)
			return r;
		o.name = arg(p, "name");
		const char *lay = arg(p, "layout");
		if (strcmp(lay, "linear") == 0)
			o.layout = VLUN_LAYOUT_LINEAR;
		else if (strcmp(lay, "striped") == 0)
			o.layout = VLUN_LAYOUT_STRIPED;
		else if (strcmp(lay, "thin") == 0)
			o.layout = VLUN_LAYOUT_THIN;
		else {
			snprintf(why, whylen, "layout=%.32s: use linear, striped or thin", lay);
			return -EINVAL;
		}
		r = parse_num("size", arg(p, "size"), UINT64_MAX, &o.size_bytes, why, whylen);
		if (r < 0)
			return r;
		if (arg(p, "chunk")) {
			r = parse_num("chunk", arg(p, "chunk"), UINT64_MAX, &o.chunk_bytes, why, whylen);
			if (r < 0)
				return r;
		}
		if (arg(p, "width")) {
			r = parse_num("width", arg(p, "width"), VLUN_MAX_MEMBERS, &v, why, whylen);
			if (r < 0)
				return r;
			o.stripe_width = (uint32_t)v;
		}
		if (arg(p, "members")) {
			r = parse_members("members", arg(p, "members"), members, &o.nmembers, why, whylen);
			if (r < 0)
				return r;
			o.members = members;
		}
		if (o.layout != VLUN_LAYOUT_STRIPED && arg(p, "width")) {
			snprintf(why, whylen, "width= applies to layout=striped only");
			return -EINVAL;
		}
		if (o.layout == VLUN_LAYOUT_LINEAR && arg(p, "chunk")) {
			snprintf(why, whylen, "chunk= does not apply to layout=linear");
			return -EINVAL;
		}
		if (!pool)
			return 0; /* vlun_ctl_check_request(): checks only */
		return vlun_vdisk_create(pool, &o, reason);
	}
	if (strcmp(p->verb, "vdisk-resize") == 0) {
		static const char *const allowed[] = { "name", "size", "force", NULL };
		static const char *const required[] = { "name", "size", NULL };
		uint64_t size;
		bool force;

		r = check_keys(p, allowed, required, why, whylen);
		if (r < 0)
			return r;
		r = parse_num("size", arg(p, "size"), UINT64_MAX, &size, why, whylen);
		if (r < 0)
			return r;
		r = parse_force(p, &force, why, whylen);
		if (r < 0)
			return r;
		if (!pool)
			return 0;
		return vlun_vdisk_resize(pool, arg(p, "name"), size, force, reason);
	}
	if (strcmp(p->verb, "vdisk-delete") == 0) {
		static const char *const allowed[] = { "name", NULL };
		r = check_keys(p, allowed, allowed, why, whylen);
		if (r < 0)
			return r;
		if (!pool)
			return 0;
		return vlun_vdisk_delete(pool, arg(p, "name"), reason);
	}
	if (strcmp(p->verb, "member-add") == 0) {
		static const char *const allowed[] = { "path", "force", NULL };
		static const char *const required[] = { "path", NULL };
		bool force;

		r = check_keys(p, allowed, required, why, whylen);
		if (r < 0)
			return r;
		r = parse_force(p, &force, why, whylen);
		if (r < 0)
			return r;
		const char *path = arg(p, "path");
		if (path[0] != '/' || strlen(path) > VLUN_PATH_MAX) {
			snprintf(why, whylen, "path= must be an absolute path of at most %d bytes", VLUN_PATH_MAX);
			return -EINVAL;
		}
		if (!pool)
			return 0;
		return vlun_pool_add_member(pool, path, force, reason);
	}
	bool known = false;
	r = execute_mirror(pool, p, reason, payload, why, whylen, &known);
	if (known)
		return r;
	r = execute_snapshot(pool, p, reason, payload, why, whylen, &known);
	if (known)
		return r;
	snprintf(why, whylen, "unknown request '%.32s' (known: ping, stats, vdisk-create, "
		 "vdisk-resize, vdisk-delete, member-add, mirror-add, mirror-remove, mirror-split, "
		 "migrate, resync, jobs, job-cancel, member-fault, snapshot-create, snapshot-delete, "
		 "snapshot-rollback, snapshot-reserve, snapshot-list)", p->verb);
	return -EOPNOTSUPP;
}

/* The server's checks of one request without a pool (ctl.h): what
 * serve_one() refuses before parsing, then parse_request() and execute()
 * up to the point where it would change the pool. */
int vlun_ctl_check_request(const char *req, size_t len, char *why, size_t whylen)
{
	char buf[VLUN_CTL_REQ_MAX + 1];
	struct ctl_parsed p;
	char *reason = NULL, *payload = NULL;
	int r;

	if (!req || !why || whylen == 0)
		return -EINVAL;
	why[0] = '\0';
	if (len > VLUN_CTL_REQ_MAX) {
		snprintf(why, whylen, "request of %zu bytes is longer than %u", len, VLUN_CTL_REQ_MAX);
		return -E2BIG;
	}
	if (len == 0 || memchr(req, '\0', len)) {
		snprintf(why, whylen, len ? "request contains a NUL byte" : "empty request");
		return -EINVAL;
	}
	memcpy(buf, req, len);
	buf[len] = '\0';
	r = parse_request(buf, len, &p, why, whylen);
	if (r == 0)
		r = execute(NULL, &p, &reason, &payload, why, whylen);
	one_line(why);
	free(reason);
	free(payload);
	return r;
}

static void reply(int fd, int r, const char *reason)
{
	char out[VLUN_CTL_REPLY_MAX];
	int n;

	if (r >= 0) {
		n = snprintf(out, sizeof(out), "ok");
	} else {
		n = snprintf(out, sizeof(out), "err %d %s", -r, reason && *reason ? reason : strerror(-r));
		if (n < 0)
			return;
		if ((size_t)n >= sizeof(out))
			n = (int)sizeof(out) - 1;
		for (int i = 0; i < n; i++)
			if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
				out[i] = ' ';
	}
	if (send(fd, out, (size_t)n, MSG_NOSIGNAL) < 0)
		vlun_info("control channel: cannot send the reply: %s", strerror(errno));
}

/* "ok <len>\n<payload>", in messages of at most VLUN_CTL_MSG_MAX bytes. */
static void reply_payload(int fd, const char *payload)
{
	size_t len = strlen(payload);
	if (len > VLUN_CTL_PAYLOAD_MAX) {
		char why[128];
		snprintf(why, sizeof(why), "the reply of %zu bytes is longer than the channel's limit of %u; "
			 "ask for less", len, VLUN_CTL_PAYLOAD_MAX);
		reply(fd, -E2BIG, why);
		return;
	}
	char head[32];
	int hl = snprintf(head, sizeof(head), "ok %zu\n", len);
	char *out = malloc((size_t)hl + len);
	if (!out) {
		reply(fd, -ENOMEM, "out of memory for the reply");
		return;
	}
	memcpy(out, head, (size_t)hl);
	memcpy(out + hl, payload, len);
	/* a client that stops reading must not hold the server thread */
	struct timeval tv = { .tv_sec = CTL_REQ_WAIT_MS / 1000 };
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (size_t off = 0, total = (size_t)hl + len; off < total;) {
		size_t n = VLUN_MIN(total - off, (size_t)VLUN_CTL_MSG_MAX);
		if (send(fd, out + off, n, MSG_NOSIGNAL) < 0) {
			vlun_info("control channel: cannot send the reply: %s", strerror(errno));
			break;
		}
		off += n;
	}
	free(out);
}

static void serve_one(struct ctl_server *s, int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char buf[VLUN_CTL_REQ_MAX + 1];
	char why[256] = "";
	char *reason = NULL, *payload = NULL;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		reply(fd, -errno, "cannot read the peer's credentials");
		return;
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		vlun_warn("pool '%s': control request from uid %u (pid %d) refused: only root or uid %u may "
			  "change the pool", s->name, (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
		reply(fd, -EACCES, "permission denied: only root or the user running the pool's holder may change it");
		return;
	}

	struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = s->stop_fd, .events = POLLIN } };
	r = poll(pf, 2, CTL_REQ_WAIT_MS);
	if (r <= 0 || (pf[1].revents & POLLIN) || !(pf[0].revents & (POLLIN | POLLHUP)))
		return; /* timeout, shutdown or error: drop the client */

	ssize_t n = recv(fd, buf, VLUN_CTL_REQ_MAX + 1, MSG_DONTWAIT | MSG_TRUNC);
	if (n <= 0)
		return;
	if ((size_t)n > VLUN_CTL_REQ_MAX) {
		snprintf(why, sizeof(why), "request of %zd bytes is longer than %u", n, VLUN_CTL_REQ_MAX);
		reply(fd, -E2BIG, why);
		return;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', (size_t)n)) {
		reply(fd, -EINVAL, "request contains a NUL byte");
		return;
	}

	struct ctl_parsed p;
	char logcopy[160];
	snprintf(logcopy, sizeof(logcopy), "%.159s", buf);
	logcopy[strcspn(logcopy, "\n")] = '\0';
	one_line(logcopy);
	r = parse_request(buf, (size_t)n, &p, why, sizeof(why));
	if (r == 0)
		r = execute(s->pool, &p, &reason, &payload, why, sizeof(why));
	one_line(why);
	one_line(reason);
	if (r < 0)
		vlun_info("pool '%s': control request '%s' from pid %d refused: %s", s->name, logcopy,
			  (int)cred.pid, reason ? reason : why[0] ? why : strerror(-r));
	else if (payload) /* a query: polled, e.g. by a metrics scraper */
		vlun_debug("pool '%s': control request '%s' from pid %d answered", s->name, logcopy,
			   (int)cred.pid);
	else
		vlun_info("pool '%s': control request '%s' from pid %d done", s->name, logcopy, (int)cred.pid);
	if (r >= 0 && payload)
		reply_payload(fd, payload);
	else
		reply(fd, r, reason ? reason : why);
	free(reason);
	free(payload);
}

static void *server_main(void *arg)
{
	struct ctl_server *s = arg;
	for (;;) {
		struct pollfd pf[2] = { { .fd = s->listen_fd, .events = POLLIN },
					{ .fd = s->stop_fd, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vlun_err("pool '%s': control channel: poll failed: %s; online changes through "
				 "vlunctl stop working until the pool is reopened", s->name, strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				vlun_warn("pool '%s': control channel: accept failed: %s", s->name, strerror(errno));
			continue;
		}
		serve_one(s, fd);
		close(fd);
	}
	return NULL;
}

int ctl_server_start(struct vlun_pool *p)
{
	struct sockaddr_un sa;
	socklen_t sl;
	int r = ctl_addr(p->uuid, &sa, &sl);
	if (r < 0)
		return r;
	struct ctl_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pool = p;
	s->stop_fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", p->desc->name);
	s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sl) < 0) {
		r = -errno;
		if (r == -EADDRINUSE)
			vlun_warn("pool '%s': another process already serves its control socket (a copy of "
				  "this pool open elsewhere?); vlunctl cannot change it online here", s->name);
		goto fail;
	}
	if (listen(s->listen_fd, CTL_BACKLOG) < 0) {
		r = -errno;
		goto fail;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&s->thread, NULL, server_main, s);
	if (r < 0)
		goto fail;
	pthread_setname_np(s->thread, "vlun-ctl");
	p->ctl_srv = s;
	return 0;
fail:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s);
	return r;
}

void ctl_server_stop(struct vlun_pool *p)
{
	struct ctl_server *s = p->ctl_srv;
	if (!s)
		return;
	uint64_t one = 1;
	if (write(s->stop_fd, &one, sizeof(one)) < 0)
		vlun_warn("pool '%s': cannot stop the control thread: %s", s->name, strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	close(s->stop_fd);
	free(s);
	p->ctl_srv = NULL;
}

/* ------------------------------------------------------------ client */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for the next message until deadline (CLOCK_MONOTONIC ms) and
 * receives it into buf (at most len bytes). Returns its length, 0 at the
 * end of the connection, or negative errno; -EPROTO for a message longer
 * than len. */
static ssize_t recv_msg(int fd, char *buf, size_t len, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, (int)VLUN_MIN(deadline_ms - now, (uint64_t)INT32_MAX));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if ((size_t)n > len)
			return -EPROTO;
		return n;
	}
}

/* Parses "err <errno> <reason>" into the negative errno and the reason. */
static int parse_err(const char *buf, char **ret_reply_reason)
{
	if (strncmp(buf, "err ", 4) != 0 || buf[4] < '1' || buf[4] > '9')
		return -EPROTO;
	char *end;
	errno = 0;
	unsigned long e = strtoul(buf + 4, &end, 10);
	if (errno || e == 0 || e > 4095 || (*end != ' ' && *end != '\0'))
		return -EPROTO;
	if (ret_reply_reason) {
		char *why = strdup(*end ? end + 1 : strerror((int)e));
		if (!why)
			return -ENOMEM;
		*ret_reply_reason = why;
	}
	return -(int)e;
}

/* One request, its reply; the payload (NULL after a plain "ok") in
 * *ret_payload when that is not NULL. */
static int ctl_exchange(const uint8_t pool_uuid[VLUN_UUID_LEN], const char *request, char **ret_payload,
			char **ret_reply_reason)
{
	if (!pool_uuid || !request)
		return -EINVAL;
	size_t len = strlen(request);
	if (len == 0)
		return -EINVAL;
	if (len > VLUN_CTL_REQ_MAX)
		return -E2BIG;

	struct sockaddr_un sa;
	socklen_t sl;
	char *buf = NULL, *payload = NULL;
	int r = ctl_addr(pool_uuid, &sa, &sl);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
		r = -errno;
		goto out;
	}
	if (send(fd, request, len, MSG_NOSIGNAL) < 0) {
		r = -errno;
		goto out;
	}
	uint64_t deadline = now_ms() + VLUN_CTL_TIMEOUT_MS;
	buf = malloc(VLUN_CTL_MSG_MAX + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	ssize_t n = recv_msg(fd, buf, VLUN_CTL_MSG_MAX, deadline);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if (n == 0) {
		r = -ECONNRESET;
		goto out;
	}
	buf[n] = '\0';
	if (strcmp(buf, "ok") == 0) {
		r = 0;
		goto out;
	}
	if (strncmp(buf, "ok ", 3) != 0) {
		r = parse_err(buf, ret_reply_reason);
		goto out;
	}
	/* "ok <len>\n<payload>", the payload continuing in further messages */
	char *nl = memchr(buf, '\n', (size_t)n), *end;
	if (!nl || buf[3] < '0' || buf[3] > '9') {
		r = -EPROTO;
		goto out;
	}
	errno = 0;
	unsigned long long plen = strtoull(buf + 3, &end, 10);
	if (errno || end != nl || plen > VLUN_CTL_PAYLOAD_MAX) {
		r = -EPROTO;
		goto out;
	}
	payload = malloc(plen + 1);
	if (!payload) {
		r = -ENOMEM;
		goto out;
	}
	size_t got = (size_t)(buf + n - (nl + 1));
	if (got > plen) {
		r = -EPROTO;
		goto out;
	}
	memcpy(payload, nl + 1, got);
	while (got < plen) {
		n = recv_msg(fd, payload + got, plen - got, deadline);
		if (n <= 0) {
			r = n == 0 ? -EPROTO : (int)n; /* cut short */
			goto out;
		}
		got += (size_t)n;
	}
	payload[plen] = '\0';
	if (memchr(payload, '\0', plen)) {
		r = -EPROTO;
		goto out;
	}
	if (ret_payload) {
		*ret_payload = payload;
		payload = NULL;
	}
	r = 0;
out:
	free(payload);
	free(buf);
	close(fd);
	return r;
}

VLUN_EXPORT int vlun_ctl_request(const uint8_t pool_uuid[VLUN_UUID_LEN], const char *request,
				 char **ret_reply_reason)
{
	return ctl_exchange(pool_uuid, request, NULL, ret_reply_reason);
}

VLUN_EXPORT int vlun_ctl_query(const uint8_t pool_uuid[VLUN_UUID_LEN], const char *request, char **ret_payload,
			       char **ret_reply_reason)
{
	char *payload = NULL;
	if (!ret_payload)
		return -EINVAL;
	int r = ctl_exchange(pool_uuid, request, &payload, ret_reply_reason);
	if (r < 0)
		return r;
	if (!payload) {
		payload = strdup(""); /* a plain "ok": no data */
		if (!payload)
			return -ENOMEM;
	}
	*ret_payload = payload;
	return 0;
}
