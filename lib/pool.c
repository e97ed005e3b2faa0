/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool.c — assembling a pool from its members, the process-wide registry
 * of open pools, the advisory pool lock, the controller thread and the
 * metadata commits of every change (vdisk create/resize/delete, thin
 * allocations, unmaps).
 *
 * Registry: tcmu-runner opens one device per virtual disk in one process,
 * so opening a pool that is already open here returns another reference to
 * the same object (keyed by the pool uuid).
 *
 * Advisory lock: a read-write open takes an OFD write lock (F_OFD_SETLK)
 * on the label block [0, 4096) of every member. It is what
 * vlun_pool_paths_in_use() tests, so that vlunctl can tell that a handler
 * holds the pool. VLUN_OPEN_RDONLY and VLUN_OPEN_NO_LOCK skip it.
 *
 * Control channel: a locked open also serves the pool's control socket
 * (ctl.c, protocol in ctl.h), through which vlunctl asks the holder to
 * make the changes that are safe online; it stops in pool_free().
 *
 * Controller: one thread per pool and ctl_lock, which serialises every
 * change of a map, of the description and of the allocator, and every
 * metadata commit. The fast path (vdisk.c) never takes ctl_lock; it hands
 * work to the controller through a small queue (q_lock).
 *
 * Commit rule: before metadata that points at newly written chunks is
 * committed, every member is fsynced (pool_commit_pending_locked), so a
 * committed map never points at data that is not durable. Space freed by a
 * commit becomes reusable only after that commit is durable and every
 * physical I/O issued under the old map has completed (epoch drain).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "layout.h"
#include "node.h"
#include "pool_priv.h"
#include "snap.h"

#define LOCK_LEN 4096
#define LOCK_GRACE_MS 3000 /* see step 5 of vlun_pool_open */
#define LOCK_POLL_MS 20
#define POOL_IO_DEPTH 256

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vlun_pool *registry;

static void *ctl_main(void *arg);
static int commit_full_locked(struct vlun_pool *p);

/* ------------------------------------------------------------ helpers */

static int member_lock(int fd, bool take)
{
	struct flock fl = {
		.l_type = take ? F_WRLCK : F_UNLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = LOCK_LEN,
	};
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return -errno;
	return 0;
}

int vlun_pool_member_lock(int fd, bool take)
{
	return member_lock(fd, take);
}

static bool is_dm_path(const char *p)
{
	return strncmp(p, "/dev/mapper/", 12) == 0 || strncmp(p, "/dev/dm-", 8) == 0;
}

static void fmt_uuid(const uint8_t *u, char out[37])
{
	vlun_uuid_format(u, out);
}

static uint64_t data_sectors_of(const struct vlun_label *l, uint64_t size_bytes)
{
	uint64_t total = size_bytes >> VLUN_SECTOR_SHIFT;
	return total > l->data_start ? total - l->data_start : 0;
}

/* ------------------------------------------------------------ create */

VLUN_EXPORT int vlun_pool_create(const struct vlun_pool_create_opts *opts, char *const *paths,
				 size_t n, bool force, char **ret_reason)
{
	if (!opts || !opts->name || !vlun_name_valid(opts->name)) {
		vlun_set_reason(ret_reason, "pool name '%s' is not valid: use 1..%d characters of "
				"[A-Za-z0-9._-]", opts && opts->name ? opts->name : "", VLUN_NAME_MAX);
		return -EINVAL;
	}
	if (!paths || n == 0) {
		vlun_set_reason(ret_reason, "no member paths given for pool '%s'", opts->name);
		return -EINVAL;
	}
	if (n > VLUN_MAX_MEMBERS) {
		vlun_set_reason(ret_reason, "%zu members given, at most %d are supported", n, VLUN_MAX_MEMBERS);
		return -E2BIG;
	}

	int r = 0;
	struct vlun_meta_member *mm = calloc(n, sizeof(*mm));
	struct vlun_pool_desc *d = calloc(1, sizeof(*d));
	struct vlun_meta *st = NULL;
	struct stat *sts = calloc(n, sizeof(*sts));
	if (!mm || !d || !sts) {
		r = -ENOMEM;
		goto out;
	}
	d->members = calloc(n, sizeof(*d->members));
	if (!d->members) {
		r = -ENOMEM;
		goto out;
	}

	vlun_uuid_generate(d->uuid);
	snprintf(d->name, sizeof(d->name), "%s", opts->name);
	d->created = (uint64_t)time(NULL);
	d->next_vdisk_id = 1;

	for (size_t i = 0; i < n; i++) {
		if (stat(paths[i], &sts[i]) < 0) {
			r = -errno;
			vlun_set_reason(ret_reason, "cannot use member '%s': %s", paths[i], strerror(errno));
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (sts[i].st_dev == sts[j].st_dev && sts[i].st_ino == sts[j].st_ino &&
			    sts[i].st_rdev == sts[j].st_rdev) {
				r = -EINVAL;
				vlun_set_reason(ret_reason, "member '%s' is given twice (also as '%s')",
						paths[i], paths[j]);
				goto out;
			}
		r = vlun_blkdev_open(paths[i], false, true, &mm[i].dev);
		if (r < 0) {
			vlun_set_reason(ret_reason, "cannot open member '%s' read-write: %s", paths[i],
					strerror(-r));
			goto out;
		}
		r = member_lock(mm[i].dev->fd, true);
		if (r < 0) {
			vlun_set_reason(ret_reason, "member '%s' is in use by a running vlun (pool lock held); "
					"stop it first", paths[i]);
			r = -EBUSY;
			goto out;
		}
	}

	for (size_t i = 0; i < n; i++) {
		uint8_t muuid[VLUN_UUID_LEN];
		vlun_uuid_generate(muuid);
		r = vlun_meta_label_write(mm[i].dev, d->uuid, muuid, d->name, opts->meta_bytes, force,
					  &mm[i].label);
		if (r == -EEXIST) {
			vlun_set_reason(ret_reason, "'%s' already carries a vlun label; use force to "
					"overwrite it (destroys that pool's data)", paths[i]);
			goto out;
		}
		if (r < 0) {
			vlun_set_reason(ret_reason, "cannot write the label on '%s': %s", paths[i],
					strerror(-r));
			goto out;
		}
		struct vlun_member_desc *md = &d->members[i];
		memcpy(md->uuid, muuid, VLUN_UUID_LEN);
		md->index = (uint32_t)i;
		md->state = VLUN_MEMBER_OK;
		md->size_bytes = mm[i].label.member_size ? mm[i].label.member_size : mm[i].dev->size;
		md->data_start = mm[i].label.data_start;
		md->data_sectors = data_sectors_of(&mm[i].label, md->size_bytes);
		snprintf(md->path_hint, sizeof(md->path_hint), "%s", paths[i]);
		if (md->data_sectors == 0) {
			vlun_set_reason(ret_reason, "member '%s' (%llu bytes) is too small for the metadata "
					"area; use a larger device or a smaller meta size", paths[i],
					(unsigned long long)md->size_bytes);
			r = -ENOSPC;
			goto out;
		}
	}
	d->nmembers = (uint32_t)n;

	r = vlun_meta_init(mm, n, &st);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot initialise the metadata of pool '%s': %s", d->name,
				strerror(-r));
		goto out;
	}
	r = vlun_meta_commit(st, mm, n, d);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot write the first metadata of pool '%s': %s", d->name,
				strerror(-r));
		goto out;
	}
	vlun_info("pool '%s': created with %zu member(s)", d->name, n);
