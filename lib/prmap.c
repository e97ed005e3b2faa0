/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prmap.c — open modes → SCSI-3 persistent reservations on every path of a
 * device. The table, the keys and the threading rules are in prmap.h.
 *
 * Layers, bottom up: the pure parts (plan/decide, keys, parameter-data
 * decoders, sysfs path discovery), the default transport (SG_IO through
 * libsgutils2 per path, the block PR ioctls on a dm-multipath map), and
 * the handle, which only ever talks to a struct prmap_transport.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/pr.h>
#include <scsi/sg_cmds_basic.h>
#include <scsi/sg_cmds_extra.h>
#include <scsi/sg_lib.h>

#include "internal.h"
#include "prmap.h"

#define PRMAP_UA_TRIES 4
#define PRMAP_IN_LEN 8192

/* ------------------------------------------------------------ names */

static const struct {
	enum prmap_type type;
	const char *name, *shrt;
} type_names[] = {
	{ PRMAP_TYPE_NONE, "none", "none" },
	{ PRMAP_TYPE_WE, "Write Exclusive", "we" },
	{ PRMAP_TYPE_EA, "Exclusive Access", "ea" },
	{ PRMAP_TYPE_WE_RO, "Write Exclusive - Registrants Only", "we-ro" },
	{ PRMAP_TYPE_EA_RO, "Exclusive Access - Registrants Only", "ea-ro" },
	{ PRMAP_TYPE_WE_AR, "Write Exclusive - All Registrants", "we-ar" },
	{ PRMAP_TYPE_EA_AR, "Exclusive Access - All Registrants", "ea-ar" },
};

static bool type_valid(enum prmap_type t)
{
	for (size_t i = 1; i < VLUN_ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == t)
			return true;
	return false;
}

static bool type_all_reg(enum prmap_type t)
{
	return t == PRMAP_TYPE_WE_AR || t == PRMAP_TYPE_EA_AR;
}

const char *prmap_type_name(enum prmap_type type)
{
	for (size_t i = 0; i < VLUN_ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return "unknown type";
}

const char *prmap_type_short(enum prmap_type type)
{
	for (size_t i = 0; i < VLUN_ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].shrt;
	return "unknown";
}

int prmap_parse_type(const char *s, enum prmap_type *ret)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 1; i < VLUN_ARRAY_SIZE(type_names); i++)
		if (strcmp(s, type_names[i].shrt) == 0) {
			*ret = type_names[i].type;
			return 0;
		}
	return -EINVAL;
}

static const char *const mode_names[] = {
	[PRMAP_EXCLUSIVE] = "exclusive",
	[PRMAP_SHARED] = "shared",
	[PRMAP_READONLY] = "readonly",
	[PRMAP_NONE] = "none",
};

const char *prmap_mode_name(enum prmap_mode mode)
{
	if ((unsigned)mode < VLUN_ARRAY_SIZE(mode_names))
		return mode_names[mode];
	return "unknown mode";
}

int prmap_parse_mode(const char *s, enum prmap_mode *ret)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < PRMAP_NONE; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*ret = (enum prmap_mode)i;
			return 0;
		}
	return -EINVAL;
}

/* ------------------------------------------------------------ the table */

int prmap_plan(enum prmap_mode mode, bool access, enum prmap_type type, struct prmap_plan *ret)
{
	struct prmap_plan p = { 0 };

	if (type != PRMAP_TYPE_NONE && !type_valid(type))
		return -EINVAL;
	switch (mode) {
	case PRMAP_EXCLUSIVE:
		p.register_paths = true;
		p.reserve_type = access ? PRMAP_TYPE_EA_RO : PRMAP_TYPE_WE_RO;
		break;
	case PRMAP_SHARED:
		p.register_paths = true;
		p.reserve_type = access ? PRMAP_TYPE_EA_AR : PRMAP_TYPE_WE_AR;
		break;
	case PRMAP_READONLY:
		if (type != PRMAP_TYPE_NONE)
			return -EINVAL;
		p.register_paths = true;
		p.reserve_type = PRMAP_TYPE_NONE;
		break;
	case PRMAP_NONE:
		if (type != PRMAP_TYPE_NONE)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (type != PRMAP_TYPE_NONE)
		p.reserve_type = type;
	*ret = p;
	return 0;
}

enum prmap_action prmap_decide(const struct prmap_plan *plan, uint64_t key, const struct prmap_resv *resv)
{
	if (!resv->present)
		return plan->reserve_type != PRMAP_TYPE_NONE ? PRMAP_ACT_RESERVE : PRMAP_ACT_NOTHING;
	if (plan->reserve_type == PRMAP_TYPE_NONE) {
		/* read-only / no PR: only Exclusive Access keeps a registrant
		 * (that is not the holder) from reading */
		if (resv->type == PRMAP_TYPE_EA && resv->key != key)
			return PRMAP_ACT_CONFLICT;
		return PRMAP_ACT_NOTHING;
	}
	if (type_all_reg(plan->reserve_type))
		return type_all_reg(resv->type) ? PRMAP_ACT_JOIN : PRMAP_ACT_CONFLICT;
	if (resv->key == key && resv->type == plan->reserve_type)
		return PRMAP_ACT_NOTHING;
	return PRMAP_ACT_CONFLICT;
}

/* ------------------------------------------------------------ keys */

#define PRMAP_KEY_ZERO_SUBST UINT64_C(0x766c756e2d707221)   /* "vlun-pr!" */

int prmap_key_from_node_id(const char *node_id, uint64_t *ret_key)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	if (!node_id || !*node_id)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)node_id; *p; p++) {
		h ^= *p;
		h *= UINT64_C(0x100000001b3);
	}
	*ret_key = h ? h : PRMAP_KEY_ZERO_SUBST;
	return 0;
}

