/* Barriers separate phases: every thread sees all writes of the previous
 * phase, and exactly one thread per phase gets PTHREAD_BARRIER_SERIAL_THREAD. */
#include <pthread.h>
#include <stdio.h>

#define N 4
#define PHASES 50

static pthread_barrier_t barrier;
static long values[N];
static int serial_count[PHASES];
static int mismatches;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    long id = (long)arg;
    for (int phase = 0; phase < PHASES; phase++) {
        values[id] = phase * 100 + id;
        int rc = pthread_barrier_wait(&barrier);
        long sum = 0;
        for (int i = 0; i < N; i++) sum += values[i];
        pthread_mutex_lock(&lock);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD) serial_count[phase]++;
        if (sum != (long)phase * 100 * N + N * (N - 1) / 2) mismatches++;
        pthread_mutex_unlock(&lock);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(void) {
    pthread_barrier_init(&barrier, NULL, N);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    int one_serial = 0;
    for (int p = 0; p < PHASES; p++) one_serial += serial_count[p] == 1;
    printf("phases with one serial thread: %d/%d, mismatched sums: %d\n", one_serial, PHASES,
           mismatches);
    pthread_barrier_destroy(&barrier);
    return 0;
}
