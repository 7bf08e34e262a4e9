/* Main traps (an out-of-bounds load) while a thread is blocked. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *block(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    return NULL;
}

int main(void) {
    pthread_mutex_lock(&lock);
    pthread_t t;
    pthread_create(&t, NULL, block, NULL);
    volatile int *far = (volatile int *)(uintptr_t)0xfffffff0u;
    return *far;
}
