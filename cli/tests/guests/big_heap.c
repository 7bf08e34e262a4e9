// Main fills MIB (argv[1]) MiB of heap, then two threads each sum half of
// it: every chained thread's snapshot carries the whole heap.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *heap;
static size_t size;
static unsigned long long sums[2];

static void *sum_half(void *arg) {
    int half = (int)(long)arg;
    unsigned long long sum = 0;
    for (size_t i = half * (size / 2); i < (half + 1) * (size / 2); i++) sum += heap[i];
    sums[half] = sum;
    return NULL;
}

int main(int argc, char **argv) {
    size = (size_t)(argc > 1 ? atoi(argv[1]) : 16) << 20;
    heap = malloc(size);
    if (!heap) {
        printf("no memory\n");
        return 1;
    }
    for (size_t i = 0; i < size; i++) heap[i] = (unsigned char)(i * 31 + 7);
    pthread_t threads[2];
    for (long t = 0; t < 2; t++) pthread_create(&threads[t], NULL, sum_half, (void *)t);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    printf("sum %llu\n", sums[0] + sums[1]);
    return 0;
}