out:
	vlun_meta_free(st);
	if (mm)
		for (size_t i = 0; i < n; i++)
			vlun_blkdev_close(mm[i].dev); /* closing drops the OFD lock */
	free(mm);
	free(sts);
	vlun_pool_desc_free(d);
	return r;
}

/* ------------------------------------------------------------ open */

struct cand {
	struct vlun_blkdev *dev;
	struct vlun_label label;
	const char *path;
	bool used;
};

static void cands_free(struct cand *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		if (!c[i].used)
			vlun_blkdev_close(c[i].dev);
	free(c);
}

static void pool_free(struct vlun_pool *p)
{
	if (!p)
		return;
	ctl_server_stop(p); /* before anything a request could use goes away */
	snap_pool_stop(p);  /* its worker and its engine references to vdisks */
	jobs_stop(p);       /* copies use the controller and the io engine */
	if (p->ctl_started) {
		pthread_mutex_lock(&p->q_lock);
		p->ctl_stop = true;
		pthread_cond_signal(&p->q_cond);
		pthread_mutex_unlock(&p->q_lock);
		pthread_join(p->ctl_thread, NULL);
	}
	vlun_io_engine_free(p->io);
	pthread_mutex_lock(&p->ctl_lock);
	if (p->npending && !(p->flags & VLUN_OPEN_RDONLY)) {
		/* Allocations not yet flushed by the host: make them durable
		 * anyway on a clean close. */
		int r = pool_commit_pending_locked(p);
		if (r < 0)
			vlun_warn("pool '%s': final commit at close failed: %s; allocations since "
				  "the last flush are lost", p->desc->name, strerror(-r));
	}
	pthread_mutex_unlock(&p->ctl_lock);
	pool_ha_close(p);
	for (size_t i = 0; i < p->npending; i++)
		free(p->pending[i].extents);
	free(p->pending);
	free(p->open);
	vlun_alloc_free_all(p->alloc);
	vlun_meta_free(p->meta);
	for (size_t i = 0; i < p->nmm; i++)
		vlun_blkdev_close(p->mm[i].dev);
	free(p->mm);
	free(p->members);
	vlun_pool_desc_free(p->desc);
	pthread_mutex_destroy(&p->ctl_lock);
	pthread_mutex_destroy(&p->q_lock);
	pthread_cond_destroy(&p->q_cond);
	free(p);
}

static struct vlun_pool *pool_alloc(void)
{
	struct vlun_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->ctl_lock, NULL);
	pthread_mutex_init(&p->q_lock, NULL);
	pthread_cond_init(&p->q_cond, NULL);
	p->q_tail = &p->q_head;
	p->refs = 1;
	return p;
}

/* Finds which pool to assemble among the labels found. A path argument of
 * the form "pool=<name or uuid>" selects one explicitly. */
static int pick_pool(struct cand *c, size_t nc, const char *want, uint8_t ret_uuid[VLUN_UUID_LEN],
		     char **ret_reason)
{
	uint8_t uuids[16][VLUN_UUID_LEN];
	const char *names[16];
	size_t counts[16] = { 0 }, ng = 0;

	for (size_t i = 0; i < nc; i++) {
		if (!c[i].dev)
			continue;
		if (want) {
			char u[37];
			fmt_uuid(c[i].label.pool_uuid, u);
			if (strcmp(want, c[i].label.pool_name) != 0 && strcasecmp(want, u) != 0)
				continue;
		}
		size_t g;
		for (g = 0; g < ng; g++)
			if (memcmp(uuids[g], c[i].label.pool_uuid, VLUN_UUID_LEN) == 0)
				break;
		if (g == ng) {
			if (ng == VLUN_ARRAY_SIZE(uuids))
				continue;
			memcpy(uuids[ng], c[i].label.pool_uuid, VLUN_UUID_LEN);
			names[ng] = c[i].label.pool_name;
			ng++;
		}
		counts[g]++;
	}
	if (ng == 0) {
		if (want)
			vlun_set_reason(ret_reason, "no member of pool '%s' found among the given paths", want);
		else
			vlun_set_reason(ret_reason, "no vlun member found among the given paths");
		return -ENOENT;
	}
	if (ng > 1) {
		char list[512] = "";
		size_t off = 0;
		for (size_t g = 0; g < ng && off < sizeof(list); g++) {
			char u[37];
			fmt_uuid(uuids[g], u);
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s'%s' (%s, %zu member(s))",
						g ? ", " : "", names[g], u, counts[g]);
		}
		vlun_set_reason(ret_reason, "the paths hold members of %zu different pools: %s; give only "
				"one pool's members or add pool=<name|uuid>", ng, list);
		return -ENOTUNIQ;
	}
	memcpy(ret_uuid, uuids[0], VLUN_UUID_LEN);
	return 0;
}

static struct vlun_pool *registry_find_locked(const uint8_t uuid[VLUN_UUID_LEN])
{
	for (struct vlun_pool *p = registry; p; p = p->reg_next)
		if (memcmp(p->uuid, uuid, VLUN_UUID_LEN) == 0)
			return p;
	return NULL;
}

