/* libweft: the parts of pthreads that wasi-libc leaves out or rejects.
 *
 * Linked into every guest by weft-cc. It relies on the layout of
 * wasi-libc's musl (the libc.a of rustup's wasm32-wasip1-threads target,
 * see guest-libs/README.md): the pthread_attr_t field indices below and the
 * libc-internal __wasi_thread_start_C / __thread_list_lock. */
#include <errno.h>
/* libweft's own rwlock calls: not renamed here (see the overlay). */
#define WEFT_NO_RWLOCK_RENAME
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <weft/threads.h>

#include "cancel.h"
#include "chain.h"
#include "signals.h"
#include "thread_fields.h"

/* musl's pthread_attr_t fields (src/internal/pthread_impl.h) on wasm32. */
#define ATTR_STACKSIZE(a) ((a)->__u.__s[0])
#define ATTR_GUARDSIZE(a) ((a)->__u.__s[1])
#define ATTR_STACKADDR(a) ((a)->__u.__s[2]) /* the top: address + size */
#define ATTR_INHERIT(a) ((a)->__u.__i[4])
#define ATTR_POLICY(a) ((a)->__u.__i[5])
#define ATTR_PRIORITY(a) ((a)->__u.__i[6])

/* ---- pthread_exit ------------------------------------------------------
 * wasi-libc has no pthread_exit: its thread exit path (__pthread_exit, a
 * static function) runs only when the start routine returns, called from
 * __wasi_thread_start_C. Wasm cannot unwind the C stack, so pthread_exit
 * runs that same function with a start routine that returns the exit value
 * at once: TSD destructors run, the joiner gets the value and is woken, and
 * the last thread ends the program with exit(0), all exactly as libc does
 * it. Then it does the tail of wasi_thread_start (release the thread list
 * lock) and asks the host to discard this thread's instance. */

struct wasi_start_args {
    void *stack;
    void *tls_base;
    void *(*start_func)(void *);
    void *start_arg;
};

void __wasi_thread_start_C(int tid, void *args);
extern volatile int __thread_list_lock;

static void *exit_value(void *value) { return value; }

/* ---- chain mode -----------------------------------------------------
 * A chained thread runs in a fresh instance restored from a snapshot of
 * its parent. The host points the thread's start routine at
 * chain_trampoline and stores the real routine and argument in
 * weft_chain_entry (both in the child's copy only). The trampoline runs
 * the routine and hands its result to the host, which merges the child's
 * memory changes into the parent and then runs libc's exit path on the
 * parent's memory with exit_value as the start routine. The host finds
 * these through the module's symbol table. */

__attribute__((used)) struct weft_chain_entry weft_chain_entry;

/* The head of wasi-libc's struct pthread (pthread_self() points at it). */
struct thread_links {
    struct thread_links *self, *prev, *next;
};

/* libc links a new thread into its parent's thread list after the spawn,
 * so in the thread's own copy its links are still empty, and threads it
 * creates would be linked through NULL. It runs as a list of its own; its
 * children leave that list when they end, and before the thread finishes
 * its links are put back as they were, so its diff does not touch the
 * parent's list. */
static _Thread_local struct thread_links saved_links;

static void chain_thread_begin(void) {
    struct thread_links *me = (struct thread_links *)pthread_self();
    saved_links = *me;
    me->prev = me->next = me;
    weft_chain_thread_started();
}

static _Noreturn void chain_thread_finish(void *result) {
    struct thread_links *me = (struct thread_links *)pthread_self();
    me->prev = saved_links.prev;
    me->next = saved_links.next;
    weft_thread_finish((uint32_t)(uintptr_t)result);
}

static _Noreturn void *chain_trampoline(void *unused) {
    (void)unused;
    chain_thread_begin();
    chain_thread_finish(weft_chain_entry.start(weft_chain_entry.arg));
}

/* The start routine of a chained thread's exit path on its parent's
 * memory: the thread's deferred frees, then its result. */
_Thread_local int weft_in_exit_path;
_Thread_local int weft_nested_thread;

static void *chain_exit_value(void *value) {
    weft_in_exit_path = 1;
    weft_chain_thread_exiting();
    return value;
}

/* Function-table indices the host needs: [0] the trampoline, [1] the exit
 * path's start routine. */
__attribute__((used)) void *(*const weft_chain_functions[2])(void *) = {chain_trampoline,
                                                                        chain_exit_value};

/* The mode never changes: the host is asked once (chain.h). */
int weft_chained = -1;

int weft_chain_mode(void) {
    if (weft_chained < 0) weft_chained = weft_thread_mode() == WEFT_MODE_CHAIN;
    return weft_chained;
}

/* Chain mode: each thread runs on its own copy of memory, so mutexes,
 * condition variables and barriers live at the home host (weft:threads
 * sync-*), named by their address; the guest's own objects stay untouched.
 * Each call is a sync point: the thread's writes go home at a release,
 * and its copy takes what home published at an acquire (release
 * consistency, enough for programs without data races).
 *
 * A chained thread's own list links point at itself while it runs (see
 * chain_thread_begin); around a sync point they hold the values the rest
 * of the program sees, so that a release does not send the private ones
 * home and an acquire brings the current ones. */

