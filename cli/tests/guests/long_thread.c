// Two threads that compute for a long time (ITERATIONS from argv[1]) and
// hand their results back at join: long enough to lose a host meanwhile.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t iterations;
static uint64_t results[2];

static void *work(void *arg) {
    uintptr_t which = (uintptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (which + 1);
    for (uint64_t i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    results[which] = x;
    return (void *)(which + 100);
}

int main(int argc, char **argv) {
    iterations = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000;
    pthread_t threads[2];
    for (uintptr_t i = 0; i < 2; i++) {
        if (pthread_create(&threads[i], NULL, work, (void *)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < 2; i++) {
        void *value;
        pthread_join(threads[i], &value);
        printf("thread %d returned %d, result %016llx\n", i, (int)(uintptr_t)value,
               (unsigned long long)results[i]);
    }
    return 0;
}
