/* A detached thread that outlives the chained thread that created it: in
 * chain mode its changes could reach no one, which must be an error, not
 * a silent loss. In local mode it sets the value main prints. */
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
