/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * node.c — gateway nodes sharing a pool's physical LUNs (issue 6).
 *
 * Node id and key. Every process has a node id: vlun_set_node_id(), else
 * $VLUN_NODE_ID, else the first line of /etc/vlun/node-id
 * ($VLUN_NODE_ID_FILE), else the hostname. Its SCSI-3 PR key is
 * prmap_key_from_node_id(id): the same id gives the same key everywhere.
 *
 * Members through prmap. A writable open opens every member that is a
 * block device through prmap in the pool's PR mode (desc->pr_mode, NODE
 * record): shared (default) registers every path and joins or takes Write
 * Exclusive - All Registrants; exclusive registers and reserves Write
 * Exclusive - Registrants Only; none does nothing. A member that is a
 * regular file, a loop device or anything that is not a SCSI disk or a
 * multipath map has no PR: it is opened as before, with one INFO line.
 * Read-only opens (VLUN_OPEN_RDONLY: vlunctl show, the handler's degraded
 * look) do nothing with PR: they must not change who is registered, and a
 * registration would also grant write access under types 5-8.
 *
 * Ownership. The NODE record lists the nodes (id, key, role, lock tag,
 * epoch). Exactly one node is the OWNER: the only one that writes data or
 * metadata. A writable open becomes the owner when the metadata names no
 * owner or names this node, and no other node holds an exclusive
 * reservation; otherwise it is a STANDBY: reads work, writes fail with
 * VLUN_E_FENCED, no commits, no jobs — until it takes the lock.
 *
 * The lock (vlun_pool_lock; tcmu-runner's lock callout with ALUA implicit
 * failover, vlunctl pool takeover): read the metadata on disk to learn the
 * current owner; PREEMPT AND ABORT its key on every member with PR (its
 * queued commands are aborted, its later writes fail with RESERVATION
 * CONFLICT); read the metadata again (nothing changes it any more) and
 * make it this process's state (maps of the open disks, allocator);
 * map_epoch + 1; this node OWNER, the old owner FENCED; one checkpoint.
 *
 * Fencing. A node learns that it was preempted (1) when a member write
 * fails with reservation conflict (-EBADE): the fast path stops writing at
 * once and the controller confirms with prmap_refresh; (2) from
 * prmap_refresh (lock state queries, pool_ha_refresh); (3) before any
 * commit of a pool with several nodes, when the newest checkpoint header
 * on disk has a newer map_epoch than its own. A fenced pool writes no data
 * block, commits nothing, runs no jobs; its pending map changes are
 * dropped by the next lock, which reloads everything from disk. Without PR
 * (files, mode none) only (3) fences: the epoch check narrows the window
 * but only PR stops a stale node's writes in the target.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "node.h"
#include "pool_priv.h"

#define NO_TAG 0xffffu

struct pool_ha {
	char id[VLUN_NODE_ID_MAX + 1];
	uint64_t key;
	uint32_t mode;                  /* enum vlun_pr_mode at open */
	int state;                      /* enum vlun_lock_state */
	bool keep;                      /* close leaves PR as is */
	struct prmap *pr[VLUN_MAX_MEMBERS];
	char *pr_path[VLUN_MAX_MEMBERS];
	bool pr_file[VLUN_MAX_MEMBERS]; /* test transport over a file */
};

static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;
static char node_id_set[VLUN_NODE_ID_MAX + 1];
static const struct prmap_transport *test_transport;
static unsigned test_npaths = 1;

static bool id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VLUN_NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

VLUN_EXPORT int vlun_set_node_id(const char *id)
{
	if (id && !id_valid(id))
		return -EINVAL;
	pthread_mutex_lock(&node_lock);
	snprintf(node_id_set, sizeof(node_id_set), "%s", id ? id : "");
	pthread_mutex_unlock(&node_lock);
	return 0;
}

/* The first line of a file, trimmed. */
static int read_id_file(const char *path, char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -ENODATA;
	}
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = 0;
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = 0;
	if (!id_valid(line))
		return -EINVAL;
	snprintf(buf, len, "%s", line);
	return 0;
}