int prmap_parse_key(const char *s, uint64_t *ret_key)
{
	const char *p = s;
	char *end;
	unsigned long long v;

	if (!s)
		return -EINVAL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	if (!*p || strlen(p) > 16)
		return -EINVAL;
	for (const char *q = p; *q; q++)
		if (vlun_hexval(*q) < 0)
			return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 16);
	if (errno || *end || v == 0)
		return -EINVAL;
	*ret_key = v;
	return 0;
}

/* ------------------------------------------------------------ decoders */

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (56 - 8 * i);
}

int prmap_decode_keys(const uint8_t *buf, size_t len, struct prmap_keys *ret)
{
	uint32_t add;
	size_t avail, n;

	if (len < 8)
		return -EBADMSG;
	add = get_be32(buf + 4);
	if (add % 8)
		return -EBADMSG;
	ret->generation = get_be32(buf);
	n = add / 8;
	avail = (len - 8) / 8;
	ret->n = n;
	ret->n_stored = VLUN_MIN(VLUN_MIN(n, avail), VLUN_ARRAY_SIZE(ret->keys));
	for (size_t i = 0; i < ret->n_stored; i++)
		ret->keys[i] = get_be64(buf + 8 + 8 * i);
	return 0;
}

int prmap_decode_reservation(const uint8_t *buf, size_t len, uint32_t *ret_generation, struct prmap_resv *ret)
{
	struct prmap_resv r = { 0 };
	uint32_t add;

	if (len < 8)
		return -EBADMSG;
	add = get_be32(buf + 4);
	if (add != 0) {
		if (add < 16 || len < 8 + 16)
			return -EBADMSG;
		r.present = true;
		r.key = get_be64(buf + 8);
		r.type = (enum prmap_type)(buf[8 + 13] & 0x0f);
	}
	if (ret_generation)
		*ret_generation = get_be32(buf);
	*ret = r;
	return 0;
}

/* ------------------------------------------------------------ sysfs */

