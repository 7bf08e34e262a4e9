/* Recursion 100,000 calls deep, in main and in a thread, with a frame
 * the compiler can neither inline nor turn into a loop (each call goes
 * through a pointer): about 1.6 MB of native stack, 3.2 MB of Weft's.
 * Weft used to end it with "call stack exhausted" at 16,000 calls. */
#include <pthread.h>
#include <stdio.h>

#define DEPTH 100000L

static long down(long n);
static long (*volatile step)(long) = down;

static long down(long n) {
    if (n == 0) return 0;
    return step(n - 1) + (n % 7);
}

static void *in_thread(void *arg) {
    return (void *)step((long)arg);
}

int main(void) {
    printf("main: %ld\n", step(DEPTH));
    pthread_t thread;
    void *sum;
    if (pthread_create(&thread, NULL, in_thread, (void *)DEPTH) != 0) return 1;
    pthread_join(thread, &sum);
    printf("thread: %ld\n", (long)sum);
    return 0;
}
