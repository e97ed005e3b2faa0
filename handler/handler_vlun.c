/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * handler_vlun.c — the tcmu-runner glue of vlun (subtype "vlun").
 *
 * Thin layer: parse the cfgstring, open the pool and the virtual disk with
 * libvlun, queue read/write/flush/unmap as struct vlun_req and complete
 * them from the engine's threads with tcmur_cmd_complete(). handle_cmd adds
 * what tcmu-runner's generic path lacks (GET LBA STATUS, the Logical Block
 * Provisioning VPD page, standard INQUIRY with version descriptors, MODE
 * SENSE with WP/DPOFUA, VERIFY, CDB field checks); it always answers
 * synchronously (TCMU_STS_ASYNC_HANDLED from handle_cmd crashes the runner
 * when the handler also has I/O callouts). The SCSI logic itself lives in
 * scsi_cdb.c as pure functions.
 *
 * Facts this relies on (measured, see docs/DESIGN): check_config and open
 * receive the cfgstring with the "vlun/" prefix; open may be called twice
 * for one failing create; only tcmur_* symbols of main-syms.txt exist in
 * the runner, everything else comes from libtcmu.so.2.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libtcmu.h"
#include "tcmu-runner.h"

#include "runner_api.h"
#include "scsi_cdb.h"
#include "vlun.h"

#define VLUN_HANDLER_EXPORT __attribute__((visibility("default")))
#define CFG_PREFIX "vlun/"
#define ONE_MIB (1024u * 1024u)
/* libiscsi (and common sense) want MAXIMUM UNMAP LBA COUNT <= 1M blocks. */
#define MAX_UNMAP_BLOCKS (1024u * 1024u)

struct vlun_dev {
	struct tcmu_device *dev;
	struct vlun_pool *pool;
	struct vlun_vdisk *vd;
	struct vlun_cfg cfg;
	uint32_t block_size;
	uint64_t num_lbas;
	bool thin;
	bool snapshot; /* "<source>@<snapshot>" */
	/* Per-command contexts are recycled (free list) instead of a
	 * malloc/free per command: the runner's thread takes one, an engine
	 * thread gives it back, so glibc's per-thread caches never hit. */
	pthread_mutex_t cmd_lock;
	struct vlun_cmd *cmd_free;
	unsigned cmd_nfree;
};

/* Keep at most this many idle contexts per device (a little more than
 * the deepest queue the kernel gives one device). */
#define CMD_FREE_MAX 512u

/* Per-command context: embeds the engine request. */
struct vlun_cmd {
	struct vlun_req req;
	struct vlun_dev *v;
	struct tcmu_device *dev;
	struct tcmur_cmd *cmd;
	struct vlun_cmd *next; /* free list */
	uint32_t block_size;
};

/* -------------------------------------------------------------- logging */

static void engine_log(enum vlun_log_level level, const char *msg, void *userdata)
{
	switch (level) {
	case VLUN_LOG_ERR:
		tcmu_err_message(NULL, "libvlun", 0, "%s\n", msg);
		break;
	case VLUN_LOG_WARN:
		tcmu_warn_message(NULL, "libvlun", 0, "%s\n", msg);
		break;
	case VLUN_LOG_INFO:
		tcmu_info_message(NULL, "libvlun", 0, "%s\n", msg);
		break;
	default:
		tcmu_dbg_message(NULL, "libvlun", 0, "%s\n", msg);
		break;
	}
}

/* ---------------------------------------------------------- iovec helpers */

