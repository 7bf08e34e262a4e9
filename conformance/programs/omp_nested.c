/* Nested OpenMP regions whose inner teams synchronise: each outer member
 * forks an inner team that shares a counter under critical, meets at
 * barriers, reduces, runs tasks, and writes its own slots of an array the
 * outer team reads after its own barrier. Run twice, so inner teams are
 * reused from region to region. */
#include <omp.h>
#include <stdio.h>

#define OUTER 2
#define INNER 3
#define N 600

static long grid[OUTER][INNER][N];

int main(void) {
    omp_set_max_active_levels(2);
    long total = 0, tasks = 0, critical_count = 0;
    for (int round = 0; round < 2; round++) {
        long sums[OUTER] = {0};
#pragma omp parallel num_threads(OUTER) reduction(+ : total)
        {
            int o = omp_get_thread_num();
            long inner_sum = 0;
#pragma omp parallel num_threads(INNER) reduction(+ : inner_sum)
            {
                int i = omp_get_thread_num();
                if (omp_get_level() != 2 || omp_get_num_threads() != INNER ||
                    omp_get_ancestor_thread_num(1) != o)
                    printf("wrong level data\n");
                for (int k = 0; k < N; k++) grid[o][i][k] = (long)(round + 1) * (o * 1000 + i * 100 + k);
#pragma omp barrier
                /* Read a neighbour's row, written before the barrier. */
                long row = 0;
                for (int k = 0; k < N; k++) row += grid[o][(i + 1) % INNER][k];
                inner_sum += row;
#pragma omp critical
                critical_count++;
#pragma omp single
                {
                    for (int t = 0; t < 4; t++) {
#pragma omp task
                        {
#pragma omp atomic
                            tasks++;
                        }
                    }
                }
#pragma omp for
                for (int k = 0; k < N; k++) grid[o][0][k] += 1;
            }
            sums[o] = inner_sum;
#pragma omp barrier
            total += sums[(o + 1) % OUTER];
        }
        long check = 0;
        for (int o = 0; o < OUTER; o++)
            for (int k = 0; k < N; k++) check += grid[o][0][k];
        printf("round %d: total %ld check %ld\n", round, total, check);
    }
    printf("critical %ld tasks %ld\n", critical_count, tasks);
    return 0;
}
