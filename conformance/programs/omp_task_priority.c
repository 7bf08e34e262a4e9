/* OpenMP task priorities and the runtime's pause: OMP_MAX_TASK_PRIORITY
 * sets omp_get_max_task_priority (a priority is a hint: every task runs,
 * whatever its priority, above the maximum too), and omp_pause_resource
 * and omp_pause_resource_all succeed outside any region, fail inside
 * one, and the regions after a pause run as before. */
#include <omp.h>
#include <stdio.h>

#define ROUNDS 50
#define TASKS 8

int main(void) {
    printf("max task priority %d\n", omp_get_max_task_priority());
    int run = 0;
    for (int r = 0; r < ROUNDS; r++) {
#pragma omp parallel num_threads(3)
#pragma omp single
        for (int p = 0; p < TASKS; p++) {
#pragma omp task priority(p * 10) shared(run)
            {
#pragma omp atomic
                run++;
            }
        }
    }
    printf("tasks run %d of %d\n", run, ROUNDS * TASKS);
    int inside = 0;
#pragma omp parallel num_threads(2)
#pragma omp single
    inside = omp_pause_resource_all(omp_pause_soft);
    printf("a pause inside a region %s\n", inside != 0 ? "fails" : "succeeds");
    printf("soft pause %s\n", omp_pause_resource_all(omp_pause_soft) == 0 ? "done" : "failed");
    int members = 0;
#pragma omp parallel num_threads(3) reduction(+ : members)
    members += 1;
    printf("region after it: %d members\n", members);
    printf("hard pause %s\n",
           omp_pause_resource(omp_pause_hard, omp_get_initial_device()) == 0 ? "done" : "failed");
    members = 0;
#pragma omp parallel num_threads(3) reduction(+ : members)
    members += 1;
    printf("region after it: %d members\n", members);
    return 0;
}
