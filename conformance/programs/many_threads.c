/* Many threads over a run: 200 threads in waves of 16, each returning a
 * value; every one is created, run and joined. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define TOTAL 200
#define WAVE 16

static void *work(void *arg) {
    intptr_t x = (intptr_t)arg;
    return (void *)(x * 3 + 1);
}

int main(void) {
    long sum = 0;
    int created = 0;
    for (int base = 0; base < TOTAL; base += WAVE) {
        pthread_t t[WAVE];
        int n = TOTAL - base < WAVE ? TOTAL - base : WAVE;
        for (int i = 0; i < n; i++)
            if (pthread_create(&t[i], NULL, work, (void *)(intptr_t)(base + i)) == 0) created++;
        for (int i = 0; i < n; i++) {
            void *r;
            pthread_join(t[i], &r);
            sum += (long)(intptr_t)r;
        }
    }
    printf("created %d threads, sum %ld\n", created, sum);
    return 0;
}
