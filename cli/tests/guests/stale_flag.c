// A thread spins on a plain (non-atomic) flag that main sets after
// starting it: a data race, which works natively and in local mode, and
// never ends in chain mode, where the thread's copy never sees the write.
#include <pthread.h>
#include <stdio.h>

static volatile int go;

static void *waiter(void *arg) {
    while (!go) {
    }
    return arg;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    go = 1;
    pthread_join(t, NULL);
    printf("done\n");
    return 0;
}
