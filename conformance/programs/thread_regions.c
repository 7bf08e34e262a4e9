/* Merge regions registered by threads, not main: each owner thread
 * registers a sum region over its own counters, then starts workers that
 * add into them atomically; the owner checks the totals after the joins.
 * In chain mode over several hosts the owners may run on peers, where the
 * registration is a call home. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <weft/threads.h>

#define OWNERS 2
#define WORKERS 3
#define COUNTERS 8

static int64_t counts[OWNERS][COUNTERS];
static int registered[OWNERS];

struct job {
    int owner, worker;
};

static void *work(void *arg) {
    struct job *j = arg;
    for (int i = 0; i < COUNTERS; i++)
        __atomic_fetch_add(&counts[j->owner][i], (int64_t)(i + 1) * (j->worker + 1),
                           __ATOMIC_SEQ_CST);
    return NULL;
}

static void *own(void *arg) {
    int k = (int)(intptr_t)arg;
    registered[k] = weft_merge_region(counts[k], sizeof counts[k], WEFT_MERGE_SUM, WEFT_ELEM_I64);
    pthread_t t[WORKERS];
    struct job jobs[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        jobs[w] = (struct job){k, w};
        pthread_create(&t[w], NULL, work, &jobs[w]);
    }
    for (int w = 0; w < WORKERS; w++) pthread_join(t[w], NULL);
    return NULL;
}

int main(void) {
    pthread_t t[OWNERS];
    for (intptr_t k = 0; k < OWNERS; k++) pthread_create(&t[k], NULL, own, (void *)k);
    for (int k = 0; k < OWNERS; k++) pthread_join(t[k], NULL);
    for (int k = 0; k < OWNERS; k++) {
        printf("owner %d: region %d, counts", k, registered[k]);
        for (int i = 0; i < COUNTERS; i++) printf(" %lld", (long long)counts[k][i]);
        printf("\n");
    }
    return 0;
}
