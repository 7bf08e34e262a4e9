/* Allocates 1 MiB blocks from two threads until malloc fails; the failure
 * is ENOMEM, not a crash. Prints how many MiB were had. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int blocks, enomem;
static void *kept[4096]; /* the blocks escape, so malloc cannot be elided */

static void *grab(void *arg) {
    (void)arg;
    for (;;) {
        errno = 0;
        void *p = malloc(1 << 20);
        pthread_mutex_lock(&lock);
        if (!p) {
            enomem += errno == ENOMEM;
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        if (blocks < 4096) kept[blocks] = p;
        blocks++;
        pthread_mutex_unlock(&lock);
        memset(p, 1, 1 << 20);
    }
}

int main(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, grab, NULL);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("blocks %d\nenomem %d\n", blocks, enomem);
    return 0;
}