void prmap_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool path_exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool path_exists(const char *fmt, ...)
{
	char p[PATH_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return r > 0 && (size_t)r < sizeof(p) && access(p, F_OK) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool name_ok(const char *n)
{
	return n[0] && n[0] != '.' && !strchr(n, '/') && strlen(n) < 64;
}

int prmap_discover(const char *sysfs_root, const char *dev_root, const char *kname,
		   char ***ret_paths, size_t *ret_n, bool *ret_is_mpath)
{
	char p[PATH_MAX], uuid[160] = "";
	char **v = NULL;
	size_t n = 0, cap = 0;
	bool mpath = false;
	int r;

	if (!sysfs_root)
		sysfs_root = "/sys";
	if (!dev_root)
		dev_root = "/dev";
	if (!kname || !name_ok(kname))
		return -EINVAL;
	if (!path_exists("%s/block/%s", sysfs_root, kname))
		return path_exists("%s/class/block/%s/partition", sysfs_root, kname) ? -EINVAL : -ENOENT;

	if (path_exists("%s/block/%s/dm", sysfs_root, kname)) {
		FILE *f;
		DIR *d;
		struct dirent *de;

		snprintf(p, sizeof(p), "%s/block/%s/dm/uuid", sysfs_root, kname);
		f = fopen(p, "re");
		if (f) {
			if (!fgets(uuid, sizeof(uuid), f))
				uuid[0] = 0;
			fclose(f);
		}
		if (strncmp(uuid, "mpath-", 6) != 0)
			return -EINVAL;
		mpath = true;
		snprintf(p, sizeof(p), "%s/block/%s/slaves", sysfs_root, kname);
		d = opendir(p);
		if (!d)
			return -errno;
		while ((de = readdir(d))) {
			if (!name_ok(de->d_name))
				continue;
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 4;
				char **nv = realloc(v, nc * sizeof(*nv));
				if (!nv) {
					r = -ENOMEM;
					closedir(d);
					goto fail;
				}
				v = nv;
				cap = nc;
			}
			if (asprintf(&v[n], "%s/%s", dev_root, de->d_name) < 0) {
				r = -ENOMEM;
				closedir(d);
				goto fail;
			}
			n++;
		}
		closedir(d);
		if (n > 1)
			qsort(v, n, sizeof(*v), cmp_str);
	} else if (path_exists("%s/block/%s/device/scsi_disk", sysfs_root, kname) ||
		   path_exists("%s/block/%s/device/scsi_device", sysfs_root, kname)) {
		v = calloc(1, sizeof(*v));
		if (!v || asprintf(&v[0], "%s/%s", dev_root, kname) < 0) {
			free(v);
			return -ENOMEM;
		}
		n = 1;
	} else {
		return -EOPNOTSUPP;
	}
	*ret_paths = v;
	*ret_n = n;
	if (ret_is_mpath)
		*ret_is_mpath = mpath;
	return 0;
fail:
	prmap_strv_free(v, n);
	return r;
}

int prmap_kernel_name(const char *sysfs_root, const char *device, char **ret_kname)
{
	char p[PATH_MAX], link[PATH_MAX];
	struct stat st;
	ssize_t l;
	const char *base;
	char *k;

	if (!sysfs_root)
		sysfs_root = "/sys";
	if (stat(device, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	snprintf(p, sizeof(p), "%s/dev/block/%u:%u", sysfs_root, major(st.st_rdev), minor(st.st_rdev));
	l = readlink(p, link, sizeof(link) - 1);
	if (l < 0)
		return -errno;
	link[l] = 0;
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	k = strdup(base);
	if (!k)
		return -ENOMEM;
	*ret_kname = k;
	return 0;
}

/* The sysfs device of a path: the link target of /sys/block/sdX/device
 * (full: it names the iSCSI session, which a re-login renews even when
 * the H:C:T:L and the sdX name are reused), or its last part, H:C:T:L */
static char *path_link(const char *sysfs_root, const char *path, bool full)
{
	char p[PATH_MAX], link[PATH_MAX];
	const char *name = strrchr(path, '/'), *base;
	ssize_t l;

	name = name ? name + 1 : path;
	snprintf(p, sizeof(p), "%s/block/%s/device", sysfs_root ? sysfs_root : "/sys", name);
	l = readlink(p, link, sizeof(link) - 1);
	if (l < 0)
		return NULL;
	link[l] = 0;
	base = strrchr(link, '/');
	return strdup(full || !base ? link : base + 1);
}

static char *path_hctl(const char *sysfs_root, const char *path)
{
	return path_link(sysfs_root, path, false);
}

/* ------------------------------------------------------------ default transport */

static int sg_status(int cat, char *err, size_t errlen)
{
	char b[160];

	if (cat == 0)
		return 0;
	if (cat < 0) {
		snprintf(err, errlen, "the SCSI command failed (transport or OS error)");
		return -EIO;
	}
	sg_get_category_sense_str(cat, sizeof(b), b, 0);
	switch (cat) {
	case SG_LIB_CAT_RES_CONFLICT:
		snprintf(err, errlen, "RESERVATION CONFLICT");
		return -EBUSY;
	case SG_LIB_CAT_UNIT_ATTENTION:
		snprintf(err, errlen, "UNIT ATTENTION (%s)", b);
		return -EAGAIN;
	case SG_LIB_CAT_INVALID_OP:
		snprintf(err, errlen, "ILLEGAL REQUEST: the device does not support PERSISTENT RESERVE (%s)", b);
		return -EOPNOTSUPP;
	case SG_LIB_CAT_ILLEGAL_REQ:
		snprintf(err, errlen, "ILLEGAL REQUEST (%s)", b);
		return -EINVAL;
	default:
		snprintf(err, errlen, "%s", b);
		return -EIO;
	}
}

static int sg_path_in(void *ctx, const char *path, int sa, uint8_t *buf, size_t len, char *err, size_t errlen)
{
	int fd, r;

	fd = sg_cmds_open_device(path, true, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open: %s", strerror(-fd));
		return fd == -ENOENT || fd == -ENXIO ? -ENODEV : fd;
	}
	memset(buf, 0, len);
	r = sg_ll_persistent_reserve_in(fd, sa, buf, (int)VLUN_MIN(len, 65535u), false, 0);
	sg_cmds_close_device(fd);
	return sg_status(r, err, errlen);
}

static int sg_path_out(void *ctx, const char *path, int sa, enum prmap_type type, uint64_t rk,
		       uint64_t sark, bool aptpl, char *err, size_t errlen)
{
	uint8_t param[24] = { 0 };
	int fd, r;

	put_be64(param, rk);
	put_be64(param + 8, sark);
	if (aptpl && (sa == PRMAP_OUT_REGISTER || sa == PRMAP_OUT_REGISTER_IGNORE))
		param[20] = 0x01;
	fd = sg_cmds_open_device(path, false, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open: %s", strerror(-fd));
		return fd == -ENOENT || fd == -ENXIO ? -ENODEV : fd;
	}
	r = sg_ll_persistent_reserve_out(fd, sa, 0, (unsigned)type, param, sizeof(param), false, 0);
	sg_cmds_close_device(fd);
	return sg_status(r, err, errlen);
}

/* linux/pr.h numbers the types 1..6; SCSI uses 1,3,5,6,7,8 */
static uint32_t kernel_pr_type(enum prmap_type t)
{
	switch (t) {
	case PRMAP_TYPE_WE: return PR_WRITE_EXCLUSIVE;
	case PRMAP_TYPE_EA: return PR_EXCLUSIVE_ACCESS;
	case PRMAP_TYPE_WE_RO: return PR_WRITE_EXCLUSIVE_REG_ONLY;
	case PRMAP_TYPE_EA_RO: return PR_EXCLUSIVE_ACCESS_REG_ONLY;
	case PRMAP_TYPE_WE_AR: return PR_WRITE_EXCLUSIVE_ALL_REGS;
	case PRMAP_TYPE_EA_AR: return PR_EXCLUSIVE_ACCESS_ALL_REGS;
	default: return 0;
	}
}

/* The block PR ioctls. On 6.1 a SCSI failure comes back as a positive
 * SCSI result (status byte, host byte << 16); later kernels return the
 * same numbers as enum pr_status, or -EBADE for a conflict. */
static int ioctl_dev_out(void *ctx, const char *device, int sa, enum prmap_type type, uint64_t rk,
			 uint64_t sark, char *err, size_t errlen)
{
	union {
		struct pr_registration reg;
		struct pr_reservation res;
		struct pr_preempt pre;
		struct pr_clear clr;
	} a;
	unsigned long req;
	int fd, r;

	memset(&a, 0, sizeof(a));
	switch (sa) {
	case PRMAP_OUT_REGISTER:
	case PRMAP_OUT_REGISTER_IGNORE:
		req = IOC_PR_REGISTER;
		a.reg.old_key = rk;
		a.reg.new_key = sark;
		a.reg.flags = sa == PRMAP_OUT_REGISTER_IGNORE ? PR_FL_IGNORE_KEY : 0;
		break;
	case PRMAP_OUT_RESERVE:
	case PRMAP_OUT_RELEASE:
		req = sa == PRMAP_OUT_RESERVE ? IOC_PR_RESERVE : IOC_PR_RELEASE;
		a.res.key = rk;
		a.res.type = kernel_pr_type(type);
		break;
	case PRMAP_OUT_PREEMPT:
	case PRMAP_OUT_PREEMPT_ABORT:
		req = sa == PRMAP_OUT_PREEMPT ? IOC_PR_PREEMPT : IOC_PR_PREEMPT_ABORT;
		a.pre.old_key = rk;
		a.pre.new_key = sark;
		a.pre.type = kernel_pr_type(type);
		break;
	case PRMAP_OUT_CLEAR:
		req = IOC_PR_CLEAR;
		a.clr.key = rk;
		break;
	default:
		return -EOPNOTSUPP;
	}
	fd = open(device, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open: %s", strerror(-r));
		return r;
	}
	r = ioctl(fd, req, &a);
	if (r < 0)
		r = -errno;
	close(fd);
	if (r == 0)
		return 0;
	if (r == -ENOTTY || r == -EOPNOTSUPP || r == -EINVAL) {
		snprintf(err, errlen, "the block PR ioctl is not supported here (%s)", strerror(-r));
		return -EOPNOTSUPP;
	}
	if (r == -EBADE) {
		snprintf(err, errlen, "RESERVATION CONFLICT");
		return -EBUSY;
	}
	if (r < 0) {
		snprintf(err, errlen, "ioctl failed: %s", strerror(-r));
		return r;
	}
	if ((r & 0xff) == 0x18) {
		snprintf(err, errlen, "RESERVATION CONFLICT");
		return -EBUSY;
	}
	if (r & 0xffff00) {
		snprintf(err, errlen, "path failure (SCSI result 0x%x: host byte 0x%02x)", r, (r >> 16) & 0xff);
		return -EIO;
	}
	if ((r & 0xff) == 0x02) {
		snprintf(err, errlen, "CHECK CONDITION (the sense is in the kernel log)");
		return -EAGAIN;
	}
	snprintf(err, errlen, "SCSI status 0x%02x", r & 0xff);
	return -EIO;
}

static const struct prmap_transport default_transport = {
	.path_in = sg_path_in,
	.path_out = sg_path_out,
	.dev_out = ioctl_dev_out,
};

/* ------------------------------------------------------------ the handle */

struct prpath {
	char *path;
	char *hctl;
	char *ident;               /* sysfs device link: same path iff equal */
	bool registered;
	int err;
};

struct prmap {
	pthread_mutex_t lock;
	char *device;              /* as given (messages, ioctls) */
	char *sysfs_root, *dev_root;
	char *kname;               /* NULL with explicit paths */
	bool is_mpath;
	struct prmap_opts o;
	struct prmap_plan plan;
	struct prmap_transport t;
	struct prpath *paths;
	size_t n;
	bool fenced;
	char err[768];
};

static const char *sa_name(int sa)
{
	static const char *const n[] = {
		"REGISTER", "RESERVE", "RELEASE", "CLEAR", "PREEMPT", "PREEMPT AND ABORT",
		"REGISTER AND IGNORE EXISTING KEY",
	};
	return sa >= 0 && (size_t)sa < VLUN_ARRAY_SIZE(n) ? n[sa] : "PR OUT";
}

static const char *in_name(int sa)
{
	static const char *const n[] = { "READ KEYS", "READ RESERVATION", "REPORT CAPABILITIES", "READ FULL STATUS" };
	return sa >= 0 && (size_t)sa < VLUN_ARRAY_SIZE(n) ? n[sa] : "PR IN";
}

static void seterr(struct prmap *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct prmap *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	vlun_err("prmap: %s", m->err);
}

static void paths_free(struct prpath *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].path);
		free(p[i].hctl);
		free(p[i].ident);
	}
	free(p);
}

