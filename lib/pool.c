/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pool.c — to be written */
#include "vlun.h"
