/* OpenMP tiled matrix transpose (B = A^T, then A += B^T), checked
 * serially. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 512
#define TILE 32

int main(void) {
    int *a = malloc(N * N * sizeof *a), *b = malloc(N * N * sizeof *b);
    if (!a || !b) return 1;
#pragma omp parallel for num_threads(4)
    for (int i = 0; i < N * N; i++) a[i] = i % 1009, b[i] = 0;
    for (int round = 0; round < 3; round++) {
#pragma omp parallel for num_threads(4) collapse(2) schedule(dynamic)
        for (int it = 0; it < N; it += TILE)
            for (int jt = 0; jt < N; jt += TILE)
                for (int i = it; i < it + TILE; i++)
                    for (int j = jt; j < jt + TILE; j++) b[j * N + i] = a[i * N + j];
#pragma omp parallel for num_threads(4) schedule(static, 8)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) a[i * N + j] += b[j * N + i] % 7;
    }
    long long sa = 0, sb = 0;
    for (int i = 0; i < N * N; i++) sa += (long long)a[i] * (i % 13), sb += b[i];
    printf("transpose: %lld %lld\n", sa, sb);
    free(a), free(b);
    return 0;
}
