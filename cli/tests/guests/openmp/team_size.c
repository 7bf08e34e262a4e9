/* The default team size and the OpenMP environment variables. */
#include <omp.h>
#include <stdio.h>

int main(void) {
    int team = 0;
#pragma omp parallel
#pragma omp master
    team = omp_get_num_threads();
    omp_sched_t kind;
    int chunk;
    omp_get_schedule(&kind, &chunk);
    printf("max %d team %d procs %d schedule %d,%d\n", omp_get_max_threads(), team,
           omp_get_num_procs(), (int)kind, chunk);
    return 0;
}
