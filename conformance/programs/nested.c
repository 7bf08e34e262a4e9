/* Threads create threads: a tree of depth 3 and fan-out 3 where every
 * node returns the number of nodes below it, itself included. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define FANOUT 3

static void *node(void *arg) {
    intptr_t depth = (intptr_t)arg;
    intptr_t count = 1;
    if (depth > 0) {
        pthread_t children[FANOUT];
        for (int i = 0; i < FANOUT; i++) pthread_create(&children[i], NULL, node, (void *)(depth - 1));
        for (int i = 0; i < FANOUT; i++) {
            void *r;
            pthread_join(children[i], &r);
            count += (intptr_t)r;
        }
    }
    return (void *)count;
}

int main(void) {
    pthread_t root;
    void *r;
    pthread_create(&root, NULL, node, (void *)3);
    pthread_join(root, &r);
    printf("nodes in the thread tree: %ld\n", (long)(intptr_t)r);
    return 0;
}
