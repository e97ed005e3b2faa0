/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_stats.c — `vlunctl stats POOL [--vdisk NAME] [--json |
 * --prometheus] [--interval S [--count N]]`.
 *
 * Statistics live only in the process holding the pool (the handler inside
 * tcmu-runner): this asks it over the pool's control channel (verb "stats",
 * lib/ctl.h; payload format in lib/stats.c) and prints the answer — as a
 * table, JSON or the Prometheus text exposition format. Without --interval
 * the counters are cumulative (since the holder opened the pool or the
 * vdisk); with it, two samples S seconds apart give rates and the latency
 * percentiles of that interval (from the difference of the histograms).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h> /* isfinite */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ctl.h"
#include "stats.h"
#include "vlun.h"
#include "vlunctl_stats.h"

/* enum vlunctl_exit of vlunctl.c */
#define ST_EXIT_FAIL 1
#define ST_EXIT_USAGE 2
#define ST_EXIT_NOTFOUND 3
#define ST_EXIT_INUSE 4

/* Counters of one object, in the payload's key order. */
enum field {
	F_READS, F_WRITES, F_OTHERS, F_READ_BYTES, F_WRITE_BYTES, F_OTHER_BYTES,
	F_ERRORS, F_FAULTS, F_OUTSTANDING, F_MAX_OUTSTANDING, F_LAT_COUNT, F_LAT_SUM,
	F_P50, F_P90, F_P99, F_P999, F_MAX, F_RECENT, F_SINCE, NFIELDS,
};
static const char *const field_key[NFIELDS] = {
	"reads", "writes", "others", "read_bytes", "write_bytes", "other_bytes",
	"errors", "faults", "outstanding", "max_outstanding", "lat_count", "lat_sum_ns",
	"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "recent_ns", "since_ns",
};
static const char *const op_name[3] = { "read", "write", "other" };

struct obj {
	bool vdisk;
	uint32_t idx;       /* member index or vdisk id */
	char *name;         /* member path or vdisk name */
	char state[16];     /* member: ok, missing, failed */
	uint64_t f[NFIELDS];
	uint64_t *hist;     /* [VLUN_IOSTAT_NBUCKETS] */
};

struct sample {
	char *pool;
	char uuid[40];
	int pid;
	uint64_t time_ns, realtime_ns, uptime_ns;
	struct obj *o;
	size_t n;
};

static void sample_clear(struct sample *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->o[i].name);
		free(s->o[i].hist);
	}
	free(s->o);
	free(s->pool);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------ parsing */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* %XX decoding in place; "%00" decodes to the end of the string. */
static int unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '%') {
			int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
			if (hi < 0 || lo < 0)
				return -EPROTO;
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	if (s[0] < '0' || s[0] > '9')
		return -EPROTO;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EPROTO;
	*ret = v;
	return 0;
}

