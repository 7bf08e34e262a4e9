// Fills a 1 MiB array with VALUE (argv[1]), then runs WAVES (argv[2])
// waves of four threads that each sum a quarter of it (PASSES times,
// argv[3], to make them last), and counts the waves whose total is wrong. Programs started with different values
// share one worker in the cluster tests: a thread that saw another
// program's memory makes its wave wrong.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N (1 << 18)
#define THREADS 4

static int data[N];
static long long sums[THREADS];
static int passes = 1;

static void *sum_part(void *arg) {
    int part = (int)(long)arg;
    long long sum = 0;
    for (int pass = 0; pass < passes; pass++) {
        sum = 0;
        for (int i = part * (N / THREADS); i < (part + 1) * (N / THREADS); i++) sum += data[i];
        __asm__ volatile("" : : "r"(sum) : "memory");
    }
    sums[part] = sum;
    return NULL;
}

int main(int argc, char **argv) {
    int value = argc > 1 ? atoi(argv[1]) : 1;
    int waves = argc > 2 ? atoi(argv[2]) : 10;
    passes = argc > 3 ? atoi(argv[3]) : 1;
    for (int i = 0; i < N; i++) data[i] = value;
    int wrong = 0;
    for (int wave = 0; wave < waves; wave++) {
        pthread_t threads[THREADS];
        for (long t = 0; t < THREADS; t++) {
            if (pthread_create(&threads[t], NULL, sum_part, (void *)t) != 0) {
                printf("pthread_create failed\n");
                return 1;
            }
        }
        long long total = 0;
        for (int t = 0; t < THREADS; t++) {
            pthread_join(threads[t], NULL);
            total += sums[t];
        }
        if (total != (long long)value * N) wrong++;
    }
    printf("value %d: %d waves, %d wrong\n", value, waves, wrong);
    return 0;
}
