/* OpenMP 2D five-point Jacobi stencil in one parallel region: work-sharing
 * loops separated by barriers, a residual reduction per sweep. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 130
#define SWEEPS 60

int main(void) {
    double *u = calloc(N * N, sizeof *u), *v = calloc(N * N, sizeof *v);
    if (!u || !v) return 1;
    for (int i = 0; i < N; i++) u[i] = v[i] = 100.0; /* a hot top edge */
    double residual = 0;
#pragma omp parallel num_threads(4)
    for (int sweep = 0; sweep < SWEEPS; sweep++) {
#pragma omp for
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++)
                v[i * N + j] =
                    0.25 * (u[(i - 1) * N + j] + u[(i + 1) * N + j] + u[i * N + j - 1] + u[i * N + j + 1]);
#pragma omp single
        residual = 0;
#pragma omp for reduction(max : residual)
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++) {
                double d = fabs(v[i * N + j] - u[i * N + j]);
                if (d > residual) residual = d;
                u[i * N + j] = v[i * N + j];
            }
    }
    double total = 0;
    for (int i = 0; i < N * N; i++) total += u[i];
    printf("stencil: residual %.9f total %.6f near the edge %.9f\n", residual, total, u[8 * N + N / 2]);
    free(u), free(v);
    return 0;
}