VLUN_EXPORT int vlun_node_id(char *buf, size_t len, uint64_t *ret_key)
{
	char id[VLUN_NODE_ID_MAX + 1] = "";
	const char *env, *file;
	int r;

	if (!buf || len == 0)
		return -EINVAL;
	pthread_mutex_lock(&node_lock);
	snprintf(id, sizeof(id), "%s", node_id_set);
	pthread_mutex_unlock(&node_lock);
	env = getenv("VLUN_NODE_ID");
	if (!id[0] && env && *env) {
		if (!id_valid(env)) {
			vlun_err("node id: $VLUN_NODE_ID '%s' is not valid (1-%d printable characters, no spaces)",
				 env, VLUN_NODE_ID_MAX);
			return -EINVAL;
		}
		snprintf(id, sizeof(id), "%s", env);
	}
	file = getenv("VLUN_NODE_ID_FILE");
	if (!file || !*file)
		file = "/etc/vlun/node-id";
	if (!id[0]) {
		r = read_id_file(file, id, sizeof(id));
		if (r < 0 && r != -ENOENT)
			vlun_warn("node id: cannot use '%s' (%s); using the hostname. Write one id (1-%d "
				  "printable characters) on its first line", file, strerror(-r), VLUN_NODE_ID_MAX);
		if (r < 0)
			id[0] = 0;
	}
	if (!id[0]) {
		char h[256] = "";

		if (gethostname(h, sizeof(h) - 1) < 0 || !h[0] || !id_valid(h)) {
			vlun_err("node id: no $VLUN_NODE_ID, no %s and no usable hostname; set one of them", file);
			return -ENOENT;
		}
		snprintf(id, sizeof(id), "%s", h);
	}
	if (ret_key) {
		r = prmap_key_from_node_id(id, ret_key);
		if (r < 0)
			return r;
	}
	snprintf(buf, len, "%s", id);
	return 0;
}

void pool_ha_set_test_transport(const struct prmap_transport *t)
{
	test_transport = t;
}

void pool_ha_set_test_paths(unsigned n)
{
	test_npaths = n == 2 ? 2 : 1;
}

/* Test only: the transport of file members. pool_ha_set_test_transport()
 * (engine unit tests), else — for a copy of the library that the test
 * cannot reach, such as the one inside handler_vlun.so under the handler
 * tests' fake runner — with $VLUN_TEST_PR_TRANSPORT set, the function
 * vlun_test_pr_transport() that the executable exports (-rdynamic). In
 * production neither is set: files have no PR. */
static const struct prmap_transport *file_transport(void)
{
	const struct prmap_transport *(*fn)(void);

	if (test_transport || !getenv("VLUN_TEST_PR_TRANSPORT"))
		return test_transport;
	*(void **)&fn = dlsym(RTLD_DEFAULT, "vlun_test_pr_transport");
	return fn ? fn() : NULL;
}

static const char *mode_name(uint32_t m)
{
	return m == VLUN_PR_EXCLUSIVE ? "exclusive" : m == VLUN_PR_NONE ? "none" : "shared";
}

static void set_writable(struct vlun_pool *p, int state)
{
	p->ha->state = state;
	atomic_store(&p->ha_fenced, state != VLUN_LOCK_OWNER);
}

static struct vlun_node_desc *node_find(struct vlun_pool_desc *d, const char *id)
{
	for (uint32_t i = 0; i < d->nnodes; i++)
		if (strcmp(d->nodes[i].id, id) == 0)
			return &d->nodes[i];
	return NULL;
}

static struct vlun_node_desc *node_owner(struct vlun_pool_desc *d)
{
	for (uint32_t i = 0; i < d->nnodes; i++)
		if (d->nodes[i].role == VLUN_NODE_OWNER)
			return &d->nodes[i];
	return NULL;
}

/* This node's entry (added if missing; the oldest non-owner entry is
 * dropped when the table is full). NULL only if every entry is an owner. */
static struct vlun_node_desc *node_me(struct vlun_pool *p)
{
	struct vlun_pool_desc *d = p->desc;
	struct vlun_node_desc *n = node_find(d, p->ha->id);

	if (n)
		return n;
	if (d->nnodes == VLUN_MAX_NODES) {
		uint32_t old = UINT32_MAX;

		for (uint32_t i = 0; i < d->nnodes; i++)
			if (d->nodes[i].role != VLUN_NODE_OWNER &&
			    (old == UINT32_MAX || d->nodes[i].since < d->nodes[old].since))
				old = i;
		if (old == UINT32_MAX)
			return NULL;
		vlun_info("pool '%s': node table full: forgetting node '%s'", d->name, d->nodes[old].id);
		d->nodes[old] = d->nodes[--d->nnodes];
	}
	n = &d->nodes[d->nnodes++];
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", p->ha->id);
	n->lock_tag = NO_TAG;
	return n;
}