static int parse_hist(char *v, uint64_t *hist)
{
	if (strcmp(v, "-") == 0)
		return 0;
	for (char *save = NULL, *item = strtok_r(v, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		uint64_t b, c;
		if (!colon)
			return -EPROTO;
		*colon = '\0';
		if (parse_u64(item, &b) < 0 || parse_u64(colon + 1, &c) < 0 || b >= VLUN_IOSTAT_NBUCKETS)
			return -EPROTO;
		hist[b] = c;
	}
	return 0;
}

/* One line "<kind> key=value ..." of the payload (modified in place). */
static int parse_line(char *line, struct sample *s)
{
	char *save = NULL, *kind = strtok_r(line, " ", &save), *tok;
	struct obj *o = NULL;
	int r;

	if (!kind)
		return 0;
	bool is_pool = strcmp(kind, "pool") == 0;
	if (!is_pool) {
		if (strcmp(kind, "member") != 0 && strcmp(kind, "vdisk") != 0)
			return 0; /* a kind of a later version */
		struct obj *no = realloc(s->o, (s->n + 1) * sizeof(*no));
		if (!no)
			return -ENOMEM;
		s->o = no;
		o = &s->o[s->n++];
		memset(o, 0, sizeof(*o));
		o->vdisk = kind[0] == 'v';
		o->hist = calloc(VLUN_IOSTAT_NBUCKETS, sizeof(uint64_t));
		if (!o->hist)
			return -ENOMEM;
	}
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *v = strchr(tok, '=');
		uint64_t n;
		if (!v)
			return -EPROTO;
		*v++ = '\0';
		if (strcmp(tok, "hist") == 0 && o) {
			r = parse_hist(v, o->hist);
			if (r < 0)
				return r;
			continue;
		}
		r = unescape(v);
		if (r < 0)
			return r;
		if (is_pool) {
			if (strcmp(tok, "name") == 0) {
				free(s->pool);
				s->pool = strdup(v);
				if (!s->pool)
					return -ENOMEM;
			} else if (strcmp(tok, "uuid") == 0) {
				snprintf(s->uuid, sizeof(s->uuid), "%s", v);
			} else if (strcmp(tok, "pid") == 0 && parse_u64(v, &n) == 0) {
				s->pid = (int)n;
			} else if (strcmp(tok, "time_ns") == 0) {
				if (parse_u64(v, &s->time_ns) < 0)
					return -EPROTO;
			} else if (strcmp(tok, "realtime_ns") == 0) {
				if (parse_u64(v, &s->realtime_ns) < 0)
					return -EPROTO;
			} else if (strcmp(tok, "uptime_ns") == 0) {
				if (parse_u64(v, &s->uptime_ns) < 0)
					return -EPROTO;
			}
			continue;
		}
		if (strcmp(tok, "path") == 0 || strcmp(tok, "name") == 0) {
			free(o->name);
			o->name = strdup(v);
			if (!o->name)
				return -ENOMEM;
		} else if (strcmp(tok, "idx") == 0 || strcmp(tok, "id") == 0) {
			if (parse_u64(v, &n) < 0 || n > UINT32_MAX)
				return -EPROTO;
			o->idx = (uint32_t)n;
		} else if (strcmp(tok, "state") == 0) {
			snprintf(o->state, sizeof(o->state), "%s", v);
		} else {
			for (unsigned f = 0; f < NFIELDS; f++)
				if (strcmp(tok, field_key[f]) == 0 && parse_u64(v, &o->f[f]) < 0)
					return -EPROTO;
		}
	}
	if (o && !o->name) {
		o->name = strdup("");
		if (!o->name)
			return -ENOMEM;
	}
	return 0;
}

static int parse_payload(char *payload, struct sample *ret)
{
	struct sample s = { 0 };
	char *save = NULL;
	int r = 0;

	for (char *line = strtok_r(payload, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save))
		r = parse_line(line, &s);
	if (r == 0 && (!s.pool || s.time_ns == 0))
		r = -EPROTO;
	if (r < 0) {
		sample_clear(&s);
		return r;
	}
	*ret = s;
	return 0;
}

/* ------------------------------------------------------------ asking */

static int query(const struct vlun_pool_desc *d, char *const *paths, size_t npaths, struct sample *ret)
{
	char *payload = NULL, *reason = NULL;
	int r = vlun_ctl_query(d->uuid, "stats", &payload, &reason);
	if (r == 0) {
		r = parse_payload(payload, ret);
		free(payload);
		if (r < 0)
			return fail(ST_EXIT_FAIL, "the reply of the process holding it cannot be read",
				    "Use a vlunctl of the same version as the vlun in tcmu-runner",
				    "cannot read statistics of pool '%s'", d->name);
		return 0;
	}
	int code = ST_EXIT_FAIL;
	if (r == -ECONNREFUSED || r == -ENOENT) {
		int pid = 0, held = vlun_pool_paths_in_use(paths, npaths, &pid);
		if (held > 0) {
			char why[256], who[32] = "";
			if (pid > 0)
				snprintf(who, sizeof(who), " (pid %d)", pid);
			snprintf(why, sizeof(why), "the process holding it%s does not answer on its control "
				 "channel (an older vlun, or a holder on another host)", who);
			code = fail(ST_EXIT_INUSE, why,
				    "Statistics exist only in that process; update the vlun it runs",
				    "cannot read statistics of pool '%s'", d->name);
		} else {
			code = fail(ST_EXIT_NOTFOUND, "no running process holds it",
				    "Statistics exist only in the process holding the pool (tcmu-runner with a vlun "
				    "backstore on it); start the backstore, or see 'vlunctl pool show' for space and layout",
				    "cannot read statistics of pool '%s'", d->name);
		}
	} else if (r == -EOPNOTSUPP) {
		code = fail(ST_EXIT_FAIL, reason ? reason : strerror(-r),
			    "The process holding the pool runs a vlun without statistics; update it",
			    "cannot read statistics of pool '%s'", d->name);
	} else if (r == -EACCES) {
		code = fail(ST_EXIT_FAIL, reason ? reason : strerror(-r),
			    "Run vlunctl as root or as the user running tcmu-runner",
			    "cannot read statistics of pool '%s'", d->name);
	} else {
		code = fail(ST_EXIT_FAIL, reason ? reason : strerror(-r),
			    "The process holding the pool did not answer properly on its control channel; retry",
			    "cannot read statistics of pool '%s'", d->name);
	}
	free(reason);
	return code;
}

