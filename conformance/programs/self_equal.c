/* pthread_self inside a thread equals the id pthread_create gave; threads
 * differ from each other and from main. */
#include <pthread.h>
#include <stdio.h>

#define N 4

static pthread_t seen[N];

static void *worker(void *arg) {
    seen[(long)arg] = pthread_self();
    return NULL;
}

int main(void) {
    pthread_t t[N];
    pthread_t me = pthread_self();
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        printf("thread %d: self==created %d, self==main %d, self==next %d\n", i,
               pthread_equal(seen[i], t[i]) != 0, pthread_equal(seen[i], me) != 0,
               pthread_equal(seen[i], t[(i + 1) % N]) != 0);
    }
    printf("main self==self %d\n", pthread_equal(me, pthread_self()) != 0);
    return 0;
}
