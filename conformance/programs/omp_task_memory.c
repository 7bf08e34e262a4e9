/* The memory of tasks is reused when members run each other's tasks:
 * in each round one member of a team of three (each in turn) creates
 * tasks with a 16 KiB firstprivate payload, round after round and region
 * after region, and whichever member takes a task runs it and frees it
 * (mostly the two that wait at the barrier). Many more task bytes are
 * created in all than the memory holds (the case runs with a 16 MiB cap),
 * so the program ends only if a task freed by another member than its
 * creator becomes free memory again. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define THREADS 3
#define REGIONS 12
#define ROUNDS 20
#define PER_ROUND 18
#define WORDS 4096

struct payload {
    unsigned words[WORDS];
};

/* What each task found in its payload, one slot per task. */
static unsigned found[REGIONS][ROUNDS][PER_ROUND];

static unsigned payload_sum(const struct payload *p) {
    unsigned sum = 0;
    for (int i = 0; i < WORDS; i++) sum += p->words[i] * (unsigned)(i + 1);
    return sum;
}

/* A payload that is mostly zeros: the bytes a task carries are 16 KiB, the
 * bytes that change from one task to the next are few. */
static void fill(struct payload *p, int region, int round, int k) {
    memset(p, 0, sizeof *p);
    p->words[0] = (unsigned)region + 1;
    p->words[WORDS / 2] = (unsigned)round * 7 + 3;
    p->words[WORDS - 1] = (unsigned)k;
}

static void round_of_tasks(int region, int round) {
    for (int k = 0; k < PER_ROUND; k++) {
        struct payload p;
        fill(&p, region, round, k);
#pragma omp task firstprivate(p, region, round, k)
        found[region][round][k] = payload_sum(&p);
    }
}

int main(void) {
    int team = 0;
    for (int region = 0; region < REGIONS; region++) {
#pragma omp parallel num_threads(THREADS)
        {
#pragma omp single
            team = omp_get_num_threads();
            for (int round = 0; round < ROUNDS; round++) {
                if (omp_get_thread_num() == round % omp_get_num_threads())
                    round_of_tasks(region, round);
                /* Members that arrive early run the others' tasks. */
#pragma omp barrier
            }
        }
    }

    unsigned long long total = 0;
    int wrong = 0;
    for (int region = 0; region < REGIONS; region++)
        for (int round = 0; round < ROUNDS; round++)
            for (int k = 0; k < PER_ROUND; k++) {
                struct payload p;
                fill(&p, region, round, k);
                unsigned want = payload_sum(&p);
                total += found[region][round][k];
                wrong += found[region][round][k] != want;
            }
    int tasks = REGIONS * ROUNDS * PER_ROUND;
    printf("team of %d, %d tasks of %zu payload bytes (%d KiB in all)\n", team, tasks,
           sizeof(struct payload), (int)((long long)tasks * (long long)sizeof(struct payload) >> 10));
    printf("checksum %llu, wrong %d\n", total, wrong);
    return wrong != 0;
}
