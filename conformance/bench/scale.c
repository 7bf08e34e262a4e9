/* Kernels for `weft bench scale`:
 *   scale KERNEL THREADS
 * Each prints `check N` (independent of THREADS, so every run can be
 * compared with the native one), `elapsed_ns T` (its parallel part, on a
 * monotonic clock) and, for the latency kernels, `ops N` (handoffs or
 * barrier rounds in that time). Sizes are for a few hundred milliseconds
 * natively on one core.
 *
 *   primes       count primes, interleaved blocks, results read at join
 *   primes_lock  the same, each thread adds its count under a mutex
 *   stencil      OpenMP 2D Jacobi, a barrier per sweep, a reduction
 *   dgemm        OpenMP matrix multiply, static loop over rows
 *   reduce       OpenMP reduction over a compute-heavy loop
 *   counter      a shared counter, one mutex lock per increment
 *   handoff      a token passed between threads (mutex + condvar)
 *   barrier      threads meeting at a pthread barrier
 *   warmup       threads that do nothing (to compile the module once) */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 16

static int nthreads;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t barrier;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *alloc(size_t bytes) {
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Starts `nthreads` threads on `fn` (argument: the thread's index) and
 * joins them; the time between. */
static double fork_join(void *(*fn)(void *)) {
    pthread_t t[MAX_THREADS];
    double t0 = now();
    for (long i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)i) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    return now() - t0;
}

/* ---- primes: trial division over blocks i, i + T, i + 2T, ... -------- */

#define PRIMES_BELOW 5000000L
#define BLOCK 4096

static long counts[MAX_THREADS];
static long total;

/* Trial division by 2, 3 and the numbers 6k - 1, 6k + 1. */
static int is_prime(int n) {
    if (n < 4) return n >= 2;
    if (n % 2 == 0 || n % 3 == 0) return 0;
    for (int d = 5; d <= n / d; d += 6)
        if (n % d == 0 || n % (d + 2) == 0) return 0;
    return 1;
}

static long count_share(long me) {
    long count = 0;
    for (long b = me; b * BLOCK < PRIMES_BELOW; b += nthreads) {
        long end = b * BLOCK + BLOCK < PRIMES_BELOW ? b * BLOCK + BLOCK : PRIMES_BELOW;
        for (long n = b * BLOCK; n < end; n++) count += is_prime((int)n);
    }
    return count;
}

static void *primes_worker(void *arg) {
    long me = (long)arg;
    counts[me] = count_share(me);
    return NULL;
}

static void *primes_lock_worker(void *arg) {
    long count = count_share((long)arg);
    pthread_mutex_lock(&lock);
    total += count;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static long long primes(double *elapsed) {
    *elapsed = fork_join(primes_worker);
    long sum = 0;
    for (int i = 0; i < nthreads; i++) sum += counts[i];
    return sum;
}

static long long primes_lock(double *elapsed) {
    *elapsed = fork_join(primes_lock_worker);
    return total;
}

/* ---- stencil: Jacobi sweeps with coefficients made on the fly --------
 * A variable coefficient per point, recomputed each sweep (as codes do
 * that cannot afford to store it), makes a sweep compute-bound: each
 * member has tens of milliseconds of work between barriers, and writes
 * only its rows. Only +, *, / and comparisons: every build rounds alike. */

#define GRID 520
#define SWEEPS 12

static double coefficient(int i, int j) {
    double x = (i + 0.5) / GRID, y = (j + 0.5) / GRID, target = 1.0 + x + y, k = 1.0 + x * y;
    for (int r = 0; r < 64; r++) k = 0.5 * (k + target / k);
    return k;
}

static long long stencil(double *elapsed) {
    const int n = GRID;
    double *u = alloc(sizeof(double) * n * n), *v = alloc(sizeof(double) * n * n);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) u[i * n + j] = v[i * n + j] = i == 0 ? 100.0 : 0.0;
    long long sum = 0;
    double t0 = now();
#pragma omp parallel reduction(+ : sum)
    {
        for (int s = 0; s < SWEEPS; s++) {
            const double *from = s % 2 ? v : u;
            double *to = s % 2 ? u : v;
#pragma omp for schedule(static)
            for (int i = 1; i < n - 1; i++)
                for (int j = 1; j < n - 1; j++) {
                    double k = coefficient(i, j);
                    to[i * n + j] = (from[(i - 1) * n + j] + from[(i + 1) * n + j] +
                                     from[i * n + j - 1] + from[i * n + j + 1] + k * from[i * n + j]) /
                                    (4.0 + k);
                }
        }
#pragma omp for schedule(static)
        for (int i = 0; i < n * n; i++) sum += (long long)(u[i] * 1e6);
    }
    *elapsed = now() - t0;
    free(u), free(v);
    return sum;
}

/* ---- dgemm: C += A * B, rows split statically ------------------------ */

#define DGEMM_N 1500

static long long dgemm(double *elapsed) {
    const int n = DGEMM_N;
    double *a = alloc(sizeof(double) * n * n), *b = alloc(sizeof(double) * n * n),
           *c = alloc(sizeof(double) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = i % 7 - 3, b[i] = i % 11 - 5, c[i] = 0;
    double t0 = now();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
    *elapsed = now() - t0;
    long long check = 0; /* small integers: exact in any order */
    for (int i = 0; i < n * n; i++) check += (long long)c[i] * (long long)c[i];
    free(a), free(b), free(c);
    return check;
}

/* ---- reduce: a logistic map per index, summed ------------------------- */

#define REDUCE_N 2000000
#define REDUCE_STEPS 100

static long long reduce(double *elapsed) {
    long long sum = 0;
    double t0 = now();
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (int i = 0; i < REDUCE_N; i++) {
        double x = 0.1 + 0.8 * (i % 1000) / 1000.0;
        for (int s = 0; s < REDUCE_STEPS; s++) x = 3.9 * x * (1.0 - x);
        sum += (long long)(x * 1e6);
    }
    *elapsed = now() - t0;
    return sum;
}

/* ---- counter: the worst case, a lock per increment -------------------- */

#define COUNTER_OPS 4000

static long counter;

static void *counter_worker(void *arg) {
    long me = (long)arg;
    long mine = COUNTER_OPS / nthreads + (me < COUNTER_OPS % nthreads);
    for (long i = 0; i < mine; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static long long counter_kernel(double *elapsed) {
    *elapsed = fork_join(counter_worker);
    return counter;
}

/* ---- latencies -------------------------------------------------------- */

#define HANDOFFS 2000
#define BARRIERS 1000

static long turn; /* handoffs so far; thread turn % nthreads holds the token */
static long rounds;

static void *handoff_worker(void *arg) {
    long me = (long)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (turn < HANDOFFS && turn % nthreads != me) pthread_cond_wait(&changed, &lock);
        if (turn >= HANDOFFS) break;
        turn++;
        pthread_cond_broadcast(&changed);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *barrier_worker(void *arg) {
    (void)arg;
    for (int r = 0; r < BARRIERS; r++)
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) rounds++;
    return NULL;
}

static long long handoff(double *elapsed) {
    *elapsed = fork_join(handoff_worker);
    printf("ops %d\n", HANDOFFS);
    return turn;
}

static long long barrier_kernel(double *elapsed) {
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    *elapsed = fork_join(barrier_worker);
    printf("ops %d\n", BARRIERS);
    return rounds;
}

static void *nothing(void *arg) { return arg; }

static long long warmup(double *elapsed) {
    *elapsed = fork_join(nothing);
    return 0;
}

int main(int argc, char **argv) {
    nthreads = argc == 3 ? atoi(argv[2]) : 0;
    if (nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "usage: scale KERNEL THREADS (1 to %d)\n", MAX_THREADS);
        return 2;
    }
    omp_set_num_threads(nthreads);
    static const struct {
        const char *name;
        long long (*run)(double *);
    } kernels[] = {{"primes", primes}, {"primes_lock", primes_lock}, {"stencil", stencil},
                   {"dgemm", dgemm},   {"reduce", reduce},           {"counter", counter_kernel},
                   {"handoff", handoff}, {"barrier", barrier_kernel}, {"warmup", warmup}};
    for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
        if (strcmp(argv[1], kernels[k].name) != 0) continue;
        double elapsed;
        long long check = kernels[k].run(&elapsed);
        printf("check %lld\nelapsed_ns %.0f\n", check, elapsed * 1e9);
        /* Not `return`: pthread_exit runs the OpenMP runtime's key
         * destructor, which ends the team's parked members, so a member
         * on a peer finishes its call there instead of waiting until the
         * connection to this ended program times out. */
        fflush(stdout);
        pthread_exit(NULL);
    }
    fprintf(stderr, "unknown kernel %s\n", argv[1]);
    return 2;
}
