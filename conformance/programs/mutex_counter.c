/* A mutex-protected counter incremented 10,000 times by each of 4 threads,
 * with a recursive mutex around a second one. */
#include <pthread.h>
#include <stdio.h>

#define THREADS 4
#define ROUNDS 10000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t nested;
static long counter, nested_counter;

static void *work(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        if (i % 100 == 0) {
            pthread_mutex_lock(&nested);
            pthread_mutex_lock(&nested);
            nested_counter++;
            pthread_mutex_unlock(&nested);
            pthread_mutex_unlock(&nested);
        }
    }
    return NULL;
}

int main(void) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&nested, &attr);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, work, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("counter %ld (expected %d), nested %ld\n", counter, THREADS * ROUNDS, nested_counter);
    return 0;
}
