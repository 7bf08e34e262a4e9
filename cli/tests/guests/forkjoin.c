/* A fork-join program shaped by its arguments, for property tests that
 * run it natively, in local mode and in chain mode:
 *   forkjoin THREADS ELEMENTS WORK LAYOUT OP SEED
 * Each thread fills its elements of `out` (LAYOUT 0: contiguous slices,
 * 1: strided) with a value that costs WORK steps, and folds them into
 * `acc` with OP (0 sum, 1 min, 2 max, 3 xor): atomically, so threads that
 * share memory agree, and through a merge region of that op, so chained
 * threads do too. Prints a checksum of `out` and `acc`. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft/threads.h>

#define MAX_ELEMENTS 4096
#define MAX_THREADS 8

static int64_t out[MAX_ELEMENTS];
static int64_t acc;
static int threads, elements, work, layout, op;
static uint64_t seed;

static int64_t value_of(int i) {
    uint64_t x = seed ^ (uint64_t)i * 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < work; k++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (int64_t)(x >> 20) - (1ll << 42);
}

static void fold(int64_t v) {
    switch (op) {
    case 0: __atomic_fetch_add(&acc, v, __ATOMIC_SEQ_CST); break;
    case 3: __atomic_fetch_xor(&acc, v, __ATOMIC_SEQ_CST); break;
    default: {
        int64_t cur = __atomic_load_n(&acc, __ATOMIC_SEQ_CST);
        while ((op == 1 ? v < cur : v > cur) &&
               !__atomic_compare_exchange_n(&acc, &cur, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        }
    }
    }
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    int64_t local = op == 1 ? INT64_MAX : op == 2 ? INT64_MIN : 0;
    for (int i = 0; i < elements; i++) {
        int mine = layout == 0 ? i * threads / elements == id : i % threads == id;
        if (!mine) continue;
        int64_t v = value_of(i);
        out[i] = v;
        switch (op) {
        case 0: local += v; break;
        case 1: local = v < local ? v : local; break;
        case 2: local = v > local ? v : local; break;
        default: local ^= v;
        }
    }
    fold(local);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 7) return 2;
    threads = atoi(argv[1]);
    elements = atoi(argv[2]);
    work = atoi(argv[3]);
    layout = atoi(argv[4]);
    op = atoi(argv[5]);
    seed = strtoull(argv[6], NULL, 10);
    if (threads < 1 || threads > MAX_THREADS || elements < 1 || elements > MAX_ELEMENTS) return 2;
    static const weft_merge_op_t ops[] = {WEFT_MERGE_SUM, WEFT_MERGE_MIN, WEFT_MERGE_MAX, WEFT_MERGE_XOR};
    acc = op == 1 ? INT64_MAX : op == 2 ? INT64_MIN : 0;
    if (weft_merge_region(&acc, sizeof acc, ops[op], WEFT_ELEM_I64) != 0) return 3;
    pthread_t t[MAX_THREADS];
    for (intptr_t i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    uint64_t checksum = 0;
    for (int i = 0; i < elements; i++) checksum = checksum * 31 + (uint64_t)out[i];
    printf("checksum %llu acc %lld\n", (unsigned long long)checksum, (long long)acc);
    return 0;
}
