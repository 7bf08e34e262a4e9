/* OpenMP regions inside pthreads that then end: each pthread forks
 * several regions (in chain mode a crew of its own, whose members are let
 * go when the pthread ends), and main starts a second wave after the
 * first has ended. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>

#define WORKERS 2
#define REGIONS 5
#define TEAM 2

static long sums[2][WORKERS][TEAM];
static int sizes[2][WORKERS];

struct job {
    int wave, worker;
};

static void *worker(void *arg) {
    struct job *j = arg;
    for (int r = 0; r < REGIONS; r++) {
#pragma omp parallel num_threads(TEAM)
        {
            int me = omp_get_thread_num();
            sums[j->wave][j->worker][me] += (r + 1) * (me + 1) + j->worker * 100 + j->wave * 1000;
#pragma omp barrier
            if (me == 0) sizes[j->wave][j->worker] = omp_get_num_threads();
        }
    }
    return NULL;
}

int main(void) {
    for (int wave = 0; wave < 2; wave++) {
        pthread_t t[WORKERS];
        struct job jobs[WORKERS];
        for (int w = 0; w < WORKERS; w++) {
            jobs[w] = (struct job){wave, w};
            pthread_create(&t[w], NULL, worker, &jobs[w]);
        }
        for (int w = 0; w < WORKERS; w++) pthread_join(t[w], NULL);
    }
    for (int wave = 0; wave < 2; wave++)
        for (int w = 0; w < WORKERS; w++) {
            printf("wave %d worker %d team %d:", wave, w, sizes[wave][w]);
            for (int m = 0; m < TEAM; m++) printf(" %ld", sums[wave][w][m]);
            printf("\n");
        }
    return 0;
}
