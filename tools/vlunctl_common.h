/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlunctl_common.h — small helpers the vlunctl command files share
 * (vlunctl_common.c): size and time formatting, sleeping, and parsing the
 * "<prefix> key=value ..." lines of the holder's control-channel replies
 * (lib/ctl.h: "jobs", "snapshot-list").
 */
#ifndef VLUNCTL_COMMON_H
#define VLUNCTL_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* bytes as "1.5 GiB" (vlun_format_size) into buf; returns buf. */
char *vlunctl_fmt(uint64_t bytes, char *buf, size_t len);
/* CLOCK_MONOTONIC in seconds. */
double vlunctl_now_s(void);
/* Sleeps ms milliseconds (through EINTR). */
void vlunctl_sleep_ms(unsigned ms);
/* A possibly shorter copy of src into dst[len], always terminated. */
void vlunctl_copy_str(char *dst, size_t len, const char *src);
/* A decimal value of a reply; 0 when it is not one. */
uint64_t vlunctl_to_u64(const char *s);

/* Parses the lines of a reply payload that start with prefix (e.g. "job ")
 * into an array of records of rec_size bytes: per such line one record,
 * set up by init(rec), then field(rec, key, value) for every key=value
 * word (value %XX-decoded, at most 255 bytes; keys of 24 characters or
 * more are skipped). *ret (caller frees; NULL when no line matched) and
 * *ret_n; 0 or -ENOMEM (nothing returned). */
int vlunctl_parse_records(const char *payload, const char *prefix, size_t rec_size, void (*init)(void *rec),
			  void (*field)(void *rec, const char *key, const char *val), void **ret, size_t *ret_n);

#endif
