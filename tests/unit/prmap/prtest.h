/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prtest.h — helpers of the prmap tests: a fake sysfs tree in a temp dir
 * and a model of a SCSI target's persistent reservations (SPC-4 rules for
 * REGISTER [AND IGNORE], RESERVE, RELEASE, PREEMPT, CLEAR; one I_T nexus
 * per path name) behind a struct prmap_transport.
 */
#ifndef PRTEST_H
#define PRTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prmap.h"

static inline void pt_mkdirs(const char *root, const char *rel)
{
	char p[4096], *s;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(p, 0755);
		*s = '/';
	}
	mkdir(p, 0755);
}

static inline void pt_write(const char *root, const char *rel, const char *text)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static inline void pt_link(const char *root, const char *rel, const char *target)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
	if (symlink(target, p) != 0)
		abort();
}

/* a SCSI disk NAME at H:C:T:L */
static inline void pt_add_disk(const char *root, const char *name, const char *hctl)
{
	char rel[512], tgt[512];

	snprintf(rel, sizeof(rel), "devices/host/%s/scsi_disk/%s", hctl, hctl);
	pt_mkdirs(root, rel);
	snprintf(rel, sizeof(rel), "devices/host/%s/scsi_device", hctl);
	pt_mkdirs(root, rel);
	snprintf(rel, sizeof(rel), "block/%s", name);
	pt_mkdirs(root, rel);
	snprintf(rel, sizeof(rel), "block/%s/device", name);
	snprintf(tgt, sizeof(tgt), "../../devices/host/%s", hctl);
	pt_link(root, rel, tgt);
}

/* a dm device NAME with uuid UUID over the slaves (NULL-terminated) */
static inline void pt_add_dm(const char *root, const char *name, const char *uuid, const char *const *slaves)
{
	char rel[512], tgt[512];

	snprintf(rel, sizeof(rel), "block/%s/dm", name);
	pt_mkdirs(root, rel);
	snprintf(rel, sizeof(rel), "block/%s/dm/uuid", name);
	pt_write(root, rel, uuid);
	snprintf(rel, sizeof(rel), "block/%s/slaves", name);
	pt_mkdirs(root, rel);
	for (; slaves && *slaves; slaves++) {
		snprintf(rel, sizeof(rel), "block/%s/slaves/%s", name, *slaves);
		snprintf(tgt, sizeof(tgt), "../../%s", *slaves);
		pt_link(root, rel, tgt);
	}
}

static inline void pt_del_slave(const char *root, const char *dm, const char *slave)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/block/%s/slaves/%s", root, dm, slave);
	unlink(p);
}

static inline char *pt_root(void)
{
	char *d = strdup("/tmp/prmap-sysfs-XXXXXX");

	if (!d || !mkdtemp(d))
		abort();
	return d;
}

static inline void pt_rmrf(const char *root)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
}

/* ------------------------------------------------------------ target model */

#define PT_MAX 16
struct pt_target {
	struct { char path[64]; uint64_t key; } reg[PT_MAX];
	size_t nreg;
	bool resv;
	uint64_t resv_key;
	enum prmap_type resv_type;
	char holder[64];
	char offline[4][64];             /* paths that do not answer */
	unsigned ua_pending;             /* next commands answer UNIT ATTENTION */
	unsigned n_out, n_register;      /* commands seen */
};

static inline bool pt_all_reg(enum prmap_type t)
{
	return t == PRMAP_TYPE_WE_AR || t == PRMAP_TYPE_EA_AR;
}

static inline int pt_find(struct pt_target *t, const char *path)
{
	for (size_t i = 0; i < t->nreg; i++)
		if (strcmp(t->reg[i].path, path) == 0)
			return (int)i;
	return -1;
}

static inline void pt_unreg(struct pt_target *t, int i)
{
	bool holder = t->resv && !pt_all_reg(t->resv_type) && strcmp(t->holder, t->reg[i].path) == 0;

	t->reg[i] = t->reg[--t->nreg];
	if (holder || (t->resv && pt_all_reg(t->resv_type) && t->nreg == 0))
		t->resv = false;
}

static inline bool pt_offline(struct pt_target *t, const char *path)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(t->offline[i], path) == 0)
			return true;
	return false;
}

static inline void pt_be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static inline void pt_be64(uint8_t *p, uint64_t v) { pt_be32(p, v >> 32); pt_be32(p + 4, (uint32_t)v); }

