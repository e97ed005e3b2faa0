/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* layout.c — to be written */
#include "vlun.h"
