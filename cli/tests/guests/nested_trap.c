// A thread's thread traps: on a worker, the trap must end the program at
// home (exit code 134, the trap named), never the worker.
#include <pthread.h>
#include <stdio.h>

static void *leaf(void *arg) {
    if (arg) __builtin_trap();
    return 0;
}

static void *middle(void *arg) {
    pthread_t thread;
    pthread_create(&thread, 0, leaf, arg);
    pthread_join(thread, 0);
    return 0;
}

int main(void) {
    pthread_t threads[2];
    for (long i = 0; i < 2; i++) pthread_create(&threads[i], 0, middle, (void *)i);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], 0);
    printf("not reached\n");
    return 0;
}
