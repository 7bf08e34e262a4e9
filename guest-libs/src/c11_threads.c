/* C11 threads (<threads.h>) for guests: wasi-libc declares them but does
 * not build them. Each call is the pthread call it names, so chain mode,
 * cancellation and signals treat C11 threads as the pthreads they are
 * (musl gives mtx_t, cnd_t, once_flag and tss_t the layouts of the pthread
 * types, and thrd_t is a pthread_t). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread mutex");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread condition");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread once");
_Static_assert(sizeof(tss_t) == sizeof(pthread_key_t), "tss_t is a pthread key");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");

/* The C11 result of a pthread call's error number. */
static int c11_result(int rc) {
    switch (rc) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM:
    case EAGAIN: return thrd_nomem;
    default: return thrd_error;
    }
}

/* A C11 start routine returns int: it is called through a routine of the
 * pthread type, never through a cast pointer of another type (wasm checks
 * the type of an indirect call). */
struct c11_start {
    thrd_start_t routine;
    void *arg;
};

static void *c11_trampoline(void *p) {
    struct c11_start start = *(struct c11_start *)p;
    free(p);
    return (void *)(intptr_t)start.routine(start.arg);
}

int thrd_create(thrd_t *thread, thrd_start_t routine, void *arg) {
    struct c11_start *start = malloc(sizeof *start);
    if (!start) return thrd_nomem;
    start->routine = routine;
    start->arg = arg;
    pthread_t t;
    int rc = pthread_create(&t, NULL, c11_trampoline, start);
    if (rc) {
        free(start);
        return c11_result(rc);
    }
    *thread = (thrd_t)t;
    return thrd_success;
}

_Noreturn void thrd_exit(int result) { pthread_exit((void *)(intptr_t)result); }

int thrd_join(thrd_t thread, int *result) {
    void *value;
    int rc = pthread_join((pthread_t)thread, &value);
    if (rc) return thrd_error;
    if (result) *result = (int)(intptr_t)value;
    return thrd_success;
}

int thrd_detach(thrd_t thread) {
    return pthread_detach((pthread_t)thread) ? thrd_error : thrd_success;
}

thrd_t thrd_current(void) { return (thrd_t)pthread_self(); }

int(thrd_equal)(thrd_t a, thrd_t b) { return a == b; }

/* 0 when it slept the whole time, -1 when a signal cut it short (the time
 * left in `left`), another negative value on error. */
int thrd_sleep(const struct timespec *duration, struct timespec *left) {
    if (nanosleep(duration, left) == 0) return 0;
    return errno == EINTR ? -1 : -2;
}

void thrd_yield(void) { sched_yield(); }

void call_once(once_flag *flag, void (*routine)(void)) {
    pthread_once((pthread_once_t *)flag, routine);
}

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE
                                                            : PTHREAD_MUTEX_NORMAL);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc ? thrd_error : thrd_success;
}

void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }

int mtx_lock(mtx_t *m) { return c11_result(pthread_mutex_lock((pthread_mutex_t *)m)); }

int mtx_trylock(mtx_t *m) { return c11_result(pthread_mutex_trylock((pthread_mutex_t *)m)); }

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict at) {
    return c11_result(pthread_mutex_timedlock((pthread_mutex_t *)m, at));
}

int mtx_unlock(mtx_t *m) { return c11_result(pthread_mutex_unlock((pthread_mutex_t *)m)); }

int cnd_init(cnd_t *c) {
    int rc = pthread_cond_init((pthread_cond_t *)c, NULL);
    return rc == ENOMEM ? thrd_nomem : rc ? thrd_error : thrd_success;
}

void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }

int cnd_signal(cnd_t *c) { return c11_result(pthread_cond_signal((pthread_cond_t *)c)); }

int cnd_broadcast(cnd_t *c) { return c11_result(pthread_cond_broadcast((pthread_cond_t *)c)); }

int cnd_wait(cnd_t *c, mtx_t *m) {
    return c11_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict at) {
    return c11_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, at));
}

int tss_create(tss_t *key, tss_dtor_t destructor) {
    return pthread_key_create((pthread_key_t *)key, destructor) ? thrd_error : thrd_success;
}

void tss_delete(tss_t key) { pthread_key_delete((pthread_key_t)key); }

int tss_set(tss_t key, void *value) {
    return pthread_setspecific((pthread_key_t)key, value) ? thrd_error : thrd_success;
}

void *tss_get(tss_t key) { return pthread_getspecific((pthread_key_t)key); }
