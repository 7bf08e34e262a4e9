/* OpenMP parallel regions: team sizes from num_threads, omp_set_num_threads
 * and if(); thread numbers; nesting levels; a region with many shared
 * variables. Each member writes only its own slots; main prints. */
#include <omp.h>
#include <stdio.h>

#define MAX 16

static int ids[MAX], sizes[MAX], levels[MAX];

static void clear(void) {
    for (int i = 0; i < MAX; i++) ids[i] = sizes[i] = levels[i] = -1;
}

static void show(const char *what) {
    printf("%s:", what);
    for (int i = 0; i < MAX; i++)
        if (ids[i] >= 0) printf(" [%d of %d, level %d]", ids[i], sizes[i], levels[i]);
    printf("\n");
}

int main(void) {
    clear();
#pragma omp parallel num_threads(4)
    {
        int me = omp_get_thread_num();
        ids[me] = me;
        sizes[me] = omp_get_num_threads();
        levels[me] = omp_get_level();
    }
    show("num_threads(4)");

    clear();
    omp_set_num_threads(3);
#pragma omp parallel
    {
        int me = omp_get_thread_num();
        ids[me] = me;
        sizes[me] = omp_get_num_threads();
        levels[me] = omp_in_parallel();
    }
    show("omp_set_num_threads(3)");

    for (int cond = 0; cond < 2; cond++) {
        clear();
#pragma omp parallel num_threads(2) if (cond)
        {
            int me = omp_get_thread_num();
            ids[me] = me;
            sizes[me] = omp_get_num_threads();
            levels[me] = omp_get_active_level() * 10 + omp_get_level();
        }
        show(cond ? "if(1)" : "if(0)");
    }

    /* Nested regions: inactive by default (one thread each). */
    int inner[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) inner[i][j] = -1;
#pragma omp parallel num_threads(2)
    {
        int outer = omp_get_thread_num();
#pragma omp parallel num_threads(2)
        inner[outer][omp_get_thread_num()] = omp_get_num_threads() * 100 + omp_get_level() * 10 +
                                              omp_get_active_level();
    }
    printf("nested, inactive:");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) printf(" %d", inner[i][j]);
    printf("\n");

    /* Two active levels. */
    omp_set_max_active_levels(2);
    int ancestors[4][4];
#pragma omp parallel num_threads(2)
    {
        int outer = omp_get_thread_num();
#pragma omp parallel num_threads(2)
        {
            int me = omp_get_thread_num();
            inner[outer][me] =
                omp_get_num_threads() * 100 + omp_get_level() * 10 + omp_get_active_level();
            ancestors[outer][me] = omp_get_ancestor_thread_num(1) * 10 + omp_get_team_size(1);
        }
    }
    printf("nested, active:");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) printf(" %d/%d", inner[i][j], ancestors[i][j]);
    printf("\n");
    omp_set_max_active_levels(1);

    /* Twenty shared variables: the outlined function takes them all. */
    long v0 = 0, v1 = 1, v2 = 2, v3 = 3, v4 = 4, v5 = 5, v6 = 6, v7 = 7, v8 = 8, v9 = 9;
    long w0 = 10, w1 = 11, w2 = 12, w3 = 13, w4 = 14, w5 = 15, w6 = 16, w7 = 17, w8 = 18, w9 = 19;
    long out[4] = {0}, written = 0;
#pragma omp parallel num_threads(4)
    {
        int me = omp_get_thread_num();
        out[me] = (v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9) * (me + 1) +
                  (w0 + w1 + w2 + w3 + w4 + w5 + w6 + w7 + w8 + w9);
        if (me == 3) written = 900;
    }
    printf("20 shared: %ld %ld %ld %ld, written %ld\n", out[0], out[1], out[2], out[3], written);
    printf("max threads after omp_set_num_threads(3): %d\n", omp_get_max_threads());
    return 0;
}
