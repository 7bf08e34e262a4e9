/* Counts the primes below N with T threads (interleaved blocks, trial
 * division), checks the count against a serial sieve, and prints both.
 *
 *   weft-cc -O2 primes.c -o primes.wasm
 *   weft run primes.wasm [N] [THREADS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_THREADS 64

/* Thread i takes blocks i, i + T, i + 2T, ... of BLOCK numbers, so that
 * every thread gets a share of the costly large numbers. */
#define BLOCK 4096

struct job {
    long first_block, limit, stride;
    long count;
};

static int is_prime(long n) {
    if (n < 2) return 0;
    if (n % 2 == 0) return n == 2;
    for (long d = 3; d <= n / d; d += 2)
        if (n % d == 0) return 0;
    return 1;
}

static void *count_primes(void *arg) {
    struct job *job = arg;
    for (long block = job->first_block; block * BLOCK < job->limit; block += job->stride) {
        long end = block * BLOCK + BLOCK < job->limit ? block * BLOCK + BLOCK : job->limit;
        for (long n = block * BLOCK; n < end; n++) job->count += is_prime(n);
    }
    return NULL;
}

static long sieve_count(long n) {
    char *composite = calloc((size_t)n, 1);
    long count = 0;
    for (long i = 2; i < n; i++) {
        if (composite[i]) continue;
        count++;
        for (long long j = (long long)i * i; j < n; j += i) composite[j] = 1;
    }
    free(composite);
    return count;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (n < 2 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "usage: primes [N >= 2] [1 <= THREADS <= %d]\n", MAX_THREADS);
        return 2;
    }
    pthread_t tids[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    double start = seconds();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){i, n, threads, 0};
        pthread_create(&tids[i], NULL, count_primes, &jobs[i]);
    }
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += jobs[i].count;
    }
    double elapsed = seconds() - start;
    long expected = sieve_count(n);
    printf("primes below %ld: %ld (%d threads, %.3f s); serial sieve says %ld: %s\n", n, total,
           threads, elapsed, expected, total == expected ? "correct" : "WRONG");
    return total == expected ? 0 : 1;
}
