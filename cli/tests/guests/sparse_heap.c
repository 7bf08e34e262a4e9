// Main fills MIB (argv[1]) MiB of heap, then THREADS (argv[2]) threads
// each write one byte per MiB of it: every chained thread starts from a
// snapshot that holds the whole heap but touches little of it.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *heap;
static size_t len;

static void *touch(void *arg) {
    long id = (long)arg;
    for (size_t i = id * 4096; i < len; i += 1 << 20) heap[i] = (char)(id + 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    len = (size_t)atol(argv[1]) << 20;
    int threads = atoi(argv[2]);
    heap = malloc(len);
    if (!heap || threads < 1 || threads > 16) return 1;
    memset(heap, 7, len);
    pthread_t t[16];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, touch, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    long sum = 0;
    for (size_t i = 0; i < len; i += 4096) sum += heap[i];
    printf("sum %ld\n", sum);
    return 0;
}