static int path_in(struct prmap *m, struct prpath *p, int sa, uint8_t *buf, size_t len)
{
	char e[256] = "";
	int r = -EAGAIN;

	for (int i = 0; i < PRMAP_UA_TRIES && r == -EAGAIN; i++)
		r = m->t.path_in(m->t.ctx, p->path, sa, buf, len, e, sizeof(e));
	p->err = r;
	if (r < 0)
		seterr(m, "%s through path %s of %s failed: %s", in_name(sa), p->path, m->device, e);
	return r;
}

static int path_out(struct prmap *m, struct prpath *p, int sa, enum prmap_type type, uint64_t rk, uint64_t sark)
{
	char e[256] = "";
	int r = -EAGAIN;

	for (int i = 0; i < PRMAP_UA_TRIES && r == -EAGAIN; i++)
		r = m->t.path_out(m->t.ctx, p->path, sa, type, rk, sark, !m->o.no_aptpl, e, sizeof(e));
	if (r < 0)
		seterr(m, "%s (key 0x%" PRIx64 ", type %s) through path %s of %s failed: %s",
		       sa_name(sa), sa == PRMAP_OUT_REGISTER_IGNORE ? sark : rk, prmap_type_short(type),
		       p->path, m->device, e);
	return r;
}

/* A command for the whole LUN: the block ioctl on a multipath map (the
 * kernel picks a working path), else each registered path in turn until
 * one answers (a conflict is an answer). */
