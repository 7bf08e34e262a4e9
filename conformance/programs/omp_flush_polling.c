/* OpenMP flush loops in a team larger than the slots (the case runs with
 * --slots 2): each member waits for the one before it by polling a flag
 * with flush, works, then sets its own flag, so the last member waits
 * longest and the members it waits for may be queued for a slot. */
#include <omp.h>
#include <stdio.h>

int main(void) {
    int flags[8] = {0};
    long long work[8] = {0};
    omp_set_num_threads(4);
#pragma omp parallel shared(flags, work)
    {
        int me = omp_get_thread_num();
        if (me > 0) {
            while (!flags[me - 1]) {
#pragma omp flush
            }
        }
        long long s = 0;
        for (int i = 0; i < 2000000; i++) s += i % (me + 3);
        work[me] = s;
#pragma omp flush
        flags[me] = 1;
#pragma omp flush
    }
    printf("%lld %lld %lld %lld\n", work[0], work[1], work[2], work[3]);
    return 0;
}
