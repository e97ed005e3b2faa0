/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* meta.c — to be written */
#include "vlun.h"
