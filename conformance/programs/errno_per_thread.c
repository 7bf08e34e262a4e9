/* errno is per thread: failures in one thread do not change another's. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N 4

static pthread_barrier_t barrier;

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    errno = 0;
    if (id % 2 == 0) {
        close(-1); /* EBADF */
    } else {
        strtol("99999999999999999999999", NULL, 10); /* ERANGE */
    }
    int mine = errno;
    pthread_barrier_wait(&barrier); /* every thread has set its errno */
    for (int i = 0; i < 100; i++) sched_yield();
    int expected = id % 2 == 0 ? EBADF : ERANGE;
    return (void *)(intptr_t)(mine == expected && errno == expected);
}

int main(void) {
    pthread_barrier_init(&barrier, NULL, N);
    errno = 0;
    pthread_t t[N];
    for (intptr_t i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(intptr_t)r;
    }
    printf("threads that kept their errno: %d/%d; main errno still 0: %d\n", ok, N, errno == 0);
    return 0;
}
