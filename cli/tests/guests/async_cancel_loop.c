// A thread turns on asynchronous cancellation and computes with no call;
// main cancels it and joins. Natively the thread ends at once; a wasm
// thread cannot be stopped between two instructions, so it runs on: the
// request must not pass in silence.
#include <pthread.h>
#include <stdio.h>

static volatile int started;

static void *compute(void *arg) {
    (void)arg;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    started = 1;
    for (volatile unsigned long i = 0;; i++) {
    }
    return NULL;
}

int main(void) {
    pthread_t thread;
    pthread_create(&thread, NULL, compute, NULL);
    while (!started) {
    }
    pthread_cancel(thread);
    void *result;
    pthread_join(thread, &result);
    printf("canceled: %d\n", result == PTHREAD_CANCELED);
    return 0;
}
