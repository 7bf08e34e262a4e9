/* Threads malloc buffers and hand them back (as their return value and in
 * an array the parent allocated); the parent reads and frees them. One
 * thread also frees a block the parent allocated, and reallocs its own. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define LEN 1000

static int *handed[THREADS];
static char *parent_block;

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    int *numbers = malloc(LEN * sizeof *numbers);
    for (int i = 0; i < LEN; i++) numbers[i] = id * 100000 + i;
    char *text = malloc(16);
    snprintf(text, 16, "thread %d", id);
    text = realloc(text, 64);
    strcat(text, " says hi");
    handed[id] = numbers;
    if (id == 0) free(parent_block);
    return text;
}

int main(void) {
    parent_block = malloc(4096);
    memset(parent_block, 7, 4096);
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) {
        char *text;
        pthread_join(t[i], (void **)&text);
        long sum = 0;
        for (int k = 0; k < LEN; k++) sum += handed[i][k];
        printf("%s; its numbers sum to %ld\n", text, sum);
        free(text);
        free(handed[i]);
    }
    /* The heap still works after all that. */
    char *after = malloc(100000);
    memset(after, 1, 100000);
    printf("allocated after the threads: %s\n", after ? "yes" : "no");
    free(after);
    return 0;
}
