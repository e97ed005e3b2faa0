/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* map.c — to be written */
#include "vlun.h"