static size_t iov_total(const struct iovec *iov, size_t cnt)
{
	size_t n = 0;

	for (size_t i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Data-In buffers: TCMU's data area is not cleared by the kernel and
 * libtcmu 1.5.4 reports no residual, so everything we do not fill must be
 * zero or we leak stale data to the initiator. */
static void iov_zero(const struct iovec *iov, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

static size_t iov_copy_in(const struct iovec *iov, size_t cnt, const void *src, size_t len)
{
	size_t done = 0;

	for (size_t i = 0; i < cnt && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, (const uint8_t *)src + done, n);
		done += n;
	}
	return done;
}

static size_t iov_copy_out(void *dst, size_t len, const struct iovec *iov, size_t cnt)
{
	size_t done = 0;

	for (size_t i = 0; i < cnt && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy((uint8_t *)dst + done, iov[i].iov_base, n);
		done += n;
	}
	return done;
}

/* Answers a Data-In command: zero the whole buffer, copy the response,
 * truncated to the allocation length (= the buffer). */
static int respond(struct tcmulib_cmd *lc, const void *data, size_t len)
{
	iov_zero(lc->iovec, lc->iov_cnt);
	iov_copy_in(lc->iovec, lc->iov_cnt, data, len);
	return TCMU_STS_OK;
}

/* ------------------------------------------------------------- statuses */

static int fail_sense(struct tcmulib_cmd *lc, enum vscsi_status st, bool info_valid, uint64_t info)
{
	if (!lc)
		return TCMU_STS_HW_ERR;
	if (vscsi_sense_build(lc->sense_buf, SENSE_BUFFERSIZE, st, info_valid, info) == 0)
		return TCMU_STS_HW_ERR;
	return TCMU_STS_PASSTHROUGH_ERR;
}

static int vscsi_to_tcmu(struct tcmulib_cmd *lc, enum vscsi_status st)
{
	switch (st) {
	case VSCSI_OK:
		return TCMU_STS_OK;
	case VSCSI_NOT_HANDLED:
		return TCMU_STS_NOT_HANDLED;
	default:
		return fail_sense(lc, st, false, 0);
	}
}

/* The engine's status vocabulary to the runner's (and our sense table). */
static int vlun_to_tcmu(struct tcmur_cmd *cmd, enum vlun_status st, uint64_t err_offset,
			uint32_t block_size)
{
	struct tcmulib_cmd *lc = cmd ? cmd->lib_cmd : NULL;
	uint64_t lba = block_size ? err_offset / block_size : 0;

	switch (st) {
	case VLUN_OK:
		return TCMU_STS_OK;
	case VLUN_E_READ:
		return fail_sense(lc, VSCSI_UNRECOVERED_READ, true, lba);
	case VLUN_E_WRITE:
		return fail_sense(lc, VSCSI_WRITE_ERROR, true, lba);
	case VLUN_E_RANGE:
		return fail_sense(lc, VSCSI_LBA_OUT_OF_RANGE, false, 0);
	case VLUN_E_NOSPACE:
		return fail_sense(lc, VSCSI_SPACE_ALLOC_FAILED, false, 0);
	case VLUN_E_NOMEM:
		return TCMU_STS_BUSY;
	case VLUN_E_READONLY:
		return fail_sense(lc, VSCSI_WRITE_PROTECTED, false, 0);
	case VLUN_E_FENCED:
		return TCMU_STS_FENCED;
	case VLUN_E_HW:
	default:
		return fail_sense(lc, VSCSI_INTERNAL_FAILURE, false, 0);
	}
}

/* ------------------------------------------------------------ cfgstring */

static const char *cfg_strip(const char *cfgstring)
{
	if (cfgstring && strncmp(cfgstring, CFG_PREFIX, strlen(CFG_PREFIX)) == 0)
		return cfgstring + strlen(CFG_PREFIX);
	return cfgstring;
}

static char *vdisk_names(const struct vlun_pool_desc *d)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	bool any = false;

	for (uint32_t i = 0; i < d->nvdisks; i++) {
		if (d->vdisks[i].flags & VLUN_VDISK_SNAP_RESERVE)
			continue; /* never exported */
		fprintf(f, "%s%s", any ? ", " : "", d->vdisks[i].name);
		any = true;
	}
	if (!any)
		fputs("none", f);
	fclose(f);
	return s;
}

/* "<source>@<snapshot>": the source exists and has that session, which has
 * not failed. 0, or -1 with a reason. */
static int check_snapshot(const struct vlun_cfg *cfg, const struct vlun_pool_desc *d, char **reason)
{
	const char *at = strchr(cfg->vdisk, '@');
	const struct vlun_vdisk_desc *src = NULL;
	size_t sl = (size_t)(at - cfg->vdisk);
	char *names = NULL, *list = NULL;
	size_t len = 0;
	FILE *f;
	int n = 0;

	for (uint32_t i = 0; i < d->nvdisks; i++)
		if (strlen(d->vdisks[i].name) == sl && strncmp(d->vdisks[i].name, cfg->vdisk, sl) == 0)
			src = &d->vdisks[i];
	if (!src) {
		names = vdisk_names(d);
		if (asprintf(reason, "pool '%s' has no virtual disk '%.*s', the source of snapshot '%s' (it has: %s)",
			     cfg->pool_spec, (int)sl, cfg->vdisk, at + 1, names ? names : "?") < 0)
			*reason = NULL;
		free(names);
		return -1;
	}
	f = open_memstream(&list, &len);
	for (uint32_t i = 0; i < d->nsnaps; i++) {
		const struct vlun_snap_desc *s = &d->snaps[i];

		if (s->source_id != src->id)
			continue;
		if (strcmp(s->name, at + 1) == 0) {
			if (f)
				fclose(f);
			free(list);
			if (s->state == VLUN_SNAP_FAILED) {
				if (asprintf(reason, "snapshot '%s' of virtual disk '%s' in pool '%s' has failed (%s) and cannot be exported; delete it with vlunctl snapshot delete",
					     s->name, src->name, cfg->pool_spec, s->why[0] ? s->why : "no reason recorded") < 0)
					*reason = NULL;
				return -1;
			}
			return 0;
		}
		if (f)
			fprintf(f, "%s%s", n++ ? ", " : "", s->name);
	}
	if (f)
		fclose(f);
	if (asprintf(reason, "virtual disk '%s' of pool '%s' has no snapshot '%s' (it has: %s); create it with vlunctl snapshot create",
		     src->name, cfg->pool_spec, at + 1, n && list ? list : "none") < 0)
		*reason = NULL;
	free(list);
	return -1;
}

static bool vlun_check_config(const char *cfgstring, char **reason)
{
	struct vlun_cfg cfg = { 0 };
	struct vlun_pool *pool = NULL;
	struct vlun_pool_desc *desc = NULL;
	char **paths = NULL, *why = NULL;
	size_t n = 0;
	bool ok = false, found = false;
	int r;

	/* The kernel stores a backstore's cfgstring in TCMU's dev_config, and
	 * its control parser splits the written options at ',': the handler's
	 * open would get the part before the first comma (measured in the
	 * lab, docs/pr-lab.md). vlunctl takes comma lists; a backstore cannot. */
	if (strchr(cfgstring, ',')) {
		if (asprintf(reason, "cfgstring '%s' contains ',': the kernel splits a TCMU backstore's "
			     "config at commas, so the handler would get only '%.*s'; name the members "
			     "with a directory (of symlinks to them) or a glob such as /dev/mapper/lun[01]",
			     cfgstring, (int)strcspn(cfgstring, ","), cfgstring) < 0)
			*reason = NULL;
		goto out;
	}
	r = vlun_cfg_parse(cfg_strip(cfgstring), &cfg, &why);
	if (r < 0) {
		if (asprintf(reason, "%s", why ? why : "cannot parse the cfgstring") < 0)
			*reason = NULL;
		goto out;
	}
	r = vlun_pool_spec_expand(cfg.pool_spec, &paths, &n, &why);
	if (r < 0 || n == 0) {
		if (asprintf(reason, "pool '%s': %s", cfg.pool_spec,
			     why ? why : "no member found") < 0)
			*reason = NULL;
		goto out;
	}
	r = vlun_pool_open(paths, n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK, &pool, &why);
	if (r < 0) {
		if (asprintf(reason, "pool '%s' cannot be assembled: %s", cfg.pool_spec,
			     why ? why : strerror(-r)) < 0)
			*reason = NULL;
		goto out;
	}
	r = vlun_pool_describe(pool, &desc);
	if (r < 0) {
		if (asprintf(reason, "pool '%s': cannot read its description: %s", cfg.pool_spec,
			     strerror(-r)) < 0)
			*reason = NULL;
		goto out;
	}
	if (strchr(cfg.vdisk, '@')) {
		if (check_snapshot(&cfg, desc, reason) == 0)
			ok = true;
		goto out;
	}
	for (uint32_t i = 0; i < desc->nvdisks; i++)
		if (strcmp(desc->vdisks[i].name, cfg.vdisk) == 0) {
			found = true;
			if (desc->vdisks[i].flags & VLUN_VDISK_SNAP_RESERVE) {
				if (asprintf(reason, "virtual disk '%s' of pool '%s' is the snapshot reserve of another disk and cannot be exported; export a snapshot as <source>@<snapshot>",
					     cfg.vdisk, cfg.pool_spec) < 0)
					*reason = NULL;
				goto out;
			}
		}
	if (!found) {
		char *names = vdisk_names(desc);

		if (asprintf(reason, "pool '%s' has no virtual disk '%s' (it has: %s); create it with vlunctl vdisk create",
			     cfg.pool_spec, cfg.vdisk, names ? names : "?") < 0)
			*reason = NULL;
		free(names);
		goto out;
	}
	ok = true;
out:
	vlun_pool_desc_free(desc);
	vlun_pool_close(pool);
	vlun_strv_free(paths, n);
	vlun_cfg_clear(&cfg);
	free(why);
	return ok;
}

/* ----------------------------------------------------------- open/close */

static void vdev_free(struct vlun_dev *v)
{
	if (!v)
		return;
	vlun_vdisk_close(v->vd);
	vlun_pool_close(v->pool);
	vlun_cfg_clear(&v->cfg);
	while (v->cmd_free) {
		struct vlun_cmd *c = v->cmd_free;

		v->cmd_free = c->next;
		free(c);
	}
	pthread_mutex_destroy(&v->cmd_lock);
	free(v);
}

/* The pool's job thread found this gateway preempted by another node (an
 * ALUA failover to it, or vlunctl pool takeover): tell tcmu-runner now, so
 * that the next write this gateway receives takes the lock again (reopen,
 * then lock) instead of failing FENCED first. */
static void pool_fenced(void *arg)
{
	struct tcmu_device *dev = arg;

	tcmu_dev_warn(dev, "vlun: another gateway took this disk over; telling tcmu-runner the lock is lost\n");
	tcmu_notify_lock_lost(dev);
}

static int vlun_open(struct tcmu_device *dev, bool reopen)
{
	struct vlun_dev *v;
	char **paths = NULL, *why = NULL;
	const char *cfgstring = tcmu_dev_get_cfgstring(dev);
	size_t n = 0;
	uint64_t dev_bytes, vd_bytes;
	int r;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->dev = dev;
	pthread_mutex_init(&v->cmd_lock, NULL);
	v->block_size = tcmu_dev_get_block_size(dev);
	v->num_lbas = tcmu_dev_get_num_lbas(dev);

	r = vlun_cfg_parse(cfg_strip(cfgstring), &v->cfg, &why);
	if (r < 0) {
		tcmu_dev_err(dev, "vlun: cfgstring '%s' is invalid: %s\n", cfgstring ? cfgstring : "",
			     why ? why : strerror(-r));
		goto fail;
	}
	if (v->block_size != 512 && v->block_size != 4096) {
		tcmu_dev_err(dev, "vlun: block size %" PRIu32 " is not supported; create the backstore with hw_block_size=512 or 4096\n",
			     v->block_size);
		r = -EINVAL;
		goto fail;
	}
	r = vlun_pool_spec_expand(v->cfg.pool_spec, &paths, &n, &why);
	if (r < 0 || n == 0) {
		tcmu_dev_err(dev, "vlun: pool '%s': %s\n", v->cfg.pool_spec, why ? why : "no member found");
		r = r < 0 ? r : -ENOENT;
		goto fail;
	}
	r = vlun_pool_open(paths, n, VLUN_OPEN_WAIT_LOCK, &v->pool, &why);
	if (r < 0) {
		tcmu_dev_err(dev, "vlun: cannot assemble pool '%s': %s\n", v->cfg.pool_spec,
			     why ? why : strerror(-r));
		goto fail;
	}
	/* a takeover the pool's job thread finds goes to tcmu-runner at once */
	vlun_pool_on_fenced(v->pool, pool_fenced, dev);
	/* a snapshot exported with "rw" (cfg.c leaves read_only false only then) */
	v->snapshot = strchr(v->cfg.vdisk, '@') != NULL;
	r = vlun_vdisk_open(v->pool, v->cfg.vdisk,
			    v->snapshot && !v->cfg.read_only ? VLUN_VDISK_OPEN_WRITABLE : 0, &v->vd, &why);
	if (r < 0) {
		tcmu_dev_err(dev, "vlun: cannot open virtual disk '%s' of pool '%s': %s\n",
			     v->cfg.vdisk, v->cfg.pool_spec, why ? why : strerror(-r));
		goto fail;
	}
	dev_bytes = v->num_lbas * v->block_size;
	vd_bytes = vlun_vdisk_size(v->vd);
	if (dev_bytes != vd_bytes) {
		tcmu_dev_err(dev, "vlun: backstore size %" PRIu64 " bytes (%" PRIu64 " blocks of %" PRIu32 ") differs from virtual disk '%s' (%" PRIu64 " bytes); recreate the backstore with size=%" PRIu64 "\n",
			     dev_bytes, v->num_lbas, v->block_size, v->cfg.vdisk, vd_bytes, vd_bytes);
		r = -EINVAL;
		goto fail;
	}

	/* A snapshot LUN has no provisioning of its own to report or give back:
	 * no UNMAP, no GET LBA STATUS. */
	v->thin = !v->snapshot && vlun_vdisk_layout(v->vd) == VLUN_LAYOUT_THIN;
	if (v->thin) {
		uint64_t chunk = vlun_vdisk_chunk_bytes(v->vd) / v->block_size;

		if (chunk == 0 || chunk > UINT32_MAX)
			chunk = 1;
		tcmu_dev_set_unmap_enabled(dev, true);
		/* Pass whole UNMAP ranges to us (split=false): the engine
		 * walks the chunks itself. Alignment is needed by the runner's
		 * WRITE SAME/UNMAP path (it divides by it). */
		tcmu_dev_set_opt_unmap_gran(dev, (uint32_t)chunk, false);
		tcmu_dev_set_unmap_gran_align(dev, (uint32_t)chunk);
		tcmu_dev_set_max_unmap_len(dev, MAX_UNMAP_BLOCKS);
	} else {
		tcmu_dev_set_unmap_enabled(dev, false);
	}
	tcmu_dev_set_write_cache_enabled(dev, v->cfg.wce);
	/* The kernel limits a command to hw_max_sectors, which is fixed when
	 * the backstore is created; the handler cannot raise it. */
	if ((uint64_t)tcmu_dev_get_max_xfer_len(dev) * v->block_size < ONE_MIB)
		tcmu_dev_info(dev, "vlun: hw_max_sectors=%" PRIu32 " splits 1 MiB I/O; create the backstore with hw_max_sectors=%u for full-size commands\n",
			      tcmu_dev_get_max_xfer_len(dev), ONE_MIB / v->block_size);
	tcmu_dev_set_opt_xcopy_rw_len(dev, tcmu_dev_get_max_xfer_len(dev));

	tcmur_dev_set_private(dev, v);
	tcmu_dev_info(dev, "vlun: %sopened virtual disk '%s' of pool '%s': %" PRIu64 " bytes, %s%s%s\n",
		      reopen ? "re" : "", v->cfg.vdisk, v->cfg.pool_spec, vd_bytes,
		      v->snapshot ? "snapshot" : v->thin ? "thin" : "fully provisioned", v->cfg.read_only ? ", read-only" : "",
		      v->cfg.wce ? ", write cache enabled" : ", write through");
	vlun_strv_free(paths, n);
	free(why);
	return 0;

fail:
	vlun_strv_free(paths, n);
	free(why);
	vdev_free(v);
	tcmur_dev_set_private(dev, NULL);
	return r < 0 ? r : -EINVAL;
}

static void vlun_close(struct tcmu_device *dev)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);

	tcmur_dev_set_private(dev, NULL);
	vdev_free(v);
}