VLUN_EXPORT int vlun_pool_open(char *const *paths, size_t n, unsigned flags, struct vlun_pool **ret,
			       char **ret_reason)
{
	if (!paths || !ret)
		return -EINVAL;
	bool rdonly = flags & VLUN_OPEN_RDONLY;
	const char *want = NULL;
	int r;

	struct cand *c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return -ENOMEM;

	/* 1. Read the label of every path; unrelated ones are ignored. */
	size_t nc = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(paths[i], "pool=", 5) == 0) {
			want = paths[i] + 5;
			continue;
		}
		struct vlun_blkdev *dev = NULL;
		r = vlun_blkdev_open(paths[i], rdonly, !(flags & VLUN_OPEN_NO_DIRECT), &dev);
		if (r < 0) {
			vlun_info("pool open: skipping '%s': cannot open it: %s", paths[i], strerror(-r));
			continue;
		}
		char why[160] = "";
		r = vlun_meta_label_read(dev, &c[nc].label, why, sizeof(why));
		if (r < 0) {
			if (r == -ENOENT)
				vlun_info("pool open: '%s' is not a vlun member, ignored", paths[i]);
			else
				vlun_warn("pool open: '%s' has an unusable vlun label (%s), ignored", paths[i],
					  why[0] ? why : strerror(-r));
			vlun_blkdev_close(dev);
			continue;
		}
		c[nc].dev = dev;
		c[nc].path = paths[i];
		nc++;
	}

	/* 2. Which pool. */
	uint8_t uuid[VLUN_UUID_LEN];
	r = pick_pool(c, nc, want, uuid, ret_reason);
	if (r < 0) {
		cands_free(c, nc);
		return r;
	}

	/* 3. Already open in this process: share it. */
	pthread_mutex_lock(&registry_lock);
	struct vlun_pool *p = registry_find_locked(uuid);
	if (p) {
		if ((p->flags & VLUN_OPEN_RDONLY) && !rdonly) {
			pthread_mutex_unlock(&registry_lock);
			vlun_set_reason(ret_reason, "pool '%s' is already open read-only in this process",
					p->desc->name);
			cands_free(c, nc);
			return -EBUSY;
		}
		p->refs++;
		pthread_mutex_unlock(&registry_lock);
		cands_free(c, nc);
		*ret = p;
		return 0;
	}

	/* 4. Assemble: drop duplicates (multipath: the same member seen on
	 * /dev/mapper and on its paths — prefer the dm device). */
	p = pool_alloc();
	if (!p) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(p->uuid, uuid, VLUN_UUID_LEN);
	p->flags = flags;
	p->mm = calloc(nc ? nc : 1, sizeof(*p->mm));
	if (!p->mm) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < nc; i++) {
		if (!c[i].dev || memcmp(c[i].label.pool_uuid, uuid, VLUN_UUID_LEN) != 0)
			continue;
		size_t j;
		for (j = 0; j < p->nmm; j++)
			if (memcmp(p->mm[j].label.member_uuid, c[i].label.member_uuid, VLUN_UUID_LEN) == 0)
				break;
		if (j < p->nmm) {
			/* duplicate */
			size_t k;
			for (k = 0; k < nc; k++)
				if (c[k].used && c[k].dev == p->mm[j].dev)
					break;
			if (!is_dm_path(c[k].path) && is_dm_path(c[i].path)) {
				vlun_info("pool open: member seen at '%s' and '%s'; using the multipath device",
					  c[k].path, c[i].path);
				c[k].used = false;
				p->mm[j].dev = c[i].dev;
				c[i].used = true;
			} else {
				vlun_info("pool open: member seen at '%s' and '%s'; using the first",
					  c[k].path, c[i].path);
			}
			continue;
		}
		p->mm[p->nmm].dev = c[i].dev;
		p->mm[p->nmm].label = c[i].label;
		p->nmm++;
		c[i].used = true;
	}

	/* 5. Advisory lock before reading the metadata. A holder that has
	 * just died (kill -9 of tcmu-runner, then a restart) can keep it for
	 * a moment: its io_uring, torn down by the kernel after the process
	 * is gone, still holds the member files while its last requests end.
	 * With VLUN_OPEN_WAIT_LOCK (the handler) a taken lock is therefore
	 * tried again for LOCK_GRACE_MS before the open is refused; vlunctl
	 * asks whether a holder runs first and wants the answer at once. */
	if (!rdonly && !(flags & VLUN_OPEN_NO_LOCK)) {
		for (size_t i = 0; i < p->nmm; i++) {
			r = member_lock(p->mm[i].dev->fd, true);
			for (int waited = 0; (flags & VLUN_OPEN_WAIT_LOCK) && (r == -EAGAIN || r == -EACCES) &&
					     waited < LOCK_GRACE_MS;
			     waited += LOCK_POLL_MS) {
				if (waited == 0)
					vlun_info("pool open: member '%s' is locked; waiting up to %d ms in case "
						  "its holder has just exited",
						  p->mm[i].dev->name, LOCK_GRACE_MS);
				nanosleep(&(struct timespec){ .tv_nsec = LOCK_POLL_MS * 1000000L }, NULL);
				r = member_lock(p->mm[i].dev->fd, true);
			}
			if (r < 0) {
				vlun_set_reason(ret_reason, "pool '%s' is held by another process (lock on "
						"member '%s' taken); stop that process or open read-only",
						p->mm[i].label.pool_name, p->mm[i].dev->name);
				r = -EBUSY;
				goto fail;
			}
		}
	}

	/* 6. The newest valid metadata. */
	char why[256] = "";
	r = vlun_meta_load(p->mm, p->nmm, &p->desc, &p->meta, why, sizeof(why));
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot load the metadata of pool '%s': %s",
				p->nmm ? p->mm[0].label.pool_name : "?", why[0] ? why : strerror(-r));
		goto fail;
	}
	for (size_t i = 0; i < p->nmm; i++)
		if (p->mm[i].problem[0])
			vlun_warn("pool '%s': member '%s': %s (repaired by the next commit)", p->desc->name,
				  p->mm[i].dev->name, p->mm[i].problem);

	/* 7. Every member listed must be present. */
	p->nmembers = p->desc->nmembers;
	/* Fixed capacity: the fast path indexes it without a lock, so
	 * add-member must never move it. */
	p->members = calloc(VLUN_MAX_MEMBERS, sizeof(*p->members));
	if (!p->members) {
		r = -ENOMEM;
		goto fail;
	}
	for (uint32_t m = 0; m < p->desc->nmembers; m++) {
		struct vlun_member_desc *md = &p->desc->members[m];
		p->members[m].fd = -1;
		for (size_t i = 0; i < p->nmm; i++)
			if (memcmp(p->mm[i].label.member_uuid, md->uuid, VLUN_UUID_LEN) == 0) {
				p->members[m].dev = p->mm[i].dev;
				p->members[m].fd = p->mm[i].dev->fd;
				p->members[m].direct = p->mm[i].dev->direct;
				break;
			}
		if (!p->members[m].dev) {
			char u[37];
			fmt_uuid(md->uuid, u);
			if (rdonly && (flags & VLUN_OPEN_DEGRADED)) {
				/* a look at a degraded pool (vlunctl show, jobs,
				 * stats): the member is reported, not required */
				if (md->state != VLUN_MEMBER_FAILED)
					md->state = VLUN_MEMBER_MISSING;
				vlun_warn("pool '%s': member %u (uuid %s, last seen at '%s') is missing or unreadable; "
					  "shown as %s", p->desc->name, m, u, md->path_hint,
					  md->state == VLUN_MEMBER_FAILED ? "FAILED" : "MISSING");
				continue;
			}
			vlun_set_reason(ret_reason, "pool '%s': member %u (uuid %s, last seen at '%s') is "
					"missing; give its path too, or restore the device", p->desc->name,
					m, u, md->path_hint);
			r = -ENODEV;
			goto fail;
		}
		if (strcmp(md->path_hint, p->members[m].dev->name) != 0)
			snprintf(md->path_hint, sizeof(md->path_hint), "%s", p->members[m].dev->name);
		vlun_iostat_init(&p->members[m].stats);
		if (md->state == VLUN_MEMBER_FAILED) {
			/* Stays failed until the job thread's probe (or an
			 * admin) finds it healthy; its stale ranges are in the
			 * map and get resynced then. */
			atomic_store(&p->members[m].failed, true);
			vlun_warn("pool '%s': member %u ('%s') was marked FAILED; it is used again once it "
				  "answers and its stale ranges are resynced", p->desc->name, m, md->path_hint);
		} else {
			md->state = VLUN_MEMBER_OK;
		}
	}
	for (size_t i = 0; i < p->nmm; i++) {
		bool listed = false;
		for (uint32_t m = 0; m < p->nmembers; m++)
			listed |= p->members[m].dev == p->mm[i].dev;
		if (!listed)
			vlun_warn("pool '%s': '%s' carries this pool's label but is not in its metadata "
				  "(an interrupted add-member?); ignored", p->desc->name, p->mm[i].dev->name);
	}

	r = vlun_alloc_new(p->desc, &p->alloc);
	if (r < 0) {
		vlun_set_reason(ret_reason, "pool '%s': the metadata maps overlapping space (%s)",
				p->desc->name, strerror(-r));
		goto fail;
	}
	/* HA: members through prmap in the pool's PR mode, owner or standby
	 * (node.c); read-only opens leave PR alone */
	if (!rdonly) {
		r = pool_ha_open(p, ret_reason);
		if (r < 0)
			goto fail;
	}

	p->reg_next = registry;
	registry = p;
	pthread_mutex_unlock(&registry_lock);
	/* The holder makes the online changes vlunctl asks for (ctl.h). */
	if (!rdonly && !(flags & VLUN_OPEN_NO_LOCK)) {
		r = ctl_server_start(p);
		if (r < 0)
			vlun_warn("pool '%s': no control channel (%s): vlunctl cannot change this pool "
				  "while it is open here", p->desc->name, strerror(-r));
	}
	/* members of other pools and duplicate paths were not taken */
	cands_free(c, nc);
	*ret = p;
	return 0;

