// Two threads pass a turn back and forth, each waiting for it with
// sched_yield in a spin loop; prints how many yields the waits took in
// all. On one core, a yield that gives the core away lets the other
// thread take its turn at once (a few yields a pass); one that does not
// leaves the waiter spinning until the scheduler preempts it.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#define PASSES 200

static _Atomic int turn;
static _Atomic unsigned long yields;

static void take_turns(int me) {
    for (int pass = 0; pass < PASSES; pass++) {
        while (atomic_load(&turn) != me) {
            sched_yield();
            atomic_fetch_add(&yields, 1);
        }
        atomic_store(&turn, 1 - me);
    }
}

static void *other(void *arg) {
    take_turns(1);
    return arg;
}

int main(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, other, NULL) != 0) return 1;
    take_turns(0);
    pthread_join(t, NULL);
    printf("passes %d yields %lu\n", 2 * PASSES, atomic_load(&yields));
    return 0;
}
