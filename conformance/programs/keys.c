/* Thread-specific data: each thread sees only its own value, main's value
 * is separate, destructors run once per thread with a non-NULL value, and
 * a deleted key's destructor no longer runs. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 6

static pthread_key_t key, unused_key;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long destroyed_sum;
static int destroyed_count;

static void destroy(void *value) {
    pthread_mutex_lock(&lock);
    destroyed_sum += *(long *)value;
    destroyed_count++;
    pthread_mutex_unlock(&lock);
    free(value);
}

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    int was_null = pthread_getspecific(key) == NULL;
    long *mine = malloc(sizeof *mine);
    *mine = id * 10;
    pthread_setspecific(key, mine);
    for (int spin = 0; spin < 1000; spin++) sched_yield();
    long back = *(long *)pthread_getspecific(key);
    return (void *)(intptr_t)(was_null && back == id * 10);
}

int main(void) {
    pthread_key_create(&key, destroy);
    pthread_key_create(&unused_key, destroy);
    pthread_key_delete(unused_key);
    long *main_value = malloc(sizeof *main_value);
    *main_value = -1;
    pthread_setspecific(key, main_value);
    pthread_t t[N];
    for (intptr_t i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    int ok = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(intptr_t)r;
    }
    printf("threads with private values: %d/%d\n", ok, N);
    printf("main value intact: %d\n", *(long *)pthread_getspecific(key) == -1);
    printf("destructors: %d, sum %ld\n", destroyed_count, destroyed_sum);
    return 0;
}
