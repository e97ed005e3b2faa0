/* to be written */
#include "vlun.h"
int main(void) { return 0; }
