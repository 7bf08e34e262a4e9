/* pthread_getcpuclockid: a thread's CPU-time clock, read by itself and by
 * another thread while it lives; it counts that thread's time only. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>

static double seconds(clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t) != 0) return -1;
    return t.tv_sec + t.tv_nsec / 1e9;
}

static sem_t burned, go;
static volatile unsigned long long sink;

static void *child(void *arg) {
    (void)arg;
    unsigned long long x = 0;
    while (seconds(CLOCK_THREAD_CPUTIME_ID) < 0.03)
        for (int i = 0; i < 100000; i++) x += i ^ (x >> 3);
    sink = x;
    sem_post(&burned);
    sem_wait(&go);
    return NULL;
}

int main(void) {
    clockid_t own;
    printf("own clock: %d\n", pthread_getcpuclockid(pthread_self(), &own));
    double a = seconds(own), b = seconds(CLOCK_THREAD_CPUTIME_ID);
    printf("own clock is CLOCK_THREAD_CPUTIME_ID: %d\n", a >= 0 && b - a >= 0 && b - a < 0.05);

    sem_init(&burned, 0, 0);
    sem_init(&go, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, child, NULL);
    sem_wait(&burned);
    clockid_t theirs;
    printf("child's clock: %d\n", pthread_getcpuclockid(t, &theirs));
    double used = seconds(theirs);
    printf("child used its 30 ms: %d\n", used >= 0.03 && used < 5);
    printf("main's clock is not the child's: %d\n", seconds(own) < used || seconds(own) > used + 0.001);
    sem_post(&go);
    pthread_join(t, NULL);
    return 0;
}
