/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vdisk.c — to be written */
#include "vlun.h"
