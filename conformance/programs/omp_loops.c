/* OpenMP work-sharing loops: every schedule, 32- and 64-bit, signed and
 * unsigned counters, negative steps, collapse, lastprivate, nowait. Each
 * iteration records itself once; main checks that every iteration ran
 * exactly once and prints checksums. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>

#define N 1000

static int hits[N];
static long long values[N];

static void reset(void) {
    for (int i = 0; i < N; i++) hits[i] = 0, values[i] = 0;
}

static void report(const char *what, int n) {
    long long sum = 0;
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        if (hits[i] != 1) wrong++;
        sum += values[i] * (i + 1);
    }
    for (int i = n; i < N; i++)
        if (hits[i] != 0) wrong++;
    printf("%-28s %s checksum %lld\n", what, wrong ? "WRONG" : "each once", sum);
}

int main(void) {
    omp_set_num_threads(4);

    reset();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) hits[i]++, values[i] = i * 3;
    report("static", N);

    reset();
#pragma omp parallel for schedule(static, 7)
    for (int i = 0; i < N; i++) hits[i]++, values[i] = i ^ 5;
    report("static, 7", N);

    reset();
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < N; i++) hits[i]++, values[i] = i + 1;
    report("dynamic", N);

    reset();
#pragma omp parallel for schedule(dynamic, 13)
    for (unsigned i = 0; i < N; i++) hits[i]++, values[i] = (long long)i * i;
    report("dynamic, 13, unsigned", N);

    reset();
#pragma omp parallel for schedule(guided)
    for (long long i = 0; i < N; i++) hits[i]++, values[i] = (long)(i % 17);
    report("guided, 64-bit", N);

    reset();
#pragma omp parallel for schedule(guided, 5)
    for (uint64_t i = 3; i < N; i += 2) hits[i]++, values[i] = (long)i;
    for (int i = 0; i < 3; i++) hits[i] = 1;
    for (int i = 4; i < N; i += 2) hits[i] = 1;
    report("guided, 5, unsigned 64, +2", N);

    omp_set_schedule(omp_sched_dynamic, 3);
    reset();
#pragma omp parallel for schedule(runtime)
    for (int i = N - 1; i >= 0; i--) hits[i]++, values[i] = N - i;
    report("runtime (dynamic, 3), down", N);

    omp_set_schedule(omp_sched_static, 0);
    reset();
#pragma omp parallel for schedule(runtime)
    for (int i = 0; i < N; i++) hits[i]++, values[i] = 2 * i;
    report("runtime (static)", N);

    reset();
#pragma omp parallel for schedule(auto)
    for (int i = 10; i > -N + 10; i -= 1) hits[10 - i]++, values[10 - i] = i;
    report("auto, negative values", N);

    reset();
#pragma omp parallel for collapse(2) schedule(static, 3)
    for (int i = 0; i < 25; i++)
        for (int j = 0; j < 40; j++) hits[i * 40 + j]++, values[i * 40 + j] = i - j;
    report("collapse(2)", N);

    reset();
#pragma omp parallel for collapse(2) schedule(dynamic, 4)
    for (int64_t i = 0; i < 40; i++)
        for (int64_t j = 0; j < 25; j++) hits[i * 25 + j]++, values[i * 25 + j] = (long)(i * j);
    report("collapse(2), dynamic, 64", N);

    int last = -1;
    reset();
#pragma omp parallel for lastprivate(last) schedule(static, 9)
    for (int i = 0; i < N; i++) hits[i]++, values[i] = 1, last = i * 2;
    report("lastprivate", N);
    printf("lastprivate value %d\n", last);

    /* Fewer iterations than threads, and none at all. */
    reset();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < 3; i++) hits[i]++, values[i] = 7;
    report("3 iterations, 4 threads", 3);

    reset();
    int from = 5, to = 5;
#pragma omp parallel for schedule(dynamic)
    for (int i = from; i < to; i++) hits[i]++;
    report("no iterations", 0);

    /* Two nowait loops in one region, then a third: threads run ahead
     * through the loops' bookkeeping. */
    static int a[N], b[N];
#pragma omp parallel num_threads(3)
    {
#pragma omp for schedule(dynamic, 8) nowait
        for (int i = 0; i < N; i++) a[i] = i;
#pragma omp for schedule(guided) nowait
        for (int i = 0; i < N; i++) b[i] = 2 * i;
    }
    long long sa = 0, sb = 0;
    for (int i = 0; i < N; i++) sa += a[i], sb += b[i];
    printf("nowait loops %lld %lld\n", sa, sb);
    return 0;
}
