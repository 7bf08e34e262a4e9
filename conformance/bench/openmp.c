/* OpenMP kernels for `weft bench openmp`, in the style of well-known
 * OpenMP benchmarks:
 *   openmp KERNEL THREADS
 * KERNEL is triad, dot, transpose, stencil, dgemm, p2p, fib (tasks), or
 * the runtime's own overheads: fork (empty regions) and barrier. Prints a checksum
 * (so runs can be compared) and the kernel's time without the set-up. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double *alloc(size_t n) {
    double *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* STREAM triad, repeated. */
static double triad(double *elapsed) {
    const int n = 1 << 21, reps = 10;
    double *a = alloc(n), *b = alloc(n), *c = alloc(n);
#pragma omp parallel for
    for (int i = 0; i < n; i++) a[i] = 0, b[i] = i % 10, c[i] = 2.0;
    double t0 = omp_get_wtime();
    for (int r = 0; r < reps; r++) {
#pragma omp parallel for
        for (int i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
#pragma omp parallel for
        for (int i = 0; i < n; i++) b[i] = a[i] * 0.5;
    }
    *elapsed = omp_get_wtime() - t0;
    double check = 0;
    for (int i = 0; i < n; i++) check += a[i] + b[i];
    free(a), free(b), free(c);
    return check;
}

/* A dot product with a reduction, repeated. */
static double dot(double *elapsed) {
    const int n = 1 << 21, reps = 20;
    double *x = alloc(n), *y = alloc(n);
    for (int i = 0; i < n; i++) x[i] = i % 7, y[i] = i % 5;
    double t0 = omp_get_wtime(), check = 0;
    for (int r = 0; r < reps; r++) {
        double sum = 0;
#pragma omp parallel for reduction(+ : sum)
        for (int i = 0; i < n; i++) sum += x[i] * y[i];
        check += sum;
    }
    *elapsed = omp_get_wtime() - t0;
    free(x), free(y);
    return check;
}

/* A tiled transpose, B += A^T, repeated. */
static double transpose(double *elapsed) {
    const int n = 1024, tile = 32, reps = 5;
    double *a = alloc((size_t)n * n), *b = alloc((size_t)n * n);
    for (int i = 0; i < n * n; i++) a[i] = i % 1000, b[i] = 0;
    double t0 = omp_get_wtime();
    for (int r = 0; r < reps; r++) {
#pragma omp parallel for collapse(2)
        for (int it = 0; it < n; it += tile)
            for (int jt = 0; jt < n; jt += tile)
                for (int i = it; i < it + tile; i++)
                    for (int j = jt; j < jt + tile; j++) b[j * n + i] += a[i * n + j];
    }
    *elapsed = omp_get_wtime() - t0;
    double check = 0;
    for (int i = 0; i < n * n; i++) check += b[i] * (i % 3);
    free(a), free(b);
    return check;
}

/* A 2D five-point stencil in one region, barriers between sweeps. */
static double stencil(double *elapsed) {
    const int n = 512, sweeps = 40;
    double *u = alloc((size_t)n * n), *v = alloc((size_t)n * n);
    for (int i = 0; i < n * n; i++) u[i] = v[i] = (i < n) ? 100.0 : 0.0;
    double t0 = omp_get_wtime();
#pragma omp parallel
    for (int s = 0; s < sweeps; s++) {
#pragma omp for
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                v[i * n + j] = 0.25 * (u[(i - 1) * n + j] + u[(i + 1) * n + j] +
                                       u[i * n + j - 1] + u[i * n + j + 1]);
#pragma omp for
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++) u[i * n + j] = v[i * n + j];
    }
    *elapsed = omp_get_wtime() - t0;
    double check = 0;
    for (int i = 0; i < n * n; i++) check += u[i];
    free(u), free(v);
    return check;
}

