/* Median latency of pthread_create + pthread_join of a thread that writes
 * one value, after the program has filled HEAP_MIB MiB of its heap.
 * Usage: spawn_latency [ROUNDS] [HEAP_MIB]; prints "median_ns N". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile int touched;

static void *one_write(void *arg) {
    touched = (int)(long)arg;
    return arg;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    long heap_mib = argc > 2 ? atol(argv[2]) : 0;
    char *heap = heap_mib > 0 ? malloc((size_t)heap_mib << 20) : NULL;
    if (heap) memset(heap, 1, (size_t)heap_mib << 20);
    long long *samples = malloc(sizeof *samples * rounds);
    for (int i = 0; i < 50; i++) { /* warm up */
        pthread_t t;
        pthread_create(&t, NULL, one_write, NULL);
        pthread_join(t, NULL);
    }
    for (int i = 0; i < rounds; i++) {
        pthread_t t;
        long long start = now_ns();
        if (pthread_create(&t, NULL, one_write, (void *)(long)i) != 0) return 1;
        pthread_join(t, NULL);
        samples[i] = now_ns() - start;
    }
    qsort(samples, rounds, sizeof *samples, cmp);
    printf("median_ns %lld\n", samples[rounds / 2]);
    printf("heap_check %d\n", heap ? heap[12345] : 1);
    return 0;
}
