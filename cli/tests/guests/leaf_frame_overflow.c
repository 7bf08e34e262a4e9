// A thread whose function calls nothing (a leaf) keeps a 96 KiB array on
// its stack (64 KiB unless set): natively 8 MiB hold it; in wasm the
// frame would lie over the heap below the stack, so the run must stop
// with a line saying so. With `big`, the thread gets a 256 KiB stack
// and the sum is printed.
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define COUNT (24 * 1024)

static void *leaf(void *arg) {
    (void)arg;
    volatile int values[COUNT];
    for (int i = 0; i < COUNT; i++) values[i] = i % 7;
    long sum = 0;
    for (int i = 0; i < COUNT; i++) sum += values[i];
    return (void *)sum;
}

int main(int argc, char **argv) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (argc > 1 && strcmp(argv[1], "big") == 0) pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    void *sum;
    pthread_create(&thread, &attr, leaf, NULL);
    pthread_join(thread, &sum);
    printf("sum %ld\n", (long)sum);
    return 0;
}
