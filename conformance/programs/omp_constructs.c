/* The OpenMP constructs real codes use, each checked against libgomp:
 * collapse, schedule(runtime) with OMP_SCHEDULE, nonmonotonic:dynamic,
 * simd and for simd, declare reduction over a struct, atomic read, write,
 * update and capture with every operator, atomic compare, named critical
 * sections, ordered, single copyprivate, master and masked, nested regions
 * under max_active_levels, the ICVs from OMP_NUM_THREADS, OMP_DYNAMIC and
 * OMP_THREAD_LIMIT, and omp_get_wtime. The case sets OMP_SCHEDULE,
 * OMP_NUM_THREADS, OMP_DYNAMIC, OMP_THREAD_LIMIT, OMP_MAX_ACTIVE_LEVELS. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

struct stats {
    long long count, sum, min, max;
};

static void stats_merge(struct stats *out, const struct stats *in) {
    out->count += in->count;
    out->sum += in->sum;
    if (in->min < out->min) out->min = in->min;
    if (in->max > out->max) out->max = in->max;
}

#pragma omp declare reduction(merge:struct stats : stats_merge(&omp_out, &omp_in)) \
    initializer(omp_priv = (struct stats){0, 0, 1LL << 62, -(1LL << 62)})

#pragma omp declare simd
static double scaled(double x, double k) { return x * k + 1.0; }

int main(void) {
    /* ICVs from the environment. */
    omp_sched_t kind;
    int chunk;
    omp_get_schedule(&kind, &chunk);
    printf("max threads %d, thread limit %d, dynamic %d, max active levels %d, schedule %d,%d\n",
           omp_get_max_threads(), omp_get_thread_limit(), omp_get_dynamic(),
           omp_get_max_active_levels(), (int)kind, chunk);
    printf("processors >= 1: %d\n", omp_get_num_procs() >= 1);

    /* collapse(3) over a 3D array. */
    static int cube[6][7][8];
#pragma omp parallel for collapse(3)
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 8; k++) cube[i][j][k] = i * 100 + j * 10 + k;
    long long cube_sum = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 8; k++) cube_sum += cube[i][j][k];
    printf("collapse(3): %lld\n", cube_sum);

    /* schedule(runtime) follows OMP_SCHEDULE; nonmonotonic:dynamic. */
    static int owner[1000];
    long long runtime_sum = 0, nonmono_sum = 0;
#pragma omp parallel for schedule(runtime) reduction(+ : runtime_sum)
    for (int i = 0; i < 1000; i++) {
        owner[i] = omp_get_thread_num();
        runtime_sum += i;
    }
#pragma omp parallel for schedule(nonmonotonic : dynamic, 5) reduction(+ : nonmono_sum)
    for (int i = 0; i < 1000; i++) nonmono_sum += (long long)i * 3;
    int owners_valid = 1;
    for (int i = 0; i < 1000; i++) owners_valid &= owner[i] >= 0 && owner[i] < 3;
    printf("schedule(runtime) %lld, owners valid %d; nonmonotonic:dynamic %lld\n", runtime_sum,
           owners_valid, nonmono_sum);

    /* simd and for simd, with a declare simd function and a reduction. */
    static double xs[1024], ys[1024];
    for (int i = 0; i < 1024; i++) xs[i] = i % 17;
    double simd_sum = 0;
#pragma omp simd reduction(+ : simd_sum)
    for (int i = 0; i < 1024; i++) simd_sum += xs[i] * 2.0;
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < 1024; i++) ys[i] = scaled(xs[i], 3.0);
    double for_simd_sum = 0;
    for (int i = 0; i < 1024; i++) for_simd_sum += ys[i];
    int lin = 0;
#pragma omp simd linear(lin : 2)
    for (int i = 0; i < 100; i++) lin += 2;
    printf("simd %.1f, for simd %.1f, linear %d\n", simd_sum, for_simd_sum, lin);

    /* declare reduction over a struct. */
    struct stats st = {0, 0, 1LL << 62, -(1LL << 62)};
#pragma omp parallel for reduction(merge : st)
    for (int i = 1; i <= 500; i++) {
        long long v = (long long)(i * 37 % 501) - 250;
        st.count++;
        st.sum += v;
        if (v < st.min) st.min = v;
        if (v > st.max) st.max = v;
    }
    printf("declare reduction: count %lld sum %lld min %lld max %lld\n", st.count, st.sum, st.min,
           st.max);

    /* atomic update with every operator, capture, read, write, compare. */
    long long add = 0, sub = 1000000, mul = 1, band = -1, bor = 0, bxor = 0;
    long long shl = 1, shr = 1LL << 40, div = 1LL << 40;
    double fadd = 0, fmul = 1;
    int captured[64], cap = 0, minv = 1 << 30, maxv = -(1 << 30), written = 0;
