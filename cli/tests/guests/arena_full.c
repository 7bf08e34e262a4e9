/* Runs a memory full of heap arenas: first main starts threads that each
 * hold a heap block until main lets them go, until pthread_create fails;
 * then threads start threads of their own that allocate until malloc
 * fails. Every failure must be EAGAIN (pthread_create) or ENOMEM (malloc),
 * and the program must end: in chain mode each thread's heap is an arena
 * of the shared memory, so the memory fills with arenas. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLDERS 300
#define BRANCHES 8
#define LEAVES 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int released, holding, refused;
static void *volatile kept[BRANCHES * LEAVES]; /* blocks escape: no elision */

static void *hold(void *arg) {
    (void)arg;
    char *p = malloc(64 << 10);
    int error = p ? 0 : errno;
    if (p) memset(p, 7, 64 << 10);
    pthread_mutex_lock(&lock);
    if (p) holding++;
    else refused += error == ENOMEM;
    while (!released) pthread_cond_wait(&go, &lock);
    pthread_mutex_unlock(&lock);
    free(p);
    return NULL;
}

static void *leaf(void *arg) {
    long slot = (long)arg;
    for (;;) {
        char *p = malloc(256 << 10);
        if (!p) return (void *)(long)(errno == ENOMEM ? 0 : 1);
        memset(p, 1, 256 << 10);
        kept[slot] = p;
    }
}

/* Starts n threads of `fn` (argument first + i) and joins those that
 * started: the failures that are not EAGAIN plus what the threads
 * returned. */
static long start_and_join(pthread_t *t, int n, void *(*fn)(void *), long first) {
    long started = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&t[started], NULL, fn, (void *)(first + i));
        if (e == 0) started++;
        else bad += e != EAGAIN;
    }
    for (int i = 0; i < started; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    return bad;
}

static void *branch(void *arg) {
    pthread_t t[LEAVES];
    return (void *)start_and_join(t, LEAVES, leaf, (long)arg * LEAVES);
}

int main(void) {
    static pthread_t t[HOLDERS];
    int n = 0, e = 0;
    for (; n < HOLDERS; n++)
        if ((e = pthread_create(&t[n], NULL, hold, NULL))) break;
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    printf("holders: failures EAGAIN or ENOMEM: %s\n",
           (e == 0 || e == EAGAIN) && holding + refused == n ? "yes" : "no");

    pthread_t b[BRANCHES];
    long bad = start_and_join(b, BRANCHES, branch, 0);
    printf("nested: failures EAGAIN or ENOMEM: %s\n", bad ? "no" : "yes");
    return 0;
}
