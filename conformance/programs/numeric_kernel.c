/* A parallel numeric kernel: dense matrix multiply split by rows over 4
 * threads, checked against a serial run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N 96
#define THREADS 4

static double a[N][N], b[N][N], c[N][N], serial[N][N];

static void multiply_rows(double out[N][N], int begin, int end) {
    for (int i = begin; i < end; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0.0;
            for (int k = 0; k < N; k++) sum += a[i][k] * b[k][j];
            out[i][j] = sum;
        }
}

static void *worker(void *arg) {
    int id = (int)(long)arg;
    multiply_rows(c, N * id / THREADS, N * (id + 1) / THREADS);
    return NULL;
}

int main(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (double)((i * 7 + j * 3) % 11) / 7.0;
            b[i][j] = (double)((i * 5 + j * 13) % 17) / 3.0;
        }
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    multiply_rows(serial, 0, N);
    double trace = 0.0;
    int differences = 0;
    for (int i = 0; i < N; i++) {
        trace += c[i][i];
        for (int j = 0; j < N; j++) differences += c[i][j] != serial[i][j];
    }
    printf("trace %.6f, differences from serial: %d\n", trace, differences);
    return 0;
}