static void node_set(struct vlun_node_desc *n, uint64_t key, uint32_t role, uint32_t tag, uint64_t epoch)
{
	n->key = key;
	n->role = role;
	n->lock_tag = tag;
	n->since = (uint64_t)time(NULL);
	n->epoch = epoch;
}

/* ------------------------------------------------------------ members */

/* Opens member m through prmap (attach_only: discover, no PR command).
 * 1 when the member has no PR (skipped, said at INFO), 0 opened,
 * -EBUSY reserved by another key in a way the mode does not admit. */
static int member_pr_open(struct vlun_pool *p, uint32_t m, bool attach_only, char **ret_reason)
{
	struct pool_ha *ha = p->ha;
	const char *path = ha->pr_path[m];
	struct prmap_opts o = {
		.mode = ha->mode == VLUN_PR_EXCLUSIVE ? PRMAP_EXCLUSIVE : PRMAP_SHARED,
		.key = ha->key,
	};
	struct prmap *h = NULL;
	char *why = NULL;
	int r;

	if (ha->pr_file[m]) {
		char second[PATH_MAX + 8];
		const char *paths[2] = { path, second };

		snprintf(second, sizeof(second), "%s:p2", path);
		o.transport = file_transport();
		if (attach_only)
			r = prmap_attach_paths(path, paths, test_npaths, &o, &h, &why);
		else
			r = prmap_open_paths(path, paths, test_npaths, &o, &h, &why);
	} else if (attach_only) {
		r = prmap_attach(path, &o, &h, &why);
	} else {
		r = prmap_open(path, &o, &h, &why);
	}
	if (r == -EOPNOTSUPP || r == -EINVAL || r == -ENOENT || r == -ENODEV) {
		vlun_info("pool '%s': member %u ('%s') has no SCSI persistent reservations (%s); it is used "
			  "without them", p->desc->name, m, path, why ? why : strerror(-r));
		free(why);
		return 1;
	}
	if (r < 0) {
		vlun_set_reason(ret_reason, "member %u ('%s'): %s", m, path, why ? why : strerror(-r));
		free(why);
		return r;
	}
	free(why);
	prmap_free(ha->pr[m]);
	ha->pr[m] = h;
	return 0;
}


