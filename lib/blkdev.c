/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* blkdev.c — to be written */
#include "vlun.h"
