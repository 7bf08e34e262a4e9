/* malloc, realloc and free from many threads at once: every block keeps
 * its contents; blocks freed by another thread are fine. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4
#define ROUNDS 4000
#define LIVE 64

static void *handoff[N][LIVE];

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    uint32_t seed = (uint32_t)id * 2654435761u + 1;
    void *live[LIVE] = {0};
    size_t sizes[LIVE] = {0};
    long bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        int slot = (seed >> 8) % LIVE;
        if (live[slot]) {
            unsigned char *p = live[slot];
            for (size_t k = 0; k < sizes[slot]; k++) bad += p[k] != (unsigned char)(slot + id);
            if (seed & 1) {
                free(p);
                live[slot] = NULL;
                continue;
            }
            size_t bigger = sizes[slot] * 2 + 1;
            p = realloc(p, bigger);
            memset(p, (unsigned char)(slot + id), bigger);
            live[slot] = p;
            sizes[slot] = bigger;
            continue;
        }
        sizes[slot] = 1 + (seed >> 16) % 2000;
        live[slot] = malloc(sizes[slot]);
        memset(live[slot], (unsigned char)(slot + id), sizes[slot]);
    }
    for (int s = 0; s < LIVE; s++) handoff[id][s] = live[s];
    return (void *)bad;
}

int main(void) {
    pthread_t t[N];
    for (intptr_t i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long bad = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    int freed = 0;
    for (int i = 0; i < N; i++)
        for (int s = 0; s < LIVE; s++)
            if (handoff[i][s]) {
                free(handoff[i][s]);
                freed++;
            }
    printf("corrupted bytes: %ld; blocks freed by main: %s\n", bad, freed > 0 ? "some" : "none");
    return 0;
}