static int vlun_reconfig(struct tcmu_device *dev, struct tcmulib_cfg_info *cfg)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);

	if (!v)
		return -ENODEV;
	switch (cfg->type) {
	case TCMULIB_CFG_WRITE_CACHE:
		tcmu_dev_set_write_cache_enabled(dev, cfg->data.write_cache);
		return 0;
	case TCMULIB_CFG_DEV_SIZE:
		if (cfg->data.dev_size == vlun_vdisk_size(v->vd))
			return 0;
		tcmu_dev_err(dev, "vlun: refusing size change to %" PRIu64 " bytes: resize the virtual disk with vlunctl vdisk resize first (it is %" PRIu64 " bytes)\n",
			     cfg->data.dev_size, vlun_vdisk_size(v->vd));
		return -EINVAL;
	default:
		tcmu_dev_err(dev, "vlun: changing the cfgstring of an open device is not supported; delete and recreate the backstore\n");
		return -EOPNOTSUPP;
	}
}

/* ------------------------------------------------------------------- I/O */

static struct vlun_cmd *cmd_get(struct vlun_dev *v)
{
	struct vlun_cmd *c;

	pthread_mutex_lock(&v->cmd_lock);
	c = v->cmd_free;
	if (c) {
		v->cmd_free = c->next;
		v->cmd_nfree--;
	}
	pthread_mutex_unlock(&v->cmd_lock);
	if (!c) {
		c = malloc(sizeof(*c));
		if (!c)
			return NULL;
	}
	c->v = v;
	return c;
}

