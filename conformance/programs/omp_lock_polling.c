/* OpenMP locks taken by polling: `while (!omp_test_lock(&l)) {}` and the
 * same with a nest lock, in a team larger than the threads that can run
 * at once, with a flush while the lock is held (a wait that lets another
 * thread run); and tests of a lock another thread holds. Main prints. */
#include <omp.h>
#include <stdio.h>

#define THREADS 6
#define ROUNDS 25

int main(void) {
    omp_lock_t lock;
    omp_nest_lock_t nest;
    omp_init_lock(&lock);
    omp_init_nest_lock(&nest);

    long total = 0;
    int turns[THREADS] = {0};
#pragma omp parallel num_threads(THREADS)
    {
        int me = omp_get_thread_num();
        for (int r = 0; r < ROUNDS; r++) {
            while (!omp_test_lock(&lock)) {
            }
            total += me + 1;
            turns[me]++;
#pragma omp flush
            omp_unset_lock(&lock);
        }
    }
    printf("test_lock: total %ld, turns", total);
    for (int i = 0; i < THREADS; i++) printf(" %d", turns[i]);
    printf("\n");

    long nested_total = 0;
    int depths[THREADS] = {0};
#pragma omp parallel num_threads(THREADS)
    {
        int me = omp_get_thread_num();
        for (int r = 0; r < ROUNDS; r++) {
            int depth;
            while ((depth = omp_test_nest_lock(&nest)) == 0) {
            }
            /* The owner's second test nests. */
            depth = depth * 10 + omp_test_nest_lock(&nest);
            if (depth > depths[me]) depths[me] = depth;
            nested_total += 10 * (me + 1);
#pragma omp flush
            omp_unset_nest_lock(&nest);
            omp_unset_nest_lock(&nest);
        }
    }
    printf("test_nest_lock: total %ld, depths", nested_total);
    for (int i = 0; i < THREADS; i++) printf(" %d", depths[i]);
    printf("\n");

    /* While the master holds each lock, every other thread's test fails. */
    int tried[THREADS] = {0};
#pragma omp parallel num_threads(THREADS)
    {
        int me = omp_get_thread_num();
#pragma omp master
        {
            omp_set_lock(&lock);
            omp_set_nest_lock(&nest);
        }
#pragma omp barrier
        if (me != 0) tried[me] = omp_test_lock(&lock) * 10 + omp_test_nest_lock(&nest);
#pragma omp barrier
#pragma omp master
        {
            omp_unset_lock(&lock);
            omp_unset_nest_lock(&nest);
        }
    }
    printf("tests of held locks:");
    for (int i = 1; i < THREADS; i++) printf(" %d", tried[i]);
    printf("\nfree again: %d %d\n", omp_test_lock(&lock), omp_test_nest_lock(&nest));
    omp_unset_lock(&lock);
    omp_unset_nest_lock(&nest);
    omp_destroy_lock(&lock);
    omp_destroy_nest_lock(&nest);
    return 0;
}
