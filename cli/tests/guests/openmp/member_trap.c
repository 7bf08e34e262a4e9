/* A member of a team traps inside the region, after the region's start
 * (a sync point) has run: on a peer it cannot run again at home. */
#include <omp.h>
#include <stdio.h>

int main(void) {
#pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == 1) __builtin_trap();
    }
    printf("not reached\n");
    return 0;
}
