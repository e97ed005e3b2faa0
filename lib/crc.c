/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* crc.c — to be written */
#include "vlun.h"
