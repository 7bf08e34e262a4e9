/* An OpenMP program in two files, each with an unnamed critical section
 * and a reduction (the compiler's lock objects of the same name in both),
 * and a long double atomic (a library call on wasm32). */
#include <omp.h>
#include <stdio.h>

long long part_b(int n);

int main(void) {
    long long total = 0;
    long double ld = 0;
#pragma omp parallel num_threads(4)
    {
#pragma omp critical
        total += 1;
#pragma omp atomic
        ld += 0.25L;
    }
    long long sum = 0;
#pragma omp parallel for reduction(+ : sum) num_threads(4)
    for (int i = 0; i < 1000; i++) sum += i;
    printf("a: critical %lld, reduction %lld, long double %.2f\n", total, sum, (double)ld);
    printf("b: %lld\n", part_b(1000));
    return 0;
}
