/* OpenMP tasks: recursive tasks with taskwait, taskgroup, depend chains,
 * taskloop, if(0) tasks, firstprivate captures. */
#include <omp.h>
#include <stdio.h>

static long long fib(int n) {
    if (n < 2) return n;
    long long a, b;
#pragma omp task shared(a) firstprivate(n)
    a = fib(n - 1);
#pragma omp task shared(b) firstprivate(n)
    b = fib(n - 2);
#pragma omp taskwait
    return a + b;
}

int main(void) {
    omp_set_num_threads(4);
    long long f = 0;
#pragma omp parallel
#pragma omp single
    f = fib(20);
    printf("fib(20) = %lld\n", f);

    int done[64] = {0};
#pragma omp parallel
#pragma omp single
    {
#pragma omp taskgroup
        {
            for (int i = 0; i < 64; i++) {
#pragma omp task firstprivate(i) shared(done)
                done[i] = i * i;
            }
        }
        long long total = 0;
        for (int i = 0; i < 64; i++) total += done[i];
        printf("taskgroup total %lld\n", total);
    }

    /* A chain of dependent tasks: each reads what the previous wrote. */
    int value = 1, steps = 0;
#pragma omp parallel
#pragma omp single
    {
        for (int i = 0; i < 10; i++) {
#pragma omp task depend(inout : value) shared(value, steps)
            {
                value = value * 2 + 1;
                steps++;
            }
        }
#pragma omp taskwait
    }
    printf("depend chain %d after %d steps\n", value, steps);

    long long squares[200];
#pragma omp parallel
#pragma omp single
#pragma omp taskloop grainsize(16)
    for (int i = 0; i < 200; i++) squares[i] = (long long)i * i;
    long long sum = 0;
    for (int i = 0; i < 200; i++) sum += squares[i];
    printf("taskloop %lld\n", sum);

    int undeferred = 0;
#pragma omp parallel num_threads(2)
#pragma omp single
    {
#pragma omp task if (0) shared(undeferred)
        undeferred = 7;
        printf("if(0) task ran before its creator went on: %d\n", undeferred);
    }
    return 0;
}