static int lun_out(struct prmap *m, int sa, enum prmap_type type, uint64_t rk, uint64_t sark)
{
	char e[256] = "";
	int r = -ENODEV;

	if (m->is_mpath && m->t.dev_out) {
		r = -EAGAIN;
		for (int i = 0; i < PRMAP_UA_TRIES && r == -EAGAIN; i++)
			r = m->t.dev_out(m->t.ctx, m->device, sa, type, rk, sark, e, sizeof(e));
		if (r != -EOPNOTSUPP) {
			if (r < 0)
				seterr(m, "%s (key 0x%" PRIx64 ", type %s) on %s failed: %s", sa_name(sa), rk,
				       prmap_type_short(type), m->device, e);
			return r;
		}
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < m->n; i++) {
			struct prpath *p = &m->paths[i];
			if (p->registered != (pass == 0))
				continue;
			r = path_out(m, p, sa, type, rk, sark);
			if (r == 0 || r == -EBUSY || r == -EINVAL || r == -EOPNOTSUPP)
				return r;
		}
	if (r == -ENODEV)
		seterr(m, "%s on %s: no path answers", sa_name(sa), m->device);
	return r;
}

/* PR IN through the first path that answers */
static int lun_in(struct prmap *m, int sa, uint8_t *buf, size_t len)
{
	int r = -ENODEV;

	for (size_t i = 0; i < m->n; i++) {
		r = path_in(m, &m->paths[i], sa, buf, len);
		if (r == 0)
			return 0;
	}
	if (m->n == 0)
		seterr(m, "%s of %s: the device has no paths", in_name(sa), m->device);
	return r;
}

static int lun_resv(struct prmap *m, struct prmap_resv *ret)
{
	uint8_t buf[64];
	int r = lun_in(m, PRMAP_IN_READ_RESERVATION, buf, sizeof(buf));

	if (r < 0)
		return r;
	r = prmap_decode_reservation(buf, sizeof(buf), NULL, ret);
	if (r < 0)
		seterr(m, "READ RESERVATION of %s: malformed parameter data", m->device);
	return r;
}

static int lun_keys(struct prmap *m, struct prmap_keys *ret)
{
	uint8_t *buf = malloc(PRMAP_IN_LEN);
	int r;

	if (!buf)
		return -ENOMEM;
	r = lun_in(m, PRMAP_IN_READ_KEYS, buf, PRMAP_IN_LEN);
	if (r == 0) {
		r = prmap_decode_keys(buf, PRMAP_IN_LEN, ret);
		if (r < 0)
			seterr(m, "READ KEYS of %s: malformed parameter data", m->device);
	}
	free(buf);
	return r;
}

static bool keys_have(const struct prmap_keys *k, uint64_t key)
{
	for (size_t i = 0; i < k->n_stored; i++)
		if (k->keys[i] == key)
			return true;
	return false;
}

static int register_missing(struct prmap *m, unsigned *ret_n)
{
	unsigned n = 0;
	int first = 0;

	for (size_t i = 0; i < m->n; i++) {
		struct prpath *p = &m->paths[i];
		int r;
		if (p->registered)
			continue;
		r = path_out(m, p, PRMAP_OUT_REGISTER_IGNORE, PRMAP_TYPE_NONE, 0, m->o.key);
		p->err = r;
		if (r == 0) {
			p->registered = true;
			n++;
		} else if (!first) {
			first = r;
		}
	}
	if (ret_n)
		*ret_n = n;
	return first;
}

static size_t n_registered(const struct prmap *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n; i++)
		n += m->paths[i].registered;
	return n;
}

/* unregister every path (whatever our bookkeeping says); a path not
 * registered with our key answers RESERVATION CONFLICT: nothing to do */
static int unregister_all(struct prmap *m)
{
	int first = 0;

	for (size_t i = 0; i < m->n; i++) {
		struct prpath *p = &m->paths[i];
		int r = path_out(m, p, PRMAP_OUT_REGISTER, PRMAP_TYPE_NONE, m->o.key, 0);
		if (r == 0 || r == -EBUSY)
			p->registered = false;
		else if (!first)
			first = r;
	}
	return first;
}

