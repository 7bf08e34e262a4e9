/* A program with synchronisation shaped by its arguments, for property
 * tests that run it natively, in local mode and in chain mode:
 *   synced THREADS PHASES KINDS WORK SEED
 * Every thread runs PHASES phases; KINDS says what each phase does
 * (bits): 1 adds to a sum under a mutex; 2 writes a grid cell, meets the
 * others at a barrier and reads its neighbour's cell of the phase before
 * (double-buffered); 4 appends to a log in turn, passing a token around a
 * ring with a condition variable; 8 adds to a C11 atomic counter. Every
 * result is deterministic in a data-race-free run; prints them all. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_THREADS 8
#define MAX_PHASES 8

static int threads, phases, kinds, work;
static uint64_t seed;

static pthread_mutex_t sum_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t sum;
static pthread_barrier_t barrier;
static uint64_t grid[2][MAX_THREADS];
static uint64_t carried[MAX_THREADS];
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_turn = PTHREAD_COND_INITIALIZER;
static int turn;
static int log_entries[MAX_THREADS * MAX_PHASES];
static int log_length;
static atomic_ullong counter;

static uint64_t value_of(int thread, int phase) {
    uint64_t x = seed ^ ((uint64_t)thread << 32) ^ (uint64_t)phase * 0x9e3779b97f4a7c15ull;
    for (int k = 0; k <= work; k++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x >> 16;
}

static void *run(void *arg) {
    int me = (int)(intptr_t)arg;
    uint64_t mine = 0;
    for (int p = 0; p < phases; p++) {
        uint64_t v = value_of(me, p);
        if (kinds & 1) {
            pthread_mutex_lock(&sum_lock);
            sum += v ^ mine;
            pthread_mutex_unlock(&sum_lock);
        }
        if (kinds & 2) {
            grid[p % 2][me] = v + mine;
            pthread_barrier_wait(&barrier);
            mine = mine * 31 + grid[p % 2][(me + 1) % threads];
            pthread_barrier_wait(&barrier);
        }
        if (kinds & 4) {
            pthread_mutex_lock(&ring_lock);
            while (turn != me) pthread_cond_wait(&ring_turn, &ring_lock);
            log_entries[log_length++] = me * 100 + p;
            turn = (me + 1) % threads;
            pthread_cond_broadcast(&ring_turn);
            pthread_mutex_unlock(&ring_lock);
        }
        if (kinds & 8) atomic_fetch_add(&counter, v & 0xffff);
        mine += v & 0xff;
    }
    carried[me] = mine;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: synced THREADS PHASES KINDS WORK SEED\n");
        return 2;
    }
    threads = atoi(argv[1]);
    phases = atoi(argv[2]);
    kinds = atoi(argv[3]);
    work = atoi(argv[4]);
    seed = strtoull(argv[5], NULL, 10);
    if (threads < 1 || threads > MAX_THREADS || phases < 1 || phases > MAX_PHASES) return 2;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, (void *)(intptr_t)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    uint64_t log_hash = 0, carried_hash = 0;
    for (int i = 0; i < log_length; i++) log_hash = log_hash * 1000003 + (uint64_t)log_entries[i];
    for (int i = 0; i < threads; i++) carried_hash = carried_hash * 1000003 + carried[i];
    printf("sum %llu carried %llu log %d/%llu counter %llu\n", (unsigned long long)sum,
           (unsigned long long)carried_hash, log_length, (unsigned long long)log_hash,
           (unsigned long long)atomic_load(&counter));
    return 0;
}
