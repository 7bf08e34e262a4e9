/* A detached thread that outlives the chained thread that created it: it
 * was created at home, so in chain mode too its end merges into the main
 * memory and main prints the value it set. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int value;

static void *late(void *arg) {
    usleep(50000);
    value = 42;
    return arg;
}

static void *parent(void *arg) {
    pthread_t t;
    pthread_create(&t, NULL, late, arg);
    pthread_detach(t);
    return arg;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, parent, NULL);
    pthread_join(t, NULL);
    usleep(300000);
    printf("value %d\n", value);
    return 0;
}
