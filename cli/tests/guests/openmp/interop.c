/* An `interop` construct, which asks the offloading runtime for a
 * foreign runtime's handle: Weft has no device, and weft-cc refuses it at
 * link time with one line naming what is missing. omp.h declares no
 * interop type, so the program declares its own, as a program written
 * against another omp.h would have it. */
#include <stdio.h>

typedef void *omp_interop_t;

int main(void) {
    omp_interop_t obj = 0;
#pragma omp interop init(targetsync : obj)
#pragma omp interop destroy(obj)
    printf("%p\n", obj);
    return 0;
}
