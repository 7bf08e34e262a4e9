/* pthread_exit from deep inside a thread ends it with that value; TSD
 * destructors run; code after pthread_exit never runs; a returned value and
 * an exited value look the same to the joiner. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static pthread_key_t key;
static int destructor_runs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void destructor(void *value) {
    pthread_mutex_lock(&lock);
    destructor_runs += (int)(intptr_t)value;
    pthread_mutex_unlock(&lock);
}

/* Called through a pointer so the compiler cannot see that the recursion
 * ends in a noreturn call. */
static void (*volatile exit_thread)(void *) = pthread_exit;

static void deep(int depth, intptr_t value) {
    if (depth > 0) {
        deep(depth - 1, value);
    } else {
        exit_thread((void *)value);
    }
    printf("unreachable after pthread_exit\n");
}

static void *worker(void *arg) {
    intptr_t n = (intptr_t)arg;
    pthread_setspecific(key, (void *)(intptr_t)1);
    if (n % 2 == 0) deep((int)n, 100 + n);
    return (void *)(200 + n);
}

int main(void) {
    pthread_key_create(&key, destructor);
    pthread_t t[6];
    for (intptr_t i = 0; i < 6; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < 6; i++) {
        void *value;
        pthread_join(t[i], &value);
        printf("thread %d -> %ld (%s)\n", i, (long)(intptr_t)value,
               i % 2 == 0 ? "pthread_exit" : "return");
    }
    printf("destructors ran %d times\n", destructor_runs);
    return 0;
}
