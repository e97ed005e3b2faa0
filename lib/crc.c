/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crc.c — crc32c (Castagnoli, the iSCSI polynomial) over isa-l.
 *
 * isa-l's crc32_iscsi() is the bare CRC register: it neither inverts the
 * initial value nor the result (checked: crc32_iscsi("123456789", 9,
 * 0xffffffff) == 0x1cf96d7c, whose complement is the standard 0xe3069283).
 * vlun_crc32c() has the usual zlib-style convention instead: start with 0,
 * and chaining works, crc(crc(0, a), b) == crc(0, a || b).
 */
#include <limits.h>

#include <isa-l/crc.h>

#include "internal.h"

VLUN_EXPORT uint32_t vlun_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* crc32_iscsi takes a non-const pointer and an int length. */
	unsigned char *p = (unsigned char *)(uintptr_t)buf;
	uint32_t reg = ~crc;

	while (len > 0) {
		int chunk = len > (size_t)(INT_MAX & ~4095) ? (INT_MAX & ~4095) : (int)len;

		reg = crc32_iscsi(p, chunk, reg);
		p += chunk;
		len -= (size_t)chunk;
	}
	return ~reg;
}
