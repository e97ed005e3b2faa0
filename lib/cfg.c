/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cfg.c — the backstore's cfgstring and pool specs.
 *
 * Grammar (see vlun.h for the user-facing description):
 *
 *   cfgstring := [ "vlun/" ] main { ";" option }
 *   main      := pool "/" disk      the LAST '/' separates the name
 *              | pool "|" disk      for globs whose pattern has '/' after it
 *              | disk               only together with members=
 *   disk      := vdisk [ "@" snapshot ]
 *   option    := "ro" | "rw" | "wce=0" | "wce=1" | "members=" path { "," path }
 *
 * "<source>@<snapshot>" exports a snapshot session of the vdisk <source>
 * (both names [A-Za-z0-9._-], 1..63 characters, one '@'). A snapshot is
 * exported read-only unless "rw" is given (then vlun_cfg.read_only is
 * false and the handler opens it with VLUN_VDISK_OPEN_WRITABLE); "rw"
 * without '@' and "rw" together with "ro" are refused. vlun_cfg.vdisk
 * keeps the whole "<source>@<snapshot>", the name vlun_vdisk_open() takes.
 *
 * tcmu-runner hands the string over with its "vlun/" subtype prefix; as
 * pool specs are absolute paths, a leading "vlun/" is never part of one,
 * so it is dropped when present. ';' and '|' cannot occur in paths here.
 * Each option may be given once; empty options are errors.
 *
 * Pool spec: a comma list of items; each item is an absolute path that is a
 * glob (has * ? or [), a directory (its regular files and block devices,
 * not descending, skipping names starting with '.'), or one member path
 * (a regular file or block device). The result is sorted and deduplicated.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define CFG_MAX_PATHS 4096 /* a pool spec expanding to more is refused */

VLUN_EXPORT void vlun_cfg_clear(struct vlun_cfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->pool_spec);
	free(cfg->vdisk);
	cfg->pool_spec = NULL;
	cfg->vdisk = NULL;
}

VLUN_EXPORT void vlun_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Checks a pool spec's shape (not the filesystem): comma list of absolute
 * paths, no empty items. */
static int check_pool_spec(const char *whole, const char *spec, const char *what, char **ret_reason)
{
	const char *p = spec;

	if (*spec == '\0') {
		vlun_set_reason(ret_reason, "cfgstring '%s': %s is empty", whole, what);
		return -EINVAL;
	}
	if (strchr(spec, '|')) {
		vlun_set_reason(ret_reason, "cfgstring '%s': %s '%s' contains '|', which cannot appear in a path "
				"(it separates a glob from the vdisk name)", whole, what, spec);
		return -EINVAL;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == 0) {
			vlun_set_reason(ret_reason, "cfgstring '%s': %s '%s' has an empty item", whole,
					what, spec);
			return -EINVAL;
		}
		if (*p != '/') {
			vlun_set_reason(ret_reason,
					"cfgstring '%s': %s item '%.*s' is not an absolute path", whole,
					what, (int)len, p);
			return -EINVAL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

/* "<source>@<snapshot>": both parts valid names, one '@'. */
static int check_snapshot_name(const char *whole, const char *name, char **ret_reason)
{
	const char *at = strchr(name, '@');
	char source[VLUN_NAME_MAX + 2];
	size_t sl = (size_t)(at - name);

	if (strchr(at + 1, '@')) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': '%s' has more than one '@' (expected <vdisk>@<snapshot>)", whole,
				name);
		return -EINVAL;
	}
	if (sl == 0) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': the source vdisk name before '@' is missing (expected <vdisk>@<snapshot>)",
				whole);
		return -EINVAL;
	}
	if (sl > VLUN_NAME_MAX) {
		vlun_set_reason(ret_reason, "cfgstring '%s': source vdisk name '%.*s' is longer than %d characters",
				whole, (int)sl, name, VLUN_NAME_MAX);
		return -EINVAL;
	}
	memcpy(source, name, sl);
	source[sl] = '\0';
	if (!vlun_name_valid(source)) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': source vdisk name '%s' has invalid characters (allowed: A-Z a-z 0-9 . _ -)",
				whole, source);
		return -EINVAL;
	}
	if (at[1] == '\0') {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': snapshot name after '@' is missing (expected %s@<snapshot>; 'vlunctl snapshot list' shows them)",
				whole, source);
		return -EINVAL;
	}
	if (strlen(at + 1) > VLUN_NAME_MAX) {
		vlun_set_reason(ret_reason, "cfgstring '%s': snapshot name '%s' is longer than %d characters", whole,
				at + 1, VLUN_NAME_MAX);
		return -EINVAL;
	}
	if (!vlun_name_valid(at + 1)) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': snapshot name '%s' has invalid characters (allowed: A-Z a-z 0-9 . _ -)",
				whole, at + 1);
		return -EINVAL;
	}
	return 0;
}

