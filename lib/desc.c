/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* desc.c — to be written */
#include "vlun.h"
