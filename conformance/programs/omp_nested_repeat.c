/* Nested OpenMP regions forked again and again by the members of an outer
 * team: each member keeps a crew for its inner regions, which park and
 * wake 40 times (a runtime that creates and joins a thread per inner
 * region instead has its creator read libc's thread-list lock while the
 * joined thread is still on its way out). Every inner member counts into
 * its own slot; main prints. */
#include <omp.h>
#include <stdio.h>

#define OUTER 3
#define INNER 2
#define ROUNDS 40

static int counts[OUTER][INNER];
static int sizes[OUTER];

int main(void) {
    omp_set_dynamic(0);
    omp_set_max_active_levels(2);
#pragma omp parallel num_threads(OUTER)
    {
        int outer = omp_get_thread_num();
        for (int r = 0; r < ROUNDS; r++) {
#pragma omp parallel num_threads(INNER)
            {
                counts[outer][omp_get_thread_num()] += r + 1;
                if (omp_get_thread_num() == 0) sizes[outer] += omp_get_num_threads();
            }
        }
    }
    for (int o = 0; o < OUTER; o++) {
        printf("outer %d: team sizes %d, counts", o, sizes[o]);
        for (int i = 0; i < INNER; i++) printf(" %d", counts[o][i]);
        printf("\n");
    }
    return 0;
}
