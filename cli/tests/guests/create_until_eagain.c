// Main starts threads until pthread_create fails; each takes a small block
// and waits for the signal to end. Near a memory cap, libc's heap grows by
// sbrk until one growth fails halfway: that must be EAGAIN, never a trap.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define MOST 100000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int done;
static pthread_t threads[MOST];

static void *hold(void *arg) {
    (void)arg;
    char *block = malloc(4096);
    if (block) block[0] = 1;
    pthread_mutex_lock(&lock);
    while (!done) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    free(block);
    return NULL;
}

int main(void) {
    int started = 0, rc = 0;
    while (started < MOST && (rc = pthread_create(&threads[started], NULL, hold, NULL)) == 0)
        started++;
    printf("creates failed with EAGAIN after some threads: %s\n",
           rc == EAGAIN && started > 0 ? "yes" : "no");
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    return 0;
}
