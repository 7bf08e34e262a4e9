/* OpenMP reductions: every built-in operator on integers and doubles, a
 * user-defined reduction, an array section, and reductions on loops and
 * on plain regions. Values are exact (integers, or doubles that hold
 * integers), so any combination order gives the same result. */
#include <omp.h>
#include <stdio.h>

struct stats {
    long long count, total;
    int lo, hi;
};

static void merge(struct stats *out, const struct stats *in) {
    out->count += in->count;
    out->total += in->total;
    if (in->lo < out->lo) out->lo = in->lo;
    if (in->hi > out->hi) out->hi = in->hi;
}

#pragma omp declare reduction(combine:struct stats : merge(&omp_out, &omp_in)) \
    initializer(omp_priv = (struct stats){0, 0, 1 << 30, -(1 << 30)})

#define N 100000

int main(void) {
    omp_set_num_threads(4);
    long long sum = 0, product = 1;
    int lo = 1 << 30, hi = -(1 << 30), all = 1, any = 0, bits_and = ~0, bits_or = 0, bits_xor = 0;
    double dsum = 0, dmax = -1e300;
#pragma omp parallel for reduction(+ : sum, dsum) reduction(min : lo) reduction(max : hi, dmax) \
    reduction(&& : all) reduction(|| : any) reduction(& : bits_and) reduction(| : bits_or)      \
    reduction(^ : bits_xor) schedule(dynamic, 100)
    for (int i = 1; i <= N; i++) {
        int v = (i * 7919) % 10007;
        sum += v;
        dsum += v * 0.5;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if ((double)v > dmax) dmax = v;
        all = all && v >= 0;
        any = any || v == 5000;
        bits_and &= v | 1;
        bits_or |= v;
        bits_xor ^= v;
    }
    printf("sum %lld dsum %.1f min %d max %d dmax %.1f\n", sum, dsum, lo, hi, dmax);
    printf("and %d or %d bitand %d bitor %d bitxor %d\n", all, any, bits_and, bits_or, bits_xor);

#pragma omp parallel for reduction(* : product)
    for (int i = 1; i <= 20; i++) product *= i;
    printf("20! = %lld\n", product);

    struct stats s = {0, 0, 1 << 30, -(1 << 30)};
#pragma omp parallel for reduction(combine : s)
    for (int i = 0; i < N; i++) {
        int v = (i * 31) % 977;
        struct stats one = {1, v, v, v};
        merge(&s, &one);
    }
    printf("declare reduction: count %lld total %lld lo %d hi %d\n", s.count, s.total, s.lo, s.hi);

    long long histogram[8] = {0};
#pragma omp parallel for reduction(+ : histogram[0 : 8])
    for (int i = 0; i < N; i++) histogram[(i * 13) % 8] += i;
    printf("array section:");
    for (int i = 0; i < 8; i++) printf(" %lld", histogram[i]);
    printf("\n");

    /* A reduction over a plain region: one contribution per thread. */
    int members = 0;
#pragma omp parallel reduction(+ : members) num_threads(3)
    members += 1;
    printf("members %d\n", members);

    /* A reduction inside a region, on a work-sharing loop, then used. */
    long long inner = 0;
    int seen[4] = {0};
#pragma omp parallel num_threads(4)
    {
#pragma omp for reduction(+ : inner)
        for (int i = 0; i < 1000; i++) inner += i;
        seen[omp_get_thread_num()] = inner == 499500;
    }
    printf("loop reduction %lld, every member saw it after the loop: %d\n", inner,
           seen[0] && seen[1] && seen[2] && seen[3]);
    return 0;
}
