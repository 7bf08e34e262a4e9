/* OpenMP threads with frames of ordinary size: a 256 KB local array in
 * each member of a team and in each of its tasks (BOTS' alignment keeps
 * four arrays of 5,000 ints in one frame). libgomp's threads get the
 * native stack; Weft's used to get 64 KiB and trap. */
#include <omp.h>
#include <stdio.h>

#define WORDS (64 * 1024)

static long big_frame(int seed) {
    volatile int a[WORDS];
    for (int i = 0; i < WORDS; i++) a[i] = seed + i;
    long sum = 0;
    for (int i = 0; i < WORDS; i += 997) sum += a[i];
    return sum;
}

int main(void) {
    long members[4] = {0}, tasks[8] = {0};
#pragma omp parallel num_threads(4)
    {
        members[omp_get_thread_num()] = big_frame(omp_get_thread_num());
#pragma omp single
        for (int t = 0; t < 8; t++) {
#pragma omp task firstprivate(t) shared(tasks)
            tasks[t] = big_frame(100 * t);
        }
    }
    for (int m = 0; m < 4; m++) printf("member %d: %ld\n", m, members[m]);
    for (int t = 0; t < 8; t++) printf("task %d: %ld\n", t, tasks[t]);
    return 0;
}
