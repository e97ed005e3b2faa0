/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_pr.c — the pool's gateway nodes and HA ownership from the
 * command line:
 *
 *   vlunctl pool nodes <spec> [--json]         the NODE table (id, key,
 *       role, tag, epoch), the pool's PR mode and map epoch, this process's
 *       node id and key, and per member with PR the keys registered and
 *       the reservation (READ KEYS / READ RESERVATION only: changes nothing)
 *   vlunctl pool takeover <spec> [--node-id ID] take ownership as node ID:
 *       PREEMPT AND ABORT of the current owner's key on every member,
 *       metadata reloaded, epoch + 1, checkpoint (vlun_pool_lock). The node
 *       stays registered and owner after vlunctl exits; the old owner is
 *       fenced (its writes fail with RESERVATION CONFLICT).
 *   vlunctl pool pr-mode <spec> shared|exclusive|none [--node-id ID]
 *       the PR mode members are opened in (applies at the next open);
 *       only the owner may change it, and not while a handler holds it.
 *
 * takeover opens the pool without the advisory lock: it is meant to run
 * while another node — or, in a lab, another process on this host — holds
 * it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "node.h"
#include "prmap.h"
#include "vlun.h"
#include "vlunctl_pr.h"

static int failf(int code, const char *what, const char *why, const char *todo)
{
	fprintf(stderr, "vlunctl: %s: %s.%s%s\n", what, why, todo ? " " : "", todo ? todo : "");
	return code;
}

static const char *role_name(uint32_t r)
{
	return r == VLUN_NODE_OWNER ? "owner" : r == VLUN_NODE_FENCED ? "fenced" : "standby";
}

static const char *mode_name(uint32_t m)
{
	return m == VLUN_PR_EXCLUSIVE ? "exclusive" : m == VLUN_PR_NONE ? "none" : "shared";
}

static int open_pool(char *const *paths, size_t n, unsigned flags, const char *what, struct vlun_pool **ret)
{
	char *why = NULL;
	int r = vlun_pool_open(paths, n, flags, ret, &why);

	if (r < 0) {
		r = failf(1, what, why ? why : strerror(-r), "Check the pool spec and that the members are readable");
		free(why);
		return r;
	}
	return 0;
}

static json_object *member_pr_json(const struct prmap_state *s)
{
	json_object *o = json_object_new_object(), *paths = json_object_new_array();

	json_object_object_add(o, "device", json_object_new_string(s->device));
	json_object_object_add(o, "multipath", json_object_new_boolean(s->is_mpath));
	for (size_t i = 0; i < s->n_paths; i++) {
		const struct prmap_path_state *ps = &s->paths[i];
		json_object *po = json_object_new_object(), *keys = json_object_new_array();
		char k[24];

		json_object_object_add(po, "path", json_object_new_string(ps->path));
		if (ps->err) {
			json_object_object_add(po, "error", json_object_new_string(strerror(-ps->err)));
		} else {
			for (size_t j = 0; j < ps->keys.n_stored; j++) {
				snprintf(k, sizeof(k), "0x%" PRIx64, ps->keys.keys[j]);
				json_object_array_add(keys, json_object_new_string(k));
			}
			json_object_object_add(po, "keys", keys);
			keys = NULL;
			if (ps->resv.present) {
				snprintf(k, sizeof(k), "0x%" PRIx64, ps->resv.key);
				json_object_object_add(po, "reservation_key", json_object_new_string(k));
				json_object_object_add(po, "reservation_type",
						       json_object_new_string(prmap_type_short(ps->resv.type)));
			}
		}
		json_object_put(keys);
		json_object_array_add(paths, po);
	}
	json_object_object_add(o, "paths", paths);
	return o;
}

