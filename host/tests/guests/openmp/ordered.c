/* An ordered loop in a team of two: chain mode cannot order iterations
 * across copies yet, and must say so. */
#include <stdio.h>

int main(void) {
#pragma omp parallel for ordered num_threads(2)
    for (int i = 0; i < 4; i++) {
#pragma omp ordered
        printf("%d\n", i);
    }
    return 0;
}
