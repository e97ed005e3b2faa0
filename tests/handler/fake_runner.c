/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake_runner.c — see fake_runner.h.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake_runner.h"
#include "runner_api.h"
#include "vlun.h"

#define FR_EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------ the device */

struct tcmu_device {
	uint64_t num_lbas;
	uint32_t block_size;
	uint32_t max_xfer_len;
	uint32_t opt_xcopy_rw_len;
	uint32_t max_unmap_len;
	uint32_t opt_unmap_gran;
	uint32_t unmap_gran_align;
	bool split_unmaps;
	bool write_cache_enabled;
	bool solid_state;
	bool unmap_enabled;
	char cfgstring[PATH_MAX + 64];
	void *hm_private;
};

static struct tcmur_handler *registered;
static void *dl_handle;
static char so_path[PATH_MAX];
static pthread_mutex_t fr_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fr_cond = PTHREAD_COND_INITIALIZER;
static unsigned violations;

/* ------------------------------------- symbols of the runner executable */

FR_EXPORT int tcmur_register_handler(struct tcmur_handler *handler)
{
	if (registered)
		return -EEXIST;
	registered = handler;
	return 0;
}

FR_EXPORT bool tcmur_unregister_handler(struct tcmur_handler *handler)
{
	if (registered != handler)
		return false;
	registered = NULL;
	return true;
}

FR_EXPORT void tcmur_cmd_complete(struct tcmu_device *dev, void *data, int rc)
{
	struct tcmur_cmd *cmd = data;

	cmd->done(dev, cmd, rc);
}

FR_EXPORT void tcmur_dev_set_private(struct tcmu_device *dev, void *priv) { dev->hm_private = priv; }
FR_EXPORT void *tcmur_dev_get_private(struct tcmu_device *dev) { return dev->hm_private; }
FR_EXPORT int tcmur_dev_update_size(struct tcmu_device *dev, uint64_t new_size)
{
	if (!new_size)
		return -EINVAL;
	dev->num_lbas = new_size / dev->block_size;
	return 0;
}
FR_EXPORT void tcmu_notify_conn_lost(struct tcmu_device *dev) { (void)dev; }
static unsigned lock_lost_calls;
FR_EXPORT void tcmu_notify_lock_lost(struct tcmu_device *dev) { (void)dev; __atomic_add_fetch(&lock_lost_calls, 1, __ATOMIC_SEQ_CST); }
unsigned fr_lock_lost_calls(void) { return __atomic_load_n(&lock_lost_calls, __ATOMIC_SEQ_CST); }
FR_EXPORT void tcmu_notify_cmd_timed_out(struct tcmu_device *dev) { (void)dev; }

/* ----------------------------- libtcmu device accessors (interposed) */