fail:
	pthread_mutex_unlock(&registry_lock);
	if (p) {
		/* mm devices belong to p now (closed by pool_free) */
		for (size_t i = 0; i < nc; i++)
			for (size_t j = 0; j < p->nmm; j++)
				if (c[i].dev == p->mm[j].dev)
					c[i].used = true;
		for (size_t i = 0; i < nc; i++)
			if (!c[i].used) {
				vlun_blkdev_close(c[i].dev);
				c[i].dev = NULL;
			}
		free(c);
		c = NULL;
		pool_free(p);
	}
	cands_free(c, nc);
	return r;
}

VLUN_EXPORT void vlun_pool_close(struct vlun_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&registry_lock);
	if (--p->refs > 0) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (struct vlun_pool **pp = &registry; *pp; pp = &(*pp)->reg_next)
		if (*pp == p) {
			*pp = p->reg_next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	snap_pool_stop(p); /* drops the snapshot engine's references first */
	if (p->nopen)
		vlun_warn("pool '%s': closed with %zu virtual disk(s) still open", p->desc->name, p->nopen);
	pool_free(p);
}

VLUN_EXPORT int vlun_pool_paths_in_use(char *const *paths, size_t n, int *ret_pid)
{
	int held = 0, pid = 0;
	for (size_t i = 0; i < n && !held; i++) {
		if (strncmp(paths[i], "pool=", 5) == 0)
			continue;
		int fd = open(paths[i], O_RDWR | O_CLOEXEC);
		if (fd < 0)
			fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = LOCK_LEN };
		if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (fl.l_type != F_UNLCK) {
			held = 1;
			pid = fl.l_pid > 0 ? fl.l_pid : 0;
		}
		close(fd);
	}
	if (ret_pid)
		*ret_pid = pid;
	return held;
}

/* ------------------------------------------------------------ controller */

void pool_ctl_queue(struct vlun_pool *p, struct ctl_work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&p->q_lock);
	*p->q_tail = w;
	p->q_tail = &w->next;
	pthread_cond_signal(&p->q_cond);
	pthread_mutex_unlock(&p->q_lock);
}

int pool_start_locked(struct vlun_pool *p)
{
	int r;
	if (!p->io) {
		r = vlun_io_engine_new(POOL_IO_DEPTH, &p->io);
		if (r < 0)
			return r;
	}
	if (!p->ctl_started) {
		r = -pthread_create(&p->ctl_thread, NULL, ctl_main, p);
		if (r < 0)
			return r;
		p->ctl_started = true;
	}
	if (!(p->flags & (VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK))) {
		/* resync and migration need the holder (only it commits) */
		r = jobs_start_locked(p);
		if (r < 0)
			vlun_warn("pool '%s': no resync/migration thread: %s", p->desc->name, strerror(-r));
	}
	return 0;
}

struct vlun_vdisk_desc *pool_find_vdisk_locked(struct vlun_pool *p, const char *name)
{
	for (uint32_t i = 0; i < p->desc->nvdisks; i++)
		if (strcmp(p->desc->vdisks[i].name, name) == 0)
			return &p->desc->vdisks[i];
	return NULL;
}

struct vlun_vdisk_desc *pool_vdesc_by_id_locked(struct vlun_pool *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->desc->nvdisks; i++)
		if (p->desc->vdisks[i].id == id)
			return &p->desc->vdisks[i];
	return NULL;
}

