// Two threads spin on a plain (non-atomic) flag, as OpenMP validation
// tests do around `nowait`: one waits for main's write, the other for
// the first thread's. A data race, which works natively and in local
// mode, and never ends in chain mode, where no thread waits at home for
// the stall watch to see.
#include <pthread.h>
#include <stdio.h>

static volatile int go, second;

static void *first_waiter(void *arg) {
    while (!go) {
    }
    second = 1;
    return arg;
}

static void *second_waiter(void *arg) {
    while (!second) {
    }
    return arg;
}

int main(void) {
    pthread_t t[2];
    pthread_create(&t[0], NULL, first_waiter, NULL);
    pthread_create(&t[1], NULL, second_waiter, NULL);
    go = 1;
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    printf("done\n");
    return 0;
}
