/* Ordered loops in a team of four, in chain mode too: the ordered parts
 * run in iteration order and each sees what the previous one wrote (a
 * shared cursor and array), over dynamic and static-chunked schedules and
 * iterations that skip their ordered part. */
#include <stdio.h>

static int out[100];
static int n;

int main(void) {
#pragma omp parallel num_threads(4)
    {
#pragma omp for ordered schedule(dynamic, 3)
        for (int i = 0; i < 40; i++) {
            int v = i * i;
#pragma omp ordered
            out[n++] = v;
        }
#pragma omp for ordered schedule(static, 1)
        for (int i = 0; i < 20; i++) {
            if (i % 3 == 0) continue;
#pragma omp ordered
            out[n++] = -i;
        }
    }
    int ok = n == 53;
    for (int i = 0; i < 40 && ok; i++) ok = out[i] == i * i;
    for (int i = 0, k = 40; i < 20 && ok; i++)
        if (i % 3) ok = out[k++] == -i;
    printf("%d entries, in order: %d\n", n, ok);
    return 0;
}