/* ------------------------------------------------------------ rates */

/* What happened between two samples for one object: counters of b minus
 * those of a (a NULL or reset — the vdisk was reopened —: since b began). */
struct delta {
	uint64_t f[NFIELDS];
	uint64_t hist[VLUN_IOSTAT_NBUCKETS];
	double dt;          /* seconds */
};

static const struct obj *find_obj(const struct sample *s, const struct obj *like)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->o[i].vdisk == like->vdisk && s->o[i].idx == like->idx && s->o[i].f[F_SINCE] == like->f[F_SINCE])
			return &s->o[i];
	return NULL;
}

static void make_delta(const struct sample *sa, const struct sample *sb, const struct obj *b, struct delta *d)
{
	const struct obj *a = find_obj(sa, b);
	uint64_t from = a ? sa->time_ns : b->f[F_SINCE];

	memset(d, 0, sizeof(*d));
	for (unsigned f = 0; f < NFIELDS; f++)
		d->f[f] = a && b->f[f] >= a->f[f] ? b->f[f] - a->f[f] : a ? 0 : b->f[f];
	for (unsigned i = 0; i < VLUN_IOSTAT_NBUCKETS; i++)
		d->hist[i] = a && b->hist[i] >= a->hist[i] ? b->hist[i] - a->hist[i] : a ? 0 : b->hist[i];
	d->dt = sb->time_ns > from ? (double)(sb->time_ns - from) / 1e9 : 0;
}

static double per_s(uint64_t v, double dt)
{
	return dt > 0 ? (double)v / dt : 0;
}

/* ------------------------------------------------------------ output */

static bool wanted(const struct obj *o, const struct vlunctl_stats_opts *opt)
{
	if (!opt->vdisk)
		return true;
	return o->vdisk && strcmp(o->name, opt->vdisk) == 0;
}

static const char *fmt_lat(uint64_t ns, char *buf, size_t len)
{
	if (ns == 0)
		snprintf(buf, len, "-");
	else if (ns < 1000)
		snprintf(buf, len, "%" PRIu64 "ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
	return buf;
}

static const char *fmt_dur(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / 1000000000u;
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m", s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%.1fs", (double)ns / 1e9);
	return buf;
}

static const char *obj_label(const struct obj *o, char *buf, size_t len)
{
	if (o->vdisk)
		snprintf(buf, len, "vdisk %s", o->name);
	else
		snprintf(buf, len, "member %" PRIu32, o->idx);
	return buf;
}

static void print_head(const struct sample *s)
{
	char up[64], when[64];
	time_t t = (time_t)(s->realtime_ns / 1000000000u);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("Pool %s (%s), held by pid %d, counting for %s, at %s\n", s->pool, s->uuid, s->pid,
	       fmt_dur(s->uptime_ns, up, sizeof(up)), when);
}

static void print_cumulative(const struct sample *s, const struct vlunctl_stats_opts *opt)
{
	char l[300], b1[32], b2[32], q[4][16];

	print_head(s);
	printf("%-16s %-7s %10s %10s %8s %10s %10s %6s %6s %5s %5s %8s %8s %8s %8s  %s\n", "OBJECT", "STATE",
	       "READS", "WRITES", "OTHER", "READ", "WRITTEN", "ERRORS", "FAULTS", "OUTST", "MAXQ", "P50", "P90",
	       "P99", "P99.9", "PATH");
	for (size_t i = 0; i < s->n; i++) {
		const struct obj *o = &s->o[i];
		if (!wanted(o, opt))
			continue;
		printf("%-16s %-7s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %10s %10s %6" PRIu64 " %6" PRIu64
		       " %5" PRIu64 " %5" PRIu64 " %8s %8s %8s %8s  %s\n",
		       obj_label(o, l, sizeof(l)), o->vdisk ? "open" : o->state, o->f[F_READS], o->f[F_WRITES],
		       o->f[F_OTHERS], vlun_format_size(o->f[F_READ_BYTES], b1, sizeof(b1)),
		       vlun_format_size(o->f[F_WRITE_BYTES], b2, sizeof(b2)), o->f[F_ERRORS], o->f[F_FAULTS],
		       o->f[F_OUTSTANDING], o->f[F_MAX_OUTSTANDING], fmt_lat(o->f[F_P50], q[0], sizeof(q[0])),
		       fmt_lat(o->f[F_P90], q[1], sizeof(q[1])), fmt_lat(o->f[F_P99], q[2], sizeof(q[2])),
		       fmt_lat(o->f[F_P999], q[3], sizeof(q[3])), o->vdisk ? "" : o->name);
	}
}

