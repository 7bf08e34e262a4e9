/* OpenMP reductions with the task modifier (OpenMP 5.0): on a parallel
 * region, tasks made by one member (in_reduction) and every member's own
 * updates all reach the result; on a work-sharing loop, tasks made in its
 * iterations do; two reductions at once (sum and product), and the
 * region run again. */
#include <stdio.h>

int main(void) {
    for (int round = 0; round < 3; round++) {
        long sum = 0;
#pragma omp parallel reduction(task, + : sum) num_threads(3)
        {
#pragma omp single
            for (int i = 1; i <= 200; i++) {
#pragma omp task in_reduction(+ : sum)
                sum += i;
            }
            sum += 1000;
        }
        long loop_sum = 0;
        double product = 1;
#pragma omp parallel num_threads(4)
#pragma omp for reduction(task, + : loop_sum) reduction(task, * : product)
        for (int i = 0; i < 40; i++) {
#pragma omp task in_reduction(+ : loop_sum) in_reduction(* : product)
            {
                loop_sum += i;
                product *= i % 5 == 0 ? 2.0 : 1.0;
            }
        }
        printf("round %d: parallel %ld, loop %ld, product %.0f\n", round, sum, loop_sum, product);
    }
    return 0;
}
