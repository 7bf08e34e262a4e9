// A thread that waits at home for good (a condition variable nobody
// signals) while main ends the program: what a member of a lasting OpenMP
// team does when the program ends.
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int started;

static void *park(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    started = 1;
    for (;;) pthread_cond_wait(&never, &lock);
    return NULL;
}

int main(void) {
    pthread_t thread;
    pthread_create(&thread, NULL, park, NULL);
    for (;;) {
        pthread_mutex_lock(&lock);
        int ready = started;
        pthread_mutex_unlock(&lock);
        if (ready) break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    printf("the thread waits; main ends the program\n");
    return 0;
}
