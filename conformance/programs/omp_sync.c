/* OpenMP synchronisation: critical (unnamed and named), barrier phases,
 * single, copyprivate, master, masked, locks and nest locks (atomics are
 * omp_atomic's). */
#include <omp.h>
#include <stdio.h>

#define THREADS 4
#define ROUNDS 2000

int main(void) {
    omp_set_num_threads(THREADS);
    long long counter = 0, named = 0;
#pragma omp parallel
    for (int i = 0; i < ROUNDS; i++) {
#pragma omp critical
        counter += i;
#pragma omp critical(second)
        named += 2;
    }
    printf("critical %lld named %lld\n", counter, named);

    /* Phases: each member writes its slot, then after the barrier reads its
     * neighbour's. */
    int slots[THREADS], seen[THREADS];
#pragma omp parallel
    {
        int me = omp_get_thread_num();
        for (int phase = 1; phase <= 50; phase++) {
            slots[me] = phase * 100 + me;
#pragma omp barrier
            int next = (me + 1) % THREADS;
            if (slots[next] != phase * 100 + next) seen[me] = -phase;
            else seen[me] = phase;
#pragma omp barrier
        }
    }
    printf("barrier phases: %d %d %d %d\n", seen[0], seen[1], seen[2], seen[3]);

    int singles = 0, masters = 0, masked = 0, who_masked = -1;
#pragma omp parallel
    {
        for (int i = 0; i < 10; i++) {
#pragma omp single
            singles++;
        }
#pragma omp master
        masters++;
#pragma omp masked filter(2)
        {
            masked++;
            who_masked = omp_get_thread_num();
        }
    }
    printf("single %d master %d masked %d by %d\n", singles, masters, masked, who_masked);

    int agreed[THREADS];
#pragma omp parallel
    {
        int value;
#pragma omp single copyprivate(value)
        value = 4242;
        agreed[omp_get_thread_num()] = value;
    }
    printf("copyprivate %d %d %d %d\n", agreed[0], agreed[1], agreed[2], agreed[3]);

    omp_lock_t lock;
    omp_init_lock(&lock);
    long long locked = 0;
    int tests = 0;
#pragma omp parallel
    for (int i = 0; i < 500; i++) {
        omp_set_lock(&lock);
        locked += 3;
        omp_unset_lock(&lock);
        if (omp_test_lock(&lock)) {
#pragma omp atomic
            tests++;
            omp_unset_lock(&lock);
        }
    }
    omp_destroy_lock(&lock);
    printf("lock %lld, test_lock succeeded at least once: %d\n", locked, tests > 0);

    omp_nest_lock_t nest;
    omp_init_nest_lock(&nest);
    int depth_total = 0;
#pragma omp parallel
    for (int i = 0; i < 100; i++) {
        omp_set_nest_lock(&nest);
        int depth = omp_test_nest_lock(&nest);
        depth_total += depth;
        omp_unset_nest_lock(&nest);
        omp_unset_nest_lock(&nest);
    }
    omp_destroy_nest_lock(&nest);
    printf("nest lock depth total %d\n", depth_total);
    return 0;
}
