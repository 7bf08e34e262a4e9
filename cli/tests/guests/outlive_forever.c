/* A detached thread that never ends, started by a thread that does: the
 * program ends when main does, as natively (in chain mode on a peer the
 * creator must not wait for it). */
#include <pthread.h>
#include <stdio.h>

static volatile unsigned long long ticks;

static void *forever(void *arg) {
    for (;;) ticks++;
    return arg;
}

static void *creator(void *arg) {
    pthread_t t;
    pthread_create(&t, NULL, forever, NULL);
    pthread_detach(t);
    return arg;
}

int main(void) {
    pthread_t t;
    void *value;
    pthread_create(&t, NULL, creator, (void *)7);
    pthread_join(t, &value);
    printf("creator returned %d\n", (int)(long)value);
    return 0;
}
