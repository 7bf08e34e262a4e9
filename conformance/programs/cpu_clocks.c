/* CPU-time clocks: a thread's own CPU time counts from its start and
 * grows while it computes; the process's includes every thread's. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static double seconds(clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t) != 0) return -1;
    return t.tv_sec + t.tv_nsec / 1e9;
}

static volatile unsigned long long sink;

static void burn(void) {
    unsigned long long x = 0;
    for (unsigned long long i = 0; i < 60000000ull; i++) x += i ^ (x >> 3);
    sink = x;
}

static void *child(void *arg) {
    int *verdict = arg;
    double start = seconds(CLOCK_THREAD_CPUTIME_ID);
    verdict[0] = start >= 0 && start < 0.05; /* a new thread starts near 0 */
    burn();
    verdict[1] = seconds(CLOCK_THREAD_CPUTIME_ID) - start > 0.005;
    return NULL;
}

int main(void) {
    struct timespec resolution;
    printf("resolution known: %d\n", clock_getres(CLOCK_THREAD_CPUTIME_ID, &resolution) == 0);
    double process_before = seconds(CLOCK_PROCESS_CPUTIME_ID);
    int verdict[2] = {0, 0};
    pthread_t t;
    pthread_create(&t, NULL, child, verdict);
    pthread_join(t, NULL);
    double main_after = seconds(CLOCK_THREAD_CPUTIME_ID);
    double process_after = seconds(CLOCK_PROCESS_CPUTIME_ID);
    printf("child starts near zero: %d\n", verdict[0]);
    printf("child's time grows: %d\n", verdict[1]);
    printf("process time grows: %d\n", process_after - process_before > 0.005);
    printf("main's time excludes the child's: %d\n", main_after < process_after - 0.005);
    return 0;
}