static void links_shared(void) {
    if (!weft_chain_entry.arena) return;
    struct thread_links *me = (struct thread_links *)pthread_self();
    me->prev = saved_links.prev;
    me->next = saved_links.next;
}

static void links_private(void) {
    if (!weft_chain_entry.arena) return;
    struct thread_links *me = (struct thread_links *)pthread_self();
    saved_links = *me;
    me->prev = me->next = me;
}

/* musl's object fields (src/internal/pthread_impl.h) on wasm32. */
#define MUTEX_TYPE(m) ((uint32_t)(m)->__u.__i[0] & 3)
#define COND_CLOCK(c) ((c)->__u.__i[4])
#define BARRIER_COUNT(b) ((uint32_t)((b)->__u.__i[2] & 0x7fffffff) + 1)

/* Nanoseconds from now until `abstime` on `clock` (0 if it has passed);
 * -1 for an invalid time, which POSIX answers with EINVAL. */
static int64_t until(clockid_t clock, const struct timespec *abstime) {
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L) return -1;
    struct timespec now;
    clock_gettime(clock, &now);
    int64_t ns = (int64_t)(abstime->tv_sec - now.tv_sec) * 1000000000LL +
                 (abstime->tv_nsec - now.tv_nsec);
    return ns < 0 ? 0 : ns;
}

int __real_pthread_mutex_lock(pthread_mutex_t *);
int __real_pthread_mutex_trylock(pthread_mutex_t *);
int __real_pthread_mutex_timedlock(pthread_mutex_t *restrict, const struct timespec *restrict);
int __real_pthread_mutex_unlock(pthread_mutex_t *);
int __real_pthread_cond_wait(pthread_cond_t *restrict, pthread_mutex_t *restrict);
int __real_pthread_cond_timedwait(pthread_cond_t *restrict, pthread_mutex_t *restrict,
                                  const struct timespec *restrict);
int __real_pthread_cond_signal(pthread_cond_t *);
int __real_pthread_cond_broadcast(pthread_cond_t *);
int __real_pthread_barrier_wait(pthread_barrier_t *);

/* libweft's own sync points (chain.h), for pthreads and the OpenMP
 * runtime alike. */
int weft_home_lock(const void *addr, uint32_t kind, int64_t timeout_ns) {
    links_shared();
    int rc = weft_sync_lock(addr, kind, timeout_ns);
    links_private();
    return rc;
}

int weft_home_unlock(const void *addr, uint32_t kind) {
    links_shared();
    int rc = weft_sync_unlock(addr, kind);
    links_private();
    return rc;
}

int weft_home_barrier(const void *addr, uint32_t count) {
    links_shared();
    int serial = weft_sync_barrier(addr, count);
    links_private();
    return serial;
}

void weft_home_sem_init(const void *addr, uint32_t value) { weft_sync_sem_init(addr, value); }

int weft_home_sem_wait(const void *addr) {
    links_shared();
    int rc = weft_sync_sem_wait(addr, 0, -1);
    links_private();
    return rc;
}

int weft_home_sem_post(const void *addr) {
    links_shared();
    int rc = weft_sync_sem_post(addr);
    links_private();
    return rc;
}

int weft_home_cond_wait(const void *cond, const void *mutex) {
    return weft_home_cond_timedwait(cond, mutex, -1);
}

int weft_home_cond_timedwait(const void *cond, const void *mutex, int64_t timeout_ns) {
    links_shared();
    int rc = weft_sync_cond_wait(cond, mutex, 0, timeout_ns);
    links_private();
    return rc;
}

int weft_home_futex_wait(const void *addr, int64_t timeout_ns) {
    links_shared();
    int rc = weft_sync_cond_wait(addr, addr, WEFT_SYNC_FUTEX, timeout_ns);
    links_private();
    return rc;
}

uint32_t weft_home_cond_wake(const void *cond, int all) { return weft_sync_cond_wake(cond, all); }

void weft_home_cond_broadcast(const void *cond) { weft_sync_cond_wake(cond, 1); }

uint64_t weft_home_atomic(uint32_t op, uint32_t bytes, const void *addr, uint64_t value,
                          uint64_t expected) {
    links_shared();
    uint64_t old = weft_sync_atomic(op, bytes, addr, value, expected);
    links_private();
    return old;
}

void weft_home_load_point(void) {
    links_shared();
    weft_sync_load();
    links_private();
}

void weft_home_sync_point(void) {
    links_shared();
    weft_sync_point();
    links_private();
}

/* A sleep or a yield is how old code waits for a flag another thread
 * sets: natively the write shows up, so in chain mode both are sync
 * points (a release, so that others see this thread's writes while it
 * sleeps, and an acquire); a yield also lets a queued thread have the
 * slot for a while. Not in an exit path, which runs on its parent's
 * memory, nor in a thread a chained thread started, which cannot
 * synchronise. */
