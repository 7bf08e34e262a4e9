/* Creates blocked threads until pthread_create fails, then releases and
 * joins them: past what the host can run it must be EAGAIN, never an
 * abort of the runtime. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int stop;
static void *hold(void *arg) {
    pthread_mutex_lock(&lock);
    while (!stop) pthread_cond_wait(&go, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}
int main(int argc, char **argv) {
    int max = argc > 1 ? atoi(argv[1]) : 1000000;
    pthread_t *t = malloc(sizeof *t * max);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16384);
    int n = 0, rc = 0;
    for (; n < max; n++) if ((rc = pthread_create(&t[n], &attr, hold, NULL)) != 0) break;
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    printf("created %d, then %s\n", n, rc == EAGAIN ? "EAGAIN" : rc ? "another error" : "no error");
    return 0;
}
