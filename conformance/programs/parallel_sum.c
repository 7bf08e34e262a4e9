/* Parallel sum into one total: threads add their partial sums with an
 * atomic add (local mode and native share memory), and the total is a sum
 * merge region, so chained threads' additions combine when they merge. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <weft/threads.h>

#define N 100000
#define THREADS 4

static int values[N];
static int64_t total;
static int64_t squares;

static void *work(void *arg) {
    int id = (int)(intptr_t)arg;
    int64_t sum = 0, sq = 0;
    for (int i = id * (N / THREADS); i < (id + 1) * (N / THREADS); i++) {
        sum += values[i];
        sq += (int64_t)values[i] * values[i];
    }
    __atomic_fetch_add(&total, sum, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&squares, sq, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    for (int i = 0; i < N; i++) values[i] = (i * 37) % 1001 - 500;
    printf("regions: %d %d\n", weft_merge_region(&total, sizeof total, WEFT_MERGE_SUM, WEFT_ELEM_I64),
           weft_merge_region(&squares, sizeof squares, WEFT_MERGE_SUM, WEFT_ELEM_I64));
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    int64_t expected = 0, expected_sq = 0;
    for (int i = 0; i < N; i++) {
        expected += values[i];
        expected_sq += (int64_t)values[i] * values[i];
    }
    printf("total %lld (expected %lld), squares %lld (expected %lld)\n", (long long)total,
           (long long)expected, (long long)squares, (long long)expected_sq);
    return 0;
}
