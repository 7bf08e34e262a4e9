/* OpenMP cancellation with OMP_CANCELLATION=true: `cancel for` ends a
 * loop early for every member (the others see it at their cancellation
 * points) and the next loop of the region runs whole; `cancel sections`;
 * `cancel parallel` sends every member past the region's barriers to its
 * end; `cancel taskgroup` discards the group's tasks that have not
 * started (here all of them wait for the cancelling task). */
#include <omp.h>
#include <stdio.h>

#define N 1000

int main(void) {
    printf("cancellation %d\n", omp_get_cancellation());
    int found = -1, ran = 0, second = 0;
#pragma omp parallel num_threads(4)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            if (i == N / 2) {
#pragma omp atomic write
                found = i;
#pragma omp cancel for
            }
#pragma omp cancellation point for
#pragma omp atomic
            ran++;
        }
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
#pragma omp cancellation point for
#pragma omp atomic
            second++;
        }
    }
    printf("cancel for: found %d, fewer than %d ran: %s\n", found, N, ran < N ? "yes" : "no");
    printf("the next loop ran %d of %d\n", second, N);

    int sections_run = 0;
#pragma omp parallel num_threads(2)
#pragma omp sections
    {
#pragma omp section
        {
#pragma omp cancel sections
#pragma omp atomic
            sections_run++;
        }
#pragma omp section
        {
#pragma omp atomic
            sections_run += 10;
        }
    }
    printf("sections: %s\n", sections_run % 10 == 0 ? "the cancelling one stopped" : "ran on");

    int past_barrier = 0, before = 0;
#pragma omp parallel num_threads(4)
    {
#pragma omp atomic
        before++;
        if (omp_get_thread_num() == 0) {
#pragma omp cancel parallel
        }
#pragma omp barrier
#pragma omp atomic
        past_barrier++;
    }
    printf("cancel parallel: %d members started, %d went past the barrier\n", before,
           past_barrier);

    int discarded_ran = 0, marker = 0;
#pragma omp parallel num_threads(3)
#pragma omp single
#pragma omp taskgroup
    {
#pragma omp task depend(out : marker) shared(marker)
        {
            marker = 1;
#pragma omp cancel taskgroup
        }
        for (int i = 0; i < 20; i++) {
#pragma omp task depend(in : marker) shared(discarded_ran)
            {
#pragma omp atomic
                discarded_ran++;
            }
        }
    }
    printf("cancel taskgroup: %d of the 20 waiting tasks ran\n", discarded_ran);
    return 0;
}
