/* A pipelined point-to-point sweep in the style of the PRK "p2p" kernel:
 * each thread owns a band of columns and waits, through a flag and
 * `flush`, for its left neighbour to finish a row before it starts it. */
#include <omp.h>
#include <stdio.h>

#define ROWS 200
#define COLS 400
#define THREADS 4

static double grid[ROWS][COLS];
static volatile int done_row[THREADS]; /* the last row each band finished */

int main(void) {
    for (int j = 0; j < COLS; j++) grid[0][j] = (double)j;
    for (int i = 0; i < ROWS; i++) grid[i][0] = (double)i;
    for (int t = 0; t < THREADS; t++) done_row[t] = 0;
#pragma omp parallel num_threads(THREADS)
    {
        int me = omp_get_thread_num();
        int first = 1 + me * (COLS - 1) / THREADS, last = 1 + (me + 1) * (COLS - 1) / THREADS;
        for (int i = 1; i < ROWS; i++) {
            if (me > 0) {
                for (;;) {
#pragma omp flush
                    if (done_row[me - 1] >= i) break;
                }
            }
#pragma omp flush
            for (int j = first; j < last; j++)
                grid[i][j] = (grid[i - 1][j] + grid[i][j - 1] - grid[i - 1][j - 1]) * 0.5 + 1.0;
#pragma omp flush
            done_row[me] = i;
#pragma omp flush
        }
    }
    double corner = grid[ROWS - 1][COLS - 1], total = 0;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++) total += grid[i][j];
    printf("pipeline: corner %.6f total %.6f\n", corner, total);
    return 0;
}
