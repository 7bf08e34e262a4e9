// Threads blocked in read, poll and select on stdin (a pipe nobody
// writes) are cancelled: each is a cancellation point (POSIX), so each
// thread runs its cleanup handler and is joined as cancelled. A fourth
// thread reads with cancellation disabled and is not; main ends the
// program while it still waits.
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <unistd.h>

static sem_t started;
static int cleaned[3];

static void cleanup(void *arg) { *(int *)arg = 1; }

static void *reader(void *arg) {
    (void)arg;
    char buf[16];
    pthread_cleanup_push(cleanup, &cleaned[0]);
    sem_post(&started);
    ssize_t n = read(0, buf, sizeof buf);
    printf("read returned %zd\n", n);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *poller(void *arg) {
    (void)arg;
    struct pollfd fd = {.fd = 0, .events = POLLIN};
    pthread_cleanup_push(cleanup, &cleaned[1]);
    sem_post(&started);
    int n = poll(&fd, 1, -1);
    printf("poll returned %d\n", n);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *selector(void *arg) {
    (void)arg;
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(0, &readable);
    pthread_cleanup_push(cleanup, &cleaned[2]);
    sem_post(&started);
    int n = select(1, &readable, NULL, NULL, NULL);
    printf("select returned %d\n", n);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *uncancellable(void *arg) {
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    char buf[16];
    sem_post(&started);
    ssize_t n = read(0, buf, sizeof buf);
    printf("the uncancellable read returned %zd\n", n);
    return NULL;
}

int main(void) {
    sem_init(&started, 0, 0);
    void *(*bodies[])(void *) = {reader, poller, selector, uncancellable};
    const char *names[] = {"read", "poll", "select"};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, bodies[i], NULL);
    for (int i = 0; i < 4; i++) sem_wait(&started);
    usleep(100 * 1000); // all are in their waits by now
    pthread_cancel(threads[3]);
    for (int i = 0; i < 3; i++) {
        pthread_cancel(threads[i]);
        void *result;
        pthread_join(threads[i], &result);
        printf("%s: %s, cleanup %s\n", names[i],
               result == PTHREAD_CANCELED ? "cancelled" : "not cancelled",
               cleaned[i] ? "ran" : "did not run");
    }
    usleep(50 * 1000);
    printf("the uncancellable reader still waits\n");
    fflush(stdout);
    exit(0);
}