/* pr_path/pr_file: which members can have PR at all. */
static void members_classify(struct vlun_pool *p)
{
	struct pool_ha *ha = p->ha;

	for (uint32_t m = 0; m < p->nmembers; m++) {
		struct stat st;
		const char *path;

		if (!p->members[m].dev)
			continue;
		path = p->members[m].dev->name;
		if (stat(path, &st) < 0) {
			vlun_info("pool '%s': member %u ('%s'): %s; no persistent reservations on it",
				  p->desc->name, m, path, strerror(errno));
			continue;
		}
		if (S_ISREG(st.st_mode) && !file_transport()) {
			vlun_info("pool '%s': member %u ('%s') is a regular file: no persistent reservations on it",
				  p->desc->name, m, path);
			continue;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			continue;
		ha->pr_path[m] = strdup(path);
		ha->pr_file[m] = S_ISREG(st.st_mode);
	}
}

int pool_ha_open(struct vlun_pool *p, char **ret_reason)
{
	struct pool_ha *ha;
	struct vlun_node_desc *owner, *me;
	bool conflict = false;
	char *why = NULL;
	int r;

	ha = calloc(1, sizeof(*ha));
	if (!ha)
		return -ENOMEM;
	r = vlun_node_id(ha->id, sizeof(ha->id), &ha->key);
	if (r < 0) {
		free(ha);
		vlun_set_reason(ret_reason, "pool '%s': no node id for this node (%s); set $VLUN_NODE_ID or "
				"/etc/vlun/node-id", p->desc->name, strerror(-r));
		return r;
	}
	ha->mode = p->desc->pr_mode;
	ha->state = VLUN_LOCK_UNLOCKED;
	p->ha = ha;
	if (ha->mode != VLUN_PR_NONE)
		members_classify(p);

	owner = node_owner(p->desc);
	bool other_owner = owner && strcmp(owner->id, ha->id) != 0;
	for (uint32_t m = 0; m < p->nmembers; m++) {
		if (!ha->pr_path[m])
			continue;
		/* shared: every node registers (standby too); exclusive: a
		 * standby only finds the paths, the lock registers it */
		bool attach = other_owner && ha->mode == VLUN_PR_EXCLUSIVE;

		r = member_pr_open(p, m, attach, &why);
		if (r == -EBUSY) {
			/* another node reserved it exclusively: we are standby */
			vlun_warn("pool '%s': %s; this node is standby", p->desc->name, why);
			free(why);
			why = NULL;
			conflict = true;
			r = member_pr_open(p, m, true, &why);
		}
		if (r < 0) {
			vlun_set_reason(ret_reason, "pool '%s': persistent reservations (mode %s, node '%s', key "
					"0x%" PRIx64 "): %s", p->desc->name, mode_name(ha->mode), ha->id, ha->key,
					why ? why : strerror(-r));
			free(why);
			pool_ha_close(p);
			return r;
		}
		free(why);
		why = NULL;
	}
	if (other_owner || conflict) {
		set_writable(p, VLUN_LOCK_UNLOCKED);
		vlun_warn("pool '%s': node '%s' (key 0x%" PRIx64 ") opens it as STANDBY: %s. Reads work; "
			  "writes fail (fenced) until this node takes the lock (ALUA failover to this gateway, "
			  "or vlunctl pool takeover --node-id %s)", p->desc->name, ha->id, ha->key,
			  other_owner ? "the metadata names another owner" : "another key holds the reservation",
			  ha->id);
		if (other_owner)
			vlun_info("pool '%s': owner is node '%s' (key 0x%" PRIx64 ", epoch %" PRIu64 ")",
				  p->desc->name, owner->id, owner->key, owner->epoch);
		return 0;
	}
	me = node_me(p);
	if (me && (me->role != VLUN_NODE_OWNER || me->key != ha->key)) {
		node_set(me, ha->key, VLUN_NODE_OWNER, me->lock_tag, p->desc->map_epoch);
		p->need_full_commit = true;
	}
	set_writable(p, VLUN_LOCK_OWNER);
	vlun_info("pool '%s': node '%s' (key 0x%" PRIx64 ", PR mode %s) is the owner, epoch %" PRIu64,
		  p->desc->name, ha->id, ha->key, mode_name(ha->mode), p->desc->map_epoch);
	return 0;
}

void pool_ha_close(struct vlun_pool *p)
{
	struct pool_ha *ha = p ? p->ha : NULL;

	if (!ha)
		return;
	for (uint32_t m = 0; m < VLUN_MAX_MEMBERS; m++) {
		if (ha->keep || ha->state == VLUN_LOCK_FENCED)
			prmap_free(ha->pr[m]);
		else
			prmap_close(ha->pr[m]);
		free(ha->pr_path[m]);
	}
	free(ha);
	p->ha = NULL;
}

void pool_ha_keep_on_close(struct vlun_pool *p, bool keep)
{
	if (p && p->ha)
		p->ha->keep = keep;
}

struct prmap *pool_ha_member_pr(struct vlun_pool *p, uint32_t m)
{
	if (!p || !p->ha || m >= VLUN_MAX_MEMBERS)
		return NULL;
	return p->ha->pr[m];
}

/* ------------------------------------------------------------ fencing */

static void fence_locked(struct vlun_pool *p, const char *why)
{
	struct pool_ha *ha = p->ha;

	atomic_store(&p->ha_fenced, true);
	if (ha->state == VLUN_LOCK_FENCED)
		return;
	ha->state = VLUN_LOCK_FENCED;
	vlun_err("pool '%s': node '%s' (key 0x%" PRIx64 ") is FENCED: %s. It writes no data and no metadata "
		 "from now on and its jobs stop; %zu pending map change(s) are dropped at the next read or lock. "
		 "See which node owns the pool with 'vlunctl pool nodes'; to make this node the owner again, "
		 "fail over back to this gateway (the handler's lock reloads the metadata from disk) or run "
		 "'vlunctl pool takeover --node-id %s'", p->desc->name, ha->id, ha->key, why, p->npending, ha->id);
}

static bool several_nodes(const struct vlun_pool_desc *d)
{
	return d->nnodes > 1;
}

/* The newest epoch on disk (any readable member). */
static int disk_epoch(struct vlun_pool *p, uint64_t *ret_epoch)
{
	int first = -ENODEV;

	for (size_t i = 0; i < p->nmm; i++) {
		uint64_t e;
		int r = vlun_meta_peek_epoch(&p->mm[i], p->uuid, NULL, &e);

		if (r == 0) {
			*ret_epoch = e;
			return 0;
		}
		first = r;
	}
	return first;
}

int pool_ha_commit_check_locked(struct vlun_pool *p)
{
	struct pool_ha *ha = p->ha;
	uint64_t e = 0;
	int r;

	if (!ha)
		return 0;
	if (ha->state != VLUN_LOCK_OWNER) {
		vlun_warn("pool '%s': metadata commit refused: node '%s' is %s, not the owner", p->desc->name,
			  ha->id, ha->state == VLUN_LOCK_FENCED ? "fenced" : "standby");
		return -EPERM;
	}
	if (!several_nodes(p->desc))
		return 0;
	r = disk_epoch(p, &e);
	if (r < 0) {
		vlun_err("pool '%s': cannot read the map epoch on disk before a commit: %s", p->desc->name,
			 strerror(-r));
		return r;
	}
	if (e > p->desc->map_epoch) {
		char why[160];

		snprintf(why, sizeof(why), "the map epoch on disk is %" PRIu64 ", newer than this node's %" PRIu64
			 " (another node took the pool over)", e, p->desc->map_epoch);
		fence_locked(p, why);
		return -EPERM;
	}
	return 0;
}

void pool_ha_conflict_locked(struct vlun_pool *p, uint32_t member, int res)
{
	struct pool_ha *ha = p->ha;
	struct prmap *h = ha && member < VLUN_MAX_MEMBERS ? ha->pr[member] : NULL;
	char why[256];

	if (!ha)
		return;
	if (h && (prmap_refresh(h, NULL) == -EPERM || prmap_fenced(h)))
		snprintf(why, sizeof(why), "member %u: a write met RESERVATION CONFLICT and key 0x%" PRIx64
			 " is no longer registered (preempted by another node)", member, ha->key);
	else
		snprintf(why, sizeof(why), "member %u: a write met RESERVATION CONFLICT (%s)%s", member,
			 strerror(-res), h ? "; the key is registered but another reservation excludes it" : "");
	fence_locked(p, why);
}

int pool_ha_refresh(struct vlun_pool *p)
{
	struct pool_ha *ha = p ? p->ha : NULL;
	int ret = 0;

	if (!ha)
		return 0;
	pthread_mutex_lock(&p->ctl_lock);
	for (uint32_t m = 0; m < p->nmembers; m++) {
		int r;

		if (!ha->pr[m] || ha->state != VLUN_LOCK_OWNER)
			continue;
		r = prmap_refresh(ha->pr[m], NULL);
		if (r == -EPERM) {
			char why[160];

			snprintf(why, sizeof(why), "member %u: key 0x%" PRIx64 " is no longer registered "
				 "(preempted by another node)", m, ha->key);
			fence_locked(p, why);
			ret = -EPERM;
		} else if (r < 0 && !ret) {
			ret = r;
		}
	}
	pthread_mutex_unlock(&p->ctl_lock);
	return ret;
}

/* ------------------------------------------------------------ the lock */

/* Reads the newest metadata on disk. */
static int disk_load(struct vlun_pool *p, struct vlun_pool_desc **ret_desc, struct vlun_meta **ret_meta,
		     char **ret_reason)
{
	char why[256] = "";
	int r = vlun_meta_load(p->mm, p->nmm, ret_desc, ret_meta, why, sizeof(why));

	if (r < 0)
		vlun_set_reason(ret_reason, "pool '%s': cannot read the metadata on disk: %s", p->desc->name,
				why[0] ? why : strerror(-r));
	return r;
}

/* Makes the metadata read from disk this process's state. The other node
 * may have changed maps, allocated, freed, migrated; it must not have
 * changed the set of members or the size of a disk open here. */
static int reload_locked(struct vlun_pool *p, struct vlun_pool_desc *nd, struct vlun_meta *nm,
			 char **ret_reason)
{
	struct vlun_alloc *na = NULL;
	int r;

	if (nd->nmembers != p->nmembers) {
		vlun_set_reason(ret_reason, "pool '%s': another node changed the members (%u -> %u); close and "
				"reopen the pool on this node (restart the handler)", p->desc->name, p->nmembers,
				nd->nmembers);
		return -ESTALE;
	}
	for (uint32_t m = 0; m < nd->nmembers; m++)
		if (memcmp(nd->members[m].uuid, p->desc->members[m].uuid, VLUN_UUID_LEN) != 0) {
			vlun_set_reason(ret_reason, "pool '%s': member %u is another device on disk; close and "
					"reopen the pool", p->desc->name, m);
			return -ESTALE;
		}
	for (size_t i = 0; i < p->nopen; i++) {
		uint32_t id = vdisk_id_of(p->open[i]);
		const struct vlun_vdisk_desc *v = NULL;

		for (uint32_t k = 0; k < nd->nvdisks; k++)
			if (nd->vdisks[k].id == id)
				v = &nd->vdisks[k];
		if (!v || v->size_sectors != vlun_map_size(vdisk_map_of(p->open[i]))) {
			vlun_set_reason(ret_reason, "pool '%s': virtual disk %u open here was %s by another node; "
					"close and reopen it", p->desc->name, id, v ? "resized" : "deleted");
			return -ESTALE;
		}
	}
	r = vlun_alloc_new(nd, &na);
	if (r < 0) {
		vlun_set_reason(ret_reason, "pool '%s': the metadata on disk maps overlapping space (%s)",
				p->desc->name, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < p->nopen; i++) {
		uint32_t id = vdisk_id_of(p->open[i]);

		for (uint32_t k = 0; k < nd->nvdisks; k++) {
			const struct vlun_vdisk_desc *v = &nd->vdisks[k];

			if (v->id != id)
				continue;
			r = vlun_map_set(vdisk_map_of(p->open[i]), 0, v->size_sectors, v->extents, v->nextents);
			if (r < 0) {
				/* maps already set stay on the new state: the pool cannot
				 * go back; it stays fenced */
				vlun_alloc_free_all(na);
				vlun_set_reason(ret_reason, "pool '%s': cannot install the map of disk %u read "
						"from disk: %s; close and reopen the pool", p->desc->name, id,
						strerror(-r));
				return r;
			}
		}
	}
	for (uint32_t m = 0; m < nd->nmembers; m++) {
		snprintf(nd->members[m].path_hint, sizeof(nd->members[m].path_hint), "%s", p->desc->members[m].path_hint);
		atomic_store(&p->members[m].failed, nd->members[m].state == VLUN_MEMBER_FAILED);
	}
	for (size_t i = 0; i < p->npending; i++)
		free(p->pending[i].extents);
	p->npending = 0;
	atomic_store(&p->meta_dirty, 0);
	p->frees_pending = false;
	vlun_alloc_free_all(p->alloc);
	p->alloc = na;
	vlun_pool_desc_free(p->desc);
	p->desc = nd;
	vlun_meta_free(p->meta);
	p->meta = nm;
	return 0;
}

/* A standby's maps are the ones it loaded; the owner keeps allocating
 * (thin chunks, migrations) and committing. tcmu-runner does not call the
 * handler's lock for reads (implicit ALUA only reopens the device on a
 * read lock; docs/pr.md), so every read of a standby (or of a fenced
 * node) first looks whether
 * the metadata on disk moved (vlun_meta_peek_changed: 3 x 4 KiB) and, if
 * so, makes it its state, as the lock does, without taking ownership. */
int pool_ha_standby_sync(struct vlun_pool *p)
{
	struct vlun_pool_desc *nd = NULL;
	struct vlun_meta *nm = NULL;
	char *why = NULL;
	bool changed = false;
	int r = 0;

	if (!p || !p->ha)
		return 0;
	pthread_mutex_lock(&p->ctl_lock);
	/* a fenced node too: its maps are the ones it had when the other node
	 * took over, and tcmu-runner keeps sending it reads (it believes it
	 * still holds the lock until a command fails FENCED). The state stays
	 * FENCED; what was pending here could never be committed anyway. */
	if (p->ha->state == VLUN_LOCK_OWNER)
		goto out;
	r = vlun_meta_peek_changed(p->meta, p->mm, p->nmm, &changed);
	if (r < 0) {
		vlun_err("pool '%s': standby read: cannot look at the metadata on disk (%s); the read fails "
			 "FENCED so that tcmu-runner reopens the device", p->desc->name, strerror(-r));
		goto out;
	}
	if (!changed)
		goto out;
	r = disk_load(p, &nd, &nm, &why);
	if (r == 0) {
		r = reload_locked(p, nd, nm, &why);
		if (r < 0) {
			vlun_pool_desc_free(nd);
			vlun_meta_free(nm);
		}
	}
	if (r < 0)
		vlun_err("pool '%s': standby read: cannot take over the owner's newer maps: %s; the read fails "
			 "FENCED so that tcmu-runner reopens the device", p->desc->name, why ? why : strerror(-r));
	free(why);
out:
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

/* Member m after the victim's key is gone: registered, with the mode's
 * reservation taken or joined. */
static int member_take(struct vlun_pool *p, uint32_t m, uint64_t victim, char **ret_reason)
{
	struct pool_ha *ha = p->ha;
	int r;

	if (!ha->pr_path[m])
		return 0;
	if (victim && ha->pr[m]) {
		r = prmap_preempt(ha->pr[m], victim, true);
		if (r == 0)
			return 0;
		if (r != -ENOENT) {
			vlun_set_reason(ret_reason, "member %u: PREEMPT AND ABORT of key 0x%" PRIx64 " failed: %s",
					m, victim, prmap_last_error(ha->pr[m]));
			return r;
		}
	}
	r = member_pr_open(p, m, false, ret_reason);
	return r > 0 ? 0 : r;
}

VLUN_EXPORT int vlun_pool_lock(struct vlun_pool *p, uint16_t tag, char **ret_reason)
{
	struct vlun_pool_desc *dd = NULL, *nd = NULL;
	struct vlun_meta *dm = NULL, *nm = NULL;
	struct vlun_node_desc *owner, *me;
	struct pool_ha *ha;
	uint64_t victim = 0, old_epoch;
	char victim_id[VLUN_NODE_ID_MAX + 1] = "";
	int r;

	if (!p)
		return -EINVAL;
	ha = p->ha;
	if (!ha) {
		vlun_set_reason(ret_reason, "pool '%s' is open read-only: it cannot take the lock", p->desc->name);
		return -EROFS;
	}
	pthread_mutex_lock(&p->ctl_lock);
	/* 1. who owns it on disk now */
	r = disk_load(p, &dd, &dm, ret_reason);
	if (r < 0)
		goto out;
	owner = node_owner(dd);
	if (owner && strcmp(owner->id, ha->id) != 0 && owner->key != ha->key) {
		victim = owner->key;
		snprintf(victim_id, sizeof(victim_id), "%s", owner->id);
	}
	if (ha->state == VLUN_LOCK_OWNER && !victim && dd->map_epoch <= p->desc->map_epoch) {
		/* already ours: keep it, record the tag */
		me = node_me(p);
		if (me && me->lock_tag != tag) {
			me->lock_tag = tag;
			p->need_full_commit = true;
			r = pool_commit_locked(p);
			if (r < 0)
				vlun_set_reason(ret_reason, "pool '%s': committing the lock tag failed: %s",
						p->desc->name, strerror(-r));
		}
		goto out;
	}
	/* 2. fence the previous owner on every member */
	for (uint32_t m = 0; m < p->nmembers; m++) {
		r = member_take(p, m, victim, ret_reason);
		if (r < 0)
			goto out;
	}
	/* 3. what is on disk now is the truth */
	r = disk_load(p, &nd, &nm, ret_reason);
	if (r < 0)
		goto out;
	old_epoch = p->desc->map_epoch;
	r = reload_locked(p, nd, nm, ret_reason);
	if (r < 0) {
		vlun_pool_desc_free(nd);
		vlun_meta_free(nm);
		fence_locked(p, "the lock could not reload the metadata");
		goto out;
	}
	/* 4. new epoch, this node the owner */
	p->desc->map_epoch = VLUN_MAX(p->desc->map_epoch, old_epoch) + 1;
	for (uint32_t i = 0; i < p->desc->nnodes; i++) {
		struct vlun_node_desc *n = &p->desc->nodes[i];

		if (n->role == VLUN_NODE_OWNER && strcmp(n->id, ha->id) != 0)
			node_set(n, n->key, victim && n->key == victim ? VLUN_NODE_FENCED : VLUN_NODE_STANDBY,
				 NO_TAG, p->desc->map_epoch);
	}
	me = node_me(p);
	if (!me) {
		vlun_set_reason(ret_reason, "pool '%s': no room in the node table", p->desc->name);
		r = -ENOSPC;
		goto out;
	}
	node_set(me, ha->key, VLUN_NODE_OWNER, tag, p->desc->map_epoch);
	p->need_full_commit = true;
	set_writable(p, VLUN_LOCK_OWNER);
	r = pool_commit_locked(p);
	if (r < 0) {
		vlun_set_reason(ret_reason, "pool '%s': committing the takeover failed: %s", p->desc->name,
				strerror(-r));
		fence_locked(p, "the takeover's commit failed");
		goto out;
	}
	vlun_warn("pool '%s': node '%s' (key 0x%" PRIx64 ") took the lock%s%s%s, epoch %" PRIu64 "%s",
		  p->desc->name, ha->id, ha->key, victim ? " from node '" : "", victim_id, victim ? "'" : "",
		  p->desc->map_epoch, victim ? " (its key was preempted with PREEMPT AND ABORT)" : "");
out:
	pthread_mutex_unlock(&p->ctl_lock);
	vlun_pool_desc_free(dd);
	vlun_meta_free(dm);
	if (r == 0)
		jobs_kick(p);
	return r;
}

VLUN_EXPORT int vlun_pool_unlock(struct vlun_pool *p)
{
	struct vlun_node_desc *me;
	int r = 0;

	if (!p || !p->ha)
		return p ? -EROFS : -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	if (p->ha->state == VLUN_LOCK_OWNER) {
		me = node_me(p);
		if (me) {
			node_set(me, p->ha->key, VLUN_NODE_STANDBY, NO_TAG, p->desc->map_epoch);
			p->need_full_commit = true;
		}
		r = pool_commit_locked(p);
		if (r < 0)
			vlun_err("pool '%s': commit before giving up the lock failed: %s", p->desc->name,
				 strerror(-r));
		set_writable(p, VLUN_LOCK_UNLOCKED);
		vlun_info("pool '%s': node '%s' gave up the lock (standby)", p->desc->name, p->ha->id);
	}
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}

VLUN_EXPORT void vlun_pool_on_fenced(struct vlun_pool *p, void (*fn)(void *arg), void *arg)
{
	if (!p)
		return;
	atomic_store(&p->on_fenced_arg, arg);
	atomic_store(&p->on_fenced, fn);
}

VLUN_EXPORT int vlun_pool_lock_state(struct vlun_pool *p)
{
	int s;

	if (!p)
		return -EINVAL;
	if (!p->ha)
		return VLUN_LOCK_UNLOCKED;
	(void)pool_ha_refresh(p);
	pthread_mutex_lock(&p->ctl_lock);
	s = p->ha->state;
	pthread_mutex_unlock(&p->ctl_lock);
	return s;
}

VLUN_EXPORT int vlun_pool_lock_tag(struct vlun_pool *p, uint16_t *ret_tag)
{
	struct vlun_pool_desc *dd = NULL;
	struct vlun_meta *dm = NULL;
	struct vlun_node_desc *owner;
	int r;

	if (!p || !ret_tag)
		return -EINVAL;
	pthread_mutex_lock(&p->ctl_lock);
	r = disk_load(p, &dd, &dm, NULL);
	pthread_mutex_unlock(&p->ctl_lock);
	if (r < 0)
		return r;
	owner = node_owner(dd);
	if (!owner)
		r = -ENOENT;
	else if (owner->lock_tag == NO_TAG)
		r = -ENODATA;
	else
		*ret_tag = (uint16_t)owner->lock_tag;
	vlun_pool_desc_free(dd);
	vlun_meta_free(dm);
	return r;
}

VLUN_EXPORT int vlun_pool_set_pr_mode(struct vlun_pool *p, uint32_t mode, char **ret_reason)
{
	int r;

	if (!p || mode > VLUN_PR_NONE)
		return -EINVAL;
	if (!p->ha) {
		vlun_set_reason(ret_reason, "pool '%s' is open read-only", p->desc->name);
		return -EROFS;
	}
	pthread_mutex_lock(&p->ctl_lock);
	if (p->desc->pr_mode == mode) {
		r = 0;
	} else {
		uint32_t old = p->desc->pr_mode;

		p->desc->pr_mode = mode;
		p->need_full_commit = true;
		r = pool_commit_locked(p);
		if (r < 0) {
			p->desc->pr_mode = old;
			vlun_set_reason(ret_reason, "pool '%s': cannot commit the PR mode: %s%s", p->desc->name,
					strerror(-r), r == -EPERM ? " (this node is not the owner)" : "");
		}
	}
	pthread_mutex_unlock(&p->ctl_lock);
	return r;
}
