/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * node.h — the pool's gateway nodes: this node's id and PR key, the
 * members opened through prmap in the pool's PR mode, ownership (the HA
 * lock of tcmu-runner's ALUA failover), fencing and the map epoch check.
 * Design at the top of node.c; user view in docs/pr.md.
 */
#ifndef VLUN_NODE_H
#define VLUN_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "prmap.h"

struct vlun_pool;

/* pool.c: after the metadata is loaded and the members found, for a
 * writable open: members through prmap, this node's role (owner or
 * standby). 0 or negative errno with *ret_reason. */
int pool_ha_open(struct vlun_pool *p, char **ret_reason);
/* pool_free(): release and unregister (or, fenced / kept, leave PR as is). */
void pool_ha_close(struct vlun_pool *p);
/* Before every metadata commit (ctl_lock held): -EPERM when this node is
 * not the owner, or when the epoch on disk is newer (then fenced). */
int pool_ha_commit_check_locked(struct vlun_pool *p);
/* A member I/O failed with reservation conflict (-EBADE) (ctl_lock held):
 * checks the registration and fences the pool. */
void pool_ha_conflict_locked(struct vlun_pool *p, uint32_t member, int res);
/* prmap_refresh on every member (a returning path is registered again);
 * -EPERM when this node's key was preempted (the pool is then fenced). */
int pool_ha_refresh(struct vlun_pool *p);
/* Before a read of a standby: reloads the maps when the owner committed
 * since (node.c). 0, or negative errno (the read fails FENCED). */
int pool_ha_standby_sync(struct vlun_pool *p);
/* vlunctl pool takeover: close leaves this node registered and owner. */
void pool_ha_keep_on_close(struct vlun_pool *p, bool keep);
/* The prmap handle of member m (NULL: no PR on it). For tools and tests. */
struct prmap *pool_ha_member_pr(struct vlun_pool *p, uint32_t m);

/* Tests: regular-file members get PR through this transport, each as one
 * path named by its file path (NULL: files have no PR, the default). */
void pool_ha_set_test_transport(const struct prmap_transport *t);
/* Tests: 2 gives each such file member a second path, "<file>:p2". */
void pool_ha_set_test_paths(unsigned n);

#endif
