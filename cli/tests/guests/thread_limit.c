/* With --max-threads 4, a fifth live thread cannot be created (EAGAIN);
 * after the others end, creation works again. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static pthread_barrier_t barrier;

static void *hold(void *arg) {
    (void)arg;
    pthread_barrier_wait(&barrier);
    return NULL;
}

static void *nothing(void *arg) { return arg; }

int main(void) {
    pthread_barrier_init(&barrier, NULL, 5);
    pthread_t t[4], extra;
    for (int i = 0; i < 4; i++) printf("create %d: %d\n", i, pthread_create(&t[i], NULL, hold, NULL));
    int rc = pthread_create(&extra, NULL, nothing, NULL);
    printf("create 4: EAGAIN %d\n", rc == EAGAIN);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    /* Slots free up as the OS threads finish: retry briefly. */
    for (int tries = 0; tries < 1000; tries++) {
        rc = pthread_create(&extra, NULL, nothing, NULL);
        if (rc != EAGAIN) break;
        sched_yield();
    }
    printf("create after join: %d\n", rc);
    if (rc == 0) pthread_join(extra, NULL);
    return 0;
}