void weft_pause_point(int yield) {
    if (!weft_chain_mode() || weft_in_exit_path || weft_nested_thread) return;
    if (yield) {
        weft_home_sync_point();
        return;
    }
    /* A sleeper keeps its worker slot, as it would its CPU. */
    links_shared();
    weft_sync_pause();
    links_private();
}

static int home_lock(pthread_mutex_t *m, uint32_t flags, int64_t timeout_ns) {
    return weft_home_lock(m, MUTEX_TYPE(m) | flags, timeout_ns);
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
    if (!weft_chain_mode()) return __real_pthread_mutex_lock(m);
    return home_lock(m, 0, -1);
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m) {
    if (!weft_chain_mode()) return __real_pthread_mutex_trylock(m);
    return home_lock(m, WEFT_SYNC_TRY, -1);
}

int __wrap_pthread_mutex_timedlock(pthread_mutex_t *restrict m,
                                   const struct timespec *restrict at) {
    if (!weft_chain_mode()) return __real_pthread_mutex_timedlock(m, at);
    int64_t ns = until(CLOCK_REALTIME, at);
    return ns < 0 ? EINVAL : home_lock(m, 0, ns);
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *m) {
    if (!weft_chain_mode()) return __real_pthread_mutex_unlock(m);
    return weft_home_unlock(m, MUTEX_TYPE(m));
}

/* Condition waits are cancellation points: a cancellable thread (in a
 * program that can cancel) waits in slices and checks for a request,
 * with the mutex held, after each; a slice that ends is a spurious
 * wake-up to the caller, which checks its predicate and waits again. */
static int home_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t timeout_ns) {
    int cancellable = weft_cancellable();
    int64_t slice = cancellable ? weft_cancel_slice_ns() : -1;
    int sliced = cancellable && (timeout_ns < 0 || timeout_ns > slice);
    if (cancellable) __testcancel();
    links_shared();
    int rc = weft_sync_cond_wait(c, m, MUTEX_TYPE(m), sliced ? slice : timeout_ns);
    links_private();
    if (cancellable) __testcancel();
    return sliced && rc == ETIMEDOUT ? 0 : rc;
}

int __wrap_pthread_cond_wait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m) {
    if (!weft_chain_mode()) return __real_pthread_cond_wait(c, m);
    return home_cond_wait(c, m, -1);
}

int __wrap_pthread_cond_timedwait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m,
                                  const struct timespec *restrict t) {
    if (!weft_chain_mode()) return __real_pthread_cond_timedwait(c, m, t);
    /* The clock pthread_condattr_setclock chose (wasi-libc's clock ids are
     * pointers, stored as integers). */
    clockid_t clock = COND_CLOCK(c) == (int)(uintptr_t)CLOCK_MONOTONIC ? CLOCK_MONOTONIC
                                                                        : CLOCK_REALTIME;
    int64_t ns = until(clock, t);
    return ns < 0 ? EINVAL : home_cond_wait(c, m, ns);
}

int __wrap_pthread_cond_signal(pthread_cond_t *c) {
    if (!weft_chain_mode()) return __real_pthread_cond_signal(c);
    weft_sync_cond_wake(c, 0);
    return 0;
}

int __wrap_pthread_cond_broadcast(pthread_cond_t *c) {
    if (!weft_chain_mode()) return __real_pthread_cond_broadcast(c);
    weft_sync_cond_wake(c, 1);
    return 0;
}

int __wrap_pthread_barrier_wait(pthread_barrier_t *b) {
    if (!weft_chain_mode()) return __real_pthread_barrier_wait(b);
    int serial = weft_home_barrier(b, BARRIER_COUNT(b));
    return serial == 1 ? PTHREAD_BARRIER_SERIAL_THREAD : serial;
}

/* Readers-writer locks, spin locks and semaphores at home too; once is a
 * home lock around the flag. libc itself takes some rwlocks by their
 * public names and releases them by internal ones, so the rwlock calls are
 * not wrapped at link time but renamed for programs by libweft's
 * pthread.h overlay (weft_rwlock_*). */
int __real_pthread_spin_lock(pthread_spinlock_t *);
int __real_pthread_spin_trylock(pthread_spinlock_t *);
int __real_pthread_spin_unlock(pthread_spinlock_t *);
int __real_sem_init(sem_t *, int, unsigned);
int __real_sem_wait(sem_t *);
int __real_sem_trywait(sem_t *);
int __real_sem_timedwait(sem_t *restrict, const struct timespec *restrict);
int __real_sem_post(sem_t *);
int __real_sem_getvalue(sem_t *restrict, int *restrict);
int __real_pthread_once(pthread_once_t *, void (*)(void));

int weft_rwlock_rdlock(pthread_rwlock_t *l) {
    if (!weft_chain_mode()) return pthread_rwlock_rdlock(l);
    return weft_home_lock(l, WEFT_SYNC_RWLOCK_READ, -1);
}

