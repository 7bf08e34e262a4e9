/* The second file of main.c's program. */
#include <omp.h>

long long part_b(int n) {
    long long total = 0, sum = 0;
#pragma omp parallel num_threads(3)
    {
#pragma omp critical
        total += 2;
    }
#pragma omp parallel for reduction(+ : sum) num_threads(3)
    for (int i = 0; i < n; i++) sum += 2 * i;
    return total * 1000000 + sum;
}
