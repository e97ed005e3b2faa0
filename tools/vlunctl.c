/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl — manage vlun pools and virtual disks.
 *
 * A thin command-line layer over libvlun (lib/vlun.h): it parses the
 * command line, opens the pool (read-only and without the pool lock for the
 * read commands, locked for the changing ones), calls the library and
 * prints the result, for people or as JSON (--json). Every failure is one
 * line on stderr,
 *
 *     vlunctl: <what failed>: <why>. <what to do>
 *
 * and a documented exit status (enum vlunctl_exit below; `vlunctl help`).
 *
 * Safety rules kept here, not in the library:
 *   - nothing that destroys data runs without --force (pool create over an
 *     existing label, vdisk delete, shrinking a vdisk);
 *   - a pool that a running handler holds (vlun_pool_paths_in_use) is not
 *     changed by this process; the changes that are safe online
 *     (is_safe_online()) are sent to the holder, which makes them itself
 *     (control channel, lib/ctl.h); everything else is refused (exit 4).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl.h"
#include "vlun.h"
#include "vlunctl_check.h"
#include "vlunctl_mirror.h"
#include "vlunctl_snap.h"
#include "vlunctl_pr.h"
#include "vlunctl_stats.h"

#ifndef VLUN_VERSION
#define VLUN_VERSION "unknown"
#endif

/* Exit status; the numbers are part of the interface (documented in the
 * usage text and docs/vlunctl.md). */
enum vlunctl_exit {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* generic failure: I/O error, corrupt metadata, ... */
	EXIT_USAGE = 2,    /* bad command line: syntax, size, name, option */
	EXIT_NOTFOUND = 3, /* pool, member or vdisk not found */
	EXIT_INUSE = 4,    /* pool held by a running handler / locked */
	EXIT_NOSPACE = 5,  /* not enough free space in the pool */
	EXIT_DATALOSS = 6, /* would destroy data; refused without --force */
	EXIT_EXISTS = 7,   /* name already taken */
};

/* ------------------------------------------------------------ options */

enum {
	OPT_JSON = 1u << 0,
	OPT_FORCE = 1u << 1,
	OPT_POOL = 1u << 2,
	OPT_META_SIZE = 1u << 3,
	OPT_SIZE = 1u << 4,
	OPT_LINEAR = 1u << 5,
	OPT_STRIPED = 1u << 6,
	OPT_THIN = 1u << 7,
	OPT_STRIPE_SIZE = 1u << 8,
	OPT_WIDTH = 1u << 9,
	OPT_CHUNK = 1u << 10,
	OPT_MEMBERS = 1u << 11,
	OPT_HELP = 1u << 12,
	OPT_VERBOSE = 1u << 13,
	OPT_VERSION = 1u << 14,
	OPT_POOL_NAME = 1u << 15,
	OPT_VDISK = 1u << 16,      /* stats */
	OPT_PROMETHEUS = 1u << 17, /* stats */
	OPT_INTERVAL = 1u << 18,   /* stats */
	OPT_COUNT = 1u << 19,      /* stats */
	OPT_RANGE = 1u << 20,      /* mirror, migrate */
	OPT_MEMBER = 1u << 21,     /* mirror remove */
	OPT_OFF_MEMBER = 1u << 22, /* migrate */
	OPT_TO = 1u << 23,         /* migrate */
	OPT_RATE = 1u << 24,       /* migrate, resync */
	OPT_WAIT = 1u << 25,       /* migrate, resync */
	OPT_WATCH = 1u << 26,      /* jobs */
	OPT_RESERVE = 1u << 29,    /* snapshot create */
	OPT_ON_FULL = 1u << 30,    /* snapshot create, reserve */
	OPT_NODE_ID = 1u << 27,    /* pool nodes / takeover / pr-mode */
};
#define OPT_GLOBAL (OPT_HELP | OPT_VERBOSE | OPT_VERSION)

/* getopt_long values for the long-only options */
enum {
	LO_META_SIZE = 0x100,
	LO_LINEAR,
	LO_STRIPED,
	LO_THIN,
	LO_STRIPE_SIZE,
	LO_WIDTH,
	LO_CHUNK,
	LO_MEMBERS,
	LO_JSON,
	LO_VERSION,
	LO_POOL_NAME,
	LO_VDISK,
	LO_PROMETHEUS,
	LO_INTERVAL,
	LO_COUNT,
	LO_RANGE,
	LO_MEMBER,
	LO_OFF_MEMBER,
	LO_TO,
	LO_RATE,
	LO_WAIT,
	LO_WATCH,
	LO_RESERVE,
	LO_ON_FULL,
	LO_NODE_ID,
};

static const struct option long_options[] = {
	{ "json", no_argument, NULL, LO_JSON },
	{ "force", no_argument, NULL, 'f' },
	{ "pool", required_argument, NULL, 'p' },
	{ "meta-size", required_argument, NULL, LO_META_SIZE },
	{ "size", required_argument, NULL, 's' },
	{ "linear", no_argument, NULL, LO_LINEAR },
	{ "striped", no_argument, NULL, LO_STRIPED },
	{ "thin", no_argument, NULL, LO_THIN },
	{ "stripe-size", required_argument, NULL, LO_STRIPE_SIZE },
	{ "width", required_argument, NULL, LO_WIDTH },
	{ "chunk", required_argument, NULL, LO_CHUNK },
	{ "members", required_argument, NULL, LO_MEMBERS },
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, LO_VERSION },
	{ "pool-name", required_argument, NULL, LO_POOL_NAME },
	{ "vdisk", required_argument, NULL, LO_VDISK },
	{ "prometheus", no_argument, NULL, LO_PROMETHEUS },
	{ "interval", required_argument, NULL, LO_INTERVAL },
	{ "count", required_argument, NULL, LO_COUNT },
	{ "range", required_argument, NULL, LO_RANGE },
	{ "member", required_argument, NULL, LO_MEMBER },
	{ "off-member", required_argument, NULL, LO_OFF_MEMBER },
	{ "to", required_argument, NULL, LO_TO },
	{ "rate", required_argument, NULL, LO_RATE },
	{ "wait", no_argument, NULL, LO_WAIT },
	{ "watch", no_argument, NULL, LO_WATCH },
	{ "reserve", required_argument, NULL, LO_RESERVE },
	{ "on-full", required_argument, NULL, LO_ON_FULL },
	{ "node-id", required_argument, NULL, LO_NODE_ID },
	{ NULL, 0, NULL, 0 },
};

static const char *option_name(unsigned bit)
{
	switch (bit) {
	case OPT_JSON: return "--json";
	case OPT_NODE_ID: return "--node-id";
	case OPT_FORCE: return "--force";
	case OPT_POOL: return "--pool";
	case OPT_META_SIZE: return "--meta-size";
	case OPT_SIZE: return "--size";
	case OPT_LINEAR: return "--linear";
	case OPT_STRIPED: return "--striped";
	case OPT_THIN: return "--thin";
	case OPT_STRIPE_SIZE: return "--stripe-size";
	case OPT_WIDTH: return "--width";
	case OPT_CHUNK: return "--chunk";
	case OPT_MEMBERS: return "--members";
	case OPT_HELP: return "--help";
	case OPT_VERBOSE: return "--verbose";
	case OPT_VERSION: return "--version";
	case OPT_POOL_NAME: return "--pool-name";
	case OPT_VDISK: return "--vdisk";
	case OPT_PROMETHEUS: return "--prometheus";
	case OPT_INTERVAL: return "--interval";
	case OPT_COUNT: return "--count";
	case OPT_RANGE: return "--range";
	case OPT_MEMBER: return "--member";
	case OPT_OFF_MEMBER: return "--off-member";
	case OPT_TO: return "--to";
	case OPT_RATE: return "--rate";
	case OPT_WAIT: return "--wait";
	case OPT_WATCH: return "--watch";
	case OPT_RESERVE: return "--reserve";
	case OPT_ON_FULL: return "--on-full";
	default: return "?";
	}
}

struct args {
	unsigned seen;          /* OPT_* given */
	int verbose;
	const char *pool;       /* -p/--pool */
	const char *pool_name;  /* --pool-name */
	struct vlunctl_stats_opts stats; /* stats: --vdisk --prometheus --interval --count (--json) */
	struct vlunctl_mirror_opts mirror; /* mirror, migrate, resync, jobs (vlunctl_mirror.c) */
	struct vlunctl_snap_opts snap; /* snapshot ... (vlunctl_snap.c) */
	const char *meta_size;
	const char *size;
	const char *stripe_size;
	const char *width;
	const char *chunk;
	const char *members;
	const char *node_id;    /* --node-id */
	char **pos;             /* positional words after the command */
	int npos;
};

/* ------------------------------------------------------------ commands */

struct ctx;

struct command {
	const char *group;      /* "pool", "vdisk" or NULL for top-level */
	const char *verb;
	const char *synopsis;   /* arguments after the command words */
	const char *summary;
	unsigned opts;          /* options it accepts besides OPT_GLOBAL */
	bool pool_spec;         /* first argument is a pool spec (or -p) */
	int min_args, max_args; /* further positional arguments; -1 = unlimited */
	bool changes;           /* writes the pool */
	int (*run)(struct ctx *c);
};

struct ctx {
	const struct command *cmd;
	struct args *a;
	const char *spec;       /* pool spec */
	char **args;            /* positional arguments after the spec */
	int nargs;
	char **paths;           /* expanded pool spec */
	size_t npaths;
	struct vlun_pool *pool;
	struct vlun_pool_desc *desc;
	char pool_label[PATH_MAX + 32]; /* "pool 'p0'" or "pool '<spec>'" */
	/* The pool is held by a running handler that answers on its control
	 * channel: c->pool is a read-only view and changes go to the holder. */
	bool remote;
	int holder_pid;         /* 0 when unknown */
	char holder_comm[64];   /* its /proc comm, "" when unknown */
};

/* ------------------------------------------------------------ errors */

static int verbosity;
static char last_lib_error[512];

/* The library's log: errors are kept as the "why" of a failure the call
 * itself gives no reason for (one line per failure, not two); warnings are
 * shown; info and debug with -v / -vv. */