static int check_vdisk_name(const char *whole, const char *name, char **ret_reason)
{
	if (strchr(name, '@'))
		return check_snapshot_name(whole, name, ret_reason);
	if (*name == '\0') {
		vlun_set_reason(ret_reason, "cfgstring '%s': vdisk name is missing (expected <pool>/<vdisk>)",
				whole);
		return -EINVAL;
	}
	if (strlen(name) > VLUN_NAME_MAX) {
		vlun_set_reason(ret_reason, "cfgstring '%s': vdisk name '%s' is longer than %d characters",
				whole, name, VLUN_NAME_MAX);
		return -EINVAL;
	}
	if (!vlun_name_valid(name)) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': vdisk name '%s' has invalid characters (allowed: A-Z a-z 0-9 . _ -)",
				whole, name);
		return -EINVAL;
	}
	return 0;
}

VLUN_EXPORT int vlun_cfg_parse(const char *cfgstring, struct vlun_cfg *ret, char **ret_reason)
{
	struct vlun_cfg c = { .wce = true };
	char *buf = NULL, *opts, *sep, *pool = NULL, *name, *members = NULL;
	bool seen_ro = false, seen_wce = false, seen_rw = false;
	int r;

	if (!cfgstring || !ret) {
		vlun_set_reason(ret_reason, "cfgstring is missing");
		return -EINVAL;
	}
	buf = strdup(strncmp(cfgstring, "vlun/", 5) == 0 ? cfgstring + 5 : cfgstring);
	if (!buf)
		return -ENOMEM;

	if (*buf == '\0') {
		vlun_set_reason(ret_reason, "cfgstring '%s' is empty (expected <pool>/<vdisk>[;options])",
				cfgstring);
		r = -EINVAL;
		goto fail;
	}

	opts = strchr(buf, ';');
	if (opts)
		*opts++ = '\0';

	/* options */
	while (opts) {
		char *opt = opts;

		opts = strchr(opts, ';');
		if (opts)
			*opts++ = '\0';
		if (*opt == '\0') {
			vlun_set_reason(ret_reason, "cfgstring '%s': empty option (stray ';')", cfgstring);
			r = -EINVAL;
			goto fail;
		}
		if (strcmp(opt, "ro") == 0) {
			if (seen_ro)
				goto dup;
			seen_ro = true;
			c.read_only = true;
		} else if (strcmp(opt, "rw") == 0) {
			if (seen_rw)
				goto dup;
			seen_rw = true;
		} else if (strncmp(opt, "wce=", 4) == 0) {
			if (seen_wce)
				goto dup;
			seen_wce = true;
			if (strcmp(opt + 4, "0") == 0)
				c.wce = false;
			else if (strcmp(opt + 4, "1") == 0)
				c.wce = true;
			else {
				vlun_set_reason(ret_reason, "cfgstring '%s': option '%s': wce must be 0 or 1",
						cfgstring, opt);
				r = -EINVAL;
				goto fail;
			}
		} else if (strncmp(opt, "members=", 8) == 0) {
			if (members)
				goto dup;
			members = opt + 8;
			r = check_pool_spec(cfgstring, members, "members=", ret_reason);
			if (r < 0)
				goto fail;
		} else {
			vlun_set_reason(ret_reason,
					"cfgstring '%s': unknown option '%s' (known: ro, rw, wce=0|1, members=)",
					cfgstring, opt);
			r = -EINVAL;
			goto fail;
		}
		continue;
dup:
		vlun_set_reason(ret_reason, "cfgstring '%s': option '%s' given twice", cfgstring, opt);
		r = -EINVAL;
		goto fail;
	}

	/* main part */
	sep = strchr(buf, '|');
	if (sep) {
		if (strchr(sep + 1, '|')) {
			vlun_set_reason(ret_reason, "cfgstring '%s': more than one '|'", cfgstring);
			r = -EINVAL;
			goto fail;
		}
	} else
		sep = strrchr(buf, '/');
	if (sep) {
		*sep = '\0';
		pool = buf;
		name = sep + 1;
	} else
		name = buf;

	r = check_vdisk_name(cfgstring, name, ret_reason);
	if (r < 0)
		goto fail;
	if (seen_rw && seen_ro) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': options 'ro' and 'rw' contradict each other (give one of them)",
				cfgstring);
		r = -EINVAL;
		goto fail;
	}
	if (seen_rw && !strchr(name, '@')) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': option 'rw' applies to snapshots only (<vdisk>@<snapshot>); a vdisk is writable unless 'ro' is given",
				cfgstring);
		r = -EINVAL;
		goto fail;
	}
	/* a snapshot is exported read-only unless rw */
	if (strchr(name, '@') && !seen_rw)
		c.read_only = true;

	if (pool && members) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': give the members either as the pool part or with members=, not both",
				cfgstring);
		r = -EINVAL;
		goto fail;
	}
	if (!pool && !members) {
		vlun_set_reason(ret_reason,
				"cfgstring '%s': no pool given (expected <pool>/<vdisk>, e.g. /var/lib/vlun/pool0/disk0)",
				cfgstring);
		r = -EINVAL;
		goto fail;
	}
	if (pool) {
		r = check_pool_spec(cfgstring, pool, "pool", ret_reason);
		if (r < 0)
			goto fail;
	}

	c.pool_spec = strdup(pool ? pool : members);
	c.vdisk = strdup(name);
	if (!c.pool_spec || !c.vdisk) {
		vlun_cfg_clear(&c);
		r = -ENOMEM;
		goto fail;
	}
	free(buf);
	*ret = c;
	return 0;
