/* OpenMP kernels in the style of STREAM: copy, scale, add, triad over
 * static loops, checked serially. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N (1 << 18)

int main(void) {
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    if (!a || !b || !c) return 1;
    const double scalar = 3.0;
#pragma omp parallel for num_threads(4)
    for (int i = 0; i < N; i++) a[i] = 1.0 + (i % 100), b[i] = 2.0, c[i] = 0.0;
    for (int round = 0; round < 5; round++) {
#pragma omp parallel for num_threads(4)
        for (int i = 0; i < N; i++) c[i] = a[i];
#pragma omp parallel for num_threads(4)
        for (int i = 0; i < N; i++) b[i] = scalar * c[i];
#pragma omp parallel for num_threads(4)
        for (int i = 0; i < N; i++) c[i] = a[i] + b[i];
#pragma omp parallel for num_threads(4)
        for (int i = 0; i < N; i++) a[i] = b[i] + scalar * c[i];
    }
    double sa = 0, sb = 0, sc = 0;
    for (int i = 0; i < N; i++) sa += a[i], sb += b[i], sc += c[i];
    printf("stream: a %.6e b %.6e c %.6e\n", sa, sb, sc);
    free(a), free(b), free(c);
    return 0;
}