static void lib_log(enum vlun_log_level level, const char *msg, void *userdata)
{
	size_t l;

	if (level <= VLUN_LOG_ERR) {
		snprintf(last_lib_error, sizeof(last_lib_error), "%s", msg);
		l = strlen(last_lib_error);
		while (l > 0 && (last_lib_error[l - 1] == '\n' || last_lib_error[l - 1] == '.'))
			last_lib_error[--l] = '\0';
		if (verbosity == 0)
			return;
	}
	fprintf(stderr, "vlunctl: %s: %s%s",
		level <= VLUN_LOG_ERR ? "error" : level <= VLUN_LOG_WARN ? "warning" :
		level <= VLUN_LOG_INFO ? "info" : "debug",
		msg, msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
}

/* Prints "vlunctl: <what>: <why>. <todo>" and returns code. why loses a
 * trailing period or newline so the sentence reads right. */
/* declared in vlunctl_stats.h (vlunctl_stats.c uses it too) */
int fail(int code, const char *why, const char *todo, const char *what_fmt, ...)
{
	char what[2 * PATH_MAX], w[2 * PATH_MAX];
	va_list ap;
	size_t l;

	va_start(ap, what_fmt);
	vsnprintf(what, sizeof(what), what_fmt, ap);
	va_end(ap);
	snprintf(w, sizeof(w), "%s", why ? why : "unknown error");
	l = strlen(w);
	while (l > 0 && (w[l - 1] == '\n' || w[l - 1] == '.' || w[l - 1] == ' '))
		w[--l] = '\0';
	fprintf(stderr, "vlunctl: %s: %s.%s%s\n", what, w, todo && *todo ? " " : "", todo ? todo : "");
	return code;
}

/* The reason of a failed library call: its ret_reason, else the last error
 * it logged, else strerror. */
const char *lib_why(const char *reason, int r)
{
	if (reason && *reason)
		return reason;
	if (last_lib_error[0])
		return last_lib_error;
	return strerror(r < 0 ? -r : r);
}

int exit_for_errno(int r)
{
	switch (r < 0 ? -r : r) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return EXIT_NOTFOUND;
	case EBUSY:
	case EAGAIN:
		return EXIT_INUSE;
	case ENOSPC:
		return EXIT_NOSPACE;
	case EEXIST:
		return EXIT_EXISTS;
	case EINVAL:
	case ERANGE:
	case ENAMETOOLONG:
	case E2BIG:
	case ENOTUNIQ:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

/* A hint for what to do after a library failure, by errno. */
const char *hint_for_errno(int r)
{
	switch (r < 0 ? -r : r) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return "Check the pool spec and member paths ('vlunctl pool show <pool-spec>' lists the members)";
	case EBUSY:
	case EAGAIN:
		return "Another process holds the pool; stop it (or the tcmu-runner backstore) and retry";
	case ENOSPC:
		return "Free space in the pool ('vlunctl pool show'), add a member ('vlunctl pool add-member') or ask for less";
	case EEXIST:
		return "Choose another name";
	case ENOTUNIQ:
		return "The members hold more than one pool; choose one with --pool-name NAME (or its UUID)";
	case EINVAL:
	case ERANGE:
		return "Fix the arguments (see 'vlunctl help')";
	case EACCES:
	case EPERM:
		return "Run as a user who may open the members read-write (root for block devices)";
	case EUCLEAN:
		return "The metadata is damaged; see 'vlunctl -v pool show' for which member and do not write to the pool";
	case EPROTONOSUPPORT:
		return "The pool was written by a newer vlun; use that version";
	case ENOSYS:
		return "This build of libvlun does not implement it yet";
	default:
		return "See the message above; 'vlunctl -v ...' shows the library's log";
	}
}

/* ------------------------------------------------------------ parsing */

static int parse_size_arg(const char *opt, const char *s, bool allow_zero, uint64_t *ret)
{
	uint64_t v;
	int r;

	r = vlun_parse_size(s, &v);
	if (r < 0)
		return fail(EXIT_USAGE, r == -ERANGE ? "too large" : "not a size",
			    "Give a number with an optional binary unit: 4096, 512K, 10G, 1.5T, or sectors as 2048s",
			    "invalid %s '%s'", opt, s);
	if (v == 0 && !allow_zero)
		return fail(EXIT_USAGE, "must not be zero", "Give a positive size such as 10G",
			    "invalid %s '%s'", opt, s);
	if (v % VLUN_SECTOR_SIZE != 0)
		return fail(EXIT_USAGE, "not a multiple of 512 bytes", "Round it to whole 512-byte sectors",
			    "invalid %s '%s'", opt, s);
	*ret = v;
	return 0;
}

/* Strict unsigned 32-bit parse: digits only, no sign, no junk. */
static int parse_u32(const char *s, uint32_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || v > UINT32_MAX)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* "0,2,3" -> indexes; strict. */
static int parse_index_list(const char *s, uint32_t **ret, size_t *ret_n)
{
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	char *copy, *tok, *save = NULL;
	int r = 0;

	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	if (*s == '\0' || s[strlen(s) - 1] == ',' || *s == ',' || strstr(s, ",,")) {
		r = -EINVAL;
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t idx;

		r = parse_u32(tok, &idx);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < n; i++)
			if (v[i] == idx) {
				r = -EINVAL;
				goto out;
			}
		if (n == cap) {
			uint32_t *nv;

			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[n++] = idx;
	}
	*ret = v;
	*ret_n = n;
	v = NULL;
out:
	free(v);
	free(copy);
	return r;
}

/* ------------------------------------------------------------ formatting */

static const char *layout_name(uint32_t layout)
{
	switch (layout) {
	case VLUN_LAYOUT_LINEAR: return "linear";
	case VLUN_LAYOUT_STRIPED: return "striped";
	case VLUN_LAYOUT_THIN: return "thin";
	default: return "unknown";
	}
}

static const char *member_state_name(uint32_t state)
{
	switch (state) {
	case VLUN_MEMBER_OK: return "ok";
	case VLUN_MEMBER_MISSING: return "missing";
	case VLUN_MEMBER_FAILED: return "failed";
	default: return "unknown";
	}
}

static const struct {
	uint32_t bit;
	const char *name;
} extent_flag_names[] = {
	{ VLUN_EXT_INVALID, "invalid" },
	{ VLUN_EXT_NO_WRITE, "no-write" },
	{ VLUN_EXT_ZERO, "zero" },
	{ VLUN_EXT_ERROR, "error" },
	{ VLUN_EXT_ALT_EXISTS, "alt" },
	{ VLUN_EXT_ALT_DIRTY, "alt-dirty" },
};
#define N_EXTENT_FLAGS (sizeof(extent_flag_names) / sizeof(extent_flag_names[0]))

static const char *extent_flags_str(uint32_t flags, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_EXTENT_FLAGS; i++)
		if (flags & extent_flag_names[i].bit)
			off += snprintf(buf + off, off < len ? len - off : 0, "%s%s", off ? "," : "",
					extent_flag_names[i].name);
	if (flags & ~VLUN_EXT_KNOWN_FLAGS)
		off += snprintf(buf + off, off < len ? len - off : 0, "%s0x%x", off ? "," : "",
				flags & ~VLUN_EXT_KNOWN_FLAGS);
	if (off == 0)
		snprintf(buf, len, "-");
	return buf;
}

static bool extent_allocated(const struct vlun_extent *e)
{
	return e->member != VLUN_NO_MEMBER && !(e->flags & (VLUN_EXT_INVALID | VLUN_EXT_ZERO));
}

static uint64_t vdisk_allocated_sectors(const struct vlun_vdisk_desc *v)
{
	uint64_t s = 0;

	for (uint32_t i = 0; i < v->nextents; i++)
		if (extent_allocated(&v->extents[i]))
			s += v->extents[i].nsectors;
	return s;
}

/* Sectors of member m in use by any extent (primary or alternate). */
static uint64_t member_used_sectors(const struct vlun_pool_desc *d, uint32_t m)
{
	uint64_t s = 0;

	for (uint32_t i = 0; i < d->nvdisks; i++)
		for (uint32_t j = 0; j < d->vdisks[i].nextents; j++) {
			const struct vlun_extent *e = &d->vdisks[i].extents[j];

			if (extent_allocated(e) && e->member == m)
				s += e->nsectors;
			if ((e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member == m)
				s += e->nsectors;
		}
	return s;
}

static const char *member_path(const struct vlun_pool_desc *d, uint32_t m)
{
	if (m < d->nmembers && d->members[m].path_hint[0])
		return d->members[m].path_hint;
	return "?";
}

static const struct vlun_vdisk_desc *find_vdisk(const struct vlun_pool_desc *d, const char *name)
{
	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (strcmp(d->vdisks[i].name, name) == 0)
			return &d->vdisks[i];
	return NULL;
}

static char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	vlun_format_size(bytes, buf, len);
	return buf;
}

static double percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void json_add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void json_add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static int json_print(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	int r = 0;

	if (!s || printf("%s\n", s) < 0)
		r = fail(EXIT_FAIL, strerror(errno ? errno : ENOMEM), NULL, "writing JSON output");
	json_object_put(o);
	return r;
}

/* Fields of a vdisk shared by vdisk list, vdisk show and pool show. */
static json_object *json_vdisk_summary(const struct vlun_vdisk_desc *v)
{
	json_object *o = json_object_new_object();
	char uuid[37];
	uint64_t alloc = vdisk_allocated_sectors(v);

	vlun_uuid_format(v->uuid, uuid);
	json_add_str(o, "name", v->name);
	json_add_u64(o, "id", v->id);
	json_add_str(o, "uuid", uuid);
	json_add_str(o, "layout", layout_name(v->layout));
	json_add_u64(o, "size_bytes", v->size_sectors << VLUN_SECTOR_SHIFT);
	json_add_u64(o, "size_sectors", v->size_sectors);
	json_add_u64(o, "chunk_bytes", v->layout == VLUN_LAYOUT_THIN ? v->chunk_sectors << VLUN_SECTOR_SHIFT : 0);
	json_add_u64(o, "stripe_bytes", v->layout == VLUN_LAYOUT_STRIPED ? v->chunk_sectors << VLUN_SECTOR_SHIFT : 0);
	json_add_u64(o, "stripe_width", v->layout == VLUN_LAYOUT_STRIPED ? v->stripe_width : 0);
	json_add_u64(o, "allocated_bytes", alloc << VLUN_SECTOR_SHIFT);
	json_add_u64(o, "allocated_sectors", alloc);
	json_add_u64(o, "extent_count", v->nextents);
	json_add_u64(o, "generation", v->generation);
	return o;
}

/* The summary plus its snapshot role: "snapshot_reserve_of" (the source
 * whose reserve it is, null) and "snapshots" (sessions of this vdisk). */
static json_object *json_vdisk_snap(const struct vlun_pool_desc *d, const struct vlun_vdisk_desc *v)
{
	json_object *o = json_vdisk_summary(v);
	const char *of = vlunctl_snap_reserve_of(d, v);

	json_add_str(o, "snapshot_reserve_of", of);
	json_add_u64(o, "snapshots", vlunctl_snap_count(d, v->id));
	return o;
}

/* " (snapshot reserve of 'src')" / " (2 snapshots)" / "" */
static const char *snap_note(const struct vlun_pool_desc *d, const struct vlun_vdisk_desc *v, char *buf, size_t len)
{
	const char *of = vlunctl_snap_reserve_of(d, v);
	uint32_t n = vlunctl_snap_count(d, v->id);

	if (of)
		snprintf(buf, len, "  (snapshot reserve of '%s', not exportable)", of);
	else if (n)
		snprintf(buf, len, "  (%" PRIu32 " snapshot%s)", n, n == 1 ? "" : "s");
	else
		buf[0] = '\0';
	return buf;
}

static void layout_desc(const struct vlun_vdisk_desc *v, char *buf, size_t len)
{
	char s[32];

	switch (v->layout) {
	case VLUN_LAYOUT_STRIPED:
		snprintf(buf, len, "striped, %s stripes over %" PRIu32 " members",
			 fmt_size(v->chunk_sectors << VLUN_SECTOR_SHIFT, s, sizeof(s)), v->stripe_width);
		break;
	case VLUN_LAYOUT_THIN:
		snprintf(buf, len, "thin, %s chunks", fmt_size(v->chunk_sectors << VLUN_SECTOR_SHIFT, s, sizeof(s)));
		break;
	default:
		snprintf(buf, len, "%s", layout_name(v->layout));
		break;
	}
}

/* ------------------------------------------------------------ pool access */

/*
 * Which changes may be made while a running handler (tcmu-runner) holds the
 * pool open. The handler's engine owns the map and the metadata of an open
 * pool: a second writer (this process) would commit metadata behind its back
 * and the two copies of the truth would diverge. A change is safe online only
 * when it is carried out BY the running engine: vlunctl sends it over the
 * pool's control channel (lib/ctl.h) and the holder makes it. These are
 * vdisk create, vdisk resize (grow; a shrink only of a vdisk the holder has
 * not open — the holder decides and says why not), vdisk delete of a vdisk
 * the holder has not open (the holder decides), and pool add-member. Pool
 * create over members of a held pool is never safe.
 */
