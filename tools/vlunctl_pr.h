/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_pr.h — `vlunctl pool nodes`, `pool takeover`, `pool pr-mode`
 * (vlunctl_pr.c): the pool's gateway nodes, HA ownership and the PR mode
 * of its members (lib/node.c, docs/pr.md).
 */
#ifndef VLUNCTL_PR_H
#define VLUNCTL_PR_H

#include <stdbool.h>
#include <stddef.h>

struct vlunctl_pr_opts {
	const char *node_id;   /* --node-id: this process's node id (NULL: default) */
	bool json;
};

/* verb: "nodes", "takeover" or "pr-mode" (args[0]: shared|exclusive|none).
 * Returns vlunctl's exit status (0 ok, 1 failed, 2 usage, 3 refused). */
int vlunctl_pr_run(const char *verb, char *const *paths, size_t npaths, char *const *args, int nargs,
		   const struct vlunctl_pr_opts *o);

#endif
