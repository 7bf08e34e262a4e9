/* OpenMP nowait: members leave loops and sections early and go on writing
 * (heap arrays, their own heap blocks, printing) while others are still
 * in the construct; the program is race-free, so every mode must agree. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 4000

int main(void) {
    omp_set_num_threads(4);
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    long long *c = calloc(N, sizeof *c);
    char *tags = malloc(N);
    int first = 0, second = 0, third = 0;
    long long partial[4] = {0};
    if (!a || !b || !c || !tags) return 1;
#pragma omp parallel
    {
        int me = omp_get_thread_num();
        /* Same static schedule and trip count: iteration i of both loops
         * runs on the same member, so b may read a without a barrier. */
#pragma omp for schedule(static) nowait
        for (int i = 0; i < N; i++) a[i] = i * 0.5;
#pragma omp for schedule(static) nowait
        for (int i = 0; i < N; i++) b[i] = a[i] * 2.0;
        /* A dynamic loop into bytes next to each other. */
#pragma omp for schedule(dynamic, 7) nowait
        for (int i = 0; i < N; i++) tags[i] = (char)('a' + i % 26);
#pragma omp sections nowait
        {
#pragma omp section
            first = 1;
#pragma omp section
            second = 2;
#pragma omp section
            third = 3;
        }
        /* Heap blocks of a member's own, written after it left early. */
        long long *mine = malloc(64 * sizeof *mine);
        for (int i = 0; i < 64; i++) mine[i] = (long long)me * 1000 + i;
        long long s = 0;
        for (int i = 0; i < 64; i++) s += mine[i];
        free(mine);
        partial[me] = s;
#pragma omp for schedule(guided) nowait
        for (int i = 0; i < N; i++) c[i] = (long long)i * i;
#pragma omp barrier
#pragma omp for ordered schedule(static, 1000)
        for (int i = 0; i < 4; i++) {
#pragma omp ordered
            printf("chunk %d of the loop printed in order\n", i);
        }
    }
    double sum = 0;
    long long csum = 0, tsum = 0, psum = 0;
    for (int i = 0; i < N; i++) sum += b[i], csum += c[i], tsum += tags[i];
    for (int i = 0; i < 4; i++) psum += partial[i];
    printf("b %.1f c %lld tags %lld sections %d%d%d members %lld\n", sum, csum, tsum, first,
           second, third, psum);
    free(a), free(b), free(c), free(tags);
    return 0;
}
