// Threads blocked in read, poll and select on stdin (a pipe nobody
// writes), and in poll and select on no descriptor with a long timeout
// (old code's sleeps), are cancelled: each is a cancellation point
// (POSIX), so each thread runs its cleanup handler and is joined as
// cancelled. Another thread reads with cancellation disabled and is not;
// main ends the program while it still waits.
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <unistd.h>

static sem_t started;
static int cleaned[5];

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

static void *timed_poller(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, &cleaned[3]);
    sem_post(&started);
    int n = poll(NULL, 0, 30 * 1000);
    printf("the timed poll returned %d\n", n);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *timed_selector(void *arg) {
    (void)arg;
    struct timeval timeout = {.tv_sec = 30};
    pthread_cleanup_push(cleanup, &cleaned[4]);
    sem_post(&started);
    int n = select(0, NULL, NULL, NULL, &timeout);
    printf("the timed select returned %d\n", n);
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
    void *(*bodies[])(void *) = {reader,       poller,         selector,
                                 timed_poller, timed_selector, uncancellable};
    const char *names[] = {"read", "poll", "select", "timed poll", "timed select"};
    enum { CANCELLABLE = 5 };
    pthread_t threads[CANCELLABLE + 1];
    for (int i = 0; i <= CANCELLABLE; i++) pthread_create(&threads[i], NULL, bodies[i], NULL);
    for (int i = 0; i <= CANCELLABLE; i++) sem_wait(&started);
    usleep(100 * 1000); // all are in their waits by now
    pthread_cancel(threads[CANCELLABLE]);
    for (int i = 0; i < CANCELLABLE; i++) {
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
