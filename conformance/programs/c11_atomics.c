/* C11 atomics from four threads: a counter of fetch-adds, a compare-and-
 * swap maximum, and a flag with release and acquire that publishes data
 * written before it. In chain mode weft-cc's lowering makes each an
 * operation on one value for every thread. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define THREADS 4
#define ROUNDS 500

static atomic_int counter;
static atomic_llong biggest;
static atomic_int ready;
static int data[64];

static void *worker(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ROUNDS; i++) {
        atomic_fetch_add(&counter, 1);
        long long mine = id * 1000 + i, seen = atomic_load(&biggest);
        while (mine > seen && !atomic_compare_exchange_weak(&biggest, &seen, mine)) {}
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    while (!atomic_load_explicit(&ready, memory_order_acquire)) {}
    long sum = 0;
    for (int i = 0; i < 64; i++) sum += data[i];
    return (void *)sum;
}

int main(void) {
    pthread_t t[THREADS], c;
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("counter %d (expected %d), biggest %lld\n", atomic_load(&counter), THREADS * ROUNDS,
           atomic_load(&biggest));

    pthread_create(&c, NULL, consumer, NULL);
    for (int i = 0; i < 64; i++) data[i] = i * 3;
    atomic_store_explicit(&ready, 1, memory_order_release);
    void *sum;
    pthread_join(c, &sum);
    printf("consumer saw the data before the flag: sum %ld\n", (long)sum);
    return 0;
}
