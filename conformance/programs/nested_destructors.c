/* A thread's TSD destructor that prints, in a thread started by another
 * thread: main starts A; A creates a key whose destructor writes to
 * stdout, then starts and joins B, which sets the key. The destructor runs
 * in B's exit path (in chain mode, on whatever host runs A). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static pthread_key_t key;
static int destructor_runs;

static void destructor(void *value) {
    destructor_runs++;
    printf("destructor of %d\n", (int)(intptr_t)value);
    fflush(stdout);
}

static void *b(void *arg) {
    pthread_setspecific(key, (void *)(intptr_t)7);
    return arg;
}

static void *a(void *arg) {
    if (pthread_key_create(&key, destructor) != 0) return (void *)1;
    pthread_t t;
    if (pthread_create(&t, NULL, b, NULL) != 0) return (void *)2;
    pthread_join(t, NULL);
    printf("a: destructor ran %d time(s)\n", destructor_runs);
    fflush(stdout);
    return arg;
}

int main(void) {
    pthread_t t;
    void *result;
    if (pthread_create(&t, NULL, a, NULL) != 0) return 1;
    pthread_join(t, &result);
    printf("main: a returned %d\n", (int)(intptr_t)result);
    return 0;
}
