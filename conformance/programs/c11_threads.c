/* C11 threads (<threads.h>): threads that start threads, a mutex and a
 * condition variable shared by all, a recursive mutex, a timed lock that
 * times out, call_once, thread-specific storage with a destructor,
 * thrd_sleep and thrd_yield, detach, and results through thrd_join. */
#include <stdio.h>
#include <threads.h>
#include <time.h>

#define MIDS 3
#define ROUNDS 100

static mtx_t lock;
static cnd_t changed;
static long total;      /* under lock */
static long deep;       /* under recursive */
static int finished;    /* under lock */
static int once_runs;
static once_flag once = ONCE_FLAG_INIT;
static tss_t key;
static int destructor_runs; /* under lock */
static mtx_t recursive;
static mtx_t timed;

static void init_once(void) { once_runs++; }

static void destructor(void *value) {
    mtx_lock(&lock);
    destructor_runs += (int)(long)value;
    mtx_unlock(&lock);
}

static int leaf(void *arg) {
    call_once(&once, init_once);
    tss_set(key, (void *)1);
    for (int i = 0; i < ROUNDS; i++) {
        mtx_lock(&lock);
        total++;
        mtx_unlock(&lock);
        if (i % 25 == 0) thrd_yield();
    }
    mtx_lock(&recursive);
    mtx_lock(&recursive);
    deep += 1000;
    mtx_unlock(&recursive);
    mtx_unlock(&recursive);
    return (int)(long)arg * 2;
}

static int mid(void *arg) {
    call_once(&once, init_once);
    thrd_t child;
    int child_result = -1;
    if (thrd_create(&child, leaf, arg) != thrd_success) return -1;
    struct timespec nap = {0, 2000000};
    if (thrd_sleep(&nap, NULL) != 0) return -2;
    if (thrd_join(child, &child_result) != thrd_success) return -3;
    mtx_lock(&lock);
    finished++;
    cnd_broadcast(&changed);
    mtx_unlock(&lock);
    return child_result + 1;
}

static int detached(void *arg) {
    (void)arg;
    mtx_lock(&lock);
    finished += 100;
    cnd_broadcast(&changed);
    mtx_unlock(&lock);
    return 0;
}

static int timed_waiter(void *arg) {
    (void)arg;
    struct timespec soon;
    timespec_get(&soon, TIME_UTC);
    soon.tv_nsec += 20000000;
    if (soon.tv_nsec >= 1000000000) {
        soon.tv_sec++;
        soon.tv_nsec -= 1000000000;
    }
    return mtx_timedlock(&timed, &soon);
}

int main(void) {
    if (mtx_init(&lock, mtx_plain) != thrd_success || cnd_init(&changed) != thrd_success ||
        mtx_init(&recursive, mtx_plain | mtx_recursive) != thrd_success ||
        mtx_init(&timed, mtx_timed) != thrd_success || tss_create(&key, destructor) != thrd_success)
        return 1;
    thrd_t mids[MIDS], loner;
    for (long i = 0; i < MIDS; i++)
        if (thrd_create(&mids[i], mid, (void *)(i + 1)) != thrd_success) return 2;
    if (thrd_create(&loner, detached, NULL) != thrd_success || thrd_detach(loner) != thrd_success)
        return 3;
    mtx_lock(&lock);
    while (finished < MIDS + 100) cnd_wait(&changed, &lock);
    mtx_unlock(&lock);
    int results[MIDS];
    for (int i = 0; i < MIDS; i++) thrd_join(mids[i], &results[i]);
    /* A try of a mutex that is held fails as busy; a timed lock times out. */
    mtx_lock(&timed);
    int busy = mtx_trylock(&timed);
    thrd_t waiter;
    int waited = -1;
    if (thrd_create(&waiter, timed_waiter, NULL) != thrd_success) return 4;
    thrd_join(waiter, &waited);
    mtx_unlock(&timed);
    printf("total %ld, deep %ld, finished %d, once %d, destructors %d\n", total, deep, finished,
           once_runs, destructor_runs);
    printf("results %d %d %d, trylock of a held mutex %s\n", results[0], results[1], results[2],
           busy == thrd_busy ? "busy" : busy == thrd_success ? "success" : "error");
    printf("timed lock of a held mutex %s\n", waited == thrd_timedout ? "timed out" : "did not time out");
    printf("current equals itself %d\n", thrd_equal(thrd_current(), thrd_current()) != 0);
    mtx_destroy(&lock);
    cnd_destroy(&changed);
    mtx_destroy(&recursive);
    mtx_destroy(&timed);
    tss_delete(key);
    return 0;
}
