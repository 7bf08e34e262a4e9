// One thread polls stdin (a pipe nobody writes) with no time limit,
// another selects on it with a limit of 150 ms; meanwhile main sleeps,
// writes and reads a clock, then reports the timed wait and ends the
// program. As natively, the waits stall nobody else, and the timed one
// ends when its time is up.
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static sem_t started;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void *poller(void *arg) {
    (void)arg;
    struct pollfd fd = {.fd = 0, .events = POLLIN};
    sem_post(&started);
    int n = poll(&fd, 1, -1);
    printf("poll returned %d\n", n);
    return NULL;
}

static void *selector(void *arg) {
    double *waited = arg;
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(0, &readable);
    struct timeval limit = {.tv_sec = 0, .tv_usec = 150 * 1000};
    double start = now_ms();
    sem_post(&started);
    int n = select(1, &readable, NULL, NULL, &limit);
    *waited = now_ms() - start;
    return (void *)(long)n;
}

int main(void) {
    sem_init(&started, 0, 0);
    pthread_t polling, selecting;
    double waited = 0;
    pthread_create(&polling, NULL, poller, NULL);
    pthread_create(&selecting, NULL, selector, &waited);
    sem_wait(&started);
    sem_wait(&started);
    usleep(50 * 1000); // both are in their waits by now
    (void)now_ms();
    printf("main slept, wrote and read the clock while the others wait\n");
    fflush(stdout);
    void *selected;
    pthread_join(selecting, &selected);
    printf("select returned %ld after its limit: %s\n", (long)selected,
           waited >= 140 ? "yes" : "no");
    fflush(stdout);
    exit(0);
}