/* Dense matrix multiply, C += A * B. */
static double dgemm(double *elapsed) {
    const int n = 320;
    double *a = alloc((size_t)n * n), *b = alloc((size_t)n * n), *c = alloc((size_t)n * n);
    for (int i = 0; i < n * n; i++) a[i] = i % 7 - 3, b[i] = i % 5 - 2, c[i] = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
    *elapsed = omp_get_wtime() - t0;
    double check = 0;
    for (int i = 0; i < n * n; i++) check += c[i] * (i % 3);
    free(a), free(b), free(c);
    return check;
}

/* A pipelined point-to-point sweep: bands wait for their left neighbour
 * through flags, polled after a flush. */
static int done[64]; /* the last row each band finished */
static double p2p(double *elapsed) {
    const int rows = 200, cols = 2000;
    double *g = alloc((size_t)rows * cols);
    memset(g, 0, (size_t)rows * cols * sizeof *g);
    for (int j = 0; j < cols; j++) g[j] = j;
    for (int i = 0; i < rows; i++) g[i * cols] = i;
    for (int t = 0; t < 64; t++) done[t] = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel
    {
        int me = omp_get_thread_num(), nt = omp_get_num_threads();
        int first = 1 + me * (cols - 1) / nt, last = 1 + (me + 1) * (cols - 1) / nt;
        for (int i = 1; i < rows; i++) {
            if (me > 0) {
                int ready;
                do {
#pragma omp flush
#pragma omp atomic read
                    ready = done[me - 1];
                } while (ready < i);
            }
            for (int j = first; j < last; j++)
                g[i * cols + j] = (g[(i - 1) * cols + j] + g[i * cols + j - 1] -
                                   g[(i - 1) * cols + j - 1]) * 0.5 + 1.0;
#pragma omp flush
#pragma omp atomic write
            done[me] = i;
        }
    }
    *elapsed = omp_get_wtime() - t0;
    double check = g[(size_t)rows * cols - 1];
    free(g);
    return check;
}

/* EPCC-style overheads: empty parallel regions, and barriers. */
static double fork_join(double *elapsed) {
    const int reps = 2000;
    int members = 0;
    double t0 = omp_get_wtime();
    for (int r = 0; r < reps; r++) {
#pragma omp parallel
        if (omp_get_thread_num() == 0) members += omp_get_num_threads();
    }
    *elapsed = omp_get_wtime() - t0;
    return members;
}

static double barrier(double *elapsed) {
    const int reps = 5000;
    int rounds = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel
    for (int r = 0; r < reps; r++) {
#pragma omp barrier
        if (omp_get_thread_num() == 0) rounds++;
    }
    *elapsed = omp_get_wtime() - t0;
    return rounds;
}

/* Task parallelism: a recursive fib with a task per call above a cutoff
 * (a few thousand tasks), as task benchmark suites write it. */
static long long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

static long long fib_tasks(int n) {
    if (n < 20) return fib_serial(n);
    long long a, b;
#pragma omp task shared(a) firstprivate(n)
    a = fib_tasks(n - 1);
#pragma omp task shared(b) firstprivate(n)
    b = fib_tasks(n - 2);
#pragma omp taskwait
    return a + b;
}

static double fib(double *elapsed) {
    long long result = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel
#pragma omp single
    result = fib_tasks(36);
    *elapsed = omp_get_wtime() - t0;
    return (double)result;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: openmp KERNEL THREADS\n");
        return 2;
    }
    omp_set_num_threads(atoi(argv[2]));
    static const struct {
        const char *name;
        double (*run)(double *);
    } kernels[] = {{"triad", triad},   {"dot", dot},     {"transpose", transpose},
                   {"stencil", stencil}, {"dgemm", dgemm}, {"p2p", p2p},
                   {"fork", fork_join}, {"barrier", barrier}, {"fib", fib}};
    for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
        if (strcmp(argv[1], kernels[k].name) != 0) continue;
        double elapsed;
        double check = kernels[k].run(&elapsed);
        printf("check %.9e\nelapsed_ns %.0f\n", check, elapsed * 1e9);
        return 0;
    }
    fprintf(stderr, "unknown kernel %s\n", argv[1]);
    return 2;
}
