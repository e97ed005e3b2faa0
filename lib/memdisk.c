/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* memdisk.c — to be written */
#include "vlun.h"
