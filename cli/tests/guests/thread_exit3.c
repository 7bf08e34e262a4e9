/* A thread calls exit(3) while main is blocked joining a thread that waits
 * forever and another thread computes forever: natively the process ends
 * with 3 at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

static void *exiter(void *arg) {
    (void)arg;
    usleep(2000);
    exit(3);
}

int main(void) {
    pthread_t waiter, spinner, quitter;
    pthread_create(&waiter, NULL, wait_forever, NULL);
    pthread_create(&spinner, NULL, spin_forever, NULL);
    pthread_create(&quitter, NULL, exiter, NULL);
    pthread_join(waiter, NULL);
    printf("not reached\n");
    return 0;
}
