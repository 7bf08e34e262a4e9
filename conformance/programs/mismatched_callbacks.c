/* Callbacks declared with another type than the one libc calls them
 * through, as old C code writes them: start routines `void *f()` and
 * `void f()`, a TSD destructor without its argument, a cleanup handler
 * that returns a value, a pthread_once routine and an atexit function
 * that take or return what they should not, a signal handler without
 * its argument. Natively they work; each runs here as natively. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static volatile int counter;
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Unprototyped: called as void *(*)(void *). */
static void *no_argument_start() {
    pthread_mutex_lock(&lock);
    counter += 1;
    pthread_mutex_unlock(&lock);
    return (void *)42;
}

static void no_result_start(void *arg) {
    pthread_mutex_lock(&lock);
    counter += (int)(long)arg;
    pthread_mutex_unlock(&lock);
}

static int destructors;
static void no_argument_destructor() {
    pthread_mutex_lock(&lock);
    destructors++;
    pthread_mutex_unlock(&lock);
}

static int cleanups;
static int cleanup_with_result(void *arg) {
    pthread_mutex_lock(&lock);
    int now = cleanups += (int)(long)arg;
    pthread_mutex_unlock(&lock);
    return now;
}

static void *with_key(void *arg) {
    pthread_setspecific(key, arg);
    pthread_cleanup_push((void (*)(void *))cleanup_with_result, (void *)3);
    pthread_cleanup_pop(1);
    return NULL;
}

static int once_calls;
static int once_with_argument(int unused) {
    (void)unused;
    return ++once_calls;
}

static void *call_once(void *arg) {
    (void)arg;
    pthread_once(&once, (void (*)(void))once_with_argument);
    return NULL;
}

static int at_exit_with_result(void) {
    printf("atexit function ran, counter %d\n", counter);
    return 1;
}

static volatile sig_atomic_t signals;
static void handler_without_argument() { signals++; }

int main(void) {
    pthread_t t;
    void *result;
    pthread_create(&t, NULL, no_argument_start, NULL);
    pthread_join(t, &result);
    printf("void *f(): counter %d, result %ld\n", counter, (long)result);

    pthread_create(&t, NULL, (void *(*)(void *))no_result_start, (void *)10);
    pthread_join(t, NULL);
    printf("void f(void *): counter %d\n", counter);

    pthread_key_create(&key, (void (*)(void *))no_argument_destructor);
    pthread_t threads[3];
    for (long i = 0; i < 3; i++) pthread_create(&threads[i], NULL, with_key, (void *)(i + 1));
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    printf("destructors %d, cleanup handlers added %d\n", destructors, cleanups);

    for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, call_once, NULL);
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    printf("once routine calls %d\n", once_calls);

    signal(SIGUSR1, (void (*)(int))handler_without_argument);
    raise(SIGUSR1);
    raise(SIGUSR1);
    printf("signals handled %d\n", (int)signals);

    atexit((void (*)(void))at_exit_with_result);
    return 0;
}
