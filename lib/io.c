/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* io.c — to be written */
#include "vlun.h"
