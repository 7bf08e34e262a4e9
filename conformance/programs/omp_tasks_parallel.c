/* OpenMP tasks that must run at the same time on several threads, and the
 * task clauses around them: two tasks that each wait for the other to
 * start, a recursive fib, depend fans (readers after a writer, a writer
 * after readers), taskloop with num_tasks and lastprivate, final and
 * omp_in_final, mergeable, untied, taskyield, nested tasks in a
 * taskgroup, task reductions. */
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>

/* Two tasks meet only if two threads run them at once; each gives up
 * after 10 seconds, so a runtime that runs tasks one at a time prints
 * "no" instead of hanging. */
static _Atomic int arrived;

static int meet(void) {
    atomic_fetch_add(&arrived, 1);
    double start = omp_get_wtime();
    while (atomic_load(&arrived) < 2) {
        if (omp_get_wtime() - start > 10.0) return 0;
#pragma omp taskyield
    }
    return 1;
}

static long long fib(int n) {
    if (n < 2) return n;
    long long a, b;
#pragma omp task shared(a) firstprivate(n) untied
    a = fib(n - 1);
#pragma omp task shared(b) firstprivate(n) mergeable
    b = fib(n - 2);
#pragma omp taskwait
    return a + b;
}

static int finals(int depth) {
    int in_final = omp_in_final();
    if (depth == 0) return in_final;
    int below = 0;
#pragma omp task shared(below) final(depth <= 2)
    below = finals(depth - 1);
#pragma omp taskwait
    return in_final + below;
}

/* Tasks that create tasks: a taskgroup waits for all of them. */
static _Atomic int made;

static void nested(int depth) {
    if (depth == 0) return;
    for (int i = 0; i < 2; i++) {
#pragma omp task firstprivate(depth)
        {
            atomic_fetch_add(&made, 1);
            nested(depth - 1);
        }
    }
}

int main(void) {
    omp_set_num_threads(4);
    int met[2] = {0, 0};
#pragma omp parallel
#pragma omp single
    {
#pragma omp task shared(met)
        met[0] = meet();
#pragma omp task shared(met)
        met[1] = meet();
    }
    printf("two tasks ran at the same time: %s\n", met[0] && met[1] ? "yes" : "no");

    long long f = 0;
#pragma omp parallel
#pragma omp single
    f = fib(22);
    printf("fib(22) = %lld\n", f);

    /* One writer, then eight readers that may run together, then a writer
     * that must see every reader done. */
    int data = 0, seen[8] = {0}, after = 0;
    _Atomic int readers_done = 0;
#pragma omp parallel
#pragma omp single
    {
#pragma omp task depend(out : data) shared(data)
        data = 42;
        for (int i = 0; i < 8; i++) {
#pragma omp task depend(in : data) shared(data, seen, readers_done) firstprivate(i)
            {
                seen[i] = data + i;
                atomic_fetch_add(&readers_done, 1);
            }
        }
#pragma omp task depend(inout : data) shared(data, after, readers_done)
        {
            after = atomic_load(&readers_done);
            data = -1;
        }
#pragma omp taskwait
    }
    int seen_sum = 0;
    for (int i = 0; i < 8; i++) seen_sum += seen[i];
    printf("depend fan: readers saw %d in all, the last writer saw %d readers done, data %d\n",
           seen_sum, after, data);

    /* Two independent chains interleaved: each keeps its own order. */
    int x = 0, y = 0;
#pragma omp parallel
#pragma omp single
    for (int i = 1; i <= 20; i++) {
#pragma omp task depend(inout : x) shared(x) firstprivate(i)
        x = x * 3 % 1000003 + i;
#pragma omp task depend(inout : y) shared(y) firstprivate(i)
        y = y * 7 % 1000003 + i;
    }
    printf("two chains: x %d y %d\n", x, y);

    long long cubes[1000];
    int last = -1;
#pragma omp parallel
#pragma omp single
#pragma omp taskloop num_tasks(7) lastprivate(last)
    for (int i = 0; i < 1000; i++) {
        cubes[i] = (long long)i * i * i;
        last = i;
    }
    long long cube_sum = 0;
    for (int i = 0; i < 1000; i++) cube_sum += cubes[i];
    printf("taskloop num_tasks: %lld, lastprivate %d\n", cube_sum, last);

    long long tr = 0;
#pragma omp parallel
#pragma omp single
#pragma omp taskloop grainsize(50) reduction(+ : tr)
    for (int i = 1; i <= 1000; i++) tr += i;
    printf("taskloop reduction: %lld\n", tr);

    int total = 0;
#pragma omp parallel
#pragma omp single
    {
#pragma omp taskgroup task_reduction(+ : total)
        {
            for (int i = 1; i <= 30; i++) {
#pragma omp task in_reduction(+ : total) firstprivate(i)
                total += i * i;
            }
        }
        printf("task reduction: %d\n", total);
    }

    int depth_finals = 0, counted = 0;
#pragma omp parallel
#pragma omp single
    {
        depth_finals = finals(5);
#pragma omp taskgroup
        nested(6);
        counted = atomic_load(&made);
    }
    printf("tasks in a final task: %d; nested tasks done when the taskgroup ended: %d\n",
           depth_finals, counted);
    return 0;
}
