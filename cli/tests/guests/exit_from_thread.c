/* A thread calls exit(7) while main is blocked joining a thread that never
 * ends; buffered output of the exiting program is flushed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) pthread_cond_wait(&never, &lock);
}

static void *exiter(void *arg) {
    (void)arg;
    printf("thread calls exit(7)\n"); /* stays buffered until exit flushes it */
    exit(7);
}

int main(void) {
    pthread_t waiter, quitter;
    pthread_create(&waiter, NULL, wait_forever, NULL);
    pthread_create(&quitter, NULL, exiter, NULL);
    pthread_join(waiter, NULL);
    return 0;
}
