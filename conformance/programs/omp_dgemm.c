/* OpenMP dense matrix multiply (C = A * B + C), collapsed outer loops,
 * blocked inner product, checked serially. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 160
#define BLOCK 32

int main(void) {
    double *a = malloc(N * N * sizeof *a), *b = malloc(N * N * sizeof *b),
           *c = malloc(N * N * sizeof *c);
    if (!a || !b || !c) return 1;
#pragma omp parallel for num_threads(4) collapse(2)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i * N + j] = (double)((i + 2 * j) % 7) - 3.0;
            b[i * N + j] = (double)((3 * i + j) % 5) - 2.0;
            c[i * N + j] = 1.0;
        }
#pragma omp parallel for num_threads(4) collapse(2) schedule(static)
    for (int ib = 0; ib < N; ib += BLOCK)
        for (int jb = 0; jb < N; jb += BLOCK)
            for (int kb = 0; kb < N; kb += BLOCK)
                for (int i = ib; i < ib + BLOCK; i++)
                    for (int k = kb; k < kb + BLOCK; k++) {
                        double aik = a[i * N + k];
                        for (int j = jb; j < jb + BLOCK; j++) c[i * N + j] += aik * b[k * N + j];
                    }
    double trace = 0, total = 0;
    for (int i = 0; i < N; i++) trace += c[i * N + i];
    for (int i = 0; i < N * N; i++) total += c[i] * (double)(i % 3);
    printf("dgemm %dx%d: trace %.1f weighted sum %.1f corner %.1f\n", N, N, trace, total,
           c[N * N - 1]);
    free(a), free(b), free(c);
    return 0;
}
