/* A `teams` construct, which Weft's OpenMP runtime does not implement:
 * weft-cc refuses it at link time with one line naming it. */
#include <omp.h>
#include <stdio.h>

int main(void) {
    int x = 0;
#pragma omp teams num_teams(2)
    {
#pragma omp atomic
        x++;
    }
    printf("%d\n", x);
    return 0;
}