int weft_rwlock_tryrdlock(pthread_rwlock_t *l) {
    if (!weft_chain_mode()) return pthread_rwlock_tryrdlock(l);
    return weft_home_lock(l, WEFT_SYNC_RWLOCK_READ | WEFT_SYNC_TRY, -1);
}

int weft_rwlock_timedrdlock(pthread_rwlock_t *restrict l,
                                      const struct timespec *restrict at) {
    if (!weft_chain_mode()) return pthread_rwlock_timedrdlock(l, at);
    int64_t ns = until(CLOCK_REALTIME, at);
    return ns < 0 ? EINVAL : weft_home_lock(l, WEFT_SYNC_RWLOCK_READ, ns);
}

int weft_rwlock_wrlock(pthread_rwlock_t *l) {
    if (!weft_chain_mode()) return pthread_rwlock_wrlock(l);
    return weft_home_lock(l, WEFT_SYNC_RWLOCK_WRITE, -1);
}

int weft_rwlock_trywrlock(pthread_rwlock_t *l) {
    if (!weft_chain_mode()) return pthread_rwlock_trywrlock(l);
    return weft_home_lock(l, WEFT_SYNC_RWLOCK_WRITE | WEFT_SYNC_TRY, -1);
}

int weft_rwlock_timedwrlock(pthread_rwlock_t *restrict l,
                                      const struct timespec *restrict at) {
    if (!weft_chain_mode()) return pthread_rwlock_timedwrlock(l, at);
    int64_t ns = until(CLOCK_REALTIME, at);
    return ns < 0 ? EINVAL : weft_home_lock(l, WEFT_SYNC_RWLOCK_WRITE, ns);
}

int weft_rwlock_unlock(pthread_rwlock_t *l) {
    if (!weft_chain_mode()) return pthread_rwlock_unlock(l);
    return weft_home_unlock(l, WEFT_SYNC_RWLOCK_READ);
}

int __wrap_pthread_spin_lock(pthread_spinlock_t *l) {
    if (!weft_chain_mode()) return __real_pthread_spin_lock(l);
    return weft_home_lock(l, 0, -1);
}

int __wrap_pthread_spin_trylock(pthread_spinlock_t *l) {
    if (!weft_chain_mode()) return __real_pthread_spin_trylock(l);
    return weft_home_lock(l, WEFT_SYNC_TRY, -1);
}

int __wrap_pthread_spin_unlock(pthread_spinlock_t *l) {
    if (!weft_chain_mode()) return __real_pthread_spin_unlock(l);
    return weft_home_unlock(l, 0);
}

/* Semaphore calls return -1 and set errno. */
static int sem_result(int rc) {
    if (rc == 0) return 0;
    errno = rc;
    return -1;
}

int __wrap_sem_init(sem_t *sem, int shared, unsigned value) {
    int rc = __real_sem_init(sem, shared, value);
    if (rc == 0 && weft_chain_mode()) weft_sync_sem_init(sem, value);
    return rc;
}

/* Semaphore waits are cancellation points too: sliced as condition
 * waits are, but a slice that ends waits again (a semaphore wait does not
 * return without a unit or its time-out). */
static int home_sem_wait(sem_t *sem, int nonblocking, int64_t timeout_ns) {
    int cancellable = !nonblocking && weft_cancellable();
    int64_t slice = cancellable ? weft_cancel_slice_ns() : -1;
    for (;;) {
        int sliced = cancellable && (timeout_ns < 0 || timeout_ns > slice);
        if (cancellable) __testcancel();
        links_shared();
        int rc = weft_sync_sem_wait(sem, nonblocking, sliced ? slice : timeout_ns);
        links_private();
        if (!(sliced && rc == ETIMEDOUT)) return sem_result(rc);
        if (timeout_ns >= 0) timeout_ns = timeout_ns > slice ? timeout_ns - slice : 0;
    }
}

int __wrap_sem_wait(sem_t *sem) {
    if (!weft_chain_mode()) return __real_sem_wait(sem);
    return home_sem_wait(sem, 0, -1);
}

int __wrap_sem_trywait(sem_t *sem) {
    if (!weft_chain_mode()) return __real_sem_trywait(sem);
    return home_sem_wait(sem, 1, -1);
}

int __wrap_sem_timedwait(sem_t *restrict sem, const struct timespec *restrict at) {
    if (!weft_chain_mode()) return __real_sem_timedwait(sem, at);
    int64_t ns = until(CLOCK_REALTIME, at);
    return ns < 0 ? sem_result(EINVAL) : home_sem_wait(sem, 0, ns);
}

int __wrap_sem_post(sem_t *sem) {
    if (!weft_chain_mode()) return __real_sem_post(sem);
    links_shared();
    int rc = weft_sync_sem_post(sem);
    links_private();
    return sem_result(rc);
}

int __wrap_sem_getvalue(sem_t *restrict sem, int *restrict value) {
    if (!weft_chain_mode()) return __real_sem_getvalue(sem, value);
    *value = (int)weft_sync_sem_value(sem);
    return 0;
}

#define ONCE_DONE 2 /* musl's pthread_once_t states: 0 new, 1 running, 2 done */