static void print_rates(const struct sample *a, const struct sample *b, const struct vlunctl_stats_opts *opt)
{
	char l[300], q[3][16];
	struct delta *d = malloc(sizeof(*d));

	if (!d)
		return;
	print_head(b);
	printf("%-16s %-7s %9s %9s %8s %9s %9s %7s %7s %5s %5s %8s %8s %8s\n", "OBJECT", "STATE", "R/S", "W/S",
	       "O/S", "RMB/S", "WMB/S", "ERR/S", "FLT/S", "OUTST", "MAXQ", "P50", "P99", "P99.9");
	for (size_t i = 0; i < b->n; i++) {
		const struct obj *o = &b->o[i];
		if (!wanted(o, opt))
			continue;
		make_delta(a, b, o, d);
		printf("%-16s %-7s %9.1f %9.1f %8.1f %9.2f %9.2f %7.1f %7.1f %5" PRIu64 " %5" PRIu64
		       " %8s %8s %8s\n",
		       obj_label(o, l, sizeof(l)), o->vdisk ? "open" : o->state, per_s(d->f[F_READS], d->dt),
		       per_s(d->f[F_WRITES], d->dt), per_s(d->f[F_OTHERS], d->dt),
		       per_s(d->f[F_READ_BYTES], d->dt) / 1e6, per_s(d->f[F_WRITE_BYTES], d->dt) / 1e6,
		       per_s(d->f[F_ERRORS], d->dt), per_s(d->f[F_FAULTS], d->dt), o->f[F_OUTSTANDING],
		       o->f[F_MAX_OUTSTANDING], fmt_lat(vlun_iostat_percentile(d->hist, 50000), q[0], sizeof(q[0])),
		       fmt_lat(vlun_iostat_percentile(d->hist, 99000), q[1], sizeof(q[1])),
		       fmt_lat(vlun_iostat_percentile(d->hist, 99900), q[2], sizeof(q[2])));
	}
	free(d);
}

static void jadd_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void jadd_double(json_object *o, const char *k, double v)
{
	json_object_object_add(o, k, json_object_new_double(v));
}

static json_object *json_obj(const struct sample *a, const struct sample *b, const struct obj *o,
			     struct delta *d)
{
	json_object *j = json_object_new_object(), *lat = json_object_new_object();

