/* Deferred cancellation: a thread blocked in a condition wait, a
 * semaphore wait, a sleep or a join is woken and ends with
 * PTHREAD_CANCELED; cleanup handlers run newest first and before TSD
 * destructors; a disabled thread keeps the request pending until it
 * enables cancellation again; pthread_testcancel and the switch to
 * asynchronous cancellation act on a pending request. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int ready;
static sem_t sem, started;

static void say(void *what) { printf("  cleanup: %s\n", (const char *)what); }

static void unlock(void *mutex) {
    printf("  cleanup: unlock the mutex\n");
    pthread_mutex_unlock(mutex);
}

static void *in_cond_wait(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    pthread_cleanup_push(unlock, &m);
    ready = 1;
    for (;;) pthread_cond_wait(&c, &m);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *in_sem_wait(void *arg) {
    (void)arg;
    pthread_cleanup_push(say, "sem_wait");
    sem_post(&started);
    sem_wait(&sem);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *in_sleep(void *arg) {
    (void)arg;
    pthread_cleanup_push(say, "sleep");
    sem_post(&started);
    sleep(100);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *waits_for_post(void *arg) {
    (void)arg;
    sem_wait(&sem);
    return (void *)7;
}

static void *in_join(void *other) {
    pthread_cleanup_push(say, "join");
    sem_post(&started);
    pthread_join(*(pthread_t *)other, NULL);
    pthread_cleanup_pop(0);
    return NULL;
}

static volatile long spins;

static void *polls(void *arg) {
    (void)arg;
    pthread_cleanup_push(say, "outer");
    pthread_cleanup_push(say, "inner");
    sem_post(&started);
    for (;;) {
        spins++;
        pthread_testcancel();
    }
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static pthread_key_t key;
static void destructor(void *value) { printf("  destructor: %s\n", (const char *)value); }

static void *disabled(void *arg) {
    (void)arg;
    int old = -1;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_setspecific(key, "disabled");
    pthread_cleanup_push(say, "disabled");
    sem_post(&started);
    sem_wait(&sem); /* main has cancelled us by now */
    usleep(20000);  /* not a cancellation point while disabled */
    printf("  still running with the request pending (old state %s)\n",
           old == PTHREAD_CANCEL_ENABLE ? "enable" : "other");
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_testcancel();
    printf("  not reached\n");
    pthread_cleanup_pop(0);
    return NULL;
}

static void *cancels_itself(void *arg) {
    (void)arg;
    pthread_cleanup_push(say, "self");
    printf("  cancel self: %d\n", pthread_cancel(pthread_self()));
    printf("  deferred: still running\n");
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    printf("  not reached\n");
    pthread_cleanup_pop(0);
    return NULL;
}

static void *pops(void *arg) {
    (void)arg;
    pthread_cleanup_push(say, "popped and run");
    pthread_cleanup_push(say, "popped, not run");
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(1);
    return (void *)1;
}

static void report(const char *what, pthread_t t) {
    void *result = NULL;
    int rc = pthread_join(t, &result);
    printf("%s: join %d, %s\n", what, rc,
           result == PTHREAD_CANCELED ? "canceled" : "not canceled");
    fflush(stdout);
}

int main(void) {
    pthread_t t, other;
    sem_init(&sem, 0, 0);
    sem_init(&started, 0, 0);
    pthread_key_create(&key, destructor);

    pthread_create(&t, NULL, in_cond_wait, NULL);
    for (;;) { /* the thread holds the mutex until it waits */
        pthread_mutex_lock(&m);
        int waiting = ready;
        pthread_mutex_unlock(&m);
        if (waiting) break;
        usleep(1000);
    }
    pthread_cancel(t);
    report("cond_wait", t);
    printf("mutex free after cleanup: %d\n", pthread_mutex_trylock(&m) == 0);
    pthread_mutex_unlock(&m);

    pthread_create(&t, NULL, in_sem_wait, NULL);
    sem_wait(&started);
    usleep(20000);
    pthread_cancel(t);
    report("sem_wait", t);

    pthread_create(&t, NULL, in_sleep, NULL);
    sem_wait(&started);
    usleep(20000);
    pthread_cancel(t);
    report("sleep", t);

    pthread_create(&other, NULL, waits_for_post, NULL);
    pthread_create(&t, NULL, in_join, &other);
    sem_wait(&started);
    usleep(20000);
    pthread_cancel(t);
    report("join", t);
    sem_post(&sem);
    void *value = NULL;
    pthread_join(other, &value);
    printf("the joined thread still ends normally: %d\n", (int)(long)value);

    pthread_create(&t, NULL, polls, NULL);
    sem_wait(&started);
    pthread_cancel(t);
    report("testcancel", t);

    pthread_create(&t, NULL, disabled, NULL);
    sem_wait(&started);
    pthread_cancel(t);
    sem_post(&sem);
    report("disabled, then enabled", t);

    pthread_create(&t, NULL, cancels_itself, NULL);
    report("asynchronous self-cancel", t);

    pthread_create(&t, NULL, pops, NULL);
    report("pop", t);

    printf("setcancelstate 5: %s\n", pthread_setcancelstate(5, NULL) == EINVAL ? "EINVAL" : "other");
    printf("setcanceltype 5: %s\n", pthread_setcanceltype(5, NULL) == EINVAL ? "EINVAL" : "other");
    return 0;
}
