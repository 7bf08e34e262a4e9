/* Old-style polling: threads wait for a flag another thread sets with a
 * plain (volatile) store, sleeping or yielding between looks, as much
 * pre-C11 code does. Natively the store shows up; so must it in every
 * mode. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

/* All volatile, as such code has it: the compiler then keeps each thread's
 * store of its result before its store of `stage` (a plain `results`
 * let it sink the store below, and the native oracle printed
 * "11 12 1 2" now and then under load). */
static volatile int go, stage;
static volatile int results[4];

static void *worker(void *arg) {
    int me = (int)(long)arg;
    while (!go) usleep(1000); /* main sets it */
    results[me] = (me + 1) * 11;
    stage = me + 1;           /* tells the next worker to go on */
    return NULL;
}

static void *relay(void *arg) {
    int me = (int)(long)arg;
    while (stage != me) sched_yield(); /* the previous worker sets it */
    results[me] = results[me - 1] + 1;
    stage = me + 1;
    return NULL;
}

int main(void) {
    pthread_t t[4];
    pthread_create(&t[0], NULL, worker, (void *)0L);
    for (int i = 1; i < 4; i++) pthread_create(&t[i], NULL, relay, (void *)(long)i);
    usleep(20000);
    go = 1;
    while (stage != 4) usleep(500); /* the last relay sets it */
    printf("results: %d %d %d %d\n", results[0], results[1], results[2], results[3]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("stage %d\n", stage);
    return 0;
}
