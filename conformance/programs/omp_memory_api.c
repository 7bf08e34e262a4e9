/* OpenMP 5 memory allocators and the constructs built on them, with the
 * newer loop constructs: omp_alloc/omp_calloc/omp_aligned_alloc/
 * omp_realloc/omp_free with the predefined allocators, an allocator made
 * from traits (alignment, fallback), the default allocator, the
 * `allocate` clause on private data, dependence objects (`depobj`) on
 * tasks, `scan` (inclusive and exclusive), the `loop` construct and
 * `masked taskloop`. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N 64

static int aligned(const void *p, uintptr_t to) { return ((uintptr_t)p & (to - 1)) == 0; }

/* An allocator from traits: every block 256-aligned; a bad trait makes
 * no allocator. */
static int traits_allocator(void) {
    omp_alloctrait_t traits[] = {{omp_atk_alignment, 256}, {omp_atk_fallback, omp_atv_null_fb}};
    omp_allocator_handle_t big = omp_init_allocator(omp_default_mem_space, 2, traits);
    int ok = big != omp_null_allocator;
    double *d = omp_alloc(100 * sizeof *d, big);
    ok = ok && d && aligned(d, 256);
    double *e = omp_aligned_alloc(64, 10 * sizeof *e, omp_default_mem_alloc);
    ok = ok && e && aligned(e, 64);
    double *f = omp_calloc(5000, sizeof *f, big);
    ok = ok && f && aligned(f, 256) && f[4999] == 0.0;
    omp_free(d, big);
    omp_free(f, big);
    omp_free(e, omp_default_mem_alloc);
    omp_set_default_allocator(big);
    char *c = omp_alloc(10, omp_null_allocator);
    ok = ok && c && aligned(c, 256) && omp_get_default_allocator() == big;
    omp_free(c, omp_null_allocator);
    omp_set_default_allocator(omp_default_mem_alloc);
    omp_destroy_allocator(big);
    omp_alloctrait_t bad[] = {{omp_atk_alignment, 3}};
    ok = ok && omp_init_allocator(omp_default_mem_space, 1, bad) == omp_null_allocator;
    return ok;
}

int main(void) {
    omp_set_num_threads(3);

    /* Predefined allocators: blocks that hold what is written. */
    long long sum = 0;
    const omp_allocator_handle_t predefined[] = {omp_default_mem_alloc, omp_large_cap_mem_alloc,
                                                 omp_high_bw_mem_alloc, omp_low_lat_mem_alloc};
    for (int k = 0; k < 4; k++) {
        int *p = omp_alloc(N * sizeof *p, predefined[k]);
        int *z = omp_calloc(N, sizeof *z, predefined[k]);
        for (int i = 0; i < N; i++) p[i] = i * (k + 1) + z[i];
        p = omp_realloc(p, 2 * N * sizeof *p, predefined[k], predefined[k]);
        for (int i = 0; i < N; i++) sum += p[i];
        omp_free(p, predefined[k]);
        omp_free(z, predefined[k]);
    }
    printf("predefined allocators: %lld\n", sum);

    printf("allocator from traits: %s\n", traits_allocator() ? "ok" : "wrong");

    /* The allocate clause: each member's private copy from an allocator. */
    int members = 0, counted = 0;
#pragma omp parallel private(counted) allocate(omp_default_mem_alloc : counted) \
    reduction(+ : members)
    {
        counted = omp_get_thread_num() + 1;
        members += counted;
    }
    printf("allocate clause: %d\n", members);

    /* Dependence objects: a writer task, then a reader through depobj. */
    int x = 0, seen = -1;
    omp_depend_t writes, reads;
#pragma omp depobj(writes) depend(inout : x)
#pragma omp depobj(reads) depend(in : x)
#pragma omp parallel
#pragma omp single
    {
#pragma omp task depend(depobj : writes) shared(x)
        x = 42;
#pragma omp task depend(depobj : reads) shared(x, seen)
        seen = x;
#pragma omp taskwait
    }
#pragma omp depobj(writes) destroy
#pragma omp depobj(reads) destroy
    printf("depobj: %d\n", seen);

    /* scan: inclusive and exclusive prefix sums. */
    int a[N], inc[N], exc[N];
    for (int i = 0; i < N; i++) a[i] = i % 7 + 1;
    int run = 0;
#pragma omp parallel for reduction(inscan, + : run)
    for (int i = 0; i < N; i++) {
        run += a[i];
#pragma omp scan inclusive(run)
        inc[i] = run;
    }
    run = 0;
#pragma omp parallel for reduction(inscan, + : run)
    for (int i = 0; i < N; i++) {
        exc[i] = run;
#pragma omp scan exclusive(run)
        run += a[i];
    }
    printf("scan: %d %d %d %d\n", inc[0], inc[N - 1], exc[0], exc[N - 1]);

    /* loop, and masked taskloop. */
    int squares[N];
#pragma omp parallel
#pragma omp loop
    for (int i = 0; i < N; i++) squares[i] = i * i;
    long long total = 0;
#pragma omp parallel
#pragma omp masked
#pragma omp taskloop num_tasks(8) reduction(+ : total)
    for (int i = 0; i < N; i++) total += squares[i];
    printf("loop and masked taskloop: %lld\n", total);
    return 0;
}