/* Gives c back. The device stays open while the runner has a command
 * outstanding, so this must come before tcmur_cmd_complete(). */
static void cmd_put(struct vlun_cmd *c)
{
	struct vlun_dev *v = c->v;

	pthread_mutex_lock(&v->cmd_lock);
	if (v->cmd_nfree < CMD_FREE_MAX) {
		c->next = v->cmd_free;
		v->cmd_free = c;
		v->cmd_nfree++;
		c = NULL;
	}
	pthread_mutex_unlock(&v->cmd_lock);
	free(c);
}

static void cmd_done(struct vlun_req *req, enum vlun_status st)
{
	struct vlun_cmd *c = req->priv;
	struct tcmu_device *dev = c->dev;
	struct tcmur_cmd *cmd = c->cmd;
	int rc = vlun_to_tcmu(cmd, st, req->err_offset, c->block_size);

	cmd_put(c);
	/* not the owner (standby, or preempted by another gateway): tell the
	 * runner before completing, so the next command takes the lock again
	 * (ALUA implicit failover back to this node) */
	if (st == VLUN_E_FENCED)
		tcmu_notify_lock_lost(dev);
	tcmur_cmd_complete(dev, cmd, rc);
}

static int submit(struct tcmu_device *dev, struct tcmur_cmd *cmd, uint32_t op, uint32_t flags,
		  const struct iovec *iov, size_t iovcnt, uint64_t off, uint64_t len)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);
	struct vlun_cmd *c;
	int r;

	if (!v)
		return TCMU_STS_HW_ERR;
	c = cmd_get(v);
	if (!c)
		return TCMU_STS_NO_RESOURCE;
	c->dev = dev;
	c->cmd = cmd;
	c->next = NULL;
	c->block_size = v->block_size;
	c->req = (struct vlun_req){
		.op = op, .flags = flags, .offset = off, .length = len, .iov = iov,
		.iovcnt = (int)iovcnt, .done = cmd_done, .priv = c,
	};
	r = vlun_vdisk_submit(v->vd, &c->req);
	if (r < 0) {
		cmd_put(c);
		if (r == -ENOMEM)
			return TCMU_STS_NO_RESOURCE;
		if (r == -EINVAL)
			return fail_sense(cmd->lib_cmd, VSCSI_LBA_OUT_OF_RANGE, false, 0);
		tcmu_dev_err(dev, "vlun: cannot queue a request (op %" PRIu32 ", %" PRIu64 "+%" PRIu64 "): %s\n",
			     op, off, len, strerror(-r));
		return TCMU_STS_HW_ERR;
	}
	return TCMU_STS_OK;
}

