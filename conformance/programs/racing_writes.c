/* Two threads write different values to the same variable at the same
 * time: natively and in local mode one of them wins (the program prints
 * nothing that depends on which); in chain mode the write is a conflict
 * that Weft must report rather than keep one silently. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static volatile int64_t shared_value;

static void *writer(void *arg) {
    /* Long enough that both threads have started (and, in chain mode, been
     * snapshotted) before either writes, even on a busy machine. A busy
     * wait on the clock, not a sleep: in chain mode a sleep is a sync
     * point, which would order the two writes. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
           200 * 1000000L);
    shared_value = (int64_t)(intptr_t)arg;
    return NULL;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, writer, (void *)1);
    pthread_create(&b, NULL, writer, (void *)2);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("one writer won: %d\n", shared_value == 1 || shared_value == 2);
    return 0;
}