FR_EXPORT char *tcmu_dev_get_cfgstring(struct tcmu_device *dev) { return dev->cfgstring; }
FR_EXPORT const char *tcmu_dev_get_uio_name(struct tcmu_device *dev) { (void)dev; return "uio-fake"; }
FR_EXPORT uint64_t tcmu_dev_get_num_lbas(struct tcmu_device *dev) { return dev->num_lbas; }
FR_EXPORT void tcmu_dev_set_num_lbas(struct tcmu_device *dev, uint64_t n) { dev->num_lbas = n; }
FR_EXPORT uint32_t tcmu_dev_get_block_size(struct tcmu_device *dev) { return dev->block_size; }
FR_EXPORT void tcmu_dev_set_block_size(struct tcmu_device *dev, uint32_t b) { dev->block_size = b; }
FR_EXPORT uint32_t tcmu_dev_get_max_xfer_len(struct tcmu_device *dev) { return dev->max_xfer_len; }
FR_EXPORT void tcmu_dev_set_max_xfer_len(struct tcmu_device *dev, uint32_t l) { dev->max_xfer_len = l; }
FR_EXPORT uint32_t tcmu_dev_get_opt_xcopy_rw_len(struct tcmu_device *dev) { return dev->opt_xcopy_rw_len; }
FR_EXPORT void tcmu_dev_set_opt_xcopy_rw_len(struct tcmu_device *dev, uint32_t l) { dev->opt_xcopy_rw_len = l; }
FR_EXPORT uint32_t tcmu_dev_get_max_unmap_len(struct tcmu_device *dev) { return dev->max_unmap_len; }
FR_EXPORT void tcmu_dev_set_max_unmap_len(struct tcmu_device *dev, uint32_t l) { dev->max_unmap_len = l; }
FR_EXPORT uint32_t tcmu_dev_get_opt_unmap_gran(struct tcmu_device *dev) { return dev->opt_unmap_gran; }
FR_EXPORT void tcmu_dev_set_opt_unmap_gran(struct tcmu_device *dev, uint32_t l, bool split)
{
	dev->opt_unmap_gran = l;
	dev->split_unmaps = split;
}
FR_EXPORT uint32_t tcmu_dev_get_unmap_gran_align(struct tcmu_device *dev) { return dev->unmap_gran_align; }
FR_EXPORT void tcmu_dev_set_unmap_gran_align(struct tcmu_device *dev, uint32_t l) { dev->unmap_gran_align = l; }
FR_EXPORT bool tcmu_dev_get_write_cache_enabled(struct tcmu_device *dev) { return dev->write_cache_enabled; }
FR_EXPORT void tcmu_dev_set_write_cache_enabled(struct tcmu_device *dev, bool e) { dev->write_cache_enabled = e; }
FR_EXPORT bool tcmu_dev_get_solid_state_media(struct tcmu_device *dev) { return dev->solid_state; }
FR_EXPORT void tcmu_dev_set_solid_state_media(struct tcmu_device *dev, bool s) { dev->solid_state = s; }
FR_EXPORT bool tcmu_dev_get_unmap_enabled(struct tcmu_device *dev) { return dev->unmap_enabled; }
FR_EXPORT void tcmu_dev_set_unmap_enabled(struct tcmu_device *dev, bool e) { dev->unmap_enabled = e; }
FR_EXPORT uint64_t tcmu_lba_to_byte(struct tcmu_device *dev, uint64_t lba) { return lba * dev->block_size; }
FR_EXPORT uint64_t tcmu_byte_to_lba(struct tcmu_device *dev, uint64_t b) { return b / dev->block_size; }

static bool fr_verbose(void)
{
	const char *v = getenv("FR_VERBOSE");

	return v && *v && strcmp(v, "0") != 0;
}

static void fr_log(const char *lvl, const char *func, const char *fmt, va_list ap)
{
	fprintf(stderr, "[%s] %s: ", lvl, func ? func : "?");
	if (!fmt)
		fmt = "(null format)";
	vfprintf(stderr, fmt, ap);
	if (!*fmt || fmt[strlen(fmt) - 1] != '\n')
		fputc('\n', stderr);
}

#define FR_LOGFN(name, lvl, always)                                                          \
	FR_EXPORT void name(struct tcmu_device *dev, const char *func, int line, const char *fmt, \
			    ...)                                                                  \
	{                                                                                         \
		va_list ap;                                                                       \
		(void)dev;                                                                        \
		(void)line;                                                                       \
		if (!(always) && !fr_verbose())                                                   \
			return;                                                                   \
		va_start(ap, fmt);                                                                \
		fr_log(lvl, func, fmt, ap);                                                       \
		va_end(ap);                                                                       \
	}
FR_LOGFN(tcmu_crit_message, "crit", true)
FR_LOGFN(tcmu_err_message, "err", true)
FR_LOGFN(tcmu_warn_message, "warn", true)
FR_LOGFN(tcmu_info_message, "info", false)
FR_LOGFN(tcmu_dbg_message, "dbg", false)
FR_LOGFN(tcmu_dbg_scsi_cmd_message, "dbg", false)

/* ---------------------------------------------------------------- loading */

const char *fr_handler_path(void)
{
	const char *root = getenv("VLUN_BUILD_ROOT");

	if (!so_path[0])
		snprintf(so_path, sizeof(so_path), "%s/handler/handler_vlun.so", root ? root : "build");
	return so_path;
}

int fr_load(void)
{
	int (*init)(void);

	if (registered)
		return 0;
	if (access(fr_handler_path(), R_OK) < 0) {
		fprintf(stderr, "fake_runner: %s not found (handler not built): skipping\n", fr_handler_path());
		return FR_SKIP;
	}
	dl_handle = dlopen(fr_handler_path(), RTLD_NOW | RTLD_LOCAL);
	if (!dl_handle) {
		fprintf(stderr, "fake_runner: dlopen %s: %s\n", fr_handler_path(), dlerror());
		return -1;
	}
	init = (int (*)(void))dlsym(dl_handle, "handler_init");
	if (!init) {
		fprintf(stderr, "fake_runner: %s exports no handler_init\n", fr_handler_path());
		return -1;
	}
	if (init() != 0 || !registered) {
		fprintf(stderr, "fake_runner: handler_init failed or registered nothing\n");
		return -1;
	}
	return 0;
}