#pragma omp parallel for
    for (int i = 0; i < 64; i++) {
#pragma omp atomic
        add += i;
#pragma omp atomic update
        sub -= i;
        if (i % 16 == 0) {
#pragma omp atomic
            mul *= 3;
#pragma omp atomic
            shl <<= 2;
#pragma omp atomic
            shr >>= 3;
#pragma omp atomic
            div /= 4;
#pragma omp atomic
            fmul *= 2.0;
        }
#pragma omp atomic
        band &= ~(1LL << (i % 40));
#pragma omp atomic
        bor |= 1LL << (i % 50);
#pragma omp atomic
        bxor ^= (long long)i << 3;
#pragma omp atomic
        fadd += 0.5;
        int old;
#pragma omp atomic capture
        old = cap++;
        captured[i] = old;
        int v = (i * 29) % 64;
#pragma omp atomic compare
        if (v < minv) { minv = v; }
#pragma omp atomic compare
        if (v > maxv) { maxv = v; }
        if (i == 10) {
#pragma omp atomic write
            written = 77;
        }
    }
    int read_back;
#pragma omp atomic read
    read_back = written;
    long long capture_sum = 0;
    for (int i = 0; i < 64; i++) capture_sum += captured[i];
    printf("atomic: + %lld - %lld * %lld & %llx | %llx ^ %llx << %lld >> %lld / %lld\n", add,
           sub, mul, (unsigned long long)band, (unsigned long long)bor,
           (unsigned long long)bxor, shl, shr, div);
    printf("atomic: double + %.1f * %.1f, capture %lld (%d), compare min %d max %d, read %d\n",
           fadd, fmul, capture_sum, cap, minv, maxv, read_back);

    /* Named critical sections: two names do not exclude each other, each
     * protects its own counter. */
    long long red = 0, blue = 0;
#pragma omp parallel for
    for (int i = 0; i < 300; i++) {
        if (i % 2) {
#pragma omp critical(red_lock)
            red += i;
        } else {
#pragma omp critical(blue_lock)
            blue += i;
        }
    }
    printf("named critical: red %lld blue %lld\n", red, blue);

    /* ordered. */
    char order[64];
    int pos = 0;
#pragma omp parallel for ordered schedule(dynamic, 2)
    for (int i = 0; i < 26; i++) {
#pragma omp ordered
        order[pos++] = (char)('a' + i);
    }
    order[pos] = 0;
    printf("ordered: %s\n", order);

    /* single copyprivate, master, masked. */
    int agreed[8] = {0}, master_runs = 0, masked_runs = 0, masked_by = -1;
#pragma omp parallel num_threads(3)
    {
        int value;
#pragma omp single copyprivate(value)
        value = 1234;
        agreed[omp_get_thread_num()] = value;
#pragma omp master
        master_runs++;
#pragma omp masked filter(2)
        {
            masked_runs++;
            masked_by = omp_get_thread_num();
        }
    }
    printf("copyprivate %d %d %d, master ran %d, masked ran %d on %d\n", agreed[0], agreed[1],
           agreed[2], master_runs, masked_runs, masked_by);

    /* Nested regions: OMP_NUM_THREADS=3,2 and two active levels. */
    int sizes[4][8] = {{0}};
#pragma omp parallel
    {
        int outer = omp_get_thread_num();
#pragma omp parallel
        {
#pragma omp parallel
            {
                if (omp_get_ancestor_thread_num(2) == 0) {
                    sizes[outer][0] = omp_get_team_size(1) * 100 + omp_get_team_size(2) * 10 +
                                      omp_get_num_threads();
                    sizes[outer][2] = omp_get_active_level();
                }
                if (omp_get_ancestor_thread_num(2) == 1) sizes[outer][1] = omp_get_level();
            }
        }
    }
    for (int t = 0; t < 3; t++)
        printf("nested under outer member %d: sizes %d, level %d, active level %d\n", t,
               sizes[t][0], sizes[t][1], sizes[t][2]);
    omp_set_dynamic(1);
    int dyn = omp_get_dynamic();
    omp_set_dynamic(0);
    printf("omp_set_dynamic: %d then %d\n", dyn, omp_get_dynamic());

    /* omp_get_wtime never goes back, and its tick is positive. */
    double last = omp_get_wtime();
    int monotonic = 1;
#pragma omp parallel
    for (int i = 0; i < 2000; i++) {
        double now = omp_get_wtime();
        if (omp_get_thread_num() == 0) {
            if (now < last) monotonic = 0;
            last = now;
        }
    }
    printf("wtime monotonic %d, tick positive %d\n", monotonic, omp_get_wtick() > 0);
    return 0;
}
