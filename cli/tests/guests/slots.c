/* Chained threads and worker slots: every thread writes "+" when it starts
 * and "-" when it ends, straight to stdout, and computes for a while in
 * between (a sleep would give its slot up). With one slot the marks cannot
 * interleave. A second round nests: each thread
 * joins threads of its own, which needs the slot its parent gives up. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static void *mark(void *arg) {
    (void)arg;
    write(1, "+", 1);
    for (volatile int i = 0; i < 2000000; i++) {
    }
    write(1, "-", 1);
    return NULL;
}

static void *parent(void *arg) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, mark, arg);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    return (void *)(intptr_t)7;
}

int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, mark, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    write(1, "\n", 1);
    long sum = 0;
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, parent, NULL);
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (intptr_t)r;
    }
    printf("\nnested sum %ld\n", sum);
    return 0;
}
