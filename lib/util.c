/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util.c — to be written */
#include "vlun.h"
