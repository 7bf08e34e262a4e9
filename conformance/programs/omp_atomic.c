/* OpenMP atomics: update, capture, read, write, on integers and doubles,
 * by every member of the team (the master included). In chain mode each
 * is an operation under a home lock (weft-cc lowers the program's atomic
 * instructions into libweft calls), so every copy's updates count. */
#include <omp.h>
#include <stdio.h>

#define THREADS 4

int main(void) {
    omp_set_num_threads(THREADS);
    long long atomic_sum = 0;
    int tickets[THREADS * 100], next_ticket = 0;
    double dsum = 0;
#pragma omp parallel
    for (int i = 0; i < 100; i++) {
#pragma omp atomic
        atomic_sum += i;
#pragma omp atomic update
        dsum += 0.5;
        int mine;
#pragma omp atomic capture
        mine = next_ticket++;
        tickets[mine] = 1;
    }
    int issued = 0;
    for (int i = 0; i < THREADS * 100; i++) issued += tickets[i] == 1;
    int read_back;
#pragma omp atomic read
    read_back = next_ticket;
#pragma omp atomic write
    next_ticket = 0;
    printf("atomic %lld %.1f tickets %d read %d now %d\n", atomic_sum, dsum, issued, read_back,
           next_ticket);

    return 0;
}
