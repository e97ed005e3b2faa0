/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* alloc.c — to be written */
#include "vlun.h"
