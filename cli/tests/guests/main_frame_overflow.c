// The main thread's stack overflowed, by a frame larger than the guard
// region below it (4 MiB of local matrices, which jump over it as over a
// guard page natively) or by recursion; with the argument "fits", a frame
// main's stack holds runs as natively.
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) static long matrices(int rows) {
    volatile int a[1024][512], b[1024][512];
    long sum = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < 512; j++) a[i][j] = i ^ j, b[i][j] = i + j;
    for (int i = 0; i < rows; i++) sum += a[i][7] - b[i][3];
    return sum;
}

__attribute__((noinline)) static long small(void) {
    volatile int table[256][256];
    long sum = 0;
    for (int i = 0; i < 256; i++) table[i][i] = i;
    for (int i = 0; i < 256; i++) sum += table[i][i];
    return sum;
}

__attribute__((noinline)) static long descend(int depth) {
    volatile char frame[512];
    memset((char *)frame, depth & 0x7f, sizeof frame);
    return depth > 0 ? descend(depth - 1) + frame[depth % 512] : 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "fits")) printf("sum %ld\n", small());
    else if (argc > 1 && !strcmp(argv[1], "recurse")) printf("depth %ld\n", descend(100000));
    else printf("sum %ld\n", matrices(1024));
    return 0;
}