static void member_pr_text(uint32_t m, const struct prmap_state *s)
{
	printf("  member %u %s%s\n", m, s->device, s->is_mpath ? " (multipath)" : "");
	for (size_t i = 0; i < s->n_paths; i++) {
		const struct prmap_path_state *ps = &s->paths[i];

		printf("    %-14s", ps->path);
		if (ps->err) {
			printf(" no answer: %s\n", strerror(-ps->err));
			continue;
		}
		printf(" keys:");
		for (size_t j = 0; j < ps->keys.n_stored; j++)
			printf(" 0x%" PRIx64, ps->keys.keys[j]);
		if (ps->keys.n_stored == 0)
			printf(" none");
		if (ps->resv.present)
			printf("  reservation: %s by 0x%" PRIx64 "\n", prmap_type_short(ps->resv.type), ps->resv.key);
		else
			printf("  reservation: none\n");
	}
}

static int cmd_nodes(char *const *paths, size_t n, const struct vlunctl_pr_opts *o)
{
	struct vlun_pool *p = NULL;
	struct vlun_pool_desc *d = NULL;
	json_object *root = NULL, *nodes = NULL, *members = NULL;
	char me[VLUN_NODE_ID_MAX + 1] = "?";
	uint64_t mykey = 0;
	int r;

	r = open_pool(paths, n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK | VLUN_OPEN_DEGRADED, "pool nodes", &p);
	if (r)
		return r;
	r = vlun_pool_describe(p, &d);
	if (r < 0) {
		vlun_pool_close(p);
		return failf(1, "pool nodes", strerror(-r), NULL);
	}
	(void)vlun_node_id(me, sizeof(me), &mykey);
	if (o->json) {
		root = json_object_new_object();
		nodes = json_object_new_array();
		members = json_object_new_array();
		json_object_object_add(root, "pool", json_object_new_string(d->name));
		json_object_object_add(root, "pr_mode", json_object_new_string(mode_name(d->pr_mode)));
		json_object_object_add(root, "map_epoch", json_object_new_int64((int64_t)d->map_epoch));
		json_object_object_add(root, "this_node", json_object_new_string(me));
	} else {
		printf("pool '%s': PR mode %s, map epoch %" PRIu64 "; this node '%s' (key 0x%" PRIx64 ")\n",
		       d->name, mode_name(d->pr_mode), d->map_epoch, me, mykey);
		printf("%-24s %-18s %-8s %-6s %-6s %s\n", "NODE", "KEY", "ROLE", "TAG", "EPOCH", "SINCE");
	}
	for (uint32_t i = 0; i < d->nnodes; i++) {
		const struct vlun_node_desc *nd = &d->nodes[i];
		char key[24], since[32] = "-", tag[8] = "-";
		time_t t = (time_t)nd->since;
		struct tm tm;

		snprintf(key, sizeof(key), "0x%" PRIx64, nd->key);
		if (nd->since && gmtime_r(&t, &tm))
			strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (nd->lock_tag != 0xffff)
			snprintf(tag, sizeof(tag), "%u", nd->lock_tag);
		if (o->json) {
			json_object *no = json_object_new_object();

			json_object_object_add(no, "id", json_object_new_string(nd->id));
			json_object_object_add(no, "key", json_object_new_string(key));
			json_object_object_add(no, "role", json_object_new_string(role_name(nd->role)));
			json_object_object_add(no, "lock_tag", nd->lock_tag == 0xffff ? NULL :
					       json_object_new_int((int)nd->lock_tag));
			json_object_object_add(no, "epoch", json_object_new_int64((int64_t)nd->epoch));
			json_object_object_add(no, "since", json_object_new_int64((int64_t)nd->since));
			json_object_array_add(nodes, no);
		} else {
			printf("%-24s %-18s %-8s %-6s %-6" PRIu64 " %s\n", nd->id, key, role_name(nd->role), tag,
			       nd->epoch, since);
		}
	}
	if (!o->json && d->nnodes == 0)
		printf("(no node has owned the pool yet)\n");
	/* PR state of the members that have it (read only) */
	for (uint32_t m = 0; m < d->nmembers; m++) {
		struct prmap_opts po = { .mode = PRMAP_SHARED, .key = mykey ? mykey : 1 };
		struct prmap *h = NULL;
		struct prmap_state *s = NULL;
		char *why = NULL;

		if (d->pr_mode == VLUN_PR_NONE || strncmp(d->members[m].path_hint, "/dev/", 5) != 0)
			continue;
		if (prmap_attach(d->members[m].path_hint, &po, &h, &why) < 0) {
			free(why);
			continue;
		}
		if (prmap_get_state(h, &s) == 0) {
			if (o->json)
				json_object_array_add(members, member_pr_json(s));
			else
				member_pr_text(m, s);
			prmap_state_free(s);
		}
		prmap_free(h);
	}
	if (o->json) {
		json_object_object_add(root, "nodes", nodes);
		json_object_object_add(root, "members", members);
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
		json_object_put(root);
	}
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	return 0;
}

