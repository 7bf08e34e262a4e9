/* _Thread_local variables: each thread starts from the initial value and
 * its changes stay its own. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>

#define N 5

static _Thread_local long counter = 1000;
static _Thread_local char name[16] = "initial";

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    int started_fresh = counter == 1000 && name[0] == 'i';
    for (long i = 0; i < id * 100; i++) counter++;
    snprintf(name, sizeof name, "thread-%ld", id);
    for (int i = 0; i < 1000; i++) sched_yield();
    int kept = counter == 1000 + id * 100 && name[7] == (char)('0' + id);
    return (void *)(intptr_t)(started_fresh && kept);
}

int main(void) {
    counter = 5;
    pthread_t t[N];
    for (intptr_t i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(intptr_t)r;
    }
    printf("threads with private TLS: %d/%d; main counter %ld name %s\n", ok, N, counter, name);
    return 0;
}
