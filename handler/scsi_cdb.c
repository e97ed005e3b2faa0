/* to be written */
#include "vlun.h"