	if (o->vdisk) {
		json_object_object_add(j, "name", json_object_new_string(o->name));
		jadd_u64(j, "id", o->idx);
	} else {
		jadd_u64(j, "index", o->idx);
		json_object_object_add(j, "path", json_object_new_string(o->name));
		json_object_object_add(j, "state", json_object_new_string(o->state));
	}
	for (unsigned f = F_READS; f <= F_MAX_OUTSTANDING; f++)
		jadd_u64(j, field_key[f], o->f[f]);
	jadd_u64(lat, "count", o->f[F_LAT_COUNT]);
	jadd_u64(lat, "sum", o->f[F_LAT_SUM]);
	jadd_u64(lat, "p50", o->f[F_P50]);
	jadd_u64(lat, "p90", o->f[F_P90]);
	jadd_u64(lat, "p99", o->f[F_P99]);
	jadd_u64(lat, "p999", o->f[F_P999]);
	jadd_u64(lat, "max", o->f[F_MAX]);
	jadd_u64(lat, "recent", o->f[F_RECENT]);
	json_object_object_add(j, "latency_ns", lat);
	jadd_u64(j, "since_ns", o->f[F_SINCE]);
	if (a) {
		json_object *rt = json_object_new_object(), *il = json_object_new_object();
		make_delta(a, b, o, d);
		for (unsigned k = 0; k < 3; k++) {
			char key[32];
			snprintf(key, sizeof(key), "%s_iops", op_name[k]);
			jadd_double(rt, key, per_s(d->f[F_READS + k], d->dt));
			snprintf(key, sizeof(key), "%s_bytes_per_s", op_name[k]);
			jadd_double(rt, key, per_s(d->f[F_READ_BYTES + k], d->dt));
		}
		jadd_double(rt, "errors_per_s", per_s(d->f[F_ERRORS], d->dt));
		jadd_double(rt, "faults_per_s", per_s(d->f[F_FAULTS], d->dt));
		json_object_object_add(j, "rates", rt);
		jadd_u64(il, "count", d->f[F_LAT_COUNT]);
		jadd_u64(il, "p50", vlun_iostat_percentile(d->hist, 50000));
		jadd_u64(il, "p90", vlun_iostat_percentile(d->hist, 90000));
		jadd_u64(il, "p99", vlun_iostat_percentile(d->hist, 99000));
		jadd_u64(il, "p999", vlun_iostat_percentile(d->hist, 99900));
		json_object_object_add(j, "interval_latency_ns", il);
	}
	return j;
}

/* a: the previous sample for rates, or NULL for cumulative counters. */
static int print_json(const struct sample *a, const struct sample *b, const struct vlunctl_stats_opts *opt)
{
	json_object *root = json_object_new_object(), *mem = json_object_new_array(),
		    *vd = json_object_new_array();
	struct delta *d = malloc(sizeof(*d));

	if (!root || !mem || !vd || !d) {
		json_object_put(root);
		json_object_put(mem);
		json_object_put(vd);
		free(d);
		return -ENOMEM;
	}
	json_object_object_add(root, "pool", json_object_new_string(b->pool));
	json_object_object_add(root, "uuid", json_object_new_string(b->uuid));
	jadd_u64(root, "holder_pid", (uint64_t)b->pid);
	jadd_u64(root, "time_ns", b->time_ns);
	jadd_u64(root, "realtime_ns", b->realtime_ns);
	jadd_u64(root, "uptime_ns", b->uptime_ns);
	if (a)
		jadd_double(root, "interval_s", (double)(b->time_ns - a->time_ns) / 1e9);
	for (size_t i = 0; i < b->n; i++)
		if (wanted(&b->o[i], opt))
			json_object_array_add(b->o[i].vdisk ? vd : mem, json_obj(a, b, &b->o[i], d));
	json_object_object_add(root, "members", mem);
	json_object_object_add(root, "vdisks", vd);
	/* one document; with --interval one line per report (JSON lines) */
	puts(json_object_to_json_string_ext(root, a ? JSON_C_TO_STRING_PLAIN : JSON_C_TO_STRING_PRETTY));
	json_object_put(root);
	free(d);
	return 0;
}

/* Prometheus label value: \\, \" and \n escaped. */
static void prom_str(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
}

static void prom_labels(const struct sample *s, const struct obj *o)
{
	fputs("{pool=\"", stdout);
	prom_str(s->pool);
	if (o->vdisk) {
		fputs("\",vdisk=\"", stdout);
		prom_str(o->name);
	} else {
		printf("\",member=\"%" PRIu32 "\",path=\"", o->idx);
		prom_str(o->name);
	}
	putchar('"');
}

static void prom_family(const char *kind, const char *name, const char *type, const char *help)
{
	printf("# HELP vlun_%s_%s %s\n# TYPE vlun_%s_%s %s\n", kind, name, help, kind, name, type);
}

