/* A deadlock of three threads in a ring: each holds its own mutex, waits
 * at a barrier until all hold theirs, then locks its neighbour's; main
 * joins the first. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t locks[3] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                   PTHREAD_MUTEX_INITIALIZER};
static pthread_barrier_t all_hold;

static void *ring(void *arg) {
    long i = (long)arg;
    pthread_mutex_lock(&locks[i]);
    pthread_barrier_wait(&all_hold);
    pthread_mutex_lock(&locks[(i + 1) % 3]);
    return NULL;
}

int main(void) {
    pthread_t t[3];
    pthread_barrier_init(&all_hold, NULL, 3);
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, ring, (void *)i);
    pthread_join(t[0], NULL);
    printf("not reached\n");
    return 0;
}