struct tcmur_handler *fr_handler(void) { return registered; }

/* ---------------------------------------------------------------- devices */

struct tcmu_device *fr_dev_new(const char *cfgstring, uint64_t num_lbas, uint32_t block_size)
{
	struct tcmu_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	/* what the runner's dev_added sets before open (main.c) */
	dev->num_lbas = num_lbas;
	dev->block_size = block_size;
	dev->max_xfer_len = 128;
	dev->max_unmap_len = 32 * 1024 * 1024;
	dev->opt_unmap_gran = 128;
	dev->split_unmaps = true;
	dev->unmap_gran_align = 0;
	dev->opt_xcopy_rw_len = 128;
	dev->unmap_enabled = registered && registered->unmap;
	snprintf(dev->cfgstring, sizeof(dev->cfgstring), "%s", cfgstring);
	return dev;
}

int fr_dev_open(struct tcmu_device *dev) { return registered->open(dev, false); }

void fr_dev_close(struct tcmu_device *dev)
{
	if (dev && registered->close)
		registered->close(dev);
}

void fr_dev_free(struct tcmu_device *dev) { free(dev); }
void *fr_dev_private(struct tcmu_device *dev) { return dev->hm_private; }
bool fr_dev_wce(struct tcmu_device *dev) { return dev->write_cache_enabled; }
bool fr_dev_unmap_enabled(struct tcmu_device *dev) { return dev->unmap_enabled; }
uint32_t fr_dev_opt_unmap_gran(struct tcmu_device *dev) { return dev->opt_unmap_gran; }
uint32_t fr_dev_max_unmap_len(struct tcmu_device *dev) { return dev->max_unmap_len; }

/* --------------------------------------------------------------- commands */

#define FR_MAX_IOV 64

struct fr_sub {
	struct tcmur_cmd r;
	struct fr_cmd *parent;
	int completions;
};

struct fr_cmd {
	struct tcmulib_cmd lc;
	uint8_t cdb[32];
	struct iovec iov[FR_MAX_IOV];
	size_t iovcnt;
	void *buf;
	size_t len;
	size_t iov_max;
	struct fr_sub main;
	struct fr_sub *subs[64];
	size_t nsubs;
	unsigned pending; /* under fr_lock */
	int sts;          /* first error */
	bool finished;
};

static void sub_done(struct tcmu_device *dev, struct tcmur_cmd *r, int rc)
{
	struct fr_sub *s = (struct fr_sub *)r;
	struct fr_cmd *c = s->parent;

	(void)dev;
	pthread_mutex_lock(&fr_lock);
	if (++s->completions != 1) {
		violations++;
		fprintf(stderr, "fake_runner: VIOLATION: command %02x completed %d times\n", c->cdb[0],
			s->completions);
		pthread_mutex_unlock(&fr_lock);
		return;
	}
	if (rc != TCMU_STS_OK && c->sts == TCMU_STS_OK)
		c->sts = rc;
	if (c->pending == 0) {
		violations++;
		fprintf(stderr, "fake_runner: VIOLATION: completion without pending work\n");
	} else if (--c->pending == 0) {
		c->finished = true;
		pthread_cond_broadcast(&fr_cond);
	}
	pthread_mutex_unlock(&fr_lock);
}

struct fr_cmd *fr_cmd_new(const uint8_t *cdb, size_t cdb_len, void *buf, size_t len)
{
	struct fr_cmd *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	memcpy(c->cdb, cdb, cdb_len < sizeof(c->cdb) ? cdb_len : sizeof(c->cdb));
	c->buf = buf;
	c->len = len;
	c->lc.cdb = c->cdb;
	c->main.parent = c;
	c->main.r.lib_cmd = &c->lc;
	c->main.r.done = sub_done;
	c->lc.hm_private = &c->main.r;
	return c;
}

void fr_cmd_set_iov_max(struct fr_cmd *c, size_t iov_max) { c->iov_max = iov_max; }