static int vlun_read(struct tcmu_device *dev, struct tcmur_cmd *cmd, struct iovec *iov,
		     size_t iov_cnt, size_t len, off_t off)
{
	return submit(dev, cmd, VLUN_OP_READ, 0, iov, iov_cnt, (uint64_t)off, len);
}

static int vlun_write(struct tcmu_device *dev, struct tcmur_cmd *cmd, struct iovec *iov,
		      size_t iov_cnt, size_t len, off_t off)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);
	struct tcmulib_cmd *lc = cmd->lib_cmd;
	uint32_t flags = 0;

	if (v && v->cfg.read_only)
		return fail_sense(lc, VSCSI_WRITE_PROTECTED, false, 0);
	/* tcmu-runner passes no FUA to the write callout: take it from the
	 * CDB (WRITE/COMPARE AND WRITE FUA bit, WRITE AND VERIFY), and make
	 * every write durable when the write cache is disabled. */
	if (!tcmu_dev_get_write_cache_enabled(dev) ||
	    (lc && vscsi_cdb_write_fua(lc->cdb, (size_t)tcmu_cdb_get_length(lc->cdb))))
		flags |= VLUN_REQ_FUA;
	return submit(dev, cmd, VLUN_OP_WRITE, flags, iov, iov_cnt, (uint64_t)off, len);
}

static int vlun_flush(struct tcmu_device *dev, struct tcmur_cmd *cmd)
{
	return submit(dev, cmd, VLUN_OP_FLUSH, 0, NULL, 0, 0, 0);
}

static int vlun_unmap(struct tcmu_device *dev, struct tcmur_cmd *cmd, uint64_t off, uint64_t len)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);

	if (v && v->cfg.read_only)
		return fail_sense(cmd->lib_cmd, VSCSI_WRITE_PROTECTED, false, 0);
	return submit(dev, cmd, VLUN_OP_UNMAP, 0, NULL, 0, off, len);
}

/* ------------------------------------------------------------ handle_cmd */

/* TPGS as tcmu-runner would report it: implicit ALUA when an ALUA group of
 * this device with members has access type "Implicit" or "None" (the
 * runner refuses the explicit types). Read from configfs through the UIO
 * device name ("tcm-user/<hba>/<dev>/<subtype>/<cfgstring>"); 0 when any of
 * it is missing (as without an enabled port in the runner). */
static char *read_line(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "re");
	char *s;

	if (!f)
		return NULL;
	s = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!s)
		return NULL;
	buf[strcspn(buf, "\n")] = '\0';
	return strdup(buf);
}

static uint8_t lu_tpgs(struct tcmu_device *dev)
{
	const char *uio = tcmu_dev_get_uio_name(dev);
	char path[PATH_MAX], hba[32], devname[256];
	char *name = NULL;
	uint8_t tpgs = 0;
	DIR *d = NULL;
	struct dirent *de;

	if (!uio)
		return 0;
	snprintf(path, sizeof(path), "/sys/class/uio/%s/name", uio);
	name = read_line(path);
	if (!name || sscanf(name, "tcm-user/%31[^/]/%255[^/]/", hba, devname) != 2)
		goto out;
	snprintf(path, sizeof(path), "/sys/kernel/config/target/core/user_%s/%s/alua", hba, devname);
	d = opendir(path);
	if (!d)
		goto out;
	while ((de = readdir(d)) && !tpgs) {
		char p[PATH_MAX + 300];
		char *members, *type;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/members", path, de->d_name);
		members = read_line(p);
		snprintf(p, sizeof(p), "%s/%s/alua_access_type", path, de->d_name);
		type = read_line(p);
		if (members && members[0] && type &&
		    (strcmp(type, "Implicit") == 0 || strcmp(type, "None") == 0))
			tpgs = 1;
		free(members);
		free(type);
	}
out:
	if (d)
		closedir(d);
	free(name);
	return tpgs;
}

