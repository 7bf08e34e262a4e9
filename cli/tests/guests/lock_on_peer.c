// A thread that shares a mutex with the main thread, for losing its host
// at a sync point. argv[1] "hold": the thread takes the mutex and then
// computes for ITERATIONS (argv[2]) while the main thread waits for it;
// "wait": the main thread holds the mutex while it computes, and the
// thread waits at home for it.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t iterations;
static uint64_t shared;

static uint64_t compute(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    shared = compute(1);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    shared += 1;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv) {
    int hold = argc > 1 && strcmp(argv[1], "hold") == 0;
    iterations = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000;
    pthread_t thread;
    if (hold) {
        pthread_create(&thread, NULL, holder, NULL);
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
        printf("the thread left %016llx\n", (unsigned long long)shared);
        pthread_mutex_unlock(&lock);
    } else {
        pthread_mutex_lock(&lock);
        pthread_create(&thread, NULL, waiter, NULL);
        shared = compute(2);
        pthread_mutex_unlock(&lock);
    }
    pthread_join(thread, NULL);
    printf("shared %016llx\n", (unsigned long long)shared);
    return 0;
}
