/* Threads get their argument, compute, and their return values reach
 * pthread_join in creation order. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define N 8

static void *square(void *arg) {
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

int main(void) {
    pthread_t threads[N];
    for (intptr_t i = 0; i < N; i++) {
        if (pthread_create(&threads[i], NULL, square, (void *)(i + 1)) != 0) {
            printf("create %ld failed\n", (long)i);
            return 1;
        }
    }
    long total = 0;
    for (int i = 0; i < N; i++) {
        void *result;
        int rc = pthread_join(threads[i], &result);
        printf("thread %d: join=%d result=%ld\n", i, rc, (long)(intptr_t)result);
        total += (long)(intptr_t)result;
    }
    printf("total %ld\n", total);
    return 0;
}