fail:
	free(buf);
	return r;
}

/* ------------------------------------------------------ pool spec expand */

struct strv {
	char **v;
	size_t n, cap;
};

static int strv_add(struct strv *s, const char *path)
{
	char *d;

	if (s->n >= CFG_MAX_PATHS)
		return -E2BIG;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	d = strdup(path);
	if (!d)
		return -ENOMEM;
	s->v[s->n++] = d;
	return 0;
}

static bool is_member_kind(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return false;
	return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int expand_dir(const char *spec, const char *dir, struct strv *out, char **ret_reason)
{
	struct dirent **ents = NULL;
	int n, r = 0;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		r = -errno;
		vlun_set_reason(ret_reason, "pool spec '%s': cannot read directory '%s': %s", spec, dir,
				strerror(-r));
		return r;
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;

		if (r == 0 && ents[i]->d_name[0] != '.') {
			size_t dl = strlen(dir);
			bool slash = dl > 0 && dir[dl - 1] == '/';

			if (asprintf(&path, "%s%s%s", dir, slash ? "" : "/", ents[i]->d_name) < 0)
				r = -ENOMEM;
			else if (is_member_kind(path))
				r = strv_add(out, path);
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	if (r == -E2BIG)
		vlun_set_reason(ret_reason, "pool spec '%s': more than %d paths", spec, CFG_MAX_PATHS);
	return r;
}

static int expand_glob(const char *spec, const char *pattern, struct strv *out, char **ret_reason)
{
	glob_t g;
	int r = 0, gr;

	gr = glob(pattern, 0, NULL, &g);
	if (gr == GLOB_NOMATCH)
		return 0;
	if (gr != 0) {
		vlun_set_reason(ret_reason, "pool spec '%s': glob '%s' failed (%s)", spec, pattern,
				gr == GLOB_NOSPACE ? "out of memory" : "read error");
		return gr == GLOB_NOSPACE ? -ENOMEM : -EIO;
	}
	for (size_t i = 0; i < g.gl_pathc && r == 0; i++)
		if (is_member_kind(g.gl_pathv[i]))
			r = strv_add(out, g.gl_pathv[i]);
	globfree(&g);
	if (r == -E2BIG)
		vlun_set_reason(ret_reason, "pool spec '%s': more than %d paths", spec, CFG_MAX_PATHS);
	return r;
}

static int expand_item(const char *spec, const char *item, struct strv *out, char **ret_reason)
{
	struct stat st;
	int r;

	if (item[0] != '/') {
		vlun_set_reason(ret_reason, "pool spec '%s': path '%s' is not absolute", spec, item);
		return -EINVAL;
	}
	if (strpbrk(item, "*?["))
		return expand_glob(spec, item, out, ret_reason);
	if (stat(item, &st) < 0) {
		r = -errno;
		vlun_set_reason(ret_reason, "pool spec '%s': '%s': %s", spec, item, strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode))
		return expand_dir(spec, item, out, ret_reason);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		vlun_set_reason(ret_reason,
				"pool spec '%s': '%s' is neither a regular file, a block device nor a directory",
				spec, item);
		return -EINVAL;
	}
	r = strv_add(out, item);
	if (r == -E2BIG)
		vlun_set_reason(ret_reason, "pool spec '%s': more than %d paths", spec, CFG_MAX_PATHS);
	return r;
}

VLUN_EXPORT int vlun_pool_spec_expand(const char *spec, char ***ret_paths, size_t *ret_n,
				      char **ret_reason)
{
	struct strv out = { 0 };
	char *buf, *item, *next;
	size_t w;
	int r = 0;

	if (!spec || !ret_paths || !ret_n) {
		vlun_set_reason(ret_reason, "pool spec is missing");
		return -EINVAL;
	}
	if (*spec == '\0') {
		vlun_set_reason(ret_reason, "pool spec is empty");
		return -EINVAL;
	}
	buf = strdup(spec);
	if (!buf)
		return -ENOMEM;
	for (item = buf; item && r == 0; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (*item == '\0') {
			vlun_set_reason(ret_reason, "pool spec '%s' has an empty item", spec);
			r = -EINVAL;
		} else
			r = expand_item(spec, item, &out, ret_reason);
	}
	free(buf);
	if (r < 0)
		goto fail;
	if (out.n == 0) {
		vlun_set_reason(ret_reason,
				"pool spec '%s': no regular files or block devices found (expected a directory, a glob or a comma list of member paths)",
				spec);
		r = -ENOENT;
		goto fail;
	}
	qsort(out.v, out.n, sizeof(*out.v), cmp_str);
	w = 1;
	for (size_t i = 1; i < out.n; i++) {
		if (strcmp(out.v[i], out.v[w - 1]) == 0)
			free(out.v[i]);
		else
			out.v[w++] = out.v[i];
	}
	out.n = w;
	*ret_paths = out.v;
	*ret_n = out.n;
	return 0;
fail:
	vlun_strv_free(out.v, out.n);
	return r;
}