static bool is_safe_online(const struct command *cmd)
{
	static const char *const safe[][2] = {
		{ "vdisk", "create" }, { "vdisk", "resize" }, { "vdisk", "delete" }, { "pool", "add-member" },
		{ "mirror", "add" }, { "mirror", "remove" }, { "mirror", "split" }, { "", "migrate" },
		{ "", "resync" }, { "job", "cancel" }, { "member", "fault" },
		{ "snapshot", "create" }, { "snapshot", "delete" }, { "snapshot", "rollback" },
		{ "snapshot", "reserve" }, { "snapshot", "list" },
	};

	for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
		if (strcmp(cmd->group ? cmd->group : "", safe[i][0]) == 0 && strcmp(cmd->verb, safe[i][1]) == 0)
			return true;
	return false;
}

static const char *configfs_core(void)
{
	const char *e = getenv("VLUNCTL_CONFIGFS_CORE"); /* for tests */

	return e && *e ? e : "/sys/kernel/config/target/core";
}

static bool same_file_in(const char *path, char *const *paths, size_t n)
{
	struct stat a, b;

	if (stat(path, &a) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (stat(paths[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			return true;
	return false;
}

/* Appends to buf the tcmu backstores (configfs core/user_N/NAME) whose
 * cfgstring names a pool sharing a member with paths: "backstore 'bs' of
 * vdisk 'v'". Returns how many were found. Best effort: no configfs, no
 * result. */
static int find_backstores(char *const *paths, size_t n, char *buf, size_t len)
{
	const char *core = configfs_core();
	DIR *hbas;
	struct dirent *h;
	int found = 0;
	size_t off = strlen(buf);

	hbas = opendir(core);
	if (!hbas)
		return 0;
	while ((h = readdir(hbas))) {
		char dir[PATH_MAX];
		DIR *devs;
		struct dirent *dv;

		if (strncmp(h->d_name, "user_", 5) != 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", core, h->d_name);
		devs = opendir(dir);
		if (!devs)
			continue;
		while ((dv = readdir(devs))) {
			char f[PATH_MAX + 300], cfgs[4096];
			struct vlun_cfg cfg = { 0 };
			char **bpaths = NULL;
			size_t bn = 0, l;
			bool match = false;
			FILE *fp;
			char *s;

			if (dv->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s/attrib/dev_config", dir, dv->d_name);
			fp = fopen(f, "re");
			if (!fp)
				continue;
			if (!fgets(cfgs, sizeof(cfgs), fp)) {
				fclose(fp);
				continue;
			}
			fclose(fp);
			l = strlen(cfgs);
			while (l > 0 && (cfgs[l - 1] == '\n' || cfgs[l - 1] == ' '))
				cfgs[--l] = '\0';
			/* the kernel keeps it with the subtype: "vlun/<cfgstring>" */
			if (strncmp(cfgs, "vlun/", 5) != 0)
				continue;
			s = cfgs + 5;
			if (vlun_cfg_parse(s, &cfg, NULL) < 0)
				continue;
			if (cfg.pool_spec && vlun_pool_spec_expand(cfg.pool_spec, &bpaths, &bn, NULL) == 0) {
				for (size_t i = 0; i < bn && !match; i++)
					match = same_file_in(bpaths[i], paths, n);
				vlun_strv_free(bpaths, bn);
			}
			if (match) {
				off += snprintf(buf + off, off < len ? len - off : 0,
						"%sbackstore '%s' of vdisk '%s'", found ? ", " : "",
						dv->d_name, cfg.vdisk ? cfg.vdisk : "?");
				found++;
			}
			vlun_cfg_clear(&cfg);
		}
		closedir(devs);
	}
	closedir(hbas);
	return found;
}

/* The pool lock is an OFD lock, whose holder F_OFD_GETLK does not report
 * (l_pid = -1). The kernel lists each file description's locks in
 * /proc/PID/fdinfo/FD ("lock: 1: OFDLCK ADVISORY WRITE -1 MAJ:MIN:INO ..."),
 * so the process holding one of paths can be found there (for the
 * processes this user may inspect). Returns the pid or 0. */
static int find_lock_holder(char *const *paths, size_t n)
{
	char keys[VLUN_MAX_MEMBERS][64];
	size_t nkeys = 0;
	DIR *proc;
	struct dirent *pe;
	int found = 0;

	for (size_t i = 0; i < n && nkeys < VLUN_MAX_MEMBERS; i++) {
		struct stat st;

		if (stat(paths[i], &st) == 0)
			snprintf(keys[nkeys++], sizeof(keys[0]), " %02x:%02x:%lu ", major(st.st_dev),
				 minor(st.st_dev), (unsigned long)st.st_ino);
	}
	proc = opendir("/proc");
	if (!proc || nkeys == 0)
		goto out;
	while (!found && (pe = readdir(proc))) {
		char dir[64];
		DIR *fds;
		struct dirent *fe;
		int pid = atoi(pe->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", pid);
		fds = opendir(dir);
		if (!fds)
			continue;
		while (!found && (fe = readdir(fds))) {
			char f[64 + 256 + 2], line[256];
			FILE *fp;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s", dir, fe->d_name);
			fp = fopen(f, "re");
			if (!fp)
				continue;
			while (!found && fgets(line, sizeof(line), fp))
				if (strncmp(line, "lock:", 5) == 0)
					for (size_t k = 0; k < nkeys && !found; k++)
						if (strstr(line, keys[k]))
							found = pid;
			fclose(fp);
		}
		closedir(fds);
	}
out:
	if (proc)
		closedir(proc);
	return found;
}

/* Is one of paths held by a running handler? 1 held (with its pid and
 * comm when they can be found), 0 not, or an exit code after a message. */
static int check_held(struct ctx *c, char *const *paths, size_t n, const char *action, int *ret_pid,
		      char comm[64])
{
	int pid = 0, r;

	comm[0] = '\0';
	r = vlun_pool_paths_in_use(paths, n, &pid);
	if (r < 0) {
		fail(EXIT_FAIL, lib_why(NULL, r), hint_for_errno(r),
		     "%s: checking whether a running handler holds %s", action, c->pool_label);
		return -EXIT_FAIL;
	}
	if (r == 0)
		return 0;
	if (pid <= 0)
		pid = find_lock_holder(paths, n);
	if (pid > 0) {
		char f[64];
		FILE *fp;

		snprintf(f, sizeof(f), "/proc/%d/comm", pid);
		fp = fopen(f, "re");
		if (fp) {
			if (fgets(comm, 64, fp))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(fp);
		}
	}
	*ret_pid = pid;
	return 1;
}

/* The refusal of a change of a held pool: EXIT_INUSE after the message.
 * no_channel: the change would be safe online but the holder does not
 * answer on the control channel. */
static int refuse_held(struct ctx *c, char *const *paths, size_t n, const char *action, int pid,
		       const char *comm, bool no_channel)
{
	char holder[2 * PATH_MAX], backstores[PATH_MAX];
	int nbs;
	bool runner;

	runner = strcmp(comm, "tcmu-runner") == 0;
	backstores[0] = '\0';
	nbs = find_backstores(paths, n, backstores, sizeof(backstores));
	if (pid > 0)
		snprintf(holder, sizeof(holder), "%s is open in %s%s%s (pid %d%s%s)", c->pool_label,
			 runner ? "tcmu-runner" : "process '", runner ? "" : (comm[0] ? comm : "?"),
			 runner ? "" : "'", pid, nbs ? "; " : "", backstores);
	else if (nbs > 0)
		/* a vlun backstore on these members: the runner holds them */
		snprintf(holder, sizeof(holder), "%s is open in tcmu-runner (%s)", c->pool_label, backstores);
	else
		snprintf(holder, sizeof(holder), "%s is open in another process", c->pool_label);
	if (no_channel)
		return fail(EXIT_INUSE, holder,
			    runner || nbs > 0 ?
			    "No control channel answers for it (a tcmu-runner with an older vlun, or a holder on another host), so it cannot make the change itself; stop the backstore or update vlun first" :
			    "No control channel answers for it (an older vlun, or a holder on another host), so it cannot make the change itself; stop that process first",
			    "%s", action);
	return fail(EXIT_INUSE, holder,
		    runner || nbs > 0 ?
		    "Stop the backstore or use targetcli to delete it first (changes to a pool held by a running handler are not safe online)" :
		    "Stop that process first (changes to a pool held by a running handler are not safe online)",
		    "%s", action);
}

/* Refuses a change of a pool that is held: returns EXIT_INUSE after the
 * message, 0 if the pool is free, another exit code on error. */
static int refuse_if_in_use(struct ctx *c, char *const *paths, size_t n, const char *action)
{
	char comm[64];
	int pid = 0, r;

	r = check_held(c, paths, n, action, &pid, comm);
	if (r <= 0)
		return -r;
	return refuse_held(c, paths, n, action, pid, comm, false);
}

/* " (done by the running tcmu-runner, pid N)" after a change the holder
 * made; "" when the change was made here. */
const char *done_by(const struct ctx *c, char *buf, size_t len)
{
	if (!c->remote)
		return "";
	if (c->holder_pid > 0)
		snprintf(buf, len, " (done by the running %s, pid %d)",
			 c->holder_comm[0] ? c->holder_comm : "process holding the pool", c->holder_pid);
	else
		snprintf(buf, len, " (done by the running process holding the pool)");
	return buf;
}

/* Copies s to out with the control protocol's %XX escapes (space, '%',
 * bytes outside printable ASCII). */
static int ctl_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (o + 4 > len)
			return -ENAMETOOLONG;
		if (ch <= 0x20 || ch >= 0x7f || ch == '%')
			o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

/* Sends request to the holder; a query's payload in *ret_payload (when
 * not NULL). Returns 0, or an exit code after the message "<what>: <the
 * holder's reason>. <todo>" (busy_todo: the todo for EBUSY, NULL: the
 * general one). */
int remote_query(struct ctx *c, const char *request, const char *what, const char *busy_todo,
		 char **ret_payload)
{
	char *reason = NULL;
	int r, code;
	const char *todo;

	r = ret_payload ? vlun_ctl_query(c->desc->uuid, request, ret_payload, &reason) :
			  vlun_ctl_request(c->desc->uuid, request, &reason);
	if (r == 0)
		return 0;
	code = exit_for_errno(r);
	todo = hint_for_errno(r);
	if (r == -EBUSY && busy_todo)
		todo = busy_todo;
	else if (r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EPROTO) {
		code = EXIT_INUSE;
		todo = "The process holding the pool did not answer on its control channel; retry, or stop its backstores and run the command again";
	} else if (r == -EACCES)
		todo = "Run vlunctl as root or as the user running tcmu-runner";
	if (reason)
		r = fail(code, reason, todo, "%s (asked the process holding it)", what);
	else
		r = fail(code, strerror(-r), todo, "%s: control channel of %s", what, c->pool_label);
	free(reason);
	return r;
}

/* Sends a change to the holder (see remote_query()). */
static int remote_change(struct ctx *c, const char *request, const char *what)
{
	return remote_query(c, request, what,
			    "Delete its backstore with targetcli, then retry (the holder has this vdisk open for I/O)",
			    NULL);
}

static int stat_member(const char *path, const char *action)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = errno;

		return fail(e == ENOENT ? EXIT_NOTFOUND : EXIT_FAIL, strerror(e),
			    "Check the path (members are regular files or block devices)",
			    "%s: member '%s'", action, path);
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return fail(EXIT_USAGE, "not a regular file or block device",
			    "Give a file or a block device (e.g. /dev/mapper/mpatha)", "%s: member '%s'",
			    action, path);
	return 0;
}

/* A pool spec with relative items made absolute (the library wants absolute
 * paths; people type relative ones). */
static char *absolute_spec(const char *spec)
{
	char cwd[PATH_MAX], *out = NULL, *copy, *item, *next;
	size_t len = 0;
	FILE *f;

	if (!getcwd(cwd, sizeof(cwd)))
		return strdup(spec);
	copy = strdup(spec);
	if (!copy)
		return NULL;
	f = open_memstream(&out, &len);
	if (!f) {
		free(copy);
		return NULL;
	}
	for (item = copy; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (item != copy)
			fputc(',', f);
		if (item[0] && item[0] != '/')
			fprintf(f, "%s/%s", cwd, item[0] == '.' && item[1] == '/' ? item + 2 :
					      strcmp(item, ".") == 0 ? "" : item);
		else
			fputs(item, f);
	}
	free(copy);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int expand_spec(struct ctx *c, const char *action)
{
	char *reason = NULL, *abs;
	int r;

	snprintf(c->pool_label, sizeof(c->pool_label), "pool '%s'", c->spec);
	abs = absolute_spec(c->spec);
	if (!abs)
		return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "%s", action);
	r = vlun_pool_spec_expand(abs, &c->paths, &c->npaths, &reason);
	free(abs);
	if (r < 0) {
		int code = r == -ENOENT ? EXIT_NOTFOUND : r == -EINVAL ? EXIT_USAGE : EXIT_FAIL;

		r = fail(code, lib_why(reason, r),
			 "Give the pool as a directory of members, a glob or a comma-separated list of member paths",
			 "%s", action);
		free(reason);
		return r;
	}
	if (c->a->pool_name && c->npaths > 0) {
		char **np = realloc(c->paths, (c->npaths + 1) * sizeof(*np));

		if (!np)
			return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "%s", action);
		c->paths = np;
		if (asprintf(&c->paths[c->npaths], "pool=%s", c->a->pool_name) < 0)
			return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "%s", action);
		c->npaths++;
	}
	if (c->npaths == 0)
		return fail(EXIT_NOTFOUND, "no member files or devices found",
			    "Give the pool as a directory of members, a glob or a comma-separated list of member paths",
			    "%s: pool spec '%s'", action, c->spec);
	return 0;
}

/* Best effort: "pool '<name>'" in c->pool_label, read from the members
 * (the label stays as it is when they do not hold a pool). */
static void label_from_pool(struct ctx *c, char *const *paths, size_t n)
{
	struct vlun_pool *ro = NULL;

	if (vlun_pool_open(paths, n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK | VLUN_OPEN_DEGRADED, &ro, NULL) == 0) {
		struct vlun_pool_desc *d = NULL;

		if (vlun_pool_describe(ro, &d) == 0) {
			snprintf(c->pool_label, sizeof(c->pool_label), "pool '%s'", d->name);
			vlun_pool_desc_free(d);
		}
		vlun_pool_close(ro);
	}
	last_lib_error[0] = '\0';
}

/* Opens the pool of c->spec. Read commands open read-only and without the
 * lock (they see the newest committed metadata even while a handler runs);
 * changing commands are refused on a held pool and take the lock. */
int open_pool(struct ctx *c, const char *action)
{
	char *reason = NULL;
	unsigned flags;
	int r;

	r = expand_spec(c, action);
	if (r)
		return r;

	if (c->cmd->changes) {
		label_from_pool(c, c->paths, c->npaths);
		r = check_held(c, c->paths, c->npaths, action, &c->holder_pid, c->holder_comm);
		if (r < 0)
			return -r;
		if (r > 0 && !is_safe_online(c->cmd))
			return refuse_held(c, c->paths, c->npaths, action, c->holder_pid, c->holder_comm, false);
		c->remote = r > 0;
	}

	flags = c->cmd->changes && !c->remote ? 0 : VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK | VLUN_OPEN_DEGRADED;
	r = vlun_pool_open(c->paths, c->npaths, flags, &c->pool, &reason);
	if (r < 0) {
		int code = exit_for_errno(r);
		const char *todo = hint_for_errno(r);

		if (r == -ENOENT)
			todo = "Check the pool spec: it must name the members of a pool made by 'vlunctl pool create'";
		if (code == EXIT_USAGE && r != -ENOTUNIQ)
			code = EXIT_FAIL;
		r = fail(code, lib_why(reason, r), todo, "%s: opening %s", action, c->pool_label);
		free(reason);
		return r;
	}
	r = vlun_pool_describe(c->pool, &c->desc);
	if (r < 0)
		return fail(EXIT_FAIL, lib_why(NULL, r), hint_for_errno(r), "%s: reading %s", action,
			    c->pool_label);
	snprintf(c->pool_label, sizeof(c->pool_label), "pool '%s'", c->desc->name);
	/* Held: the holder makes the change if it answers. */
	if (c->remote && vlun_ctl_request(c->desc->uuid, "ping", NULL) < 0)
		return refuse_held(c, c->paths, c->npaths, action, c->holder_pid, c->holder_comm, true);
	return 0;
}

/* Opens the pool and finds the vdisk name in it; either failure is
 * reported after action ("cannot ... vdisk 'x'"). */
static int open_vdisk(struct ctx *c, const char *name, const char *action,
		      const struct vlun_vdisk_desc **ret)
{
	const struct vlun_vdisk_desc *v;
	int r;

	r = open_pool(c, action);
	if (r)
		return r;
	v = find_vdisk(c->desc, name);
	if (!v)
		return fail(EXIT_NOTFOUND, "no such vdisk", "'vlunctl vdisk list' shows the vdisks of the pool",
			    "%s in %s", action, c->pool_label);
	*ret = v;
	return 0;
}

/* After a change: the description again (for the report line). When the
 * holder made it, from the newest committed metadata. */
int refresh_desc(struct ctx *c)
{
	struct vlun_pool_desc *d = NULL;
	int r;

	if (c->remote) {
		struct vlun_pool *ro = NULL;

		/* close first: the registry would hand back the old view */
		vlun_pool_close(c->pool);
		c->pool = NULL;
		r = vlun_pool_open(c->paths, c->npaths, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK | VLUN_OPEN_DEGRADED, &ro, NULL);
		if (r < 0)
			return r;
		c->pool = ro;
	}
	r = vlun_pool_describe(c->pool, &d);

	if (r < 0)
		return r;
	vlun_pool_desc_free(c->desc);
	c->desc = d;
	return 0;
}

/* ------------------------------------------------------------ pool commands */

static int cmd_pool_create(struct ctx *c)
{
	struct vlun_pool_create_opts o = { 0 };
	const char *name = c->args[0];
	char **members, **owned;
	size_t n;
	char *reason = NULL;
	char action[128], sz[32];
	bool force = c->a->seen & OPT_FORCE;
	int r;

	snprintf(action, sizeof(action), "cannot create pool '%s'", name);
	if (!vlun_name_valid(name))
		return fail(EXIT_USAGE, "invalid name",
			    "Use 1 to 63 characters from A-Z a-z 0-9 . _ -", "%s", action);
	o.name = name;
	if (c->a->meta_size) {
		r = parse_size_arg("--meta-size", c->a->meta_size, false, &o.meta_bytes);
		if (r)
			return r;
	}

	/* members: the positional paths, or the expansion of -p SPEC */
	if (c->a->pool) {
		if (c->nargs > 1)
			return fail(EXIT_USAGE, "members given twice (as arguments and with --pool)",
				    "Give either member paths or --pool SPEC", "%s", action);
		c->spec = c->a->pool;
		r = expand_spec(c, action);
		if (r)
			return r;
		members = c->paths;
		n = c->npaths;
	} else {
		if (c->nargs < 2)
			return fail(EXIT_USAGE, "no members given",
				    "Usage: vlunctl pool create <name> <member>... [--meta-size SIZE] [--force]",
				    "%s", action);
		n = (size_t)c->nargs - 1;
		owned = calloc(n, sizeof(*owned));
		if (!owned)
			return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "%s", action);
		for (size_t i = 0; i < n; i++) {
			owned[i] = absolute_spec(c->args[1 + i]);
			if (!owned[i]) {
				vlun_strv_free(owned, n);
				return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "%s", action);
			}
		}
		members = owned;
		/* main() frees c->paths */
		c->paths = owned;
		c->npaths = n;
	}
	for (size_t i = 0; i < n; i++) {
		r = stat_member(members[i], action);
		if (r)
			return r;
		for (size_t j = 0; j < i; j++)
			if (same_file_in(members[i], members + j, 1))
				return fail(EXIT_USAGE, "the same member is given twice",
					    "List every member once", "%s: member '%s'", action, members[i]);
	}
	/* Relabelling members of a pool that a handler runs would pull the
	 * disks from under it, --force or not. */
	snprintf(c->pool_label, sizeof(c->pool_label), "a member");
	label_from_pool(c, members, n);
	r = refuse_if_in_use(c, members, n, action);
	if (r)
		return r;

	last_lib_error[0] = '\0';
	r = vlun_pool_create(&o, members, n, force, &reason);
	if (r < 0) {
		int code = exit_for_errno(r);
		const char *todo = hint_for_errno(r);

		if (r == -EEXIST && !force) {
			code = EXIT_DATALOSS;
			todo = "A member already carries a vlun label; re-run with --force to overwrite it (this destroys the pool it belongs to)";
		} else if (r == -EINVAL) {
			todo = "Check the members' sizes and --meta-size (each member needs room for the metadata area and data)";
		} else if (r == -ENOSPC) {
			todo = "Use larger members or a smaller --meta-size";
		}
		r = fail(code, lib_why(reason, r), todo, "%s", action);
		free(reason);
		return r;
	}
	printf("created pool '%s' on %zu member%s", name, n, n == 1 ? "" : "s");
	if (o.meta_bytes)
		printf(" (metadata area %s per member)", fmt_size(o.meta_bytes, sz, sizeof(sz)));
	printf("\n");
	return 0;
}

static int cmd_pool_show(struct ctx *c)
{
	const struct vlun_pool_desc *d;
	uint64_t total = 0, free_b = 0, provisioned = 0;
	char uuid[37], s1[32], s2[32], s3[32], s4[32];
	int r;

	r = open_pool(c, "cannot show pool");
	if (r)
		return r;
	d = c->desc;
	r = vlun_pool_space(c->pool, &total, &free_b);
	if (r < 0)
		return fail(EXIT_FAIL, lib_why(NULL, r), hint_for_errno(r), "cannot show %s: free space",
			    c->pool_label);
	vlun_uuid_format(d->uuid, uuid);
	for (uint32_t i = 0; i < d->nvdisks; i++)
		provisioned += d->vdisks[i].size_sectors << VLUN_SECTOR_SHIFT;

	if (c->a->seen & OPT_JSON) {
		json_object *o = json_object_new_object(), *ms = json_object_new_array(),
			    *vs = json_object_new_array();

		json_add_str(o, "name", d->name);
		json_add_str(o, "uuid", uuid);
		json_add_u64(o, "created", d->created);
		json_add_u64(o, "seq", d->seq);
		json_add_u64(o, "generation", d->generation);
		json_add_u64(o, "map_epoch", d->map_epoch);
		json_add_u64(o, "total_bytes", total);
		json_add_u64(o, "free_bytes", free_b);
		json_add_u64(o, "used_bytes", total - free_b);
		json_add_u64(o, "provisioned_bytes", provisioned);
		for (uint32_t i = 0; i < d->nmembers; i++) {
			const struct vlun_member_desc *m = &d->members[i];
			json_object *mo = json_object_new_object();
			char mu[37];

			vlun_uuid_format(m->uuid, mu);
			json_add_u64(mo, "index", m->index);
			json_add_str(mo, "uuid", mu);
			json_add_str(mo, "state", member_state_name(m->state));
			json_add_str(mo, "path", m->path_hint);
			json_add_u64(mo, "size_bytes", m->size_bytes);
			json_add_u64(mo, "data_start_sector", m->data_start);
			json_add_u64(mo, "data_sectors", m->data_sectors);
			json_add_u64(mo, "data_bytes", m->data_sectors << VLUN_SECTOR_SHIFT);
			json_add_u64(mo, "used_sectors", member_used_sectors(d, i));
			json_object_array_add(ms, mo);
		}
		json_object_object_add(o, "members", ms);
		for (uint32_t i = 0; i < d->nvdisks; i++)
			json_object_array_add(vs, json_vdisk_snap(d, &d->vdisks[i]));
		json_object_object_add(o, "vdisks", vs);
		vlunctl_mirror_show_json(d, o);
		vlunctl_snap_show_json(d, o);
		return json_print(o);
	}

	{
		time_t t = (time_t)d->created;
		struct tm tm;
		char when[64] = "?";

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		printf("Pool:       %s\n", d->name);
		printf("UUID:       %s\n", uuid);
		printf("Created:    %s\n", when);
		printf("Metadata:   seq %" PRIu64 ", generation %" PRIu64 ", map epoch %" PRIu64 "\n",
		       d->seq, d->generation, d->map_epoch);
		printf("Space:      %s total, %s used (%.1f%%), %s free\n", fmt_size(total, s1, sizeof(s1)),
		       fmt_size(total - free_b, s2, sizeof(s2)), percent(total - free_b, total),
		       fmt_size(free_b, s3, sizeof(s3)));
		printf("Vdisk size: %s in %" PRIu32 " vdisk%s (%.0f%% of total%s)\n",
		       fmt_size(provisioned, s1, sizeof(s1)), d->nvdisks, d->nvdisks == 1 ? "" : "s",
		       percent(provisioned, total), provisioned > total ? ": thin overcommit" : "");
		printf("Members:    %" PRIu32 "\n", d->nmembers);
		printf("  %-5s %-8s %-12s %-12s %-12s %s\n", "INDEX", "STATE", "SIZE", "DATA", "USED", "PATH");
		for (uint32_t i = 0; i < d->nmembers; i++) {
			const struct vlun_member_desc *m = &d->members[i];

			printf("  %-5" PRIu32 " %-8s %-12s %-12s %-12s %s\n", m->index,
			       member_state_name(m->state), fmt_size(m->size_bytes, s1, sizeof(s1)),
			       fmt_size(m->data_sectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)),
			       fmt_size(member_used_sectors(d, i) << VLUN_SECTOR_SHIFT, s3, sizeof(s3)),
			       m->path_hint[0] ? m->path_hint : "?");
		}
		printf("Vdisks:     %" PRIu32 "\n", d->nvdisks);
		if (d->nvdisks)
			printf("  %-24s %-8s %-12s %s\n", "NAME", "LAYOUT", "SIZE", "ALLOCATED");
		for (uint32_t i = 0; i < d->nvdisks; i++) {
			const struct vlun_vdisk_desc *v = &d->vdisks[i];

			char note[128];

			printf("  %-24s %-8s %-12s %s%s\n", v->name, layout_name(v->layout),
			       fmt_size(v->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
			       fmt_size(vdisk_allocated_sectors(v) << VLUN_SECTOR_SHIFT, s4, sizeof(s4)),
			       snap_note(d, v, note, sizeof(note)));
		}
		vlunctl_mirror_show_text(d);
		vlunctl_snap_show_text(d);
	}
	return 0;
}

static int add_member(struct ctx *c, const char *path);

static int cmd_pool_add_member(struct ctx *c)
{
	char *abs;
	int r;

	abs = absolute_spec(c->args[0]);
	if (!abs)
		return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "cannot add member '%s'", c->args[0]);
	r = add_member(c, abs);
	free(abs);
	return r;
}

static int add_member(struct ctx *c, const char *path)
{
	char *reason = NULL;
	char action[PATH_MAX + 64], by[128];
	bool force = c->a->seen & OPT_FORCE, listed;
	uint32_t before;
	int r;

	snprintf(action, sizeof(action), "cannot add member '%s'", path);
	r = stat_member(path, action);
	if (r)
		return r;
	/* The new member must not belong to a pool a handler runs either. */
	{
		char *const one[1] = { (char *)path };

		snprintf(c->pool_label, sizeof(c->pool_label), "member '%s'", path);
		r = refuse_if_in_use(c, one, 1, action);
		if (r)
			return r;
	}
	r = open_pool(c, action);
	if (r)
		return r;
	if (same_file_in(path, c->paths, c->npaths)) {
		for (uint32_t i = 0; i < c->desc->nmembers; i++)
			if (same_file_in(c->desc->members[i].path_hint, (char *const *)&path, 1))
				return fail(EXIT_EXISTS, "it is already member " "of this pool",
					    "Nothing to do", "%s to %s", action, c->pool_label);
	}
	before = c->desc->nmembers;
	last_lib_error[0] = '\0';
	if (c->remote) {
		char esc[3 * PATH_MAX + 1], req[3 * PATH_MAX + 64], what[sizeof(action) + sizeof(c->pool_label) + 8];

		if (ctl_escape(path, esc, sizeof(esc)) < 0)
			return fail(EXIT_USAGE, strerror(ENAMETOOLONG), "Use a shorter path", "%s", action);
		snprintf(req, sizeof(req), "member-add path=%s force=%d", esc, force ? 1 : 0);
		snprintf(what, sizeof(what), "%s to %s", action, c->pool_label);
		r = remote_change(c, req, what);
		if (r == EXIT_EXISTS && !force)
			r = EXIT_DATALOSS; /* a label on it: like offline, --force overwrites */
		if (r)
			return r;
	} else
		r = vlun_pool_add_member(c->pool, path, force, &reason);
	if (r < 0) {
		int code = exit_for_errno(r);
		const char *todo = hint_for_errno(r);

		if (r == -EEXIST && !force) {
			code = EXIT_DATALOSS;
			todo = "It carries a vlun label; re-run with --force to overwrite it (this destroys the pool it belongs to)";
		}
		r = fail(code, lib_why(reason, r), todo, "%s to %s", action, c->pool_label);
		free(reason);
		return r;
	}
	listed = same_file_in(path, c->paths, c->npaths);
	printf("added '%s' to %s as member %" PRIu32 "%s\n", path, c->pool_label, before,
	       done_by(c, by, sizeof(by)));
	if (!listed)
		printf("note: '%s' is not covered by the pool spec '%s'; include it when you open the pool\n",
		       path, c->spec);
	return 0;
}

/* ------------------------------------------------------------ vdisk commands */

static int cmd_vdisk_create(struct ctx *c)
{
	struct vlun_vdisk_create_opts o = { 0 };
	const char *name = c->args[0];
	unsigned layouts = c->a->seen & (OPT_LINEAR | OPT_STRIPED | OPT_THIN);
	uint32_t *idx = NULL;
	size_t nidx = 0;
	char *reason = NULL;
	char action[128], s1[32], s2[96], by[128];
	int r;

	snprintf(action, sizeof(action), "cannot create vdisk '%s'", name);
	if (!vlun_name_valid(name))
		return fail(EXIT_USAGE, "invalid name", "Use 1 to 63 characters from A-Z a-z 0-9 . _ -",
			    "%s", action);
	if (!(c->a->seen & OPT_SIZE))
		return fail(EXIT_USAGE, "no size given", "Add --size SIZE (e.g. --size 10G)", "%s", action);
	if (layouts == 0)
		return fail(EXIT_USAGE, "no layout given", "Add one of --linear, --striped or --thin", "%s",
			    action);
	if (layouts & (layouts - 1))
		return fail(EXIT_USAGE, "more than one layout given",
			    "Choose one of --linear, --striped or --thin", "%s", action);
	if ((c->a->seen & (OPT_STRIPE_SIZE | OPT_WIDTH)) && layouts != OPT_STRIPED)
		return fail(EXIT_USAGE, "--stripe-size and --width apply to --striped only",
			    "Drop them or use --striped", "%s", action);
	if ((c->a->seen & OPT_CHUNK) && layouts != OPT_THIN)
		return fail(EXIT_USAGE, "--chunk applies to --thin only", "Drop it or use --thin", "%s",
			    action);

	o.name = name;
	o.layout = layouts == OPT_LINEAR ? VLUN_LAYOUT_LINEAR :
		   layouts == OPT_STRIPED ? VLUN_LAYOUT_STRIPED : VLUN_LAYOUT_THIN;
	r = parse_size_arg("--size", c->a->size, false, &o.size_bytes);
	if (r)
		return r;
	if (c->a->stripe_size) {
		r = parse_size_arg("--stripe-size", c->a->stripe_size, false, &o.chunk_bytes);
		if (r)
			return r;
	}
	if (c->a->chunk) {
		r = parse_size_arg("--chunk", c->a->chunk, false, &o.chunk_bytes);
		if (r)
			return r;
	}
	if (c->a->width) {
		r = parse_u32(c->a->width, &o.stripe_width);
		if (r < 0 || o.stripe_width == 0)
			return fail(EXIT_USAGE, "not a positive whole number",
				    "Give the number of members to stripe over, e.g. --width 4",
				    "invalid --width '%s'", c->a->width);
	}
	if (c->a->members) {
		r = parse_index_list(c->a->members, &idx, &nidx);
		if (r == -ENOMEM)
			return fail(EXIT_FAIL, strerror(ENOMEM), NULL, "%s", action);
		if (r < 0)
			return fail(EXIT_USAGE, "not a comma-separated list of distinct member indexes",
				    "Give indexes as shown by 'vlunctl pool show', e.g. --members 0,2",
				    "invalid --members '%s'", c->a->members);
		o.members = idx;
		o.nmembers = nidx;
	}

	r = open_pool(c, action);
	if (r)
		goto out;
	for (size_t i = 0; i < nidx; i++)
		if (idx[i] >= c->desc->nmembers) {
			r = fail(EXIT_NOTFOUND, "no such member index",
				 "Use the indexes shown by 'vlunctl pool show'",
				 "%s: --members: %s has no member %" PRIu32, action, c->pool_label, idx[i]);
			goto out;
		}
	if (find_vdisk(c->desc, name)) {
		r = fail(EXIT_EXISTS, "the name is taken", "Choose another name or delete the old vdisk",
			 "%s in %s", action, c->pool_label);
		goto out;
	}
	last_lib_error[0] = '\0';
	if (c->remote) {
		char req[1024], what[sizeof(action) + sizeof(c->pool_label) + 8];
		size_t off;

		off = (size_t)snprintf(req, sizeof(req), "vdisk-create name=%s layout=%s size=%" PRIu64, name,
				       layout_name(o.layout), o.size_bytes);
		if (o.chunk_bytes)
			off += (size_t)snprintf(req + off, sizeof(req) - off, " chunk=%" PRIu64, o.chunk_bytes);
		if (o.stripe_width)
			off += (size_t)snprintf(req + off, sizeof(req) - off, " width=%" PRIu32, o.stripe_width);
		for (size_t i = 0; i < nidx && off < sizeof(req); i++)
			off += (size_t)snprintf(req + off, sizeof(req) - off, "%s%" PRIu32, i ? "," : " members=",
						idx[i]);
		if (off >= sizeof(req)) {
			r = fail(EXIT_USAGE, "too many member indexes", "List fewer with --members", "%s", action);
			goto out;
		}
		snprintf(what, sizeof(what), "%s in %s", action, c->pool_label);
		r = remote_change(c, req, what);
		if (r)
			goto out;
	} else {
		r = vlun_vdisk_create(c->pool, &o, &reason);
		if (r < 0) {
			r = fail(exit_for_errno(r), lib_why(reason, r), hint_for_errno(r), "%s in %s", action,
				 c->pool_label);
			goto out;
		}
	}
	printf("created vdisk '%s' in %s: %s, %s", name, c->pool_label, layout_name(o.layout),
	       fmt_size(o.size_bytes, s1, sizeof(s1)));
	if (refresh_desc(c) == 0) {
		const struct vlun_vdisk_desc *v = find_vdisk(c->desc, name);

		if (v && v->layout != VLUN_LAYOUT_LINEAR) {
			layout_desc(v, s2, sizeof(s2));
			printf(" (%s)", strchr(s2, ',') ? strchr(s2, ',') + 2 : s2);
		}
	}
	printf("%s\n", done_by(c, by, sizeof(by)));
	r = 0;
out:
	free(reason);
	free(idx);
	return r;
}

static int cmd_vdisk_list(struct ctx *c)
{
	const struct vlun_pool_desc *d;
	char s1[32], s2[32];
	int r;

	r = open_pool(c, "cannot list vdisks");
	if (r)
		return r;
	d = c->desc;
	if (c->a->seen & OPT_JSON) {
		json_object *o = json_object_new_object(), *vs = json_object_new_array();

		json_add_str(o, "pool", d->name);
		for (uint32_t i = 0; i < d->nvdisks; i++)
			json_object_array_add(vs, json_vdisk_snap(d, &d->vdisks[i]));
		json_object_object_add(o, "vdisks", vs);
		return json_print(o);
	}
	if (d->nvdisks == 0) {
		printf("no vdisks in pool '%s'\n", d->name);
		return 0;
	}
	printf("%-24s %-6s %-8s %-12s %-12s %s\n", "NAME", "ID", "LAYOUT", "SIZE", "ALLOCATED", "EXTENTS");
	for (uint32_t i = 0; i < d->nvdisks; i++) {
		const struct vlun_vdisk_desc *v = &d->vdisks[i];

		char note[128];

		printf("%-24s %-6" PRIu32 " %-8s %-12s %-12s %" PRIu32 "%s\n", v->name, v->id,
		       layout_name(v->layout), fmt_size(v->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
		       fmt_size(vdisk_allocated_sectors(v) << VLUN_SECTOR_SHIFT, s2, sizeof(s2)), v->nextents,
		       snap_note(d, v, note, sizeof(note)));
	}
	return 0;
}

static int cmd_vdisk_show(struct ctx *c)
{
	const char *name = c->args[0];
	const struct vlun_pool_desc *d;
	const struct vlun_vdisk_desc *v;
	char action[128], uuid[37], s1[32], s2[32], lay[96], flags[96];
	uint64_t alloc;
	int r;

	snprintf(action, sizeof(action), "cannot show vdisk '%s'", name);
	r = open_vdisk(c, name, action, &v);
	if (r)
		return r;
	d = c->desc;
	alloc = vdisk_allocated_sectors(v);

	if (c->a->seen & OPT_JSON) {
		json_object *o = json_vdisk_summary(v), *es = json_object_new_array();

		json_add_str(o, "pool", d->name);
		for (uint32_t i = 0; i < v->nextents; i++) {
			const struct vlun_extent *e = &v->extents[i];
			json_object *eo = json_object_new_object(), *fl = json_object_new_array();
			bool has_member = e->member != VLUN_NO_MEMBER;
			bool has_alt = e->flags & VLUN_EXT_ALT_EXISTS;

			json_add_u64(eo, "vsector", e->vsector);
			json_add_u64(eo, "nsectors", e->nsectors);
			json_object_object_add(eo, "member", has_member ? json_object_new_uint64(e->member) : NULL);
			json_add_str(eo, "member_path", has_member ? member_path(d, e->member) : NULL);
			json_object_object_add(eo, "psector", has_member ? json_object_new_uint64(e->psector) : NULL);
			json_add_u64(eo, "flags_value", e->flags);
			for (size_t k = 0; k < N_EXTENT_FLAGS; k++)
				if (e->flags & extent_flag_names[k].bit)
					json_object_array_add(fl, json_object_new_string(extent_flag_names[k].name));
			json_object_object_add(eo, "flags", fl);
			json_object_object_add(eo, "alt_member", has_alt ? json_object_new_uint64(e->alt_member) : NULL);
			json_object_object_add(eo, "alt_psector", has_alt ? json_object_new_uint64(e->alt_psector) : NULL);
			json_add_u64(eo, "dirty_id", e->dirty_id);
			json_object_array_add(es, eo);
		}
		json_object_object_add(o, "extents", es);
		return json_print(o);
	}

	vlun_uuid_format(v->uuid, uuid);
	layout_desc(v, lay, sizeof(lay));
	printf("Vdisk:      %s (id %" PRIu32 ") in pool '%s'\n", v->name, v->id, d->name);
	printf("UUID:       %s\n", uuid);
	printf("Layout:     %s\n", lay);
	printf("Size:       %s (%" PRIu64 " sectors)\n", fmt_size(v->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
	       v->size_sectors);
	printf("Allocated:  %s of %s (%.1f%%)", fmt_size(alloc << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
	       fmt_size(v->size_sectors << VLUN_SECTOR_SHIFT, s2, sizeof(s2)), percent(alloc, v->size_sectors));
	if (v->layout == VLUN_LAYOUT_THIN && v->chunk_sectors)
		printf(", %" PRIu64 " of %" PRIu64 " chunks", alloc / v->chunk_sectors,
		       (v->size_sectors + v->chunk_sectors - 1) / v->chunk_sectors);
	printf("\n");
	printf("Generation: %" PRIu64 "\n", v->generation);
	printf("Extents:    %" PRIu32 " (sectors of 512 bytes, ranges inclusive)\n", v->nextents);
	printf("  %-27s %-12s %-30s %-27s %s\n", "VIRTUAL", "LENGTH", "MEMBER", "PHYSICAL", "FLAGS");
	for (uint32_t i = 0; i < v->nextents; i++) {
		const struct vlun_extent *e = &v->extents[i];
		char vr[48], pr[48], mb[VLUN_PATH_MAX + 32];

		snprintf(vr, sizeof(vr), "%" PRIu64 "-%" PRIu64, e->vsector, e->vsector + e->nsectors - 1);
		if (e->member != VLUN_NO_MEMBER) {
			snprintf(mb, sizeof(mb), "%" PRIu32 " (%s)", e->member, member_path(d, e->member));
			snprintf(pr, sizeof(pr), "%" PRIu64 "-%" PRIu64, e->psector, e->psector + e->nsectors - 1);
		} else {
			snprintf(mb, sizeof(mb), "-");
			snprintf(pr, sizeof(pr), "-");
		}
		printf("  %-27s %-12" PRIu64 " %-30s %-27s %s", vr, e->nsectors, mb, pr,
		       extent_flags_str(e->flags, flags, sizeof(flags)));
		if (e->flags & VLUN_EXT_ALT_EXISTS)
			printf("  alt %" PRIu32 " (%s) %" PRIu64 "-%" PRIu64, e->alt_member,
			       member_path(d, e->alt_member), e->alt_psector, e->alt_psector + e->nsectors - 1);
		printf("\n");
	}
	return 0;
}

static int cmd_vdisk_resize(struct ctx *c)
{
	const char *name = c->args[0];
	const struct vlun_vdisk_desc *v;
	uint64_t new_bytes, old_bytes;
	char *reason = NULL;
	char action[128], s1[32], s2[32], by[128];
	bool force = c->a->seen & OPT_FORCE;
	int r;

	snprintf(action, sizeof(action), "cannot resize vdisk '%s'", name);
	if (!(c->a->seen & OPT_SIZE))
		return fail(EXIT_USAGE, "no size given", "Add --size SIZE (the new size, e.g. --size 20G)",
			    "%s", action);
	r = parse_size_arg("--size", c->a->size, false, &new_bytes);
	if (r)
		return r;
	r = open_vdisk(c, name, action, &v);
	if (r)
		return r;
	old_bytes = v->size_sectors << VLUN_SECTOR_SHIFT;
	fmt_size(old_bytes, s1, sizeof(s1));
	fmt_size(new_bytes, s2, sizeof(s2));
	if (new_bytes == old_bytes) {
		printf("vdisk '%s' in %s is already %s; nothing to do\n", name, c->pool_label, s2);
		return 0;
	}
	if (new_bytes < old_bytes && !force)
		return fail(EXIT_DATALOSS, "shrinking it would destroy the data past the new end",
			    "Re-run with --force if the data beyond the new size is not needed (shrink the filesystem on it first)",
			    "%s from %s to %s", action, s1, s2);
	last_lib_error[0] = '\0';
	if (c->remote) {
		char req[256], what[256];

		snprintf(req, sizeof(req), "vdisk-resize name=%s size=%" PRIu64 " force=%d", name, new_bytes,
			 force ? 1 : 0);
		snprintf(what, sizeof(what), "%s from %s to %s", action, s1, s2);
		r = remote_change(c, req, what);
		if (r)
			return r;
	} else
		r = vlun_vdisk_resize(c->pool, name, new_bytes, force, &reason);
	if (r < 0) {
		r = fail(exit_for_errno(r), lib_why(reason, r), hint_for_errno(r), "%s from %s to %s", action,
			 s1, s2);
		free(reason);
		return r;
	}
	printf("resized vdisk '%s' in %s from %s to %s%s\n", name, c->pool_label, s1, s2,
	       done_by(c, by, sizeof(by)));
	return 0;
}

static int cmd_vdisk_delete(struct ctx *c)
{
	const char *name = c->args[0];
	const struct vlun_vdisk_desc *v;
	char *reason = NULL;
	char action[128], s1[32], s2[32], by[128];
	int r;

	snprintf(action, sizeof(action), "cannot delete vdisk '%s'", name);
	r = open_vdisk(c, name, action, &v);
	if (r)
		return r;
	if (!(c->a->seen & OPT_FORCE)) {
		char why[160];

		snprintf(why, sizeof(why), "deleting destroys its data (%s, %s allocated)",
			 fmt_size(v->size_sectors << VLUN_SECTOR_SHIFT, s1, sizeof(s1)),
			 fmt_size(vdisk_allocated_sectors(v) << VLUN_SECTOR_SHIFT, s2, sizeof(s2)));
		return fail(EXIT_DATALOSS, why, "Re-run with --force to delete it", "%s in %s", action,
			    c->pool_label);
	}
	last_lib_error[0] = '\0';
	if (c->remote) {
		char req[128], what[sizeof(action) + sizeof(c->pool_label) + 8];

		snprintf(req, sizeof(req), "vdisk-delete name=%s", name);
		snprintf(what, sizeof(what), "%s in %s", action, c->pool_label);
		r = remote_change(c, req, what);
		if (r)
			return r;
	} else
		r = vlun_vdisk_delete(c->pool, name, &reason);
	if (r < 0) {
		r = fail(exit_for_errno(r), lib_why(reason, r), hint_for_errno(r), "%s in %s", action,
			 c->pool_label);
		free(reason);
		return r;
	}
	printf("deleted vdisk '%s' from %s%s\n", name, c->pool_label, done_by(c, by, sizeof(by)));
	return 0;
}

static int cmd_version(struct ctx *c)
{
	printf("vlunctl %s\n", VLUN_VERSION);
	return 0;
}

static int cmd_help(struct ctx *c);

/* stats: the rest is in vlunctl_stats.c */
static int cmd_stats(struct ctx *c)
{
	int r = open_pool(c, "cannot read statistics");

	if (r)
		return r;
	c->a->stats.json = c->a->seen & OPT_JSON;
	return vlunctl_stats(c->desc, c->paths, c->npaths, &c->a->stats);
}

/* mirror, migrate, resync, jobs, job cancel, member fault: the rest is in
 * vlunctl_mirror.c */
static int cmd_mirror(struct ctx *c)
{
	struct vlunctl_mirror_env e = {
		.ctx = c, .group = c->cmd->group, .verb = c->cmd->verb, .args = c->args, .nargs = c->nargs,
		.o = &c->a->mirror, .pool = &c->pool, .desc = &c->desc, .remote = &c->remote,
		.pool_label = c->pool_label, .paths = &c->paths, .npaths = &c->npaths,
	};

	c->a->mirror.members = c->a->members;
	c->a->mirror.json = c->a->seen & OPT_JSON;
	return vlunctl_mirror_run(&e);
}

/* snapshot create|list|delete|rollback|reserve: in vlunctl_snap.c */
static int cmd_snapshot(struct ctx *c)
{
	struct vlunctl_snap_env e = {
		.ctx = c, .verb = c->cmd->verb, .args = c->args, .nargs = c->nargs, .o = &c->a->snap,
		.pool = &c->pool, .desc = &c->desc, .remote = &c->remote, .pool_label = c->pool_label,
		.paths = &c->paths, .npaths = &c->npaths,
	};

	c->a->snap.chunk = c->a->chunk;
	c->a->snap.size = c->a->size;
	c->a->snap.json = c->a->seen & OPT_JSON;
	return vlunctl_snap_run(&e);
}

/* pool check / pool repair: in vlunctl_check.c */
static int cmd_check(struct ctx *c)
{
	bool repair = !strcmp(c->cmd->verb, "repair");
	int r = expand_spec(c, repair ? "cannot repair the pool" : "cannot check the pool");

	if (r)
		return r;
	return vlunctl_check(c->paths, c->npaths, repair, c->a->seen & OPT_FORCE, c->a->seen & OPT_JSON);
}

/* pool nodes / takeover / pr-mode: in vlunctl_pr.c */
static int cmd_pr(struct ctx *c)
{
	struct vlunctl_pr_opts o = { .node_id = c->a->node_id, .json = c->a->seen & OPT_JSON };
	int r = expand_spec(c, "cannot reach the pool");

	if (r)
		return r;
	return vlunctl_pr_run(c->cmd->verb, c->paths, c->npaths, c->args, c->nargs, &o);
}

static const struct command commands[] = {
	{ "pool", "nodes", "<pool-spec> [--json]",
	  "gateway nodes (HA owner, standby, fenced), PR mode, keys and reservation on each member",
	  OPT_JSON | OPT_POOL | OPT_NODE_ID, true, 0, 0, false, cmd_pr },
	{ "pool", "takeover", "<pool-spec> [--node-id ID]",
	  "become the owner: preempt the owner's key on every member, reload, bump the map epoch",
	  OPT_POOL | OPT_NODE_ID, true, 0, 0, false, cmd_pr },
	{ "pool", "pr-mode", "<pool-spec> shared|exclusive|none [--node-id ID]",
	  "how members are opened with persistent reservations (from the next open)",
	  OPT_POOL | OPT_NODE_ID, true, 1, 1, false, cmd_pr },
	{ "pool", "check", "<pool-spec> [--json]",
	  "every metadata copy on every member: valid or why not, seq, newest (exit 1 on problems)",
	  OPT_JSON | OPT_POOL, true, 0, 0, false, cmd_check },
	{ "pool", "repair", "<pool-spec> [--force]",
	  "rewrite bad and stale metadata copies from the newest valid one (--force: members missing)",
	  OPT_FORCE | OPT_POOL, true, 0, 0, true, cmd_check },
	{ "pool", "create", "<name> <member>... [--meta-size SIZE] [--force]",
	  "label the members and write a new, empty pool", OPT_META_SIZE | OPT_FORCE | OPT_POOL,
	  false, 1, -1, true, cmd_pool_create },
	{ "pool", "show", "<pool-spec> [--json]",
	  "the pool: members, space, vdisks", OPT_JSON | OPT_POOL, true, 0, 0, false, cmd_pool_show },
	{ "pool", "add-member", "<pool-spec> <path> [--force]",
	  "label a new member and add its space to the pool", OPT_FORCE | OPT_POOL, true, 1, 1, true,
	  cmd_pool_add_member },
	{ "vdisk", "create",
	  "<pool-spec> <name> --size SIZE (--linear | --striped [--stripe-size SIZE] [--width N] | --thin [--chunk SIZE]) [--members IDX,...]",
	  "carve a virtual disk out of the pool",
	  OPT_POOL | OPT_SIZE | OPT_LINEAR | OPT_STRIPED | OPT_THIN | OPT_STRIPE_SIZE | OPT_WIDTH | OPT_CHUNK | OPT_MEMBERS,
	  true, 1, 1, true, cmd_vdisk_create },
	{ "vdisk", "list", "<pool-spec> [--json]", "the vdisks of the pool", OPT_JSON | OPT_POOL, true, 0, 0,
	  false, cmd_vdisk_list },
	{ "vdisk", "show", "<pool-spec> <name> [--json]", "a vdisk and its map, extent by extent",
	  OPT_JSON | OPT_POOL, true, 1, 1, false, cmd_vdisk_show },
	{ "vdisk", "resize", "<pool-spec> <name> --size SIZE [--force]",
	  "grow a vdisk (shrinking needs --force: data loss)", OPT_SIZE | OPT_FORCE | OPT_POOL, true, 1, 1,
	  true, cmd_vdisk_resize },
	{ "vdisk", "delete", "<pool-spec> <name> --force", "delete a vdisk and free its space (needs --force)",
	  OPT_FORCE | OPT_POOL, true, 1, 1, true, cmd_vdisk_delete },
	{ NULL, "stats", "<pool-spec> [--vdisk NAME] [--json | --prometheus] [--interval S [--count N]]",
	  "I/O statistics from the process holding the pool (members, open vdisks)",
	  OPT_POOL | OPT_JSON | OPT_VDISK | OPT_PROMETHEUS | OPT_INTERVAL | OPT_COUNT, true, 0, 0, false,
	  cmd_stats },
	{ "mirror", "add", "<pool-spec> <vdisk> [--range OFF:LEN] [--members IDX,...]",
	  "add a second copy of a vdisk (or a range) on other members; the resync fills it",
	  OPT_POOL | OPT_RANGE | OPT_MEMBERS, true, 1, 1, true, cmd_mirror },
	{ "mirror", "remove", "<pool-spec> <vdisk> [--range OFF:LEN] [--member IDX]",
	  "drop one copy of a mirrored vdisk or range (default: the second copies)",
	  OPT_POOL | OPT_RANGE | OPT_MEMBER, true, 1, 1, true, cmd_mirror },
	{ "mirror", "split", "<pool-spec> <vdisk> <new-name>",
	  "turn the second copies of an in-sync mirrored vdisk into a new vdisk", OPT_POOL, true, 2, 2, true,
	  cmd_mirror },
	{ NULL, "migrate",
	  "<pool-spec> [<vdisk>] [--range OFF:LEN] [--off-member IDX] [--to IDX,...] [--rate SIZE] [--wait]",
	  "move extents to other members while hosts write (persistent job)",
	  OPT_POOL | OPT_RANGE | OPT_OFF_MEMBER | OPT_TO | OPT_RATE | OPT_WAIT, true, 0, 1, true, cmd_mirror },
	{ NULL, "resync", "<pool-spec> [--rate SIZE] [--wait]",
	  "copy the regions where mirror copies are behind; probe failed members", OPT_POOL | OPT_RATE | OPT_WAIT,
	  true, 0, 0, true, cmd_mirror },
	{ NULL, "jobs", "<pool-spec> [--json] [--watch]", "migrations and resync with their progress",
	  OPT_POOL | OPT_JSON | OPT_WATCH, true, 0, 0, false, cmd_mirror },
	{ "job", "cancel", "<pool-spec> <id>", "cancel a migration (what it moved stays moved)", OPT_POOL, true,
	  1, 1, true, cmd_mirror },
	{ "member", "fault", "<pool-spec> <index> on|off",
	  "drills and tests only: make every I/O of the holder to a member fail (on) or stop that (off)",
	  OPT_POOL, true, 2, 2, true, cmd_mirror },
	{ "snapshot", "create",
	  "<pool-spec> <source> <name> [--reserve SIZE] [--chunk SIZE] [--on-full fail-snapshot|fail-write]",
	  "start a copy-on-first-write snapshot session of a vdisk (export: cfgstring <pool>/<source>@<name>)",
	  OPT_POOL | OPT_RESERVE | OPT_CHUNK | OPT_ON_FULL, true, 2, 2, true, cmd_snapshot },
	{ "snapshot", "list", "<pool-spec> [<source>] [--json]",
	  "snapshot sessions: state, created, saved/shared bytes, reserve used/total, policy, open",
	  OPT_POOL | OPT_JSON, true, 0, 1, true, cmd_snapshot },
	{ "snapshot", "delete", "<pool-spec> <source> <name>",
	  "end a session; chunks no other session needs go back to the reserve", OPT_POOL, true, 2, 2, true,
	  cmd_snapshot },
	{ "snapshot", "rollback", "<pool-spec> <source> <name>",
	  "restore the source from a session (neither may be exported meanwhile)", OPT_POOL, true, 2, 2, true,
	  cmd_snapshot },
	{ "snapshot", "reserve", "<pool-spec> <source> [--size SIZE] [--on-full fail-snapshot|fail-write]",
	  "show, grow or change the policy of a source's snapshot reserve", OPT_POOL | OPT_SIZE | OPT_ON_FULL,
	  true, 1, 1, true, cmd_snapshot },
	{ NULL, "version", "", "print the version", 0, false, 0, 0, false, cmd_version },
	{ NULL, "help", "[<command>]", "this text, or one command's synopsis", 0, false, 0, 2, false, cmd_help },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char usage_head[] =
"NAME\n"
"    vlunctl - manage vlun pools and virtual disks\n"
"\n"
"SYNOPSIS\n"
"    vlunctl [-v] <command> [arguments] [options]\n"
"\n"
"DESCRIPTION\n"
"    A pool is a set of physical LUNs (members: regular files or block\n"
"    devices such as /dev/mapper multipath maps). Each member carries a\n"
"    label and a copy of the pool's metadata, so a pool is found from its\n"
"    members alone. Virtual disks (vdisks) are carved out of a pool through\n"
"    a map of extents and exported by tcmu-runner's handler as a\n"
"    user:vlun backstore (cfgstring=<pool-spec>/<vdisk>).\n"
"\n"
"COMMANDS\n";

static const char usage_tail[] =
"\n"
"POOL SPEC\n"
"    <pool-spec> names the members of a pool, exactly as in the backstore's\n"
"    cfgstring: a directory (every file or device in it), a glob\n"
"    ('/dev/mapper/lun*', quoted), or a comma-separated list of member\n"
"    paths. Unrelated files among them are ignored. Instead of the first\n"
"    argument it may be given as -p/--pool SPEC (anywhere on the line).\n"
"\n"
"OPTIONS\n"
"    -p, --pool SPEC      the pool (instead of the <pool-spec> argument);\n"
"                         for pool create: the members, instead of listing them\n"
"    -s, --size SIZE      size of the vdisk (create) or its new size (resize)\n"
"    --linear             layout: members' space concatenated\n"
"    --striped            layout: round robin over members, --stripe-size each\n"
"      --stripe-size SIZE stripe unit (default 64K)\n"
"      --width N          number of members to stripe over (default: all)\n"
"    --thin               layout: space allocated on first write, in chunks\n"
"      --chunk SIZE       allocation unit (default 1M)\n"
"    --members IDX,...    place the vdisk on these member indexes only\n"
"    --meta-size SIZE     metadata area per member (pool create; default 64M)\n"
"    --pool-name NAME     when the members hold several pools: the one to use\n"
"                         (its name or UUID)\n"
"    -f, --force          allow what destroys data: pool create or add-member\n"
"                         over a vlun label, vdisk delete, shrinking resize\n"
"    --json               machine-readable output (read commands)\n"
"    --prometheus         stats: Prometheus text exposition format\n"
"    --vdisk NAME         stats: only this vdisk\n"
"    --interval S         stats: rates over S seconds (repeated; --count N times)\n"
"    --reserve SIZE       snapshot create: the source's snapshot reserve (default\n"
"                         20% of the source; only grows)\n"
"    --on-full POLICY     snapshot create/reserve: when the reserve is full,\n"
"                         fail-snapshot (default: the sessions fail, the source\n"
"                         goes on) or fail-write (source writes fail, 07/27/07)\n"
"    -v, --verbose        show the library's log (-vv: debug)\n"
"    -h, --help           help; after a command: that command's synopsis\n"
"    --version            print the version\n"
"\n"
"SIZES\n"
"    Bytes with an optional binary unit, case-insensitive: 4096, 512K, 64KiB,\n"
"    10G, 1.5T, 1P; or 512-byte sectors: 2048s. Vdisk sizes, stripe sizes and\n"
"    chunks are whole sectors.\n"
"\n"
"ONLINE CHANGES\n"
"    Read commands (pool show, vdisk list, vdisk show) work while\n"
"    tcmu-runner runs the pool: they read the newest committed metadata.\n"
"    While a running handler holds the pool, vdisk create, vdisk resize,\n"
"    vdisk delete and pool add-member are sent to it and it makes the\n"
"    change itself; it refuses (exit 4) to delete or shrink a vdisk it has\n"
"    open. Other changes (pool create over its members) are refused (exit\n"
"    4), and so is everything when the holder has no control channel\n"
"    (older vlun, other host): stop the backstore with targetcli first.\n"
"\n"
"JSON\n"
"    Field names are stable; sizes are integers in bytes (*_bytes) or\n"
"    512-byte sectors (*_sector, *_sectors, vsector, psector). See\n"
"    docs/vlunctl.md for every field.\n"
"\n"
"EXIT STATUS\n"
"    0  success\n"
"    1  failure (I/O error, damaged metadata, ...)\n"
"    2  usage error (syntax, bad size, bad name, bad option)\n"
"    3  not found (pool, member or vdisk)\n"
"    4  in use: the pool is held by a running handler, or it has the vdisk open\n"
"    5  no space left in the pool\n"
"    6  refused: it would destroy data; re-run with --force\n"
"    7  already exists (name taken, member already in the pool)\n"
"\n"
"EXAMPLES\n"
"    vlunctl pool create p0 /dev/mapper/lunA /dev/mapper/lunB\n"
"    vlunctl vdisk create '/dev/mapper/lun*' thin0 --size 100G --thin\n"
"    vlunctl vdisk create -p /srv/vlun/p0 st0 --size 10G --striped --stripe-size 128K\n"
"    vlunctl vdisk show /srv/vlun/p0 thin0 --json\n"
"    vlunctl vdisk resize /srv/vlun/p0 thin0 --size 200G\n"
"    vlunctl vdisk delete /srv/vlun/p0 thin0 --force\n";

static void print_command_line(FILE *f, const struct command *cmd)
{
	fprintf(f, "    vlunctl %s%s%s %s\n", cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->verb,
		cmd->synopsis);
}

static void print_usage(FILE *f)
{
	char list[16384];
	size_t off = 0;

	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *cmd = &commands[i];

		off += snprintf(list + off, off < sizeof(list) ? sizeof(list) - off : 0,
				"    %s%s%s%s%s\n        %s\n", cmd->group ? cmd->group : "", cmd->group ? " " : "",
				cmd->verb, cmd->synopsis[0] ? " " : "", cmd->synopsis, cmd->summary);
	}
	fputs(usage_head, f);
	fputs(list, f);
	fputs(usage_tail, f);
}

static void print_command_help(FILE *f, const struct command *cmd)
{
	fprintf(f, "Usage:\n");
	print_command_line(f, cmd);
	fprintf(f, "\n    %s\n", cmd->summary);
	if (cmd->pool_spec)
		fprintf(f, "\n    <pool-spec>: a directory, a glob or a comma list of member paths (or -p SPEC).\n");
	fprintf(f, "    'vlunctl help' has the options, sizes and exit codes.\n");
}

static const struct command *find_command(const char *group, const char *verb)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *cmd = &commands[i];

		if (!cmd->group && group && strcmp(cmd->verb, group) == 0)
			return cmd;
		if (cmd->group && group && verb && strcmp(cmd->group, group) == 0 && strcmp(cmd->verb, verb) == 0)
			return cmd;
	}
	return NULL;
}

static int cmd_help(struct ctx *c)
{
	const struct command *cmd;

	if (c->nargs == 0) {
		print_usage(stdout);
		return 0;
	}
	cmd = find_command(c->args[0], c->nargs > 1 ? c->args[1] : NULL);
	if (!cmd || (cmd->group && c->nargs < 2))
		return fail(EXIT_USAGE, "no such command", "Run 'vlunctl help' for the list", "help '%s%s%s'",
			    c->args[0], c->nargs > 1 ? " " : "", c->nargs > 1 ? c->args[1] : "");
	print_command_help(stdout, cmd);
	return 0;
}

/* ------------------------------------------------------------ main */

static int parse_args(int argc, char **argv, struct args *a)
{
	int opt;

	opterr = 0;
	/* GNU permutation: options may come anywhere on the line. */
	while ((opt = getopt_long(argc, argv, ":fp:s:hv", long_options, NULL)) != -1) {
		switch (opt) {
		case LO_JSON: a->seen |= OPT_JSON; break;
		case 'f': a->seen |= OPT_FORCE; break;
		case 'p': a->seen |= OPT_POOL; a->pool = optarg; break;
		case LO_META_SIZE: a->seen |= OPT_META_SIZE; a->meta_size = optarg; break;
		case 's': a->seen |= OPT_SIZE; a->size = optarg; break;
		case LO_LINEAR: a->seen |= OPT_LINEAR; break;
		case LO_STRIPED: a->seen |= OPT_STRIPED; break;
		case LO_THIN: a->seen |= OPT_THIN; break;
		case LO_STRIPE_SIZE: a->seen |= OPT_STRIPE_SIZE; a->stripe_size = optarg; break;
		case LO_WIDTH: a->seen |= OPT_WIDTH; a->width = optarg; break;
		case LO_CHUNK: a->seen |= OPT_CHUNK; a->chunk = optarg; break;
		case LO_MEMBERS: a->seen |= OPT_MEMBERS; a->members = optarg; break;
		case 'h': a->seen |= OPT_HELP; break;
		case 'v': a->seen |= OPT_VERBOSE; a->verbose++; break;
		case LO_VERSION: a->seen |= OPT_VERSION; break;
		case LO_POOL_NAME: a->seen |= OPT_POOL_NAME; a->pool_name = optarg; break;
		case LO_VDISK: a->seen |= OPT_VDISK; a->stats.vdisk = optarg; break;
		case LO_PROMETHEUS: a->seen |= OPT_PROMETHEUS; a->stats.prometheus = true; break;
		case LO_INTERVAL: a->seen |= OPT_INTERVAL; a->stats.interval = optarg; break;
		case LO_COUNT: a->seen |= OPT_COUNT; a->stats.count = optarg; break;
		case LO_RANGE: a->seen |= OPT_RANGE; a->mirror.range = optarg; break;
		case LO_MEMBER: a->seen |= OPT_MEMBER; a->mirror.member = optarg; break;
		case LO_OFF_MEMBER: a->seen |= OPT_OFF_MEMBER; a->mirror.off_member = optarg; break;
		case LO_TO: a->seen |= OPT_TO; a->mirror.to = optarg; break;
		case LO_RATE: a->seen |= OPT_RATE; a->mirror.rate = optarg; break;
		case LO_WAIT: a->seen |= OPT_WAIT; a->mirror.wait = true; break;
		case LO_WATCH: a->seen |= OPT_WATCH; a->mirror.watch = true; break;
		case LO_RESERVE: a->seen |= OPT_RESERVE; a->snap.reserve = optarg; break;
		case LO_ON_FULL: a->seen |= OPT_ON_FULL; a->snap.on_full = optarg; break;
		case LO_NODE_ID: a->seen |= OPT_NODE_ID; a->node_id = optarg; break;
		case ':':
			return fail(EXIT_USAGE, "it needs a value", "See 'vlunctl help'", "option '%s'",
				    argv[optind - 1]);
		default:
			return fail(EXIT_USAGE, "unknown option", "See 'vlunctl help' for the options",
				    "option '%s'", argv[optind - 1]);
		}
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct ctx c = { 0 };
	const struct command *cmd;
	unsigned extra;
	int r, first;

	r = parse_args(argc, argv, &a);
	if (r)
		return r;
	verbosity = a.verbose;
	vlun_set_log(lib_log, a.verbose >= 2 ? VLUN_LOG_DEBUG : a.verbose == 1 ? VLUN_LOG_INFO : VLUN_LOG_WARN,
		     NULL);

	if (a.npos == 0) {
		if (a.seen & OPT_VERSION)
			return cmd_version(&c);
		if (a.seen & OPT_HELP) {
			print_usage(stdout);
			return 0;
		}
		print_usage(stderr);
		return EXIT_USAGE;
	}

	cmd = find_command(a.pos[0], a.npos > 1 ? a.pos[1] : NULL);
	if (!cmd) {
		bool group = strcmp(a.pos[0], "pool") == 0 || strcmp(a.pos[0], "vdisk") == 0 ||
			     strcmp(a.pos[0], "mirror") == 0 || strcmp(a.pos[0], "job") == 0 ||
			     strcmp(a.pos[0], "member") == 0 || strcmp(a.pos[0], "snapshot") == 0;

		if (group && a.seen & OPT_HELP) {
			print_usage(stdout);
			return 0;
		}
		if (group)
			return fail(EXIT_USAGE, a.npos > 1 ? "unknown command" : "missing command",
				    "Run 'vlunctl help' for the list of commands", "%s %s", a.pos[0],
				    a.npos > 1 ? a.pos[1] : "");
		return fail(EXIT_USAGE, "unknown command", "Run 'vlunctl help' for the list of commands", "'%s'",
			    a.pos[0]);
	}
	if (a.seen & OPT_HELP) {
		print_command_help(stdout, cmd);
		return 0;
	}
	first = cmd->group ? 2 : 1;
	c.cmd = cmd;
	c.a = &a;
	c.args = a.pos + first;
	c.nargs = a.npos - first;

	extra = a.seen & ~(cmd->opts | OPT_GLOBAL | (cmd->pool_spec ? OPT_POOL_NAME : 0));
	if (extra) {
		unsigned bit = extra & -extra;

		return fail(EXIT_USAGE, "not an option of this command", "See 'vlunctl help'",
			    "%s %s: %s", cmd->group ? cmd->group : "", cmd->verb, option_name(bit));
	}

	if (cmd->pool_spec) {
		if (a.pool) {
			c.spec = a.pool;
		} else if (c.nargs > 0) {
			c.spec = c.args[0];
			c.args++;
			c.nargs--;
		} else {
			return fail(EXIT_USAGE, "no pool given",
				    "Give <pool-spec> (a directory, glob or comma list of members) or -p SPEC",
				    "%s%s%s", cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->verb);
		}
		if (!*c.spec)
			return fail(EXIT_USAGE, "empty pool spec", "Give the pool's members", "%s%s%s",
				    cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->verb);
	}
	if (c.nargs < cmd->min_args || (cmd->max_args >= 0 && c.nargs > cmd->max_args)) {
		fprintf(stderr, "vlunctl: %s%s%s: %s arguments. Usage: vlunctl %s%s%s %s\n",
			cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->verb,
			c.nargs < cmd->min_args ? "missing" : "too many", cmd->group ? cmd->group : "",
			cmd->group ? " " : "", cmd->verb, cmd->synopsis);
		return EXIT_USAGE;
	}

	r = cmd->run(&c);

	vlun_pool_desc_free(c.desc);
	vlun_pool_close(c.pool);
	vlun_strv_free(c.paths, c.npaths);
	if (r == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		r = fail(EXIT_FAIL, strerror(errno), NULL, "writing output");
	return r;
}