static int discover(struct prmap *m, struct prpath **ret, size_t *ret_n)
{
	char **v = NULL;
	size_t n = 0;
	struct prpath *p;
	int r;

	r = prmap_discover(m->sysfs_root, m->dev_root, m->kname, &v, &n, &m->is_mpath);
	if (r < 0) {
		switch (r) {
		case -ENOENT:
			seterr(m, "%s (%s): no such block device in %s/block", m->device, m->kname, m->sysfs_root);
			break;
		case -EINVAL:
			seterr(m, "%s (%s) is a partition or a device-mapper device that is not a multipath map; "
			       "name a SCSI disk or a multipath map", m->device, m->kname);
			break;
		case -EOPNOTSUPP:
			seterr(m, "%s (%s) is not a SCSI disk: persistent reservations need SCSI paths", m->device, m->kname);
			break;
		default:
			seterr(m, "cannot list the paths of %s (%s): %s", m->device, m->kname, strerror(-r));
		}
		return r;
	}
	p = calloc(n ? n : 1, sizeof(*p));
	if (!p) {
		prmap_strv_free(v, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		p[i].path = v[i];
		p[i].hctl = path_hctl(m->sysfs_root, v[i]);
		p[i].ident = path_link(m->sysfs_root, v[i], true);
	}
	free(v);
	*ret = p;
	*ret_n = n;
	return 0;
}

static void set_reason(char **ret_reason, const char *msg)
{
	if (ret_reason)
		*ret_reason = strdup(msg);
}

static int handle_new(const char *device, const struct prmap_opts *o, struct prmap **ret, char **ret_reason)
{
	struct prmap *m;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->o = *o;
	m->t = o->transport ? *o->transport : default_transport;
	m->device = strdup(device ? device : "(paths)");
	m->sysfs_root = strdup(o->sysfs_root ? o->sysfs_root : "/sys");
	m->dev_root = strdup(o->dev_root ? o->dev_root : "/dev");
	m->o.transport = NULL;
	m->o.sysfs_root = m->sysfs_root;
	m->o.dev_root = m->dev_root;
	if (!m->device || !m->sysfs_root || !m->dev_root) {
		prmap_free(m);
		return -ENOMEM;
	}
	r = prmap_plan(o->mode, o->access, o->type, &m->plan);
	if (r < 0) {
		seterr(m, "%s: invalid open mode %d or reservation type %d for it", m->device, o->mode, o->type);
		goto fail;
	}
	if (o->key == 0 && o->mode != PRMAP_NONE) {
		r = -EINVAL;
		seterr(m, "%s: the key must not be 0", m->device);
		goto fail;
	}
	if (!m->t.path_in || !m->t.path_out) {
		r = -EINVAL;
		seterr(m, "%s: incomplete transport", m->device);
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	set_reason(ret_reason, m->err);
	prmap_free(m);
	return r;
}

/* After the paths are known: take the mode's PR. */
static int take(struct prmap *m)
{
	struct prmap_resv resv;
	enum prmap_action act;
	unsigned nreg;
	int r;

	if (!m->plan.register_paths)
		return 0;
	r = lun_resv(m, &resv);
	if (r < 0)
		return r;
	act = prmap_decide(&m->plan, m->o.key, &resv);
	if (act == PRMAP_ACT_CONFLICT) {
		seterr(m, "%s is reserved %s (%s) by key 0x%" PRIx64 ": opening it %s is not admitted; "
		       "take it over with PREEMPT (vlun-pr preempt) if its holder is dead",
		       m->device, prmap_type_short(resv.type), prmap_type_name(resv.type), resv.key,
		       prmap_mode_name(m->o.mode));
		return -EBUSY;
	}
	r = register_missing(m, &nreg);
	if (nreg == 0) {
		if (r == 0) {
			r = -ENODEV;
			seterr(m, "%s has no path to register", m->device);
		}
		return r;
	}
	if (r < 0)
		vlun_warn("prmap: %s: %u of %zu paths registered; the others are retried by refresh (%s)",
			  m->device, nreg, m->n, m->err);
	if (act != PRMAP_ACT_RESERVE)
		return 0;
	r = lun_out(m, PRMAP_OUT_RESERVE, m->plan.reserve_type, m->o.key, 0);
	if (r == -EBUSY) {
		/* someone reserved between our look and our RESERVE */
		char e[sizeof(m->err)];
		memcpy(e, m->err, sizeof(e));
		if (lun_resv(m, &resv) == 0) {
			act = prmap_decide(&m->plan, m->o.key, &resv);
			if (act == PRMAP_ACT_JOIN || act == PRMAP_ACT_NOTHING)
				return 0;
			seterr(m, "%s was reserved %s by key 0x%" PRIx64 " while we opened it %s: not admitted (%s)",
			       m->device, prmap_type_short(resv.type), resv.key, prmap_mode_name(m->o.mode), e);
		}
		r = -EBUSY;
	}
	if (r < 0) {
		char e[sizeof(m->err)];
		memcpy(e, m->err, sizeof(e));
		unregister_all(m);
		memcpy(m->err, e, sizeof(e));
	}
	return r;
}

static int do_open(const char *device, const char *const *paths, size_t n, const struct prmap_opts *o,
		   bool act, struct prmap **ret, char **ret_reason)
{
	struct prmap *m = NULL;
	int r;

	if (!o || !ret || (!device && !paths))
		return -EINVAL;
	r = handle_new(device, o, &m, ret_reason);
	if (r < 0)
		return r;
	if (paths) {
		m->paths = calloc(n ? n : 1, sizeof(*m->paths));
		if (!m->paths) {
			r = -ENOMEM;
			goto fail;
		}
		m->n = n;
		for (size_t i = 0; i < n; i++) {
			m->paths[i].path = strdup(paths[i]);
			if (!m->paths[i].path) {
				r = -ENOMEM;
				goto fail;
			}
			m->paths[i].hctl = path_hctl(m->sysfs_root, paths[i]);
		}
		if (device && !o->transport) {
			char *k = NULL;
			if (prmap_kernel_name(m->sysfs_root, device, &k) == 0) {
				m->is_mpath = path_exists("%s/block/%s/dm", m->sysfs_root, k);
				free(k);
			}
		}
	} else {
		if (o->transport) {
			/* tests: the device is a kernel name under sysfs_root */
			const char *b = strrchr(device, '/');
			m->kname = strdup(b ? b + 1 : device);
			r = m->kname ? 0 : -ENOMEM;
		} else {
			r = prmap_kernel_name(m->sysfs_root, device, &m->kname);
			if (r < 0)
				seterr(m, "%s: not a block device (%s)", device, strerror(-r));
		}
		if (r < 0)
			goto fail;
		r = discover(m, &m->paths, &m->n);
		if (r < 0)
			goto fail;
		if (m->n == 0) {
			r = -ENODEV;
			seterr(m, "%s (%s) has no paths", m->device, m->kname);
			goto fail;
		}
	}
	if (act) {
		r = take(m);
		if (r < 0)
			goto fail;
	}
	*ret = m;
	return 0;
fail:
	set_reason(ret_reason, m->err[0] ? m->err : strerror(-r));
	prmap_free(m);
	return r;
}

int prmap_open(const char *device, const struct prmap_opts *opts, struct prmap **ret, char **ret_reason)
{
	if (!device)
		return -EINVAL;
	return do_open(device, NULL, 0, opts, true, ret, ret_reason);
}

int prmap_open_paths(const char *device, const char *const *paths, size_t n, const struct prmap_opts *opts,
		     struct prmap **ret, char **ret_reason)
{
	if (!paths || n == 0)
		return -EINVAL;
	return do_open(device, paths, n, opts, true, ret, ret_reason);
}

int prmap_attach(const char *device, const struct prmap_opts *opts, struct prmap **ret, char **ret_reason)
{
	return do_open(device, NULL, 0, opts, false, ret, ret_reason);
}

int prmap_attach_paths(const char *device, const char *const *paths, size_t n, const struct prmap_opts *opts,
		       struct prmap **ret, char **ret_reason)
{
	if (!paths || n == 0)
		return -EINVAL;
	return do_open(device, paths, n, opts, false, ret, ret_reason);
}

int prmap_refresh(struct prmap *m, unsigned *ret_registered)
{
	struct prmap_keys keys;
	unsigned n = 0;
	int r = 0;
	bool had;

	pthread_mutex_lock(&m->lock);
	m->err[0] = 0;
	if (m->kname) {
		struct prpath *np = NULL;
		size_t nn = 0;
		r = discover(m, &np, &nn);
		if (r < 0)
			goto out;
		/* a path keeps its registration only if it is the same SCSI
		 * device of the same session (a re-login may reuse the sdX
		 * name and the H:C:T:L, never the session) */
		for (size_t i = 0; i < nn; i++)
			for (size_t j = 0; j < m->n; j++)
				if (strcmp(np[i].path, m->paths[j].path) == 0 && np[i].ident && m->paths[j].ident &&
				    strcmp(np[i].ident, m->paths[j].ident) == 0)
					np[i].registered = m->paths[j].registered;
		had = n_registered(m) > 0 || m->fenced;
		paths_free(m->paths, m->n);
		m->paths = np;
		m->n = nn;
	} else {
		had = n_registered(m) > 0 || m->fenced;
	}
	if (!m->plan.register_paths || !had)
		goto out;
	r = lun_keys(m, &keys);
	if (r < 0)
		goto out;
	if (!keys_have(&keys, m->o.key)) {
		if (!m->fenced)
			vlun_err("prmap: %s: key 0x%" PRIx64 " is no longer registered: this node has been fenced "
				 "(preempted); not registering any path again", m->device, m->o.key);
		m->fenced = true;
		for (size_t i = 0; i < m->n; i++)
			m->paths[i].registered = false;
		snprintf(m->err, sizeof(m->err), "%s: key 0x%" PRIx64 " has been preempted (fenced)", m->device, m->o.key);
		r = -EPERM;
		goto out;
	}
	m->fenced = false;
	r = register_missing(m, &n);
	if (n)
		vlun_info("prmap: %s: registered %u returning path(s) with key 0x%" PRIx64, m->device, n, m->o.key);
out:
	if (ret_registered)
		*ret_registered = n;
	pthread_mutex_unlock(&m->lock);
	return r;
}

int prmap_register(struct prmap *m)
{
	int r;

	pthread_mutex_lock(&m->lock);
	m->err[0] = 0;
	if (m->o.key == 0) {
		seterr(m, "%s: no key to register", m->device);
		r = -EINVAL;
	} else {
		unsigned n;
		r = register_missing(m, &n);
		if (n_registered(m) > 0) {
			m->fenced = false;
			r = 0;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int prmap_preempt(struct prmap *m, uint64_t victim, bool abort)
{
	struct prmap_keys keys;
	enum prmap_type type;
	int r;

	pthread_mutex_lock(&m->lock);
	m->err[0] = 0;
	if (victim == 0 || victim == m->o.key || m->o.key == 0) {
		seterr(m, "%s: cannot preempt key 0x%" PRIx64 " with key 0x%" PRIx64 " (keys must differ and not be 0)",
		       m->device, victim, m->o.key);
		r = -EINVAL;
		goto out;
	}
	if (n_registered(m) == 0) {
		unsigned n;
		r = register_missing(m, &n);
		if (n == 0)
			goto out;
		m->fenced = false;
	}
	r = lun_keys(m, &keys);
	if (r < 0)
		goto out;
	if (!keys_have(&keys, victim)) {
		seterr(m, "%s: key 0x%" PRIx64 " is not registered: nothing to preempt", m->device, victim);
		r = -ENOENT;
		goto out;
	}
	type = m->plan.reserve_type != PRMAP_TYPE_NONE ? m->plan.reserve_type : PRMAP_TYPE_WE_RO;
	r = lun_out(m, abort ? PRMAP_OUT_PREEMPT_ABORT : PRMAP_OUT_PREEMPT, type, m->o.key, victim);
	if (r == 0)
		vlun_info("prmap: %s: key 0x%" PRIx64 " preempted key 0x%" PRIx64 "%s (type %s)", m->device,
			  m->o.key, victim, abort ? " and aborted its commands" : "", prmap_type_short(type));
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int release_locked(struct prmap *m)
{
	struct prmap_resv resv;
	int r, first = 0;

	if (m->o.key == 0)
		return 0;
	r = lun_resv(m, &resv);
	if (r == 0 && resv.present && resv.key == m->o.key && !type_all_reg(resv.type))
		r = lun_out(m, PRMAP_OUT_RELEASE, resv.type, m->o.key, 0);
	if (r < 0)
		first = r;
	r = unregister_all(m);
	if (r < 0 && !first)
		first = r;
	return first;
}

int prmap_release(struct prmap *m)
{
	int r;

	pthread_mutex_lock(&m->lock);
	m->err[0] = 0;
	r = release_locked(m);
	pthread_mutex_unlock(&m->lock);
	return r;
}

int prmap_clear(struct prmap *m)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	m->err[0] = 0;
	if (n_registered(m) == 0) {
		unsigned n;
		r = register_missing(m, &n);
		if (n == 0)
			goto out;
	}
	r = lun_out(m, PRMAP_OUT_CLEAR, PRMAP_TYPE_NONE, m->o.key, 0);
	if (r == 0)
		for (size_t i = 0; i < m->n; i++)
			m->paths[i].registered = false;
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

void prmap_state_free(struct prmap_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_paths; i++) {
		free(s->paths[i].path);
		free(s->paths[i].hctl);
	}
	free(s->paths);
	free(s->device);
	free(s);
}

int prmap_get_state(struct prmap *m, struct prmap_state **ret)
{
	struct prmap_state *s;
	uint8_t *buf;
	int r = -ENOMEM;

	buf = malloc(PRMAP_IN_LEN);
	s = calloc(1, sizeof(*s));
	if (!buf || !s)
		goto nomem;
	pthread_mutex_lock(&m->lock);
	m->err[0] = 0;
	s->device = strdup(m->device);
	s->paths = calloc(m->n ? m->n : 1, sizeof(*s->paths));
	if (!s->device || !s->paths) {
		pthread_mutex_unlock(&m->lock);
		goto nomem;
	}
	s->is_mpath = m->is_mpath;
	s->fenced = m->fenced;
	s->key = m->o.key;
	s->n_paths = m->n;
	for (size_t i = 0; i < m->n; i++) {
		struct prpath *p = &m->paths[i];
		struct prmap_path_state *ps = &s->paths[i];
		ps->path = strdup(p->path);
		ps->hctl = p->hctl ? strdup(p->hctl) : NULL;
		ps->registered = p->registered;
		r = path_in(m, p, PRMAP_IN_READ_KEYS, buf, PRMAP_IN_LEN);
		if (r == 0)
			r = prmap_decode_keys(buf, PRMAP_IN_LEN, &ps->keys);
		if (r == 0)
			r = path_in(m, p, PRMAP_IN_READ_RESERVATION, buf, 64);
		if (r == 0)
			r = prmap_decode_reservation(buf, 64, &ps->resv_generation, &ps->resv);
		ps->err = r;
	}
	pthread_mutex_unlock(&m->lock);
	free(buf);
	*ret = s;
	return 0;
nomem:
	free(buf);
	prmap_state_free(s);
	return -ENOMEM;
}

bool prmap_fenced(struct prmap *m)
{
	bool f;

	pthread_mutex_lock(&m->lock);
	f = m->fenced;
	pthread_mutex_unlock(&m->lock);
	return f;
}

uint64_t prmap_key(struct prmap *m)
{
	return m->o.key;
}

const char *prmap_last_error(struct prmap *m)
{
	return m->err;
}

void prmap_free(struct prmap *m)
{
	if (!m)
		return;
	paths_free(m->paths, m->n);
	free(m->device);
	free(m->sysfs_root);
	free(m->dev_root);
	free(m->kname);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void prmap_close(struct prmap *m)
{
	if (!m)
		return;
	if (m->plan.register_paths && !m->fenced)
		(void)prmap_release(m);
	prmap_free(m);
}