int pool_record_change_locked(struct vlun_pool *p, uint32_t vdisk_id, uint64_t vsector,
			      uint64_t nsectors, const struct vlun_extent *ext, uint32_t n)
{
	struct vlun_vdisk_desc *vd = pool_vdesc_by_id_locked(p, vdisk_id);
	if (!vd)
		return -ENOENT;
	if (p->npending == p->apending) {
		size_t na = p->apending ? 2 * p->apending : 16;
		struct pending_delta *np = realloc(p->pending, na * sizeof(*np));
		if (!np)
			return -ENOMEM;
		p->pending = np;
		p->apending = na;
	}
	struct pending_delta *pd = &p->pending[p->npending];
	pd->extents = malloc((n ? n : 1) * sizeof(*ext));
	if (!pd->extents)
		return -ENOMEM;
	memcpy(pd->extents, ext, n * sizeof(*ext));
	pd->vdisk_id = vdisk_id;
	pd->vsector = vsector;
	pd->nsectors = nsectors;
	pd->nextents = n;
	pd->generation = vd->generation + 1;

	struct vlun_meta_delta delta = {
		.vdisk_id = vdisk_id, .vsector = vsector, .nsectors = nsectors,
		.nextents = n, .extents = pd->extents, .generation = pd->generation,
	};
	int r = vlun_meta_apply_delta(p->desc, &delta);
	if (r < 0) {
		free(pd->extents);
		vlun_err("pool '%s': cannot apply a map change of vdisk %u at sector %llu to the "
			 "description: %s", p->desc->name, vdisk_id, (unsigned long long)vsector, strerror(-r));
		return r;
	}
	vd = pool_vdesc_by_id_locked(p, vdisk_id);
	if (vd)
		vd->generation = pd->generation;
	p->desc->generation++;
	p->npending++;
	atomic_fetch_add(&p->meta_dirty, 1);
	return 0;
}

/* Waits until every physical I/O issued before now has completed. */
void pool_epoch_drain(struct vlun_pool *p)
{
	unsigned old = atomic_fetch_add(&p->io_epoch, 1) & 1;
	for (unsigned spins = 0; atomic_load(&p->io_active[old]) > 0; spins++)
		usleep(spins < 100 ? 20 : 500);
}

static int flush_members(struct vlun_pool *p)
{
	int ret = 0;
	for (uint32_t m = 0; m < p->nmembers; m++) {
		if (!p->members[m].dev)
			continue;
		int r = vlun_blkdev_flush(p->members[m].dev);
		if (r < 0 && atomic_load(&p->members[m].failed)) {
			/* what it holds is recorded as stale elsewhere */
			vlun_debug("pool '%s': flushing failed member '%s': %s (ignored)", p->desc->name,
				   p->members[m].dev->name, strerror(-r));
			continue;
		}
		if (r < 0) {
			vlun_err("pool '%s': flushing member '%s' failed: %s", p->desc->name,
				 p->members[m].dev->name, strerror(-r));
			ret = r;
		}
	}
	return ret;
}

static void after_commit_locked(struct vlun_pool *p, unsigned long dirty_before)
{
	for (size_t i = 0; i < p->npending; i++)
		free(p->pending[i].extents);
	p->npending = 0;
	atomic_fetch_sub(&p->meta_dirty, dirty_before);
	if (p->frees_pending) {
		pool_epoch_drain(p);
		vlun_alloc_commit_done(p->alloc);
		p->frees_pending = false;
	}
}

/* The metadata copies that count: not on FAILED members (their copies go
 * stale and are rewritten by the checkpoint after they come back). The
 * per-member results are copied back into p->mm. */
static int meta_set_begin(struct vlun_pool *p, struct vlun_meta_member **ret, size_t *ret_n)
{
	struct vlun_meta_member *hm = calloc(p->nmm ? p->nmm : 1, sizeof(*hm));
	if (!hm)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < p->nmm; i++) {
		bool failed = false;
		for (uint32_t m = 0; m < p->nmembers; m++)
			if (p->members[m].dev == p->mm[i].dev)
				failed = atomic_load(&p->members[m].failed);
		if (!failed)
			hm[n++] = p->mm[i];
	}
	*ret = hm;
	*ret_n = n;
	return 0;
}

static void meta_set_end(struct vlun_pool *p, struct vlun_meta_member *hm, size_t n)
{
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < p->nmm; i++)
			if (p->mm[i].dev == hm[k].dev)
				p->mm[i] = hm[k];
	free(hm);
}

int pool_commit_locked(struct vlun_pool *p)
{
	if (p->need_full_commit)
		return commit_full_locked(p);
	return p->npending ? pool_commit_pending_locked(p) : flush_members(p);
}

int pool_commit_pending_locked(struct vlun_pool *p)
{
	if (p->need_full_commit)
		return commit_full_locked(p);
	if (p->npending == 0)
		return 0;
	if (p->flags & VLUN_OPEN_RDONLY)
		return -EROFS;
	int r = pool_ha_commit_check_locked(p);
	if (r < 0)
		return r;
	unsigned long dirty = p->npending;
	r = flush_members(p);
	if (r < 0)
		return r;
	struct vlun_meta_delta *d = calloc(p->npending, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < p->npending; i++) {
		d[i].vdisk_id = p->pending[i].vdisk_id;
		d[i].vsector = p->pending[i].vsector;
		d[i].nsectors = p->pending[i].nsectors;
		d[i].nextents = p->pending[i].nextents;
		d[i].extents = p->pending[i].extents;
		d[i].generation = p->pending[i].generation;
	}
	struct vlun_meta_member *hm;
	size_t nh;
	r = meta_set_begin(p, &hm, &nh);
	if (r == 0) {
		r = vlun_meta_commit_delta(p->meta, hm, nh, p->desc, d, p->npending);
		meta_set_end(p, hm, nh);
	}
	free(d);
	if (r < 0) {
		vlun_err("pool '%s': metadata commit of %zu change(s) failed: %s", p->desc->name,
			 p->npending, strerror(-r));
		return r;
	}
	after_commit_locked(p, dirty);
	return 0;
}

/* Full checkpoint (structural changes); includes pending deltas. */
static int commit_full_locked(struct vlun_pool *p)
{
	if (p->flags & VLUN_OPEN_RDONLY)
		return -EROFS;
	int r = pool_ha_commit_check_locked(p);
	if (r < 0)
		return r;
	unsigned long dirty = p->npending;
	r = flush_members(p);
	if (r < 0)
		return r;
	struct vlun_meta_member *hm;
	size_t nh;
	r = meta_set_begin(p, &hm, &nh);
	if (r < 0)
		return r;
	r = vlun_meta_commit(p->meta, hm, nh, p->desc);
	meta_set_end(p, hm, nh);
	if (r < 0) {
		vlun_err("pool '%s': metadata checkpoint failed: %s", p->desc->name, strerror(-r));
		return r;
	}
	p->need_full_commit = false;
	after_commit_locked(p, dirty);
	return 0;
}