int __wrap_pthread_once(pthread_once_t *once, void (*init)(void)) {
    if (!weft_chain_mode()) return __real_pthread_once(once, init);
    if (*(volatile int *)once == ONCE_DONE) return 0;
    weft_home_lock(once, 0, -1);
    if (*(volatile int *)once != ONCE_DONE) {
        init();
        *(volatile int *)once = ONCE_DONE;
    }
    weft_home_unlock(once, 0);
    return 0;
}

int __real_pthread_join(pthread_t, void **);
int __real_pthread_tryjoin_np(pthread_t, void **);
int __real_pthread_timedjoin_np(pthread_t, void **, const struct timespec *);
int __real_pthread_detach(pthread_t);

/* ---- thread calls of a chained thread, made at home --------------------
 * libc's thread list, its thread count and a new thread's stack, TLS and
 * struct pthread belong to the main memory: a chained thread's copy would
 * race with the main thread's own updates of them. So a chained thread
 * creates, joins and detaches threads through the host (sync-at-home): it
 * releases, an instance on the main memory runs at_home_routine as this
 * thread (its TLS there, on a scratch chunk of the arena zone where the
 * host writes the request), and this thread then acquires. A thread created this way is a child of the main memory
 * like any thread main starts: it synchronises and may run on any host. */

enum { HOME_CREATE, HOME_JOIN, HOME_TRYJOIN, HOME_TIMEDJOIN, HOME_DETACH };

/* Written by the host from the call's arguments and read back at fixed
 * offsets: the result at 0 (rc, then a value), and at 8 the byte ranges
 * libc wrote for a new thread beyond what its creator released (its block: stack, TLS, struct pthread; its start
 * arguments on a stack of the program's own), which the new thread's
 * snapshot takes from the main memory. */
struct weft_home_request {
    int32_t rc;
    uint32_t value;
    uint32_t ranges[2][2];
    int op;
    pthread_t thread;
    const pthread_attr_t *attr;
    void *(*start)(void *);
    void *arg;
    const struct timespec *abstime;
};

/* Set while a routine runs at home (in the TLS of its thread there). */
static _Thread_local struct weft_home_request *home_request;

static int at_home_applies(void) {
    return weft_chain_mode() && weft_chain_entry.arena && !weft_in_exit_path &&
           !weft_nested_thread;
}

static int create_here(pthread_t *restrict thread, const pthread_attr_t *restrict attr,
                       void *(*start)(void *), void *restrict arg);