static void build_iov(struct fr_cmd *c)
{
	size_t off = 0, step = c->iov_max ? c->iov_max : c->len;

	c->iovcnt = 0;
	while (off < c->len && c->iovcnt < FR_MAX_IOV) {
		size_t n = c->len - off < step ? c->len - off : step;

		if (c->iovcnt == FR_MAX_IOV - 1)
			n = c->len - off;
		c->iov[c->iovcnt].iov_base = (uint8_t *)c->buf + off;
		c->iov[c->iovcnt].iov_len = n;
		c->iovcnt++;
		off += n;
	}
	c->lc.iovec = c->iov;
	c->lc.iov_cnt = c->iovcnt;
}

static size_t cdb_len_of(uint8_t op)
{
	switch (op >> 5) {
	case 0: return 6;
	case 1: case 2: return 10;
	case 4: return 16;
	case 5: return 12;
	default: return 16;
	}
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Runs a callout for the command (or a sub-part of it); counts it pending
 * if it was queued. */
static void callout(struct tcmu_device *dev, struct fr_cmd *c, int which, uint64_t off, uint64_t len)
{
	struct fr_sub *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s || c->nsubs == sizeof(c->subs) / sizeof(c->subs[0])) {
		free(s);
		c->sts = TCMU_STS_NO_RESOURCE;
		return;
	}
	s->parent = c;
	s->r.lib_cmd = &c->lc;
	s->r.done = sub_done;
	c->subs[c->nsubs++] = s;
	pthread_mutex_lock(&fr_lock);
	c->pending++;
	pthread_mutex_unlock(&fr_lock);
	switch (which) {
	case 'r': rc = registered->read(dev, &s->r, c->iov, c->iovcnt, len, (off_t)off); break;
	case 'w': rc = registered->write(dev, &s->r, c->iov, c->iovcnt, len, (off_t)off); break;
	case 'f': rc = registered->flush(dev, &s->r); break;
	default: rc = registered->unmap(dev, &s->r, off, len); break;
	}
	if (rc != TCMU_STS_OK) {
		/* not queued: the runner completes it with rc */
		pthread_mutex_lock(&fr_lock);
		s->completions++;
		c->pending--;
		if (c->sts == TCMU_STS_OK)
			c->sts = rc;
		pthread_mutex_unlock(&fr_lock);
	}
}

static bool model_range_check = true;

void fr_set_runner_range_check(bool on) { model_range_check = on; }

static int check_lbas(struct tcmu_device *dev, uint64_t lba, uint64_t n)
{
	if (model_range_check && (lba + n > dev->num_lbas || lba + n < lba))
		return TCMU_STS_RANGE;
	return TCMU_STS_OK;
}

/* The generic path of the model (see fake_runner.h). Returns a final
 * status, or TCMU_STS_ASYNC_HANDLED when callouts were queued. */
