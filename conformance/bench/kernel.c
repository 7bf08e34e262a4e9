/* A CPU-bound kernel split over T threads: numeric integration of
 * 4/(1+x^2) over [0,1] (= pi) with N steps.
 * Usage: kernel THREADS STEPS; prints "pi P" and "elapsed_ns N". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_THREADS 64

static long steps;
static int threads;
static double partial[MAX_THREADS];

static void *work(void *arg) {
    int id = (int)(long)arg;
    double h = 1.0 / (double)steps, sum = 0.0;
    long begin = steps * id / threads, end = steps * (id + 1) / threads;
    for (long i = begin; i < end; i++) {
        double x = ((double)i + 0.5) * h;
        sum += 4.0 / (1.0 + x * x);
    }
    partial[id] = sum * h;
    return NULL;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 2;
    steps = argc > 2 ? atol(argv[2]) : 200000000L;
    if (threads < 1 || threads > MAX_THREADS) return 2;
    pthread_t t[MAX_THREADS];
    long long start = now_ns();
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, work, (void *)i);
    double pi = 0.0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        pi += partial[i];
    }
    long long elapsed = now_ns() - start;
    printf("pi %.10f\nelapsed_ns %lld\n", pi, elapsed);
    return 0;
}