static void print_prometheus(const struct sample *s, const struct vlunctl_stats_opts *opt)
{
	static const struct {
		enum field f;
		const char *name, *type, *help;
	} simple[] = {
		{ F_ERRORS, "errors_total", "counter", "I/Os that completed with an error." },
		{ F_FAULTS, "faults_total", "counter", "I/Os handed to the controller (map faults)." },
		{ F_OUTSTANDING, "outstanding", "gauge", "I/Os in flight." },
		{ F_MAX_OUTSTANDING, "outstanding_max", "gauge", "Most I/Os in flight at once since counting began." },
	};
	static const char *const kinds[2] = { "member", "vdisk" };
	static const char *const what[2] = { "a member (physical LUN) of the pool", "a virtual disk open in the holder" };

	printf("# HELP vlun_pool_uptime_seconds How long the holder has been counting the pool's I/O.\n"
	       "# TYPE vlun_pool_uptime_seconds gauge\nvlun_pool_uptime_seconds{pool=\"");
	prom_str(s->pool);
	printf("\"} %.3f\n", (double)s->uptime_ns / 1e9);
	for (unsigned k = 0; k < 2; k++) {
		char help[160];
		bool any = false;
		for (size_t i = 0; i < s->n; i++)
			any |= s->o[i].vdisk == (k == 1) && wanted(&s->o[i], opt);
		if (!any)
			continue;
#define EACH_OBJ for (size_t i = 0; i < s->n; i++) \
			if (s->o[i].vdisk == (k == 1) && wanted(&s->o[i], opt))
		snprintf(help, sizeof(help), "I/Os completed by %s, by operation (errors included).", what[k]);
		prom_family(kinds[k], "ops_total", "counter", help);
		EACH_OBJ for (unsigned op = 0; op < 3; op++) {
			printf("vlun_%s_ops_total", kinds[k]);
			prom_labels(s, &s->o[i]);
			printf(",op=\"%s\"} %" PRIu64 "\n", op_name[op], s->o[i].f[F_READS + op]);
		}
		snprintf(help, sizeof(help), "Bytes of successful I/Os of %s, by operation.", what[k]);
		prom_family(kinds[k], "bytes_total", "counter", help);
		EACH_OBJ for (unsigned op = 0; op < 3; op++) {
			printf("vlun_%s_bytes_total", kinds[k]);
			prom_labels(s, &s->o[i]);
			printf(",op=\"%s\"} %" PRIu64 "\n", op_name[op], s->o[i].f[F_READ_BYTES + op]);
		}
		for (size_t m = 0; m < sizeof(simple) / sizeof(simple[0]); m++) {
			prom_family(kinds[k], simple[m].name, simple[m].type, simple[m].help);
			EACH_OBJ {
				printf("vlun_%s_%s", kinds[k], simple[m].name);
				prom_labels(s, &s->o[i]);
				printf("} %" PRIu64 "\n", s->o[i].f[simple[m].f]);
			}
		}
		snprintf(help, sizeof(help), "Latency of I/Os of %s (quantiles: upper bounds, at most 12.5%% high).",
			 what[k]);
		prom_family(kinds[k], "latency_seconds", "summary", help);
		EACH_OBJ {
			static const struct { const char *q; enum field f; } qs[] = {
				{ "0.5", F_P50 }, { "0.9", F_P90 }, { "0.99", F_P99 }, { "0.999", F_P999 },
			};
			for (unsigned j = 0; j < 4; j++) {
				printf("vlun_%s_latency_seconds", kinds[k]);
				prom_labels(s, &s->o[i]);
				printf(",quantile=\"%s\"} %.9f\n", qs[j].q, (double)s->o[i].f[qs[j].f] / 1e9);
			}
			printf("vlun_%s_latency_seconds_sum", kinds[k]);
			prom_labels(s, &s->o[i]);
			printf("} %.9f\n", (double)s->o[i].f[F_LAT_SUM] / 1e9);
			printf("vlun_%s_latency_seconds_count", kinds[k]);
			prom_labels(s, &s->o[i]);
			printf("} %" PRIu64 "\n", s->o[i].f[F_LAT_COUNT]);
		}
		snprintf(help, sizeof(help), "Moving average of recent I/O latency of %s.", what[k]);
		prom_family(kinds[k], "latency_recent_seconds", "gauge", help);
		EACH_OBJ {
			printf("vlun_%s_latency_recent_seconds", kinds[k]);
			prom_labels(s, &s->o[i]);
			printf("} %.9f\n", (double)s->o[i].f[F_RECENT] / 1e9);
		}
		if (k == 0) {
			prom_family("member", "up", "gauge", "1 when the member is present and not failed.");
			EACH_OBJ {
				fputs("vlun_member_up", stdout);
				prom_labels(s, &s->o[i]);
				printf(",state=\"");
				prom_str(s->o[i].state);
				printf("\"} %d\n", strcmp(s->o[i].state, "ok") == 0);
			}
		}
#undef EACH_OBJ
	}
}