static int generic(struct tcmu_device *dev, struct fr_cmd *c)
{
	uint8_t *cdb = c->cdb, op = cdb[0];
	size_t cl = cdb_len_of(op);
	uint64_t lba = 0, n = 0;
	int rc;

	switch (op) {
	case 0x08: case 0x0a:
		lba = be(&cdb[1], 3) & 0x1fffff;
		n = cdb[4] ? cdb[4] : 256;
		break;
	case 0x28: case 0x2a: case 0x35:
		lba = be(&cdb[2], 4);
		n = be(&cdb[7], 2);
		break;
	case 0xa8: case 0xaa:
		lba = be(&cdb[2], 4);
		n = be(&cdb[6], 4);
		break;
	case 0x88: case 0x8a: case 0x91:
		lba = be(&cdb[2], 8);
		n = be(&cdb[10], 4);
		break;
	case 0x93: /* WRITE SAME(16): only the UNMAP form is modelled */
		if (!(cdb[1] & 0x08) || !registered->unmap)
			return TCMU_STS_NOT_HANDLED;
		lba = be(&cdb[2], 8);
		n = be(&cdb[10], 4);
		if (!n)
			return TCMU_STS_INVALID_CDB;
		rc = check_lbas(dev, lba, n);
		if (rc)
			return rc;
		callout(dev, c, 'u', lba * dev->block_size, n * dev->block_size);
		return TCMU_STS_ASYNC_HANDLED;
	case 0x42: { /* UNMAP */
		uint8_t *p = c->buf;
		uint64_t bddl;

		if (!registered->unmap)
			return TCMU_STS_INVALID_CMD;
		if (cdb[1] & 0x01)
			return TCMU_STS_INVALID_CDB;
		if (c->len < 8)
			return TCMU_STS_OK;
		bddl = be(&p[2], 2);
		if (bddl + 8 > c->len)
			return TCMU_STS_INVALID_PARAM_LIST_LEN;
		for (uint64_t o = 8; o + 16 <= 8 + bddl; o += 16) {
			uint64_t l = be(&p[o], 8), k = be(&p[o + 8], 4);

			if (k > dev->max_unmap_len)
				return TCMU_STS_INVALID_PARAM_LIST;
			rc = check_lbas(dev, l, k);
			if (rc)
				return rc;
		}
		for (uint64_t o = 8; o + 16 <= 8 + bddl; o += 16) {
			uint64_t l = be(&p[o], 8), k = be(&p[o + 8], 4);

			if (k)
				callout(dev, c, 'u', l * dev->block_size, k * dev->block_size);
		}
		return TCMU_STS_ASYNC_HANDLED;
	}
	default:
		return TCMU_STS_NOT_HANDLED;
	}
	(void)cl;
	if (op == 0x35 || op == 0x91) {
		if (!registered->flush)
			return TCMU_STS_INVALID_CMD;
		callout(dev, c, 'f', 0, 0);
		return TCMU_STS_ASYNC_HANDLED;
	}
	if (c->len != n * dev->block_size)
		return TCMU_STS_HW_ERR; /* "iov len mismatch" in the runner */
	rc = check_lbas(dev, lba, n);
	if (rc)
		return rc;
	callout(dev, c, (op == 0x08 || op == 0x28 || op == 0xa8 || op == 0x88) ? 'r' : 'w',
		lba * dev->block_size, n * dev->block_size);
	return TCMU_STS_ASYNC_HANDLED;
}

void fr_cmd_start(struct tcmu_device *dev, struct fr_cmd *c)
{
	int rc;

	build_iov(c);
	c->sts = TCMU_STS_OK;
	memset(c->lc.sense_buf, 0, sizeof(c->lc.sense_buf));
	pthread_mutex_lock(&fr_lock);
	c->pending = 1; /* held until every callout is issued */
	pthread_mutex_unlock(&fr_lock);

	rc = registered->handle_cmd ? registered->handle_cmd(dev, &c->main.r) : TCMU_STS_NOT_HANDLED;
	if (rc == TCMU_STS_ASYNC_HANDLED) {
		/* crashes the real runner when the handler has I/O callouts */
		pthread_mutex_lock(&fr_lock);
		violations++;
		pthread_mutex_unlock(&fr_lock);
		fprintf(stderr, "fake_runner: VIOLATION: handle_cmd returned ASYNC_HANDLED for %02x\n", c->cdb[0]);
		rc = TCMU_STS_HW_ERR;
	}
	if (rc == TCMU_STS_NOT_HANDLED)
		rc = generic(dev, c);
	if (rc == TCMU_STS_NOT_HANDLED)
		rc = TCMU_STS_INVALID_CMD;

	pthread_mutex_lock(&fr_lock);
	if (rc != TCMU_STS_ASYNC_HANDLED && c->sts == TCMU_STS_OK)
		c->sts = rc;
	if (--c->pending == 0) {
		c->finished = true;
		pthread_cond_broadcast(&fr_cond);
	}
	pthread_mutex_unlock(&fr_lock);
}

