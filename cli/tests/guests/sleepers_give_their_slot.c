// Old-style polling with more threads than slots: three threads sleep
// between looks at a flag that a fourth, started last, sets. A sleeping
// thread runs nothing, so the fourth must get a slot while they sleep.
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static volatile int flag;

static void *waiter(void *arg) {
    while (!flag) usleep(1000);
    return arg;
}

static void *setter(void *arg) {
    usleep(10 * 1000);
    flag = 1;
    return arg;
}

int main(void) {
    pthread_t threads[4];
    for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, waiter, NULL);
    pthread_create(&threads[3], NULL, setter, NULL);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    printf("the flag was set while the others slept\n");
    return 0;
}
