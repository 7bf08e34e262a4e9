/* A thread traps while main is blocked joining a thread that waits
 * forever on a condition variable and another thread computes forever:
 * natively the whole process dies of the trap. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static volatile unsigned long spins;

static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) pthread_cond_wait(&never, &lock);
}

static void *spin_forever(void *arg) {
    (void)arg;
    for (;;) spins++;
}

static void *trapper(void *arg) {
    (void)arg;
    usleep(2000);
    __builtin_trap();
}

int main(void) {
    pthread_t waiter, spinner, trapping;
    pthread_create(&waiter, NULL, wait_forever, NULL);
    pthread_create(&spinner, NULL, spin_forever, NULL);
    pthread_create(&trapping, NULL, trapper, NULL);
    pthread_join(waiter, NULL);
    printf("not reached\n");
    return 0;
}
