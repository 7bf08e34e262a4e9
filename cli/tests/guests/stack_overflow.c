// A thread recurses with 1 KiB frames far past its stack (64 KiB unless
// set): natively 8 MiB hold it; in wasm the frames would write over the
// heap below the stack, so the run must stop with a line saying so.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static long fold(volatile char *frame, int depth);

__attribute__((noinline)) static long descend(int depth) {
    volatile char frame[1024];
    memset((char *)frame, depth, sizeof frame);
    return fold(frame, depth);
}

__attribute__((noinline)) static long fold(volatile char *frame, int depth) {
    long below = depth > 0 ? descend(depth - 1) : 0;
    return below + frame[depth % 1024];
}

static void *deep(void *arg) { return (void *)descend((int)(long)arg); }

int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 2000;
    pthread_t thread;
    void *sum;
    pthread_create(&thread, NULL, deep, (void *)(long)depth);
    pthread_join(thread, &sum);
    printf("sum %ld\n", (long)sum);
    return 0;
}
