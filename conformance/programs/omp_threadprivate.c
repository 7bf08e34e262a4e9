/* OpenMP threadprivate and copyin across parallel regions: each thread's
 * copies persist from one region to the next when the team keeps its
 * size (also across an if(0) region, a team of one and a nested region),
 * copyin hands the master's values to every thread, and threads added by
 * a bigger team start from the initial values. Each member writes only
 * its own slots; main prints, then ends with pthread_exit. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>

#define THREADS 4
#define MAX 8

static int counter = 7;
static double scale[3] = {1.0, 2.0, 3.0};
static struct {
    int id;
    long sum;
} rec = {-1, 0};
#pragma omp threadprivate(counter, scale, rec)

static int seen_counter[MAX], seen_id[MAX];
static long seen_sum[MAX];
static double seen_scale[MAX];
static pthread_t first_thread[MAX];
static int same_thread[MAX];

static void record(void) {
    int me = omp_get_thread_num();
    seen_counter[me] = counter;
    seen_id[me] = rec.id;
    seen_sum[me] = rec.sum;
    seen_scale[me] = scale[0] + scale[1] + scale[2];
}

static void show(const char *what, int n) {
    printf("%s:", what);
    for (int i = 0; i < n; i++)
        printf(" [%d %d %ld %.1f]", seen_counter[i], seen_id[i], seen_sum[i], seen_scale[i]);
    printf("\n");
}

int main(void) {
    omp_set_dynamic(0);

#pragma omp parallel num_threads(THREADS)
    {
        int me = omp_get_thread_num();
        counter = 10 * (me + 1);
        rec.id = me;
        scale[0] *= me + 1;
        first_thread[me] = pthread_self();
    }

    for (int r = 1; r <= 5; r++) {
#pragma omp parallel num_threads(THREADS)
        {
            counter += r;
            rec.sum += counter;
            scale[1] += 0.5;
        }
    }
#pragma omp parallel num_threads(THREADS)
    {
        record();
        same_thread[omp_get_thread_num()] = pthread_equal(pthread_self(),
                                                          first_thread[omp_get_thread_num()]);
    }
    show("after 6 regions", THREADS);
    printf("same pthread for each thread number:");
    for (int i = 0; i < THREADS; i++) printf(" %d", same_thread[i] != 0);
    printf("\n");

    /* The master alone: its copy is main's. */
#pragma omp parallel num_threads(THREADS) if (0)
    counter += 100;
#pragma omp parallel num_threads(1)
    rec.sum += 1000;
    printf("master alone: %d %ld\n", counter, rec.sum);

    /* A work-sharing loop with barriers between, and a nested level. */
    long squares = 0;
#pragma omp parallel num_threads(THREADS) reduction(+ : squares)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < 40; i++) squares += (long)i * i;
        counter += 1;
#pragma omp barrier
        counter += 1;
    }
    omp_set_max_active_levels(2);
    int inner[THREADS][2];
#pragma omp parallel num_threads(THREADS)
    {
        int outer = omp_get_thread_num();
        counter += 1000;
#pragma omp parallel num_threads(2)
        inner[outer][omp_get_thread_num()] = outer * 10 + omp_get_thread_num();
    }
    omp_set_max_active_levels(1);
#pragma omp parallel num_threads(THREADS)
    record();
    show("after a loop and a nested level", THREADS);
    printf("squares %ld, inner:", squares);
    for (int i = 0; i < THREADS; i++) printf(" %d %d", inner[i][0], inner[i][1]);
    printf("\n");

    /* copyin: every thread starts from the master's values, then keeps its
     * own. */
    counter = 500;
    scale[2] = 0.5;
#pragma omp parallel num_threads(THREADS) copyin(counter, scale)
    {
        counter += omp_get_thread_num();
        scale[2] += omp_get_thread_num();
    }
#pragma omp parallel num_threads(THREADS)
    record();
    show("copyin, one region later", THREADS);

    for (int k = 1; k <= 3; k++) {
        counter = 1000 * k;
#pragma omp parallel num_threads(THREADS) copyin(counter)
        {
            counter += 10 * omp_get_thread_num();
            rec.sum += counter;
        }
    }
#pragma omp parallel num_threads(THREADS)
    record();
    show("three copyin regions", THREADS);

    /* A bigger team: the new threads start from the initial values. */
#pragma omp parallel num_threads(THREADS + 2)
    record();
    show("a team of 6", THREADS + 2);
#pragma omp parallel num_threads(2)
    record();
    show("a team of 2", 2);
    fflush(stdout);
    /* main ends while the team's threads wait for a region: the program
     * ends when they have left (its exit status is 0). */
    pthread_exit(NULL);
}
