/* The main thread's stack holds what ordinary programs put there: a
 * 256 KiB local table and a recursion 2,000 calls deep with 128-byte
 * frames (natively 8 MiB hold both; wasm's linkers give 64 KiB unless
 * told), while a thread sums a table of its own. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ROWS 256
#define COLUMNS 256

__attribute__((noinline)) static long descend(int depth) {
    volatile char frame[128];
    memset((char *)frame, depth & 0x7f, sizeof frame);
    long below = depth > 0 ? descend(depth - 1) : 0;
    return below + frame[depth % sizeof frame];
}

static void *worker(void *arg) {
    volatile int small[1024];
    long sum = 0;
    for (int i = 0; i < 1024; i++) small[i] = i;
    for (int i = 0; i < 1024; i++) sum += small[i];
    *(long *)arg = sum;
    return NULL;
}

int main(void) {
    volatile int table[ROWS][COLUMNS];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLUMNS; c++) table[r][c] = (r * 31 + c) % 97;
    long total = 0;
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLUMNS; c++) total += table[r][c];
    long thread_sum = 0;
    pthread_t thread;
    pthread_create(&thread, NULL, worker, &thread_sum);
    pthread_join(thread, NULL);
    printf("table %ld\n", total);
    printf("recursion %ld\n", descend(2000));
    printf("thread %ld\n", thread_sum);
    return 0;
}
