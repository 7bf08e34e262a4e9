/* OpenMP untied tasks whose if clause is false at run time (undeferred:
 * clang runs them through __kmpc_omp_task_begin_if0 and splits an untied
 * task at its scheduling points, re-queuing it at each): the body runs
 * whole, its child tasks (tied and untied) run, and a taskwait inside
 * waits for them; also an untied task that is deferred, with a
 * taskyield, and one nested in an undeferred one. */
#include <omp.h>
#include <stdio.h>

#define ROUNDS 20
#define CHILDREN 16

int cond = 0; /* not a constant: the if clause is decided at run time */

int main(void) {
    int counter = 0, bodies = 0, after_wait = 0, nested = 0, yielded = 0;
    for (int r = 0; r < ROUNDS; r++) {
#pragma omp parallel num_threads(3)
#pragma omp single
        {
#pragma omp task if (cond) untied shared(counter, bodies, after_wait)
            {
#pragma omp atomic
                bodies++;
                for (int i = 0; i < CHILDREN; i++) {
                    if (i % 2) {
#pragma omp task shared(counter)
                        {
#pragma omp atomic
                            counter++;
                        }
                    } else {
#pragma omp task untied shared(counter)
                        {
#pragma omp atomic
                            counter++;
                        }
                    }
                }
#pragma omp taskwait
                int seen;
#pragma omp atomic read
                seen = counter;
                if (seen == (r + 1) * CHILDREN) {
#pragma omp atomic
                    after_wait++;
                }
            }
#pragma omp task untied shared(yielded)
            {
#pragma omp taskyield
#pragma omp atomic
                yielded++;
            }
#pragma omp task if (cond) untied shared(nested)
            {
#pragma omp task if (cond) untied shared(nested)
                {
#pragma omp atomic
                    nested++;
                }
#pragma omp atomic
                nested++;
            }
        }
    }
    printf("bodies %d of %d\n", bodies, ROUNDS);
    printf("children %d of %d\n", counter, ROUNDS * CHILDREN);
    printf("taskwait saw every child %d of %d\n", after_wait, ROUNDS);
    printf("deferred untied with taskyield %d of %d\n", yielded, ROUNDS);
    printf("nested undeferred untied %d of %d\n", nested, 2 * ROUNDS);
    return 0;
}