static inline int pt_in(void *ctx, const char *path, int sa, uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct pt_target *t = ctx;

	if (pt_offline(t, path)) {
		snprintf(err, errlen, "offline");
		return -ENODEV;
	}
	if (t->ua_pending) {
		t->ua_pending--;
		snprintf(err, errlen, "UNIT ATTENTION");
		return -EAGAIN;
	}
	memset(buf, 0, len);
	pt_be32(buf, 7);
	if (sa == PRMAP_IN_READ_KEYS) {
		pt_be32(buf + 4, (uint32_t)(8 * t->nreg));
		for (size_t i = 0; i < t->nreg && 8 + 8 * (i + 1) <= len; i++)
			pt_be64(buf + 8 + 8 * i, t->reg[i].key);
	} else if (sa == PRMAP_IN_READ_RESERVATION && t->resv) {
		pt_be32(buf + 4, 16);
		pt_be64(buf + 8, pt_all_reg(t->resv_type) ? 0 : t->resv_key);
		buf[8 + 13] = (uint8_t)t->resv_type;
	}
	return 0;
}

static inline int pt_out(void *ctx, const char *path, int sa, enum prmap_type type, uint64_t rk, uint64_t sark,
			 bool aptpl, char *err, size_t errlen)
{
	struct pt_target *t = ctx;
	int i;

	if (pt_offline(t, path)) {
		snprintf(err, errlen, "offline");
		return -ENODEV;
	}
	if (t->ua_pending) {
		t->ua_pending--;
		snprintf(err, errlen, "UNIT ATTENTION");
		return -EAGAIN;
	}
	t->n_out++;
	i = pt_find(t, path);
	snprintf(err, errlen, "RESERVATION CONFLICT");
	switch (sa) {
	case PRMAP_OUT_REGISTER:
	case PRMAP_OUT_REGISTER_IGNORE:
		t->n_register++;
		if (sa == PRMAP_OUT_REGISTER && (i < 0 ? rk != 0 : t->reg[i].key != rk))
			return -EBUSY;
		if (sark == 0) {
			if (i >= 0)
				pt_unreg(t, i);
		} else if (i >= 0) {
			t->reg[i].key = sark;
		} else {
			snprintf(t->reg[t->nreg].path, sizeof(t->reg[0].path), "%s", path);
			t->reg[t->nreg++].key = sark;
		}
		return 0;
	case PRMAP_OUT_RESERVE:
		if (i < 0 || t->reg[i].key != rk)
			return -EBUSY;
		if (t->resv) {
			if (t->resv_type != type)
				return -EBUSY;
			if (!pt_all_reg(type) && strcmp(t->holder, path) != 0)
				return -EBUSY;
			return 0;
		}
		t->resv = true;
		t->resv_key = rk;
		t->resv_type = type;
		snprintf(t->holder, sizeof(t->holder), "%s", path);
		return 0;
	case PRMAP_OUT_RELEASE:
		if (i < 0 || t->reg[i].key != rk)
			return -EBUSY;
		if (t->resv && (pt_all_reg(t->resv_type) || strcmp(t->holder, path) == 0))
			t->resv = false;
		return 0;
	case PRMAP_OUT_CLEAR:
		if (i < 0 || t->reg[i].key != rk)
			return -EBUSY;
		t->nreg = 0;
		t->resv = false;
		return 0;
	case PRMAP_OUT_PREEMPT:
	case PRMAP_OUT_PREEMPT_ABORT: {
		bool found = false, was_holder = t->resv && !pt_all_reg(t->resv_type) && t->resv_key == sark;
		if (i < 0 || t->reg[i].key != rk)
			return -EBUSY;
		for (size_t j = 0; j < t->nreg;)
			if (t->reg[j].key == sark) {
				t->reg[j] = t->reg[--t->nreg];
				found = true;
			} else {
				j++;
			}
		if (!found)
			return -EBUSY;
		if (was_holder || !t->resv) {
			t->resv = true;
			t->resv_key = rk;
			t->resv_type = type;
			snprintf(t->holder, sizeof(t->holder), "%s", path);
		}
		return 0;
	}
	}
	snprintf(err, errlen, "ILLEGAL REQUEST");
	return -EINVAL;
}

static inline size_t pt_count(struct pt_target *t, uint64_t key)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nreg; i++)
		n += t->reg[i].key == key;
	return n;
}

/* A target shared by the processes of one test (a node exec'd as a second
 * gateway): the model in a MAP_SHARED file. create: path is a mkstemp
 * template, filled in; else the file is opened. NULL on failure. */
static inline struct pt_target *pt_map_target(const char *path, bool create)
{
	int fd = create ? mkstemp((char *)path) : open(path, O_RDWR);
	void *m;

	if (fd < 0 || (create && ftruncate(fd, sizeof(struct pt_target)) < 0))
		return NULL;
	m = mmap(NULL, sizeof(struct pt_target), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

#endif
