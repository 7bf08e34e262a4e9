/* The main thread calls pthread_exit: the program lives on until its last
 * thread ends, then exits with status 0 and flushed stdio. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int main_done;

static void *worker(void *arg) {
    pthread_mutex_lock(&lock);
    while (!main_done) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    printf("worker %d: main has exited, finishing\n", (int)(long)arg);
    return NULL;
}

static void at_exit(void) { printf("atexit handler ran\n"); }

int main(void) {
    atexit(at_exit);
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)1L);
    pthread_detach(t);
    printf("main: calling pthread_exit\n");
    pthread_mutex_lock(&lock);
    main_done = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    pthread_exit(NULL);
}