static void *ctl_main(void *arg)
{
	struct vlun_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->q_lock);
		while (!p->q_head && !p->ctl_stop)
			pthread_cond_wait(&p->q_cond, &p->q_lock);
		struct ctl_work *list = p->q_head;
		p->q_head = NULL;
		p->q_tail = &p->q_head;
		bool stop = p->ctl_stop;
		pthread_mutex_unlock(&p->q_lock);
		if (!list && stop)
			break;

		/* Faults, installs and unmaps first, then one commit for all
		 * the waiters of this batch (group commit). */
		struct ctl_work *commits = NULL, **ctail = &commits;
		pthread_mutex_lock(&p->ctl_lock);
		while (list) {
			struct ctl_work *w = list;
			list = w->next;
			switch (w->kind) {
			case CTL_COMMIT:
				w->next = NULL;
				*ctail = w;
				ctail = &w->next;
				break;
			case CTL_CALL:
				w->fn(w->arg, 0);
				break;
			default:
				vdisk_ctl_run_locked(p, w);
				break;
			}
		}
		int r = 0;
		if (commits) /* fsync all members, commit what is pending */
			r = pool_commit_locked(p);
		pthread_mutex_unlock(&p->ctl_lock);
		while (commits) {
			struct ctl_work *w = commits;
			commits = w->next;
			w->fn(w->arg, r);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ management */

VLUN_EXPORT int vlun_pool_describe(struct vlun_pool *p, struct vlun_pool_desc **ret)
{
	if (!p || !ret)
		return -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	int r = vlun_pool_desc_dup(p->desc, ret);
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

VLUN_EXPORT int vlun_pool_space(struct vlun_pool *p, uint64_t *ret_total, uint64_t *ret_free)
{
	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	uint64_t t = vlun_alloc_total_sectors(p->alloc, VLUN_NO_MEMBER);
	uint64_t f = vlun_alloc_free_sectors(p->alloc, VLUN_NO_MEMBER);
	pthread_mutex_unlock(&p->ctl_lock);
	if (ret_total)
		*ret_total = t << VLUN_SECTOR_SHIFT;
	if (ret_free)
		*ret_free = f << VLUN_SECTOR_SHIFT;
	return 0;
}

static bool vdisk_open_locked(struct vlun_pool *p, uint32_t id)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (vdisk_id_of(p->open[i]) == id)
			return true;
	return false;
}

struct vlun_vdisk *pool_open_vdisk_locked(struct vlun_pool *p, uint32_t id)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (vdisk_id_of(p->open[i]) == id)
			return p->open[i];
	return NULL;
}

