/* Recursive functions of every shape the load-time self-inlining copies
 * (runtime/src/inline_recursion.rs), run on threads: one call of itself
 * and several, calls nested in another call's arguments, early returns,
 * a switch (a branch table), locals of every type (double, vectors from
 * a vectorised loop, an array on the shadow stack), writes to memory; and
 * mutual recursion, which is left as it is. Every result is compared with
 * the native build's. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static long long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* Calls nested in a call's arguments. */
static unsigned ackermann(unsigned m, unsigned n) {
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

static void quicksort(int *a, int lo, int hi) {
    if (lo >= hi) return;
    int pivot = a[(lo + hi) / 2], i = lo, j = hi;
    while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) {
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
    }
    quicksort(a, lo, j);
    quicksort(a, i, hi);
}

/* An array on the shadow stack in every frame. */
static int queens(int row, int n, const int *cols_in) {
    if (row == n) return 1;
    int cols[16];
    memcpy(cols, cols_in, sizeof cols);
    int count = 0;
    for (int c = 0; c < n; c++) {
        int ok = 1;
        for (int r = 0; r < row; r++)
            if (cols[r] == c || cols[r] - c == r - row || cols[r] - c == row - r) ok = 0;
        if (!ok) continue;
        cols[row] = c;
        count += queens(row + 1, n, cols);
    }
    return count;
}

static double f(double x) { return x * x * x - 2 * x + 1; }

/* Doubles in locals and parameters. */
static double simpson(double a, double b, double fa, double fm, double fb, double whole,
                      double eps, int depth) {
    double m = (a + b) / 2, lm = (a + m) / 2, rm = (m + b) / 2;
    double flm = f(lm), frm = f(rm);
    double left = (m - a) / 6 * (fa + 4 * flm + fm), right = (b - m) / 6 * (fm + 4 * frm + fb);
    if (depth <= 0 || (left + right - whole < 15 * eps && whole - left - right < 15 * eps))
        return left + right + (left + right - whole) / 15;
    return simpson(a, m, fa, flm, fm, left, eps / 2, depth - 1) +
           simpson(m, b, fm, frm, fb, right, eps / 2, depth - 1);
}

/* A vectorised loop at the leaves: vector locals. */
static int64_t sum_halves(const int32_t *v, int n) {
    if (n <= 64) {
        int64_t s = 0;
        for (int i = 0; i < n; i++) s += v[i] * 3 + (v[i] >> 2);
        return s;
    }
    return sum_halves(v, n / 2) + sum_halves(v + n / 2, n - n / 2);
}

/* A switch over a node's kind. */
struct node {
    char kind; /* '+', '-' (of the left), 'n', 'd' (doubled left) */
    int value;
    const struct node *left, *right;
};

static long eval(const struct node *e) {
    switch (e->kind) {
    case '+': return eval(e->left) + eval(e->right);
    case '-': return -eval(e->left);
    case 'n': return e->value;
    case 'd': return 2 * e->left->value;
    default: return -1;
    }
}

/* An array on the shadow stack in every frame (its address goes to the
 * next call). */
static int path_sum(int depth, const int *above) {
    int here[4];
    for (int i = 0; i < 4; i++) here[i] = (above ? above[i] : i) * 3 % 17 + depth;
    if (depth == 0) return here[0] + here[3];
    return path_sum(depth - 1, here) + here[1];
}

/* Mutual recursion: no function calls itself. */
static int is_odd(unsigned n);
static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

#define ITEMS 3000

struct work {
    int seed;
    char report[512];
};

static void *run(void *arg) {
    struct work *w = arg;
    static _Thread_local int32_t values[ITEMS];
    static _Thread_local int sorted[ITEMS];
    uint32_t x = (uint32_t)w->seed * 2654435761u + 1;
    for (int i = 0; i < ITEMS; i++) {
        x = x * 1103515245u + 12345u;
        values[i] = (int32_t)(x >> 8) % 100000 - 50000;
        sorted[i] = values[i];
    }
    quicksort(sorted, 0, ITEMS - 1);
    int in_order = 1;
    for (int i = 1; i < ITEMS; i++) in_order &= sorted[i - 1] <= sorted[i];

    struct node leaves[3] = {{'n', w->seed, 0, 0}, {'n', 7, 0, 0}, {'n', -3, 0, 0}};
    struct node sum = {'+', 0, &leaves[0], &leaves[1]};
    struct node negated = {'-', 0, &sum, 0};
    struct node doubled = {'d', 0, &leaves[2], 0};
    struct node odd = {'?', 0, 0, 0};
    struct node right = {'+', 0, &doubled, &odd};
    struct node top = {'+', 0, &negated, &right};

    int no_cols[16] = {0};
    double area = simpson(0, 2 + w->seed, f(0), f((2.0 + w->seed) / 2), f(2 + w->seed), 0, 1e-9, 30);
    snprintf(w->report, sizeof w->report,
             "seed %d: fib %lld, ackermann %u, sorted %d (min %d, max %d), queens(%d) %d, "
             "integral %.9f, sum %lld, eval %ld, path %d, even %d",
             w->seed, fib(24 + w->seed), ackermann(2, (unsigned)(3 + w->seed)), in_order, sorted[0],
             sorted[ITEMS - 1], 6 + w->seed, queens(0, 6 + w->seed, no_cols), area,
             (long long)sum_halves(values, ITEMS), eval(&top), path_sum(40 + w->seed, NULL),
             is_even(1000u + (unsigned)w->seed));
    return NULL;
}

int main(void) {
    struct work work[3] = {{1, ""}, {2, ""}, {3, ""}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&threads[i], NULL, run, &work[i]) != 0) return 1;
    run(&work[2]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 3; i++) printf("%s\n", work[i].report);
    return 0;
}