static void lu_of(struct vlun_dev *v, struct tcmu_device *dev, struct vscsi_lu *lu)
{
	memset(lu, 0, sizeof(*lu));
	lu->num_lbas = tcmu_dev_get_num_lbas(dev);
	lu->block_size = v->block_size;
	lu->thin = v->thin;
	lu->read_only = v->cfg.read_only;
	lu->wce = tcmu_dev_get_write_cache_enabled(dev);
	lu->unmap_granularity = tcmu_dev_get_opt_unmap_gran(dev);
}

static int lba_status_cb(void *userdata, uint64_t lba, uint64_t max_blocks, bool *ret_mapped,
			 uint64_t *ret_nblocks)
{
	struct vlun_dev *v = userdata;
	uint64_t len = 0;
	bool mapped = false;
	int r;

	if (max_blocks > UINT64_MAX / v->block_size)
		max_blocks = UINT64_MAX / v->block_size;
	r = vlun_vdisk_lba_status(v->vd, lba * v->block_size, max_blocks * v->block_size, &mapped, &len);
	if (r < 0)
		return r;
	*ret_mapped = mapped;
	*ret_nblocks = len / v->block_size;
	return *ret_nblocks ? 0 : -EIO;
}

static int handle_get_lba_status(struct vlun_dev *v, struct tcmulib_cmd *lc, const struct vscsi_lu *lu,
				 size_t cdb_len)
{
	struct vscsi_get_lba_status g;
	enum vscsi_status st;
	size_t len, used = 0;
	uint8_t *buf;

	st = vscsi_decode_get_lba_status(lc->cdb, cdb_len, lu, &g);
	if (st != VSCSI_OK)
		return vscsi_to_tcmu(lc, st);
	len = g.alloc_len;
	if (len > 8 + VSCSI_LBA_STATUS_MAX_DESC * 16)
		len = 8 + VSCSI_LBA_STATUS_MAX_DESC * 16;
	buf = calloc(1, len ? len : 1);
	if (!buf)
		return TCMU_STS_NO_RESOURCE;
	st = vscsi_build_lba_status(&g, lu, lba_status_cb, v, buf, len, &used);
	if (st == VSCSI_OK)
		respond(lc, buf, used);
	free(buf);
	return vscsi_to_tcmu(lc, st);
}

/* Synchronous read through the engine, for VERIFY (a rare command; it is
 * answered from handle_cmd, which must not return ASYNC_HANDLED). */
struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	enum vlun_status st;
};