/* What libtcmu puts in the sense buffer for a status (tcmu_sts_to_scsi). */
static void sts_sense(int sts, struct fr_result *r)
{
	static const struct { int sts; uint8_t key, asc, ascq; } t[] = {
		{ TCMU_STS_RANGE, 0x5, 0x21, 0x00 },
		{ TCMU_STS_HW_ERR, 0x4, 0x44, 0x00 },
		{ TCMU_STS_MISCOMPARE, 0xe, 0x1d, 0x00 },
		{ TCMU_STS_RD_ERR, 0x3, 0x11, 0x00 },
		{ TCMU_STS_WR_ERR, 0x3, 0x0c, 0x00 },
		{ TCMU_STS_INVALID_CDB, 0x5, 0x24, 0x00 },
		{ TCMU_STS_INVALID_PARAM_LIST, 0x5, 0x26, 0x00 },
		{ TCMU_STS_INVALID_PARAM_LIST_LEN, 0x5, 0x1a, 0x00 },
		{ TCMU_STS_INVALID_CMD, 0x5, 0x20, 0x00 },
		{ TCMU_STS_FENCED, 0x2, 0x04, 0x0b },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].sts == sts) {
			r->check = true;
			r->key = t[i].key;
			r->asc = t[i].asc;
			r->ascq = t[i].ascq;
			r->sense[0] = 0x70;
			r->sense[2] = r->key;
			r->sense[7] = 10;
			r->sense[12] = r->asc;
			r->sense[13] = r->ascq;
		}
	}
}

int fr_cmd_wait(struct fr_cmd *c, struct fr_result *res)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&fr_lock);
	while (!c->finished && r == 0)
		r = pthread_cond_timedwait(&fr_cond, &fr_lock, &ts);
	pthread_mutex_unlock(&fr_lock);
	if (!c->finished) {
		fprintf(stderr, "fake_runner: command %02x did not complete within 30 s\n", c->cdb[0]);
		return -ETIMEDOUT;
	}
	memset(res, 0, sizeof(*res));
	res->sts = c->sts;
	if (c->sts == TCMU_STS_PASSTHROUGH_ERR) {
		memcpy(res->sense, c->lc.sense_buf, sizeof(res->sense));
		res->check = true;
		res->key = res->sense[2] & 0x0f;
		res->asc = res->sense[12];
		res->ascq = res->sense[13];
		res->info_valid = res->sense[0] & 0x80;
		res->info = (uint32_t)be(&res->sense[3], 4);
	} else if (c->sts != TCMU_STS_OK) {
		sts_sense(c->sts, res);
	}
	return 0;
}

void fr_cmd_free(struct fr_cmd *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsubs; i++)
		free(c->subs[i]);
	free(c);
}

int fr_exec(struct tcmu_device *dev, const uint8_t *cdb, size_t cdb_len, void *buf, size_t len,
	    struct fr_result *res)
{
	struct fr_cmd *c = fr_cmd_new(cdb, cdb_len, buf, len);
	int r;

	if (!c)
		return -ENOMEM;
	fr_cmd_start(dev, c);
	r = fr_cmd_wait(c, res);
	if (r == 0)
		fr_cmd_free(c); /* leaked on timeout: a callout may still run */
	return r;
}

unsigned fr_violations(void)
{
	unsigned v;

	pthread_mutex_lock(&fr_lock);
	v = violations;
	pthread_mutex_unlock(&fr_lock);
	return v;
}

/* ------------------------------------------------------------------- CDBs */

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void fr_cdb_rw10(uint8_t cdb[10], uint8_t op, uint32_t lba, uint16_t n, uint8_t byte1)
{
	memset(cdb, 0, 10);
	cdb[0] = op;
	cdb[1] = byte1;
	put_be(&cdb[2], lba, 4);
	put_be(&cdb[7], n, 2);
}

void fr_cdb_rw16(uint8_t cdb[16], uint8_t op, uint64_t lba, uint32_t n, uint8_t byte1)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	cdb[1] = byte1;
	put_be(&cdb[2], lba, 8);
	put_be(&cdb[10], n, 4);
}

void fr_cdb_sync16(uint8_t cdb[16])
{
	memset(cdb, 0, 16);
	cdb[0] = 0x91;
}

void fr_cdb_unmap(uint8_t cdb[10], uint8_t *param, size_t *param_len, const uint64_t *lbas,
		  const uint32_t *counts, size_t n)
{
	size_t len = 8 + 16 * n;

	memset(cdb, 0, 10);
	cdb[0] = 0x42;
	put_be(&cdb[7], len, 2);
	memset(param, 0, len);
	put_be(&param[0], len - 2, 2);
	put_be(&param[2], 16 * n, 2);
	for (size_t i = 0; i < n; i++) {
		put_be(&param[8 + 16 * i], lbas[i], 8);
		put_be(&param[8 + 16 * i + 8], counts[i], 4);
	}
	*param_len = len;
}

