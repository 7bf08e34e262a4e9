/* Normal, recursive and errorcheck mutexes, trylock, and a counter kept
 * exact by a mutex under contention. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define N 4
#define ROUNDS 20000

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static pthread_mutex_t held;
static int trylock_result = -1;

static void *increment(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&counter_lock);
        counter++;
        pthread_mutex_unlock(&counter_lock);
    }
    return NULL;
}

static void *try_held(void *arg) {
    (void)arg;
    trylock_result = pthread_mutex_trylock(&held);
    return NULL;
}

static void *unlock_foreign(void *arg) {
    return (void *)(long)pthread_mutex_unlock((pthread_mutex_t *)arg);
}

int main(void) {
    pthread_t t[N];
    for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, increment, NULL);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    printf("counter %ld (expected %d)\n", counter, N * ROUNDS);

    pthread_mutexattr_t attr;
    int type = -1;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutexattr_gettype(&attr, &type);
    pthread_mutex_t recursive;
    pthread_mutex_init(&recursive, &attr);
    int a = pthread_mutex_lock(&recursive);
    int b = pthread_mutex_lock(&recursive);
    int c = pthread_mutex_trylock(&recursive);
    int d = pthread_mutex_unlock(&recursive);
    d |= pthread_mutex_unlock(&recursive);
    d |= pthread_mutex_unlock(&recursive);
    int extra = pthread_mutex_unlock(&recursive);
    printf("recursive: type ok %d, lock %d %d trylock %d unlock %d, extra unlock EPERM %d\n",
           type == PTHREAD_MUTEX_RECURSIVE, a, b, c, d, extra == EPERM);

    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t errorcheck;
    pthread_mutex_init(&errorcheck, &attr);
    pthread_mutex_lock(&errorcheck);
    printf("errorcheck: relock EDEADLK %d\n", pthread_mutex_lock(&errorcheck) == EDEADLK);
    pthread_t other;
    void *foreign;
    pthread_create(&other, NULL, unlock_foreign, &errorcheck);
    pthread_join(other, &foreign);
    printf("errorcheck: unlock by other thread EPERM %d\n", (int)(long)foreign == EPERM);
    int unlocked = pthread_mutex_unlock(&errorcheck);
    int again = pthread_mutex_unlock(&errorcheck);
    printf("errorcheck: unlock %d, unlock again EPERM %d\n", unlocked, again == EPERM);

    pthread_mutex_init(&held, NULL);
    pthread_mutex_lock(&held);
    pthread_create(&other, NULL, try_held, NULL);
    pthread_join(other, NULL);
    printf("trylock on a held mutex EBUSY %d\n", trylock_result == EBUSY);
    pthread_mutex_unlock(&held);
    pthread_create(&other, NULL, try_held, NULL);
    pthread_join(other, NULL);
    printf("trylock on a free mutex %d\n", trylock_result);
    pthread_mutex_unlock(&held);

    pthread_mutex_destroy(&recursive);
    pthread_mutex_destroy(&errorcheck);
    pthread_mutex_destroy(&held);
    pthread_mutexattr_destroy(&attr);
    return 0;
}