static void sync_done(struct vlun_req *req, enum vlun_status st)
{
	struct sync_wait *w = req->priv;

	pthread_mutex_lock(&w->lock);
	w->st = st;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int sync_read(struct vlun_dev *v, void *buf, uint64_t off, uint64_t len,
		     enum vlun_status *ret_st, uint64_t *ret_err_offset)
{
	struct sync_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct vlun_req req = {
		.op = VLUN_OP_READ, .offset = off, .length = len, .iov = &iov, .iovcnt = 1,
		.done = sync_done, .priv = &w,
	};
	int r = vlun_vdisk_submit(v->vd, &req);

	if (r < 0)
		return r;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	*ret_st = w.st;
	*ret_err_offset = req.err_offset;
	return 0;
}

static int handle_verify(struct vlun_dev *v, struct tcmur_cmd *cmd, const struct vscsi_rw *rw)
{
	struct tcmulib_cmd *lc = cmd->lib_cmd;
	const uint64_t chunk = ONE_MIB;
	uint64_t off = rw->lba * v->block_size, left = (uint64_t)rw->nblocks * v->block_size;
	uint64_t done = 0;
	size_t out_len = iov_total(lc->iovec, lc->iov_cnt);
	uint8_t *media = NULL, *expect = NULL;
	int rc = TCMU_STS_OK;

	if (left == 0)
		return TCMU_STS_OK;
	/* BYTCHK 01b: Data-Out holds every block; 11b: one block for all. */
	if ((rw->bytchk == 1 && out_len != left) || (rw->bytchk == 3 && out_len != v->block_size))
		return fail_sense(lc, VSCSI_INVALID_FIELD_CDB, false, 0);
	media = malloc(chunk);
	expect = rw->bytchk ? malloc(chunk) : NULL;
	if (!media || (rw->bytchk && !expect)) {
		rc = TCMU_STS_NO_RESOURCE;
		goto out;
	}
	if (rw->bytchk == 3) {
		uint8_t *blk = malloc(v->block_size);

		if (!blk) {
			rc = TCMU_STS_NO_RESOURCE;
			goto out;
		}
		iov_copy_out(blk, v->block_size, lc->iovec, lc->iov_cnt);
		for (uint64_t i = 0; i < chunk; i += v->block_size)
			memcpy(expect + i, blk, v->block_size);
		free(blk);
	}
	while (left) {
		uint64_t n = left < chunk ? left : chunk;
		enum vlun_status st = VLUN_OK;
		uint64_t err_off = 0;
		int r = sync_read(v, media, off + done, n, &st, &err_off);

		if (r < 0) {
			rc = r == -ENOMEM ? TCMU_STS_NO_RESOURCE : fail_sense(lc, VSCSI_INTERNAL_FAILURE, false, 0);
			goto out;
		}
		if (st != VLUN_OK) {
			rc = vlun_to_tcmu(cmd, st, err_off, v->block_size);
			goto out;
		}
		if (rw->bytchk == 1) {
			/* copy the matching part of the Data-Out buffer */
			struct iovec *iv = lc->iovec;
			uint64_t skip = done, got = 0;

			for (size_t i = 0; i < lc->iov_cnt && got < n; i++) {
				uint64_t l = iv[i].iov_len;

				if (skip >= l) {
					skip -= l;
					continue;
				}
				uint64_t take = l - skip < n - got ? l - skip : n - got;

				memcpy(expect + got, (uint8_t *)iv[i].iov_base + skip, take);
				got += take;
				skip = 0;
			}
		}
		if (rw->bytchk) {
			for (uint64_t i = 0; i < n; i++) {
				if (media[i] != expect[i]) {
					/* SBC-4 5.33: INFORMATION = offset of the
					 * first miscompared byte. */
					rc = fail_sense(lc, VSCSI_MISCOMPARE, true, done + i);
					goto out;
				}
			}
		}
		done += n;
		left -= n;
	}
out:
	free(media);
	free(expect);
	return rc;
}

static int vlun_handle_cmd(struct tcmu_device *dev, struct tcmur_cmd *cmd)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);
	struct tcmulib_cmd *lc = cmd->lib_cmd;
	uint8_t *cdb = lc->cdb;
	int len = tcmu_cdb_get_length(cdb);
	size_t cdb_len = len > 0 ? (size_t)len : 0;
	struct vscsi_lu lu;
	enum vscsi_status st;

	if (!v)
		return TCMU_STS_NOT_HANDLED;
	lu_of(v, dev, &lu);

	switch (cdb[0]) {
	case VSCSI_INQUIRY: {
		struct vscsi_inquiry inq;
		uint8_t buf[VSCSI_STD_INQUIRY_LEN];

		st = vscsi_decode_inquiry(cdb, cdb_len, &inq);
		if (st != VSCSI_OK)
			return vscsi_to_tcmu(lc, st);
		if (!inq.evpd) {
			lu.tpgs = lu_tpgs(dev);
			return respond(lc, buf, vscsi_build_std_inquiry(buf, sizeof(buf), &lu));
		}
		if (inq.page == 0xb2)
			return respond(lc, buf, vscsi_build_vpd_b2(buf, sizeof(buf), &lu));
		/* other pages: the runner's, over a zeroed buffer */
		iov_zero(lc->iovec, lc->iov_cnt);
		return TCMU_STS_NOT_HANDLED;
	}
	case VSCSI_MODE_SENSE_6:
	case VSCSI_MODE_SENSE_10: {
		struct vscsi_mode_sense ms;
		uint8_t buf[128];
		size_t full = 0;

		st = vscsi_decode_mode_sense(cdb, cdb_len, &ms);
		if (st == VSCSI_OK)
			st = vscsi_build_mode_sense(&ms, &lu, buf, sizeof(buf), &full);
		if (st != VSCSI_OK)
			return vscsi_to_tcmu(lc, st);
		return respond(lc, buf, full);
	}
	case VSCSI_SERVICE_ACTION_IN_16:
		if ((cdb[1] & 0x1f) == VSCSI_SA_READ_CAPACITY_16) {
			uint8_t buf[VSCSI_RC16_LEN];

			return respond(lc, buf, vscsi_build_read_capacity16(buf, sizeof(buf), &lu));
		}
		if ((cdb[1] & 0x1f) == VSCSI_SA_GET_LBA_STATUS)
			return handle_get_lba_status(v, lc, &lu, cdb_len);
		return TCMU_STS_NOT_HANDLED;
	case VSCSI_EXTENDED_COPY: {
		/* header + the runner's largest descriptor list (1024) */
		uint8_t par[VSCSI_XCOPY_HDR_LEN + 1024];
		size_t got = iov_copy_out(par, sizeof(par), lc->iovec, lc->iov_cnt);
		bool changed = false;

		/* the Data-Out buffer is this command's own copy in the TCMU
		 * data area: rewriting its header only changes what the
		 * runner's copy manager parses next */
		st = vscsi_xcopy_fix_list_id(cdb, cdb_len, par, got, &changed);
		if (st != VSCSI_NOT_HANDLED)
			return vscsi_to_tcmu(lc, st);
		if (cdb_len >= 16 && (cdb[1] & 0x1f) == 0x00) {
			uint32_t plen = vscsi_get_be32(&cdb[10]);

			st = vscsi_xcopy_check_segments(par, got < plen ? got : plen, lu.num_lbas);
			if (st != VSCSI_NOT_HANDLED)
				return vscsi_to_tcmu(lc, st);
		}
		if (changed)
			iov_copy_in(lc->iovec, lc->iov_cnt, par, VSCSI_XCOPY_HDR_LEN);
		return TCMU_STS_NOT_HANDLED;
	}
	case VSCSI_READ_CAPACITY_10:
	case VSCSI_RECEIVE_COPY_RESULTS:
	case VSCSI_MAINTENANCE_IN:
		/* the runner answers these; make sure no stale data follows */
		iov_zero(lc->iovec, lc->iov_cnt);
		return TCMU_STS_NOT_HANDLED;
	case VSCSI_UNMAP:
		st = vscsi_check_unmap(&lu, cdb, cdb_len);
		return vscsi_to_tcmu(lc, st == VSCSI_OK ? VSCSI_NOT_HANDLED : st);
	default:
		break;
	}

	{
		struct vscsi_rw rw;

		st = vscsi_decode_rw(cdb, cdb_len, &rw);
		if (st == VSCSI_NOT_HANDLED)
			return TCMU_STS_NOT_HANDLED;
		if (st == VSCSI_OK)
			st = vscsi_check_rw(&lu, &rw);
		if (st != VSCSI_OK)
			return vscsi_to_tcmu(lc, st);
		if (rw.kind == VSCSI_RW_VERIFY)
			return handle_verify(v, cmd, &rw);
		return TCMU_STS_NOT_HANDLED;
	}
}