VLUN_EXPORT int vlun_pool_add_member(struct vlun_pool *p, const char *path, bool force, char **ret_reason)
{
	if (!p || !path)
		return -EINVAL;
	if (p->flags & VLUN_OPEN_RDONLY) {
		vlun_set_reason(ret_reason, "pool is open read-only");
		return -EROFS;
	}
	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_pool_desc *d = p->desc;
	int r;
	struct vlun_blkdev *dev = NULL;
	if (d->nmembers >= VLUN_MAX_MEMBERS) {
		vlun_set_reason(ret_reason, "pool '%s' already has %d members", d->name, VLUN_MAX_MEMBERS);
		r = -E2BIG;
		goto out;
	}
	for (uint32_t m = 0; m < p->nmembers; m++) {
		struct stat a, b;
		if (p->members[m].dev && stat(path, &a) == 0 && fstat(p->members[m].fd, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_rdev == b.st_rdev) {
			vlun_set_reason(ret_reason, "'%s' is already member %u of pool '%s'", path, m, d->name);
			r = -EEXIST;
			goto out;
		}
	}
	r = vlun_blkdev_open(path, false, !(p->flags & VLUN_OPEN_NO_DIRECT), &dev);
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot open '%s' read-write: %s", path, strerror(-r));
		goto out;
	}
	if (!(p->flags & VLUN_OPEN_NO_LOCK) && member_lock(dev->fd, true) < 0) {
		vlun_set_reason(ret_reason, "'%s' is locked by another vlun process", path);
		r = -EBUSY;
		goto out;
	}
	struct vlun_meta_member *nmm = realloc(p->mm, (p->nmm + 1) * sizeof(*nmm));
	if (!nmm) {
		r = -ENOMEM;
		goto out;
	}
	p->mm = nmm;
	struct vlun_member_desc *nmd = realloc(d->members, (d->nmembers + 1) * sizeof(*nmd));
	if (!nmd) {
		r = -ENOMEM;
		goto out;
	}
	d->members = nmd;

	struct vlun_meta_member *m = &p->mm[p->nmm];
	memset(m, 0, sizeof(*m));
	m->dev = dev;
	uint8_t muuid[VLUN_UUID_LEN];
	vlun_uuid_generate(muuid);
	r = vlun_meta_label_write(dev, d->uuid, muuid, d->name, p->mm[0].label.meta_bytes, force, &m->label);
	if (r < 0) {
		if (r == -EEXIST)
			vlun_set_reason(ret_reason, "'%s' already carries a vlun label; use force to "
					"overwrite it", path);
		else
			vlun_set_reason(ret_reason, "cannot write the label on '%s': %s", path, strerror(-r));
		goto out;
	}
	struct vlun_member_desc *md = &d->members[d->nmembers];
	memset(md, 0, sizeof(*md));
	memcpy(md->uuid, muuid, VLUN_UUID_LEN);
	md->index = d->nmembers;
	md->state = VLUN_MEMBER_OK;
	md->size_bytes = m->label.member_size ? m->label.member_size : dev->size;
	md->data_start = m->label.data_start;
	md->data_sectors = data_sectors_of(&m->label, md->size_bytes);
	snprintf(md->path_hint, sizeof(md->path_hint), "%s", path);
	if (md->data_sectors == 0) {
		vlun_set_reason(ret_reason, "'%s' is too small to hold the metadata area", path);
		r = -ENOSPC;
		goto out;
	}
	d->nmembers++;
	p->nmm++;
	p->members[p->nmembers] = (struct pool_member){ .dev = dev, .fd = dev->fd, .direct = dev->direct };
	vlun_iostat_init(&p->members[p->nmembers].stats); /* its rates count from now */
	p->nmembers++;
	r = commit_full_locked(p);
	if (r < 0) {
		/* The label stays on the device but the pool does not list it:
		 * harmless (open ignores it with a warning). */
		d->nmembers--;
		p->nmm--;
		p->nmembers--;
		vlun_set_reason(ret_reason, "cannot commit the new member '%s': %s", path, strerror(-r));
		goto out;
	}
	dev = NULL;
	r = vlun_alloc_add_member(p->alloc, md);
	if (r < 0)
		vlun_err("pool '%s': new member '%s' added but its space is not usable until reopen: %s",
			 d->name, path, strerror(-r));
	r = 0;
out:
	vlun_blkdev_close(dev);
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

VLUN_EXPORT int vlun_vdisk_create(struct vlun_pool *p, const struct vlun_vdisk_create_opts *o, char **ret_reason)
{
	if (!p || !o)
		return -EINVAL;
	if (!o->name || !vlun_name_valid(o->name)) {
		vlun_set_reason(ret_reason, "virtual disk name '%s' is not valid: use 1..%d characters of "
				"[A-Za-z0-9._-]", o->name ? o->name : "", VLUN_NAME_MAX);
		return -EINVAL;
	}
	if (o->layout < VLUN_LAYOUT_LINEAR || o->layout > VLUN_LAYOUT_THIN) {
		vlun_set_reason(ret_reason, "unknown layout %u for '%s'", o->layout, o->name);
		return -EINVAL;
	}
	if (o->size_bytes == 0 || o->size_bytes % VLUN_SECTOR_SIZE) {
		vlun_set_reason(ret_reason, "size of '%s' must be a non-zero multiple of 512 bytes", o->name);
		return -EINVAL;
	}
	uint64_t chunk = o->chunk_bytes;
	if (o->layout == VLUN_LAYOUT_THIN && !chunk)
		chunk = VLUN_THIN_CHUNK_DEFAULT;
	if (o->layout == VLUN_LAYOUT_STRIPED && !chunk)
		chunk = VLUN_STRIPE_DEFAULT;
	if (o->layout != VLUN_LAYOUT_LINEAR &&
	    (chunk % VLUN_SECTOR_SIZE || chunk < 4096 || (chunk & (chunk - 1)))) {
		vlun_set_reason(ret_reason, "chunk/stripe size %llu of '%s' must be a power of two >= 4 KiB",
				(unsigned long long)chunk, o->name);
		return -EINVAL;
	}
	if (o->layout == VLUN_LAYOUT_THIN && o->size_bytes % chunk) {
		vlun_set_reason(ret_reason, "thin disk '%s': size must be a multiple of the chunk size "
				"(%llu bytes)", o->name, (unsigned long long)chunk);
		return -EINVAL;
	}
	if (p->flags & VLUN_OPEN_RDONLY) {
		vlun_set_reason(ret_reason, "pool is open read-only");
		return -EROFS;
	}

	pthread_mutex_lock(&p->ctl_lock);
	struct vlun_pool_desc *d = p->desc;
	int r;
	if (pool_find_vdisk_locked(p, o->name)) {
		vlun_set_reason(ret_reason, "pool '%s' already has a virtual disk '%s'", d->name, o->name);
		r = -EEXIST;
		goto out;
	}
	if (d->nvdisks >= VLUN_MAX_VDISKS) {
		vlun_set_reason(ret_reason, "pool '%s' already has %d virtual disks", d->name, VLUN_MAX_VDISKS);
		r = -E2BIG;
		goto out;
	}
	struct vlun_vdisk_desc nv = { 0 };
	nv.id = d->next_vdisk_id;
	vlun_uuid_generate(nv.uuid);
	snprintf(nv.name, sizeof(nv.name), "%s", o->name);
	nv.layout = o->layout;
	nv.size_sectors = o->size_bytes >> VLUN_SECTOR_SHIFT;
	nv.chunk_sectors = o->layout == VLUN_LAYOUT_LINEAR ? 0 : chunk >> VLUN_SECTOR_SHIFT;
	nv.stripe_width = o->layout == VLUN_LAYOUT_STRIPED
				  ? (o->stripe_width ? o->stripe_width
						     : (o->members && o->nmembers ? (uint32_t)o->nmembers : d->nmembers))
				  : 0;
	nv.generation = 1;
	char why[256] = "";
	r = vlun_layout_build(p->alloc, d, &nv, o->members, o->nmembers, why, sizeof(why));
	if (r < 0) {
		vlun_set_reason(ret_reason, "cannot lay out '%s': %s", o->name, why[0] ? why : strerror(-r));
		goto out;
	}
	struct vlun_vdisk_desc *nvs = realloc(d->vdisks, (d->nvdisks + 1) * sizeof(*nvs));
	if (!nvs) {
		vlun_layout_release(p->alloc, &nv);
		free(nv.extents);
		r = -ENOMEM;
		goto out;
	}
	d->vdisks = nvs;
	d->vdisks[d->nvdisks++] = nv;
	d->next_vdisk_id++;
	d->generation++;
	r = commit_full_locked(p);
	if (r < 0) {
		d->nvdisks--;
		d->next_vdisk_id--;
		vlun_layout_release(p->alloc, &nv);
		p->frees_pending = true;
		free(nv.extents);
		vlun_set_reason(ret_reason, "cannot commit the new virtual disk '%s': %s", o->name, strerror(-r));
		goto out;
	}
	vlun_info("pool '%s': created virtual disk '%s'", d->name, o->name);
out:
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

/* -EBUSY with the snapshot engine's reason when it refuses op ("resize",
 * "delete") on vdisk vd, else 0 (ctl_lock held). */
static int snap_refused_locked(struct vlun_pool *p, const struct vlun_vdisk_desc *vd, const char *op,
			       char **ret_reason)
{
	char sw[200];
	const char *refuse = snap_refuse_locked(p, vd, op, sw, sizeof(sw));

	if (!refuse)
		return 0;
	vlun_set_reason(ret_reason, "%s", refuse);
	return -EBUSY;
}

VLUN_EXPORT int vlun_vdisk_resize(struct vlun_pool *p, const char *name, uint64_t new_size_bytes,
				 bool force, char **ret_reason)
{
	if (!p || !name)
		return -EINVAL;
	if (p->flags & VLUN_OPEN_RDONLY) {
		vlun_set_reason(ret_reason, "pool is open read-only");
		return -EROFS;
	}
	if (new_size_bytes == 0 || new_size_bytes % VLUN_SECTOR_SIZE) {
		vlun_set_reason(ret_reason, "new size of '%s' must be a non-zero multiple of 512 bytes", name);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->ctl_lock);
	int r;
	struct vlun_vdisk_desc *vd = pool_find_vdisk_locked(p, name);
	if (!vd) {
		vlun_set_reason(ret_reason, "pool '%s' has no virtual disk '%s'", p->desc->name, name);
		r = -ENOENT;
		goto out;
	}
	uint64_t ns = new_size_bytes >> VLUN_SECTOR_SHIFT, old = vd->size_sectors;
	if (ns == old) {
		r = 0;
		goto out;
	}
	if (vd->layout == VLUN_LAYOUT_THIN && ns % vd->chunk_sectors) {
		vlun_set_reason(ret_reason, "thin disk '%s': size must be a multiple of the chunk size (%llu bytes)",
				name, (unsigned long long)(vd->chunk_sectors << VLUN_SECTOR_SHIFT));
		r = -EINVAL;
		goto out;
	}
	r = snap_refused_locked(p, vd, "resize", ret_reason);
	if (r < 0)
		goto out;
	struct vlun_vdisk *open = pool_open_vdisk_locked(p, vd->id);
	if (ns < old && (open || !force)) {
		vlun_set_reason(ret_reason, open ? "virtual disk '%s' is open for I/O; shrinking it online "
					  "would cut off data in use" :
					  "shrinking '%s' destroys the data beyond the new size; use force",
				name);
		r = open ? -EBUSY : -EPERM;
		goto out;
	}
	struct vlun_vdisk_desc saved = *vd;
	struct vlun_extent *saved_ext = malloc((vd->nextents ? vd->nextents : 1) * sizeof(*saved_ext));
	if (!saved_ext) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(saved_ext, vd->extents, vd->nextents * sizeof(*saved_ext));
	char why[256] = "";
	r = vlun_layout_resize(p->alloc, p->desc, vd, ns, why, sizeof(why));
	if (r < 0) {
		free(saved_ext);
		vlun_set_reason(ret_reason, "cannot resize '%s': %s", name, why[0] ? why : strerror(-r));
		goto out;
	}
	vd->generation++;
	p->desc->generation++;
	if (ns < old)
		p->frees_pending = true;
	if (open) {
		/* Publish the grown tail to the fast path. */
		uint32_t first = 0;
		while (first < vd->nextents && vd->extents[first].vsector + vd->extents[first].nsectors <= old)
			first++;
		struct vlun_extent *tail = NULL;
		uint32_t nt = vd->nextents - first;
		tail = malloc((nt ? nt : 1) * sizeof(*tail));
		if (!tail) {
			r = -ENOMEM;
		} else {
			memcpy(tail, vd->extents + first, nt * sizeof(*tail));
			if (nt && tail[0].vsector < old) {
				uint64_t cut = old - tail[0].vsector;
				tail[0].vsector += cut;
				tail[0].nsectors -= cut;
				if (tail[0].member != VLUN_NO_MEMBER)
					tail[0].psector += cut;
				if (tail[0].flags & VLUN_EXT_ALT_EXISTS)
					tail[0].alt_psector += cut;
			}
			r = vlun_map_resize(vdisk_map_of(open), ns, tail, nt);
			free(tail);
		}
	}
	if (r == 0)
		r = commit_full_locked(p);
	if (r < 0) {
		/* Roll back: every range of the resized disk is released
		 * (pending), then the old extents take theirs back out of the
		 * pending (or free) set — what a shrink freed is pending too —
		 * so only the grown space stays freed. */
		vlun_layout_release(p->alloc, vd);
		free(vd->extents);
		*vd = saved;
		vd->extents = saved_ext;
		vd->extents_cap = 0;
		for (uint32_t i = 0; i < vd->nextents; i++) {
			const struct vlun_extent *e = &vd->extents[i];
			int u = 0;
			if (e->member != VLUN_NO_MEMBER && !(e->flags & VLUN_EXT_INVALID))
				u = vlun_alloc_unfree(p->alloc, e->member, e->psector, e->nsectors);
			if (u == 0 && (e->flags & VLUN_EXT_ALT_EXISTS) && e->alt_member != VLUN_NO_MEMBER)
				u = vlun_alloc_unfree(p->alloc, e->alt_member, e->alt_psector, e->nsectors);
			if (u < 0)
				vlun_err("pool '%s': rolling back the resize of '%s': cannot take back sectors "
					 "%llu+%llu of member %u: %s", p->desc->name, name,
					 (unsigned long long)e->psector, (unsigned long long)e->nsectors, e->member,
					 strerror(-u));
		}
		p->frees_pending = true;
		if (open)
			vlun_map_resize(vdisk_map_of(open), old, NULL, 0);
		vlun_set_reason(ret_reason, "cannot commit the resize of '%s': %s", name, strerror(-r));
		goto out;
	}
	free(saved_ext);
	vlun_info("pool '%s': virtual disk '%s' resized to %llu bytes", p->desc->name, name,
		  (unsigned long long)new_size_bytes);
out:
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

VLUN_EXPORT int vlun_vdisk_delete(struct vlun_pool *p, const char *name, char **ret_reason)
{
	if (!p || !name)
		return -EINVAL;
	if (p->flags & VLUN_OPEN_RDONLY) {
		vlun_set_reason(ret_reason, "pool is open read-only");
		return -EROFS;
	}
	pthread_mutex_lock(&p->ctl_lock);
	int r;
	struct vlun_pool_desc *d = p->desc;
	struct vlun_vdisk_desc *vd = pool_find_vdisk_locked(p, name);
	if (!vd) {
		vlun_set_reason(ret_reason, "pool '%s' has no virtual disk '%s'", d->name, name);
		r = -ENOENT;
		goto out;
	}
	r = snap_refused_locked(p, vd, "delete", ret_reason);
	if (r < 0)
		goto out;
	if (vdisk_open_locked(p, vd->id)) {
		vlun_set_reason(ret_reason, "virtual disk '%s' is open for I/O; remove its backstore first", name);
		r = -EBUSY;
		goto out;
	}
	size_t idx = (size_t)(vd - d->vdisks);
	struct vlun_vdisk_desc gone = *vd;
	memmove(&d->vdisks[idx], &d->vdisks[idx + 1], (d->nvdisks - idx - 1) * sizeof(*vd));
	d->nvdisks--;
	d->generation++;
	r = commit_full_locked(p);
	if (r < 0) {
		memmove(&d->vdisks[idx + 1], &d->vdisks[idx], (d->nvdisks - idx) * sizeof(*vd));
		d->vdisks[idx] = gone;
		d->nvdisks++;
		vlun_set_reason(ret_reason, "cannot commit the deletion of '%s': %s", name, strerror(-r));
		goto out;
	}
	/* The space is recorded free by the commit above; it is reusable
	 * once that commit is durable, which it is now. */
	vlun_layout_release(p->alloc, &gone);
	pool_epoch_drain(p);
	vlun_alloc_commit_done(p->alloc);
	free(gone.extents);
	vlun_info("pool '%s': deleted virtual disk '%s'", d->name, name);
out:
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}
