/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * internal.h — helpers shared inside libvlun (not part of the API).
 */
#ifndef VLUN_INTERNAL_H
#define VLUN_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vlun.h"

#define VLUN_EXPORT __attribute__((visibility("default")))

#define VLUN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VLUN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VLUN_DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define VLUN_ALIGN_UP(n, a) VLUN_DIV_ROUND_UP(n, a) * (a)
#define VLUN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Logging through the callback of vlun_set_log() (lib/log.c). */
void vlun_log(enum vlun_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define vlun_err(...) vlun_log(VLUN_LOG_ERR, __VA_ARGS__)
#define vlun_warn(...) vlun_log(VLUN_LOG_WARN, __VA_ARGS__)
#define vlun_info(...) vlun_log(VLUN_LOG_INFO, __VA_ARGS__)
#define vlun_debug(...) vlun_log(VLUN_LOG_DEBUG, __VA_ARGS__)

/* ret_reason helper: *ret = malloc'd printf result (if ret != NULL). */
void vlun_set_reason(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value of one hex digit of either case, -1 for anything else (util.c);
 * UUID parsing and the control channel's %XX decoding share it. */
int vlun_hexval(char c);

/* Whether extent b continues extent a so that the two can be one (desc.c);
 * the map and the journal-delta edits both merge by this rule. */
bool vlun_extent_mergeable(const struct vlun_extent *a, const struct vlun_extent *b);

/* The pool's advisory lock on one member (pool.c): an OFD write lock on
 * its label block, what vlun_pool_paths_in_use() tests. 0, or -EAGAIN /
 * -EACCES when another process holds it. For tools that write metadata
 * without opening the pool (vlunctl pool repair). */
int vlun_pool_member_lock(int fd, bool take);

/* ThreadSanitizer cannot see happens-before edges that pass through the
 * kernel (an io_uring SQE and its CQE) or through liburcu 0.13's
 * rcu_assign_pointer/rcu_dereference (plain volatile accesses):
 * vlun_tsan_release(p) where p is handed over, vlun_tsan_acquire(p) where
 * the other side takes it. Empty outside -fsanitize=thread builds. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define vlun_tsan_release(p) __tsan_release((void *)(uintptr_t)(p))
#define vlun_tsan_acquire(p) __tsan_acquire((void *)(uintptr_t)(p))
#else
#define vlun_tsan_release(p) ((void)0)
#define vlun_tsan_acquire(p) ((void)0)
#endif

/* Explicit little-endian codecs for on-disk structures. */
static inline void vlun_put_le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void vlun_put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static inline void vlun_put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }
static inline uint16_t vlun_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t vlun_get_le32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static inline uint64_t vlun_get_le64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

#endif