static int cmd_takeover(char *const *paths, size_t n)
{
	struct vlun_pool *p = NULL;
	struct vlun_pool_desc *d = NULL;
	char me[VLUN_NODE_ID_MAX + 1] = "?", *why = NULL;
	uint64_t key = 0;
	int r;

	r = open_pool(paths, n, VLUN_OPEN_NO_LOCK, "pool takeover", &p);
	if (r)
		return r;
	(void)vlun_node_id(me, sizeof(me), &key);
	r = vlun_pool_lock(p, 0xffff, &why);
	if (r < 0) {
		r = failf(1, "pool takeover", why ? why : strerror(-r),
			  "'vlunctl pool nodes' shows the owner and the keys on each member");
		free(why);
		vlun_pool_close(p);
		return r;
	}
	pool_ha_keep_on_close(p, true);
	if (vlun_pool_describe(p, &d) == 0) {
		printf("node '%s' (key 0x%" PRIx64 ") owns pool '%s' now, map epoch %" PRIu64 "\n", me, key, d->name,
		       d->map_epoch);
		for (uint32_t i = 0; i < d->nnodes; i++)
			if (d->nodes[i].role == VLUN_NODE_FENCED && d->nodes[i].epoch == d->map_epoch)
				printf("fenced: node '%s' (key 0x%" PRIx64 ")\n", d->nodes[i].id, d->nodes[i].key);
		vlun_pool_desc_free(d);
	}
	vlun_pool_close(p);
	return 0;
}

static int cmd_pr_mode(char *const *paths, size_t n, const char *mode)
{
	struct vlun_pool *p = NULL;
	uint32_t m;
	char *why = NULL;
	int pid = 0, r;

	if (!strcmp(mode, "shared"))
		m = VLUN_PR_SHARED;
	else if (!strcmp(mode, "exclusive"))
		m = VLUN_PR_EXCLUSIVE;
	else if (!strcmp(mode, "none"))
		m = VLUN_PR_NONE;
	else
		return failf(2, "pool pr-mode", "the mode must be shared, exclusive or none", NULL);
	r = vlun_pool_paths_in_use(paths, n, &pid);
	if (r > 0) {
		fprintf(stderr, "vlunctl: pool pr-mode: the pool is held by a running process (pid %d). Stop it "
			"(remove the backstore), change the mode, start it again.\n", pid);
		return 3;
	}
	r = open_pool(paths, n, 0, "pool pr-mode", &p);
	if (r)
		return r;
	r = vlun_pool_set_pr_mode(p, m, &why);
	if (r < 0) {
		r = failf(1, "pool pr-mode", why ? why : strerror(-r),
			  "Only the owner node changes it: 'vlunctl pool nodes' shows it");
		free(why);
	} else {
		printf("pool PR mode: %s (members are opened so from the next open)\n", mode);
	}
	vlun_pool_close(p);
	return r;
}

int vlunctl_pr_run(const char *verb, char *const *paths, size_t npaths, char *const *args, int nargs,
		   const struct vlunctl_pr_opts *o)
{
	if (o->node_id && vlun_set_node_id(o->node_id) < 0)
		return failf(2, verb, "the node id must be 1-63 printable characters without spaces", NULL);
	if (!strcmp(verb, "nodes"))
		return cmd_nodes(paths, npaths, o);
	if (!strcmp(verb, "takeover"))
		return cmd_takeover(paths, npaths);
	if (!strcmp(verb, "pr-mode") && nargs == 1)
		return cmd_pr_mode(paths, npaths, args[0]);
	return failf(2, verb, "unknown command", "Run 'vlunctl help'");
}