/* ------------------------------------------------------------ command */

static int parse_opts(const struct vlun_pool_desc *desc, const struct vlunctl_stats_opts *o, double *ret_interval,
		      uint64_t *ret_count)
{
	*ret_interval = 0;
	*ret_count = 1;
	if (o->json && o->prometheus)
		return fail(ST_EXIT_USAGE, "--json and --prometheus exclude each other", "Choose one",
			    "stats");
	if (o->count && !o->interval)
		return fail(ST_EXIT_USAGE, "--count needs --interval", "Give --interval S as well", "stats");
	if (o->interval && o->prometheus)
		return fail(ST_EXIT_USAGE, "--interval does not apply to --prometheus",
			    "Let Prometheus compute rates from the cumulative counters (rate()); drop --interval",
			    "stats");
	if (o->interval) {
		char *end;
		errno = 0;
		double v = strtod(o->interval, &end);
		if (errno || end == o->interval || *end || !isfinite(v) || v < 0.01 || v > 86400)
			return fail(ST_EXIT_USAGE, "not a number of seconds between 0.01 and 86400",
				    "Give seconds, e.g. --interval 1 or --interval 0.5", "stats: --interval '%s'",
				    o->interval);
		*ret_interval = v;
		*ret_count = UINT64_MAX;
	}
	if (o->count) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(o->count, &end, 10);
		if (errno || end == o->count || *end || o->count[0] < '0' || o->count[0] > '9' || v == 0)
			return fail(ST_EXIT_USAGE, "not a positive whole number", "Give how many reports, e.g. --count 10",
				    "stats: --count '%s'", o->count);
		*ret_count = v;
	}
	if (o->vdisk) {
		bool found = false;
		for (uint32_t i = 0; i < desc->nvdisks; i++)
			found |= strcmp(desc->vdisks[i].name, o->vdisk) == 0;
		if (!found)
			return fail(ST_EXIT_NOTFOUND, "no such vdisk", "'vlunctl vdisk list' shows the vdisks of the pool",
				    "stats: vdisk '%s' in pool '%s'", o->vdisk, desc->name);
	}
	return 0;
}

static int check_vdisk_open(const struct sample *s, const struct vlunctl_stats_opts *o)
{
	if (!o->vdisk)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (wanted(&s->o[i], o))
			return 0;
	return fail(ST_EXIT_NOTFOUND, "the process holding the pool does not have it open",
		    "A vdisk has statistics only while it is open (exported as a backstore); check targetcli",
		    "stats: vdisk '%s' in pool '%s'", o->vdisk, s->pool);
}

int vlunctl_stats(const struct vlun_pool_desc *desc, char *const *paths, size_t npaths,
		  const struct vlunctl_stats_opts *o)
{
	struct sample prev = { 0 }, cur = { 0 };
	double interval;
	uint64_t count;
	int r;

	r = parse_opts(desc, o, &interval, &count);
	if (r)
		return r;
	r = query(desc, paths, npaths, &cur);
	if (r)
		return r;
	r = check_vdisk_open(&cur, o);
	if (r)
		goto out;
	if (interval == 0) {
		if (o->prometheus)
			print_prometheus(&cur, o);
		else if (o->json)
			r = print_json(NULL, &cur, o) < 0 ? fail(ST_EXIT_FAIL, strerror(ENOMEM), NULL, "stats") : 0;
		else
			print_cumulative(&cur, o);
		goto out;
	}

	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (uint64_t n = 0; n < count; n++) {
		double whole = (double)(long long)interval;
		next.tv_sec += (time_t)whole;
		next.tv_nsec += (long)((interval - whole) * 1e9);
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		sample_clear(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		r = query(desc, paths, npaths, &cur);
		if (r)
			goto out;
		r = check_vdisk_open(&cur, o);
		if (r)
			goto out;
		if (o->json) {
			if (print_json(&prev, &cur, o) < 0) {
				r = fail(ST_EXIT_FAIL, strerror(ENOMEM), NULL, "stats");
				goto out;
			}
		} else {
			if (n > 0)
				putchar('\n');
			print_rates(&prev, &cur, o);
		}
		if (fflush(stdout) != 0) {
			r = fail(ST_EXIT_FAIL, strerror(errno), NULL, "stats: writing output");
			goto out;
		}
	}
out:
	sample_clear(&prev);
	sample_clear(&cur);
	return r;
}
