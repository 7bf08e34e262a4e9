/* OpenMP sections, ordered loops, threadprivate with copyin, master-only
 * output. */
#include <omp.h>
#include <stdio.h>

static int counter_tp = 0;
#pragma omp threadprivate(counter_tp)

int main(void) {
    omp_set_num_threads(3);
    int parts[4] = {0};
#pragma omp parallel sections
    {
#pragma omp section
        parts[0] = 10;
#pragma omp section
        parts[1] = 20;
#pragma omp section
        parts[2] = 30;
#pragma omp section
        parts[3] = 40;
    }
    printf("sections %d %d %d %d\n", parts[0], parts[1], parts[2], parts[3]);

    printf("ordered, dynamic:");
#pragma omp parallel for ordered schedule(dynamic, 2)
    for (int i = 0; i < 20; i++) {
        int square = i * i; /* computed in any order */
#pragma omp ordered
        printf(" %d", square);
    }
    printf("\n");

    printf("ordered, static, some iterations skip it:");
#pragma omp parallel for ordered schedule(static)
    for (int i = 0; i < 20; i++) {
        if (i % 3 == 0) continue;
#pragma omp ordered
        printf(" %d", i);
    }
    printf("\n");

    counter_tp = 5;
    int seen[3] = {0};
#pragma omp parallel copyin(counter_tp)
    {
        counter_tp += omp_get_thread_num();
        seen[omp_get_thread_num()] = counter_tp;
    }
    printf("copyin: %d %d %d, master's copy %d\n", seen[0], seen[1], seen[2], counter_tp);
    return 0;
}
