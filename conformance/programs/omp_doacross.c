/* OpenMP doacross loops (`ordered(n)` with `depend(sink: ...)` and
 * `depend(source)`): each iteration reads what the iterations it names
 * wrote, so any ordering mistake changes the sums. A 1-D recurrence, a
 * 2-D wavefront (each cell from its upper and left neighbours), a loop
 * counting down by 3 with 64-bit indices, a dynamic schedule, and sinks
 * outside the iteration space (nothing to wait for). */
#include <omp.h>
#include <stdio.h>

#define N 200
#define ROWS 24
#define COLS 24

static long long line[N];
static long long grid[ROWS][COLS];
static long long down[N];
static long long dyn[N];

int main(void) {
    omp_set_num_threads(3);

    /* A prefix recurrence: iteration i needs i-1 (schedule(static, 1)
     * gives consecutive iterations to different threads). */
    line[0] = 1;
#pragma omp parallel for ordered(1) schedule(static, 1)
    for (int i = 1; i < N; i++) {
#pragma omp ordered depend(sink : i - 1)
        line[i] = line[i - 1] * 3 % 1000003 + i;
#pragma omp ordered depend(source)
    }
    long long sum = 0;
    for (int i = 0; i < N; i++) sum += line[i];
    printf("recurrence: %lld\n", sum);

    /* A wavefront over a grid: cell (i, j) from (i-1, j) and (i, j-1). */
    for (int i = 0; i < ROWS; i++) grid[i][0] = i + 1;
    for (int j = 0; j < COLS; j++) grid[0][j] = j + 1;
#pragma omp parallel for ordered(2) schedule(static, 1)
    for (int i = 1; i < ROWS; i++)
        for (int j = 1; j < COLS; j++) {
#pragma omp ordered depend(sink : i - 1, j) depend(sink : i, j - 1)
            grid[i][j] = (grid[i - 1][j] + grid[i][j - 1] * 7 + i * j) % 1000003;
#pragma omp ordered depend(source)
        }
    sum = 0;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++) sum += grid[i][j] * (i + 2 * j + 1);
    printf("wavefront: %lld\n", sum);

    /* Counting down by 3 with 64-bit indices: i needs i+3; the first
     * iteration's sink is outside the loop. */
#pragma omp parallel for ordered(1) schedule(static, 2)
    for (long long i = N - 1; i >= 0; i -= 3) {
#pragma omp ordered depend(sink : i + 3)
        down[i] = (i + 3 < N ? down[i + 3] : 5) * 5 % 999983 + i;
#pragma omp ordered depend(source)
    }
    sum = 0;
    for (int i = 0; i < N; i++) sum += down[i];
    printf("countdown: %lld\n", sum);

    /* A dynamic schedule: i needs i-2 and i-5 (sinks before the first
     * iteration name nothing). */
#pragma omp parallel for ordered(1) schedule(dynamic, 4)
    for (int i = 0; i < N; i++) {
#pragma omp ordered depend(sink : i - 2) depend(sink : i - 5)
        dyn[i] = (i >= 2 ? dyn[i - 2] : 1) + (i >= 5 ? dyn[i - 5] : 2) % 1000 + i;
#pragma omp ordered depend(source)
    }
    sum = 0;
    for (int i = 0; i < N; i++) sum += dyn[i] % 1000003;
    printf("dynamic: %lld\n", sum);
    return 0;
}