void fr_cdb_get_lba_status(uint8_t cdb[16], uint64_t lba, uint32_t alloc_len)
{
	memset(cdb, 0, 16);
	cdb[0] = 0x9e;
	cdb[1] = 0x12;
	put_be(&cdb[2], lba, 8);
	put_be(&cdb[10], alloc_len, 4);
}

void fr_cdb_inquiry(uint8_t cdb[6], bool evpd, uint8_t page, uint16_t alloc_len)
{
	memset(cdb, 0, 6);
	cdb[0] = 0x12;
	cdb[1] = evpd ? 1 : 0;
	cdb[2] = page;
	put_be(&cdb[3], alloc_len, 2);
}

/* ------------------------------------------------------------------ pools */

static int make_member(const char *path, uint64_t bytes)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

static int open_pool_dir(const char *dir, struct vlun_pool **ret)
{
	char **paths = NULL, *why = NULL;
	size_t n = 0;
	int r;

	r = vlun_pool_spec_expand(dir, &paths, &n, &why);
	if (r < 0) {
		fprintf(stderr, "fake_runner: expand %s: %s\n", dir, why ? why : strerror(-r));
		free(why);
		return r;
	}
	r = vlun_pool_open(paths, n, 0, ret, &why);
	if (r < 0)
		fprintf(stderr, "fake_runner: open pool %s: %s\n", dir, why ? why : strerror(-r));
	free(why);
	vlun_strv_free(paths, n);
	return r;
}

int fr_pool_add_vdisk(const char *dir, const char *vdisk, uint32_t layout, uint64_t vdisk_bytes,
		      uint64_t chunk_bytes)
{
	struct vlun_pool *p = NULL;
	struct vlun_vdisk_create_opts vo = {
		.name = vdisk, .layout = layout, .size_bytes = vdisk_bytes, .chunk_bytes = chunk_bytes,
	};
	char *why = NULL;
	int r = open_pool_dir(dir, &p);

	if (r < 0)
		return r;
	r = vlun_vdisk_create(p, &vo, &why);
	if (r < 0)
		fprintf(stderr, "fake_runner: vdisk create %s: %s\n", vdisk, why ? why : strerror(-r));
	free(why);
	vlun_pool_close(p);
	return r;
}

int fr_pool_make(char *dir, unsigned nmembers, uint64_t member_bytes, const char *vdisk,
		 uint32_t layout, uint64_t vdisk_bytes, uint64_t chunk_bytes)
{
	const char *tmp = getenv("TMPDIR");
	char *paths[16];
	char *why = NULL;
	/* 8 MiB metadata per member keeps the sparse test members small */
	struct vlun_pool_create_opts po = { .name = "frpool", .meta_bytes = 8ull << 20 };
	int r;

	if (nmembers == 0 || nmembers > 16)
		return -EINVAL;
	snprintf(dir, PATH_MAX, "%s/vlun-fr-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	for (unsigned i = 0; i < nmembers; i++) {
		if (asprintf(&paths[i], "%s/member%u.img", dir, i) < 0)
			return -ENOMEM;
		r = make_member(paths[i], member_bytes);
		if (r < 0)
			return r;
	}
	r = vlun_pool_create(&po, paths, nmembers, false, &why);
	if (r < 0)
		fprintf(stderr, "fake_runner: pool create in %s: %s\n", dir, why ? why : strerror(-r));
	free(why);
	for (unsigned i = 0; i < nmembers; i++)
		free(paths[i]);
	if (r < 0)
		return r;
	if (vdisk)
		r = fr_pool_add_vdisk(dir, vdisk, layout, vdisk_bytes, chunk_bytes);
	return r;
}

void fr_rmrf(const char *dir)
{
	DIR *d;
	struct dirent *de;
	char p[PATH_MAX + 256];

	if (!dir || !dir[0] || getenv("FR_KEEP"))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* ------------------------------------------------------------------- data */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint8_t pattern_byte(uint64_t pos, uint32_t gen)
{
	return (uint8_t)(mix((pos >> 3) ^ ((uint64_t)gen << 48)) >> ((pos & 7) * 8));
}

void fr_fill(uint8_t *buf, size_t len, uint64_t first_byte, uint32_t gen)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(first_byte + i, gen);
}

bool fr_check(const uint8_t *buf, size_t len, uint64_t first_byte, uint32_t gen)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern_byte(first_byte + i, gen))
			return false;
	return true;
}
