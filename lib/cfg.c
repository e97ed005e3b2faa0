/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cfg.c — to be written */
#include "vlun.h"
