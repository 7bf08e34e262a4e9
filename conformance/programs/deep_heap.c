/* A chain of threads 24 deep: every thread allocates a buffer, starts the
 * next thread, and hands back a list of all buffers below it, itself
 * included. main checks every buffer and frees them all, then allocates
 * again. Heap blocks travel up through every level. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH 24

struct node {
    int depth;
    size_t len;
    unsigned char *data;
    struct node *below;
};

static void *level(void *arg) {
    int depth = (int)(intptr_t)arg;
    struct node *n = malloc(sizeof *n);
    n->depth = depth;
    n->len = 1000 + (size_t)depth * 5000; /* the deepest ones outgrow a small heap */
    n->data = malloc(n->len);
    memset(n->data, depth, n->len);
    n->below = NULL;
    if (depth < DEPTH) {
        pthread_t t;
        void *r;
        if (pthread_create(&t, NULL, level, (void *)(intptr_t)(depth + 1)) != 0) return NULL;
        pthread_join(t, &r);
        n->below = r;
    }
    return n;
}

int main(void) {
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, level, (void *)(intptr_t)1);
    pthread_join(t, &r);
    int levels = 0;
    long bad = 0;
    for (struct node *n = r; n;) {
        levels++;
        for (size_t k = 0; k < n->len; k++) bad += n->data[k] != (unsigned char)n->depth;
        struct node *below = n->below;
        free(n->data);
        free(n);
        n = below;
    }
    void *after = malloc(1 << 20);
    printf("levels: %d, bad bytes: %ld, allocation after: %s\n", levels, bad, after ? "yes" : "no");
    free(after);
    return 0;
}
