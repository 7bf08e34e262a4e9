/* A barrier-phased 1D stencil: each thread owns a band, and every step
 * reads its neighbours' edges from the step before. */
#include <pthread.h>
#include <stdio.h>

#define THREADS 4
#define N 4000
#define STEPS 100

static double grid[2][N];
static pthread_barrier_t barrier;

static void *band(void *arg) {
    long me = (long)arg;
    int from = 1 + (int)me * (N - 2) / THREADS, to = 1 + (int)(me + 1) * (N - 2) / THREADS;
    for (int step = 0; step < STEPS; step++) {
        double *in = grid[step % 2], *out = grid[(step + 1) % 2];
        for (int i = from; i < to; i++) out[i] = (in[i - 1] + in[i] + in[i + 1]) / 3.0;
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(void) {
    for (int i = 0; i < N; i++) grid[0][i] = grid[1][i] = (i % 97) * 1.0;
    grid[0][0] = grid[1][0] = 1000.0;
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, band, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    double total = 0;
    for (int i = 0; i < N; i++) total += grid[STEPS % 2][i] * (i % 7);
    printf("stencil after %d steps: %.6f, near the hot end %.9f\n", STEPS, total,
           grid[STEPS % 2][5]);
    return 0;
}