static int earlier(const struct timespec *a, const struct timespec *b) {
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* A join made at home. Cancellation never acts here: this instance runs on
 * the main memory, where the thread's cleanup handlers are not. While the
 * thread it runs for is cancellable, the join waits in slices, and a
 * request (set on the home memory) ends it with ECANCELED: the thread then
 * acts on the request in its own copy (join_at_home). */
static int join_waiting(struct weft_home_request *r, void **value) {
    pthread_t self = pthread_self();
    int state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
    int sliced = state == PTHREAD_CANCEL_ENABLE && weft_program_cancels;
    int rc;
    for (;;) {
        if (!sliced) {
            rc = r->op == HOME_JOIN ? __real_pthread_join(r->thread, value)
                                    : __real_pthread_timedjoin_np(r->thread, value, r->abstime);
            break;
        }
        if (__atomic_load_n(&THREAD_CANCEL(self), __ATOMIC_SEQ_CST)) {
            rc = ECANCELED;
            break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = until.tv_nsec + weft_cancel_slice_ns();
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        int last = r->op == HOME_TIMEDJOIN && r->abstime && !earlier(&until, r->abstime);
        rc = __real_pthread_timedjoin_np(r->thread, value, last ? r->abstime : &until);
        if (rc != ETIMEDOUT || last) break;
    }
    pthread_setcancelstate(state, NULL);
    return rc;
}

static _Noreturn void *at_home_routine(void *p) {
    struct weft_home_request *r = p;
    home_request = r;
    void *value = NULL;
    switch (r->op) {
    case HOME_CREATE:
        r->rc = create_here(&r->thread, r->attr, r->start, r->arg);
        value = r->thread;
        break;
    case HOME_JOIN:
    case HOME_TIMEDJOIN:
        weft_wait_begin();
        r->rc = join_waiting(r, &value);
        weft_wait_end();
        break;
    case HOME_TRYJOIN: r->rc = __real_pthread_tryjoin_np(r->thread, &value); break;
    case HOME_DETACH: r->rc = __real_pthread_detach(r->thread); break;
    default: r->rc = EINVAL;
    }
    r->value = (uint32_t)(uintptr_t)value;
    home_request = NULL;
    /* Only the instance ends: the thread this ran for goes on. */
    weft_thread_exit_current();
}

static uint64_t call_at_home(struct weft_home_request *r) {
    int64_t deadline = -1;
    if (r->abstime) deadline = (int64_t)r->abstime->tv_sec * 1000000000 + r->abstime->tv_nsec;
    links_shared();
    uint64_t answer = weft_sync_at_home(at_home_routine, __builtin_wasm_tls_base(), (uint32_t)r->op,
                                        r->thread, r->start, r->arg, r->attr, deadline);
    links_private();
    return answer;
}

static int join_at_home(int op, pthread_t thread, void **result, const struct timespec *at) {
    struct weft_home_request r = {.op = op, .thread = thread, .abstime = at};
    uint64_t answer = call_at_home(&r);
    int rc = (int)(uint32_t)answer;
    while (rc == ECANCELED) {
        /* A cancellation request ended the wait at home: act on it here
         * (this acquires it), or wait again if it no longer applies. */
        pthread_testcancel();
        answer = call_at_home(&r);
        rc = (int)(uint32_t)answer;
    }
    if (!rc && result) *result = (void *)(uintptr_t)(answer >> 32);
    return rc;
}

int __wrap_pthread_tryjoin_np(pthread_t thread, void **result) {
    if (at_home_applies()) return join_at_home(HOME_TRYJOIN, thread, result, NULL);
    return __real_pthread_tryjoin_np(thread, result);
}

int __wrap_pthread_timedjoin_np(pthread_t thread, void **result, const struct timespec *at) {
    if (at_home_applies()) return join_at_home(HOME_TIMEDJOIN, thread, result, at);
    return __real_pthread_timedjoin_np(thread, result, at);
}

int __wrap_pthread_detach(pthread_t thread) {
    if (at_home_applies()) return join_at_home(HOME_DETACH, thread, NULL, NULL);
    return __real_pthread_detach(thread);
}

static long long monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* Joins `thread` if it ends within JOIN_SPIN_NS. A chained thread often
 * takes about as long as waking a joiner that went to sleep, so a short
 * wait awake halves the latency of short threads. */
#define JOIN_SPIN_NS 200000
static int join_soon(pthread_t thread, void **result) {
    long long deadline = 0;
    for (unsigned i = 0;; i++) {
        int rc = __real_pthread_tryjoin_np(thread, result);
        if (rc != EBUSY) return rc;
        if (i % 64 == 0) { /* reading the clock costs more than a try */
            long long now = monotonic_ns();
            if (!deadline) deadline = now + JOIN_SPIN_NS;
            else if (now > deadline) return EBUSY;
        }
    }
}

/* In chain mode the joiner waits awake for a moment first; a chained
 * thread gives its worker slot up while it waits (the thread it waits for
 * may be queued for one). */
int __wrap_pthread_join(pthread_t thread, void **result) {
    if (!weft_chain_mode()) return __real_pthread_join(thread, result);
    if (at_home_applies()) return join_at_home(HOME_JOIN, thread, result, NULL);
    /* The main thread's join is a release too: a thread still running may
     * wait for what main wrote (through a flag it polls at sync points).
     * (A chained joiner's writes go home when it ends.) */
    if (!weft_chain_entry.arena) weft_home_sync_point();
    int rc = join_soon(thread, result);
    if (rc == EBUSY) {
        /* The host counts joiners for its deadlock detector, and a chained
         * joiner gives its slot up meanwhile. */
        weft_wait_begin();
        rc = __real_pthread_join(thread, result);
        weft_wait_end();
    }
    return rc;
}

_Noreturn void pthread_exit(void *value) {
    if (weft_chain_entry.arena) {
        /* A chained thread: its cleanup handlers run here, newest first, as
         * libc's exit path would run them (cancellation off meanwhile):
         * their buffers live in this thread's frames, which the exit path
         * would overwrite. Then the host ends the thread with this result;
         * libc's exit path (TSD destructors, waking the joiner) runs on the
         * parent's memory. */
        pthread_t self = pthread_self();
        THREAD_CANCELDISABLE(self) = PTHREAD_CANCEL_DISABLE;
        THREAD_CANCELASYNC(self) = 0;
        while (THREAD_CANCELBUF(self)) {
            struct weft_cleanup *c = THREAD_CANCELBUF(self);
            THREAD_CANCELBUF(self) = c->next;
            c->run(c->arg);
        }
        chain_thread_finish(value);
    }
    struct wasi_start_args args = {0, 0, exit_value, value};
    __wasi_thread_start_C((int)weft_thread_current_id(), &args);
    /* From here on a joiner may free this thread's stack: touch only the
     * lock (as wasi_thread_start's assembly tail does), then leave. */
    __atomic_store_n(&__thread_list_lock, 0, __ATOMIC_SEQ_CST);
    __builtin_wasm_memory_atomic_notify((int *)&__thread_list_lock, 1);
    weft_thread_exit_current();
}

/* ---- attributes -------------------------------------------------------
 * Wasm has no stack guard pages and no CPU scheduling, so these values
 * change nothing at run time; they are kept so the getters report what the
 * program set, as native code expects. */

int __wrap_pthread_attr_setguardsize(pthread_attr_t *a, size_t size) {
    if (size > SIZE_MAX / 8) return EINVAL;
    /* Stored for the getter only: pthread_create would otherwise add the
     * guard to the thread's malloc'd stack block, wasting memory. */
    ATTR_GUARDSIZE(a) = size;
    return 0;
}

/* What a new thread takes over from its creator before its start routine
 * runs: its scheduling setting and its signal mask. Only threads that
 * need it start through this trampoline. */
struct thread_start {
    void *(*start)(void *);
    void *arg;
    int record_sched;
    int policy;
    int priority;
    unsigned signal_mask;
};

void __real___wasi_thread_start_C(int tid, void *start_arg);

/* Every new thread enters C here (wasi-libc's entry, once its stack
 * pointer and TLS are set): it tells the host where its stack ends, and
 * the host stops a function whose frame would start just below, where
 * natively a guard page would (a wasm memory has none, and the stack lies
 * in the heap). The bottom is that of the block libc allocated for the
 * stack (a little below what the thread reports: libc rounds the size
 * up), or of the stack the program gave. Nothing is set by libweft's own
 * call of the C entry (a thread's exit path, with no stack of its own),
 * nor for a call at home (on a scratch stack, with its creator's TLS). */
void __wrap___wasi_thread_start_C(int tid, void *start_arg) {
    struct wasi_start_args *args = start_arg;
    if (args->stack && args->start_func != at_home_routine) {
        pthread_t self = pthread_self();
        uintptr_t top = (uintptr_t)THREAD_STACK(self);
        uintptr_t bottom = top - THREAD_STACK_SIZE(self);
        uintptr_t map = (uintptr_t)THREAD_MAP_BASE(self);
        /* libc's block holds the stack (not only the TLS of a stack the
         * program gave): its base is the stack's true bottom. */
        if (map && map <= bottom && top <= map + THREAD_MAP_SIZE(self)) bottom = map;
        weft_set_stack_bottom((uint32_t)bottom);
    }
    __real___wasi_thread_start_C(tid, start_arg);
}

static void *start_trampoline(void *p) {
    struct thread_start s = *(struct thread_start *)p;
    free(p);
    if (s.record_sched) weft_sched_record_self(s.policy, s.priority);
    weft_signal_set_mask(s.signal_mask);
    return s.start(s.arg);
}

/* The stack a new thread reports (pthread_getattr_np), as the program set
 * it: libc carves its start arguments (and, from a small enough stack of
 * the program's own, the thread's TLS) off the top and reports what is
 * left, and it reports no guard since none is made. The creator sets
 * these for __wrap___wasi_thread_spawn, which writes them into the new
 * thread's struct pthread before the thread exists (so also before a
 * chained thread's copy of memory is taken), with the thread's name. */
struct stack_report {
    int pending;
    size_t top; /* 0: the top libc chose */
    size_t size;
    size_t guard;
};
static _Thread_local struct stack_report stack_report;

int32_t __real___wasi_thread_spawn(void *start_arg);

int32_t __wrap___wasi_thread_spawn(void *start_arg) {
    /* libc places the new thread's struct pthread at the same offset from
     * its TLS block as the creator's. */
    struct wasi_start_args *args = start_arg;
    pthread_t self = pthread_self();
    pthread_t t = (pthread_t)((char *)self +
                              ((char *)args->tls_base - (char *)__builtin_wasm_tls_base()));
    if (stack_report.pending) {
        if (stack_report.top) THREAD_STACK(t) = (void *)stack_report.top;
        THREAD_STACK_SIZE(t) = stack_report.size;
        THREAD_GUARD_SIZE(t) = stack_report.guard;
    }
    weft_thread_name_inherit(t);
    weft_signals_forget(t);
    if (home_request) {
        /* Created at home: what libc wrote for the thread beyond what its
         * creator released goes into its snapshot. */
        home_request->ranges[0][0] = (uint32_t)(uintptr_t)THREAD_MAP_BASE(t);
        home_request->ranges[0][1] = (uint32_t)THREAD_MAP_SIZE(t);
        if (stack_report.pending && stack_report.top > (size_t)start_arg) {
            home_request->ranges[1][0] = (uint32_t)(uintptr_t)start_arg;
            home_request->ranges[1][1] = (uint32_t)(stack_report.top - (size_t)start_arg);
        }
    }
    /* The new thread's copy of this TLS variable, at the same offset. */
    *(int *)((char *)&weft_nested_thread + ((char *)t - (char *)self)) =
        weft_chain_entry.arena != NULL || weft_nested_thread;
    return __real___wasi_thread_spawn(start_arg);
}

/* Bytes libc carves off the top of a stack it allocates (start arguments,
 * alignment) beyond its page rounding: asked for on top of the requested
 * size, so the reported stack lies wholly inside the allocated block. */
#define STACK_SLACK 64

/* Creates the thread on the memory this code runs on: the stack as the
 * attributes set it, reported as set. */
static int create_here(pthread_t *restrict thread, const pthread_attr_t *restrict attr,
                       void *(*start)(void *), void *restrict arg) {
    int __real_pthread_create(pthread_t *restrict, const pthread_attr_t *restrict,
                              void *(*)(void *), void *restrict);
    if (!attr) return __real_pthread_create(thread, attr, start, arg);
    /* No guard (wasm has no guard pages: it would only waste memory),
     * and the stack as set, reported as set. */
    pthread_attr_t copy = *attr;
    int own_stack = ATTR_STACKADDR(attr) != 0;
    stack_report = (struct stack_report){1, own_stack ? ATTR_STACKADDR(attr) : 0,
                                         ATTR_STACKSIZE(attr), own_stack ? 0 : ATTR_GUARDSIZE(attr)};
    ATTR_GUARDSIZE(&copy) = 0;
    if (!own_stack) ATTR_STACKSIZE(&copy) += STACK_SLACK;
    int rc = __real_pthread_create(thread, &copy, start, arg);
    stack_report.pending = 0;
    return rc;
}

/* A new thread's stack unless pthread_attr_setstacksize says otherwise:
 * 64 KiB, as wasi-libc gives with the linker's default (glibc's 8 MiB are
 * address space only; here a stack is heap taken at once). wasi-libc
 * would give threads the main thread's size, which weft-cc makes 1 MiB:
 * with it a program could start only about 250 threads in its 256 MiB,
 * and memories filled with arenas (cli/tests/arena.rs) behave otherwise. */
#define THREAD_STACK_DEFAULT (64 * 1024)

extern size_t __default_stacksize;

__attribute__((constructor)) static void thread_stack_default(void) {
    __default_stacksize = THREAD_STACK_DEFAULT;
}

int __wrap_pthread_create(pthread_t *restrict thread, const pthread_attr_t *restrict attr,
                          void *(*start)(void *), void *restrict arg) {
    /* Ask the mode now, so every copy of memory made for a chained thread
     * has the answer and none writes it. */
    (void)weft_chain_mode();
    int explicit_sched = attr && ATTR_INHERIT(attr) == PTHREAD_EXPLICIT_SCHED;
    int policy = explicit_sched ? ATTR_POLICY(attr) : 0;
    int priority = explicit_sched ? ATTR_PRIORITY(attr) : 0;
    int record_sched = weft_sched_for_new_thread(explicit_sched, &policy, &priority);
    unsigned mask = weft_signal_mask();
    void *wrapped = arg;
    if (record_sched || mask) {
        struct thread_start *s = malloc(sizeof *s);
        if (!s) return EAGAIN;
        *s = (struct thread_start){start, arg, record_sched, policy, priority, mask};
        start = start_trampoline;
        wrapped = s;
    }
    int rc;
    if (at_home_applies()) {
        struct weft_home_request r = {.op = HOME_CREATE, .attr = attr, .start = start, .arg = wrapped};
        uint64_t answer = call_at_home(&r);
        rc = (int)(uint32_t)answer;
        if (!rc) *thread = (pthread_t)(uintptr_t)(answer >> 32);
    } else {
        rc = create_here(thread, attr, start, wrapped);
    }
    if (rc && wrapped != arg) free(wrapped);
    return rc;
}

int __wrap_pthread_attr_setschedparam(pthread_attr_t *restrict a,
                                      const struct sched_param *restrict param) {
    /* The priority must lie in the range of the attribute's policy. */
    int min = sched_get_priority_min(ATTR_POLICY(a));
    int max = sched_get_priority_max(ATTR_POLICY(a));
    if (min < 0 || param->sched_priority < min || param->sched_priority > max) return EINVAL;
    ATTR_PRIORITY(a) = param->sched_priority;
    return 0;
}

int __wrap_pthread_attr_getschedparam(const pthread_attr_t *restrict a,
                                      struct sched_param *restrict param) {
    param->sched_priority = ATTR_PRIORITY(a);
    return 0;
}

int pthread_attr_setschedpolicy(pthread_attr_t *a, int policy) {
    if (policy != SCHED_OTHER && policy != SCHED_FIFO && policy != SCHED_RR) return EINVAL;
    ATTR_POLICY(a) = policy;
    return 0;
}

int pthread_attr_getschedpolicy(const pthread_attr_t *restrict a, int *restrict policy) {
    *policy = ATTR_POLICY(a);
    return 0;
}

int pthread_attr_setinheritsched(pthread_attr_t *a, int inherit) {
    if (inherit != PTHREAD_INHERIT_SCHED && inherit != PTHREAD_EXPLICIT_SCHED) return EINVAL;
    ATTR_INHERIT(a) = inherit;
    return 0;
}

int pthread_attr_getinheritsched(const pthread_attr_t *restrict a, int *restrict inherit) {
    *inherit = ATTR_INHERIT(a);
    return 0;
}

int pthread_attr_setscope(pthread_attr_t *a, int scope) {
    (void)a;
    switch (scope) {
    case PTHREAD_SCOPE_SYSTEM: return 0;
    case PTHREAD_SCOPE_PROCESS: return ENOTSUP; /* as on Linux */
    default: return EINVAL;
    }
}

int pthread_attr_getscope(const pthread_attr_t *restrict a, int *restrict scope) {
    (void)a;
    *scope = PTHREAD_SCOPE_SYSTEM;
    return 0;
}
