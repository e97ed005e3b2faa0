/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* log.c — to be written */
#include "vlun.h"
