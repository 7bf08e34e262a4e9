/* Threads started by threads, each with a stack of a size no other has,
 * while others start: libc's allocator grows its heap for the new stacks
 * at the same time as the runtime grows memory for new threads' heap
 * arenas (in chain mode). Every thread checks that its stack and its heap
 * block hold what it wrote. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEADERS 8
#define WORKERS 8
#define ROUNDS 3

static void *worker(void *arg) {
    intptr_t id = (intptr_t)arg;
    volatile unsigned char local[4096];
    for (int i = 0; i < (int)sizeof local; i++) local[i] = (unsigned char)(id + i);
    size_t n = 1000 + (size_t)id * 37;
    unsigned *block = malloc(n * sizeof *block);
    if (!block) return (void *)-1;
    for (size_t i = 0; i < n; i++) block[i] = (unsigned)(id * 31 + i);
    intptr_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += block[i] == (unsigned)(id * 31 + i);
    for (int i = 0; i < (int)sizeof local; i++) sum += local[i] == (unsigned char)(id + i);
    free(block);
    return (void *)sum;
}

/* KiB every stack of a round adds, so no round reuses a stack size. */
static int round_base;

static void *leader(void *arg) {
    intptr_t id = (intptr_t)arg;
    pthread_t t[WORKERS];
    intptr_t total = 0;
    for (int w = 0; w < WORKERS; w++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, (size_t)(64 + 16 * (id * WORKERS + w) + round_base) * 1024);
        if (pthread_create(&t[w], &attr, worker, (void *)(id * WORKERS + w)) != 0) return (void *)-1;
        pthread_attr_destroy(&attr);
    }
    for (int w = 0; w < WORKERS; w++) {
        void *r;
        pthread_join(t[w], &r);
        total += (intptr_t)r;
    }
    return (void *)total;
}

int main(void) {
    for (int round = 0; round < ROUNDS; round++) {
        round_base = round * 1100;
        pthread_t t[LEADERS];
        for (intptr_t l = 0; l < LEADERS; l++) pthread_create(&t[l], NULL, leader, (void *)l);
        long total = 0;
        for (int l = 0; l < LEADERS; l++) {
            void *r;
            pthread_join(t[l], &r);
            total += (long)(intptr_t)r;
        }
        printf("round %d: %ld checks passed\n", round, total);
    }
    return 0;
}