/* ------------------------------------------------------------ HA lock
 *
 * tcmu-runner's lock callouts (ALUA failover between gateway nodes that
 * share the pool's physical LUNs; docs/pr.md). With implicit ALUA the
 * runner calls lock (tag 0xffff) from a work thread before the first write
 * a node receives while it does not hold the lock, after its queue has
 * drained; with explicit ALUA (STPG) lock carries the target port group
 * id as tag, which get_lock_tag must then report on every node.
 * get_lock_state is polled on RTPG to notice a lock lost to another node.
 * The lock is the pool's ownership (vlun_pool_lock in lib/node.c): PREEMPT
 * AND ABORT of the previous owner's PR key on every member, metadata
 * reloaded from disk, map epoch + 1.
 */
/* tcmur_device.h's enum (not a public header of the runner) */
enum { DEV_LOCK_UNKNOWN = 0, DEV_LOCK_UNLOCKED = 1, DEV_LOCK_WRITE_LOCKED = 5 };

static int vlun_lock(struct tcmu_device *dev, uint16_t tag)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);
	char *why = NULL;
	int r;

	if (!v || !v->pool)
		return TCMU_STS_HW_ERR;
	r = vlun_pool_lock(v->pool, tag, &why);
	if (r < 0) {
		tcmu_dev_err(dev, "vlun: taking the lock of virtual disk '%s' failed: %s\n", v->cfg.vdisk,
			     why ? why : strerror(-r));
		free(why);
		/* FENCED makes the runner reopen the device (a fresh pool
		 * open) and try once more */
		return r == -EPERM || r == -ESTALE ? TCMU_STS_FENCED : TCMU_STS_HW_ERR;
	}
	tcmu_dev_info(dev, "vlun: this node holds the lock of '%s' (tag %u)\n", v->cfg.vdisk, tag);
	return TCMU_STS_OK;
}

static int vlun_unlock(struct tcmu_device *dev)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);

	if (!v || !v->pool)
		return TCMU_STS_HW_ERR;
	return vlun_pool_unlock(v->pool) < 0 ? TCMU_STS_HW_ERR : TCMU_STS_OK;
}

static int vlun_get_lock_state(struct tcmu_device *dev)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);
	int s;

	if (!v || !v->pool)
		return DEV_LOCK_UNKNOWN;
	s = vlun_pool_lock_state(v->pool);
	if (s < 0)
		return DEV_LOCK_UNKNOWN;
	return s == VLUN_LOCK_OWNER ? DEV_LOCK_WRITE_LOCKED : DEV_LOCK_UNLOCKED;
}

static int vlun_get_lock_tag(struct tcmu_device *dev, uint16_t *tag)
{
	struct vlun_dev *v = tcmur_dev_get_private(dev);
	int r;

	if (!v || !v->pool || !tag)
		return TCMU_STS_HW_ERR;
	r = vlun_pool_lock_tag(v->pool, tag);
	if (r == -ENOENT || r == -ENODATA)
		return TCMU_STS_NO_LOCK_HOLDERS;
	return r < 0 ? TCMU_STS_HW_ERR : TCMU_STS_OK;
}

/* --------------------------------------------------------- registration */

static const char vlun_cfg_desc[] =
	"<pool>/<vdisk>[;option...]: <pool> is the directory holding the pool's members, "
	"a glob, or a comma-separated list of absolute member paths ('|' may separate a "
	"glob containing '/' from the vdisk name); <vdisk> is the virtual disk's name, "
	"or <source>@<snapshot> for a snapshot session (read-only unless rw). "
	"Options: members=<path>,<path>... (instead of the pool part), ro (export "
	"read-only), rw (snapshots: export writable), wce=0|1 (write cache enabled, default 1). "
	"Example: /var/lib/vlun/pool0/thin0. The backstore size must equal the virtual "
	"disk's size; hw_block_size 512 or 4096.";

static struct tcmur_handler vlun_handler = {
	.name = "vlun: virtual disks over a pool of physical LUNs",
	.subtype = "vlun",
	.cfg_desc = vlun_cfg_desc,
	.check_config = vlun_check_config,
	.reconfig = vlun_reconfig,
	.open = vlun_open,
	.close = vlun_close,
	.lock = vlun_lock,
	.unlock = vlun_unlock,
	.get_lock_state = vlun_get_lock_state,
	.get_lock_tag = vlun_get_lock_tag,
	.nr_threads = 0,
	.handle_cmd = vlun_handle_cmd,
	.read = vlun_read,
	.write = vlun_write,
	.flush = vlun_flush,
	.unmap = vlun_unmap,
};

VLUN_HANDLER_EXPORT int handler_init(void);
VLUN_HANDLER_EXPORT int handler_init(void)
{
	vlun_set_log(engine_log, VLUN_LOG_INFO, NULL);
	return tcmur_register_handler(&vlun_handler);
}
