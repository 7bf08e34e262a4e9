/* Synchronisation costs for `weft bench sync`:
 *   sync KIND ROUNDS
 * KIND is mutex (4 threads lock, add and unlock), uncontended (the same
 * in one thread), atomic (4 threads add
 * with a C11 atomic), barrier (4 threads meet ROUNDS times) or pingpong
 * (two threads hand a token back and forth through a condition variable). Prints a checksum and the time of the
 * measured part. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREADS 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_changed = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t barrier;
static long counter, rounds;
static int turn;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *mutex_worker(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static atomic_long atomic_counter;

static void *atomic_worker(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) atomic_fetch_add(&atomic_counter, 1);
    return NULL;
}

static void *barrier_worker(void *arg) {
    long me = (long)arg;
    for (long i = 0; i < rounds; i++) {
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) counter++;
        (void)me;
    }
    return NULL;
}

static void *pingpong_worker(void *arg) {
    int me = (int)(long)arg;
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&lock);
        while (turn != me) pthread_cond_wait(&turn_changed, &lock);
        counter++;
        turn = 1 - me;
        pthread_cond_signal(&turn_changed);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sync mutex|uncontended|atomic|barrier|pingpong ROUNDS\n");
        return 2;
    }
    rounds = atol(argv[2]);
    void *(*worker)(void *) = NULL;
    int threads = THREADS;
    if (!strcmp(argv[1], "mutex")) worker = mutex_worker;
    if (!strcmp(argv[1], "uncontended")) worker = mutex_worker, threads = 1;
    if (!strcmp(argv[1], "atomic")) worker = atomic_worker;
    if (!strcmp(argv[1], "barrier")) worker = barrier_worker;
    if (!strcmp(argv[1], "pingpong")) worker = pingpong_worker, threads = 2;
    if (!worker) {
        fprintf(stderr, "unknown kind %s\n", argv[1]);
        return 2;
    }
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t t[THREADS];
    double t0 = now();
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double elapsed = now() - t0;
    printf("check %ld\nelapsed_ns %.0f\n", counter + atomic_load(&atomic_counter), elapsed * 1e9);
    return 0;
}
