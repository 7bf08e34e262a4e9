/* pthread_once runs its routine exactly once however many threads race. */
#include <pthread.h>
#include <stdio.h>

#define N 12

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_runs;
static int value;

static void init(void) {
    init_runs++;
    value = 42;
}

static void *worker(void *arg) {
    (void)arg;
    pthread_once(&once, init);
    return (void *)(long)value;
}

int main(void) {
    pthread_t t[N];
    for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, NULL);
    long seen = 0;
    for (int i = 0; i < N; i++) {
        void *v;
        pthread_join(t[i], &v);
        seen += (long)v;
    }
    pthread_once(&once, init);
    printf("init ran %d time(s); every thread saw 42: %d\n", init_runs, seen == 42L * N);
    return 0;
}
