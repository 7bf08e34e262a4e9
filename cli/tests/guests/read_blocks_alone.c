// A thread blocks reading stdin (a pipe nobody writes); meanwhile main
// sleeps, writes, reads a clock and ends the program. As natively, the
// reader's wait stalls nobody else.
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static sem_t started;

static void *reader(void *arg) {
    (void)arg;
    char buf[16];
    sem_post(&started);
    ssize_t n = read(0, buf, sizeof buf);
    printf("read returned %zd\n", n);
    return NULL;
}

int main(void) {
    sem_init(&started, 0, 0);
    pthread_t thread;
    pthread_create(&thread, NULL, reader, NULL);
    sem_wait(&started);
    usleep(200 * 1000); // the reader is in its read by now
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("main slept, wrote and read the clock while the reader waits\n");
    fflush(stdout);
    exit(0);
}
