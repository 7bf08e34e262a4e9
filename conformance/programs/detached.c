/* Detached threads (by attribute and by pthread_detach) run to completion
 * and free themselves; joining a detached thread is refused. */
#include <pthread.h>
#include <stdio.h>

#define N 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int done;
static long sum;

static void *worker(void *arg) {
    pthread_mutex_lock(&lock);
    sum += (long)arg;
    done++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < N; i++) {
        pthread_t t;
        if (i % 2 == 0) {
            pthread_create(&t, &attr, worker, (void *)i);
        } else {
            pthread_create(&t, NULL, worker, (void *)i);
            pthread_detach(t);
        }
    }
    pthread_mutex_lock(&lock);
    while (done < N) pthread_cond_wait(&done_cond, &lock);
    pthread_mutex_unlock(&lock);
    printf("detached threads done: %d sum: %ld\n", done, sum);
    pthread_attr_destroy(&attr);
    return 0;
}
