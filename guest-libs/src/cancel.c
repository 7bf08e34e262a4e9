/* Thread cancellation (deferred) for wasi-libc, which has the state
 * (pthread_setcancelstate, setcanceltype, cleanup handlers run by its exit
 * path) but no way to deliver a request: its pthread_cancel returns
 * ENOTSUP and its testcancel does nothing.
 *
 * A request sets the target's `cancel` flag. The target acts on it at a
 * cancellation point: pthread_testcancel, and every wait libc makes
 * through __timedwait_cp (condition variables, semaphores, join), which
 * weft-cc wraps, and sleeps (clock_nanosleep, under nanosleep, sleep and
 * usleep). A thread blocked in one of those waits in slices while its
 * cancellation is enabled (see slice_ns), so it sees a request within one
 * slice; to the callers a slice that ends looks like a spurious
 * wake-up, which they already handle. Acting is pthread_exit(PTHREAD_
 * CANCELED): cleanup handlers, then TSD destructors, as libc's exit path
 * runs them. Asynchronous cancellation is accepted and acts as deferred
 * (wasm cannot interrupt a thread between two instructions).
 *
 * Chain mode: every thread runs on its own copy of memory. A request is
 * set on the home memory (weft_cancel_request), and a cancellation point
 * of a chained thread is an acquire first (a load point), which brings
 * it. Waits at home (condition variables, semaphores; pthread.c) wait in
 * slices while the thread is cancellable, in programs that can cancel at
 * all (cancel.h). Acting runs the cleanup handlers in the thread itself
 * (pthread.c's pthread_exit), then ends it as any chained thread ends. A
 * thread started by a chained thread shares no sync points with others,
 * so a request to it from another thread is refused with a clear error. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <weft/threads.h>

#include "cancel.h"
#include "chain.h"
#include "signals.h"
#include "thread_fields.h"

/* How long a blocked wait or sleep goes without checking for requests:
 * short once the program has used cancellation or signals, long before
 * (thousands of idle threads then cost next to nothing, and a thread that
 * blocked before the first request still sees it within a second). */
#define SLICE_NS 20000000LL
#define IDLE_SLICE_NS 1000000000LL

volatile int weft_cancel_used;

__attribute__((weak)) const char weft_cancel_linked = 0;

/* In chain mode a request made elsewhere reaches this copy only at an
 * acquire, so every wait of a program that can cancel is sliced. */
int64_t weft_cancel_slice_ns(void) {
    return __atomic_load_n(&weft_cancel_used, __ATOMIC_RELAXED) || weft_signals_used() ||
                   (weft_program_cancels && weft_chained > 0)
               ? SLICE_NS
               : IDLE_SLICE_NS;
}

static int64_t slice_ns(void) { return weft_cancel_slice_ns(); }

int weft_cancellable(void) {
    return weft_program_cancels &&
           THREAD_CANCELDISABLE(pthread_self()) == PTHREAD_CANCEL_ENABLE;
}

/* The calling thread's request flag, as home has it in chain mode (a
 * thread started by a chained thread has no sync points, and no request
 * reaches it: see weft_cancel_request). */
static int request_flag(pthread_t self) {
    if (weft_program_cancels && weft_chain_entry.arena && !weft_nested_thread)
        weft_home_load_point();
    return __atomic_load_n(&THREAD_CANCEL(self), __ATOMIC_SEQ_CST);
}

/* What a cancellation point does with a pending request: exit, or, while
 * masked (libc's condition wait, which must re-take its mutex first),
 * disable further cancellation and report ECANCELED to libc, which then
 * calls pthread_testcancel itself. */
static int act_on_cancel(pthread_t self) {
    if (THREAD_CANCELDISABLE(self) == PTHREAD_CANCEL_ENABLE) pthread_exit(PTHREAD_CANCELED);
    THREAD_CANCELDISABLE(self) = PTHREAD_CANCEL_DISABLE;
    return ECANCELED;
}

static int pending(pthread_t self) {
    return THREAD_CANCELDISABLE(self) != PTHREAD_CANCEL_DISABLE && request_flag(self);
}

/* libc's pthread_testcancel (and its own calls to it) end here: this
 * definition replaces libc's empty weak one. */
void __testcancel(void) {
    pthread_t self = pthread_self();
    if (THREAD_CANCELDISABLE(self) == PTHREAD_CANCEL_ENABLE && request_flag(self))
        pthread_exit(PTHREAD_CANCELED);
}

/* A request sets the target's `cancel` flag. In chain mode each thread
 * runs on its own copy of memory, so the flag is set on the home memory
 * (an atomic store made by the home host), where the target's next
 * cancellation point, an acquire, finds it. */
/* The asynchronous-cancellation line was written (once per program). */
static int async_cancel_said;

int weft_cancel_request(pthread_t thread) {
    pthread_t self = pthread_self();
    if (weft_chain_mode()) {
        /* The target's flag as this thread last saw it (set when it was
         * created, see pthread.c). */
        int nested = *(int *)((char *)&weft_nested_thread + ((char *)thread - (char *)self));
        if (thread != self && nested) weft_chain_unsupported(WEFT_SYNC_THREAD_CANCEL);
        weft_home_atomic(WEFT_ATOMIC_STORE, 4, (const void *)&THREAD_CANCEL(thread), 1, 0);
        /* Another thread's flag in this copy stays as home last gave it:
         * writing it here too would make this thread's diff touch it. */
        if (thread == self) THREAD_CANCEL(self) = 1;
    } else {
        __atomic_store_n(&weft_cancel_used, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&THREAD_CANCEL(thread), 1, __ATOMIC_SEQ_CST);
    }
    /* Asynchronous cancellation of oneself acts at once (POSIX); for other
     * threads it acts at their next cancellation point, which a thread
     * computing with no call never reaches: said once, in local mode (in
     * chain mode the target's type is in its own copy, and the stall
     * watch speaks when it runs on). */
    if (thread != self && !weft_chain_mode() && THREAD_CANCELASYNC(thread) &&
        THREAD_CANCELDISABLE(thread) == PTHREAD_CANCEL_ENABLE &&
        !__atomic_exchange_n(&async_cancel_said, 1, __ATOMIC_RELAXED))
        dprintf(2,
                "weft: pthread_cancel of thread %d: its cancellation is asynchronous, which "
                "acts as deferred here, at its next cancellation point (a wasm thread cannot "
                "be stopped between two instructions)\n",
                THREAD_TID(thread));
    if (thread == self && THREAD_CANCELASYNC(self) &&
        THREAD_CANCELDISABLE(self) == PTHREAD_CANCEL_ENABLE)
        pthread_exit(PTHREAD_CANCELED);
    return 0;
}

/* pthread_cancel from code built without libweft's pthread.h (which
 * renames it). In chain mode such a program's waits do not look for
 * requests (see cancel.h), so a request to another thread is refused
 * there with a clear error rather than left to hang. */
int __wrap_pthread_cancel(pthread_t thread) {
    if (thread != pthread_self() && !weft_program_cancels && weft_chain_mode())
        weft_chain_unsupported(WEFT_SYNC_THREAD_CANCEL);
    return weft_cancel_request(thread);
}

int __real_pthread_setcanceltype(int, int *);

int __wrap_pthread_setcanceltype(int type, int *old) {
    int rc = __real_pthread_setcanceltype(type, old);
    /* Turning asynchronous cancellation on acts on a pending request. */
    if (rc == 0 && type == PTHREAD_CANCEL_ASYNCHRONOUS) __testcancel();
    return rc;
}

static int64_t ns_of(const struct timespec *t) {
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static struct timespec timespec_of(int64_t ns) {
    struct timespec t = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    return t;
}

int __real___timedwait_cp(volatile int *addr, int val, clockid_t clock,
                          const struct timespec *at, int priv);

/* Every cancellable futex wait of libc; also a signal delivery point
 * (signal.c), where a handler without SA_RESTART is EINTR to libc's
 * caller (which resumes a condition wait or a join, and fails a semaphore
 * wait). */
int __real___timedwait(volatile int *addr, int val, clockid_t clock, const struct timespec *at,
                       int priv);

/* One slice of a wait until `at` on `clock`: libc's `wait` (the real
 * __timedwait or __timedwait_cp) until the earlier of `at` and the slice's
 * end. A slice that ended is not the caller's timeout: to the caller it is
 * a spurious wake-up (0). */
static int timed_slice(int (*wait)(volatile int *, int, clockid_t, const struct timespec *, int),
                       volatile int *addr, int val, clockid_t clock, const struct timespec *at,
                       int priv) {
    if (at->tv_nsec < 0 || at->tv_nsec >= 1000000000L) return EINVAL;
    struct timespec now;
    clock_gettime(clock, &now);
    int64_t slice_end = ns_of(&now) + slice_ns();
    int whole = ns_of(at) <= slice_end;
    struct timespec slice = timespec_of(slice_end);
    int rc = wait(addr, val, clock, whole ? at : &slice, priv);
    return rc == ETIMEDOUT && !whole ? 0 : rc;
}

int __wrap___timedwait_cp(volatile int *addr, int val, clockid_t clock,
                          const struct timespec *at, int priv) {
    pthread_t self = pthread_self();
    int cancellable = THREAD_CANCELDISABLE(self) != PTHREAD_CANCEL_DISABLE;
    int signals = weft_signals_used();
    if (!cancellable && !signals) return __real___timedwait_cp(addr, val, clock, at, priv);
    if (cancellable && pending(self)) return act_on_cancel(self);
    unsigned interrupting = weft_signals_interrupting();
    if (signals) weft_signal_deliver();
    if (weft_signals_interrupting() != interrupting) return EINTR;
    if (!at) {
        /* An untimed wait, the common case: a futex wait of one slice,
         * with no clock to read (what libc's own wait does, bounded). The
         * host counts it as a wait for good unless signals may end it
         * (their timer is this program's own). */
        if (signals) __builtin_wasm_memory_atomic_wait32((int *)addr, val, slice_ns());
        else weft_wait_slice(addr, val, slice_ns());
        if (cancellable && pending(self)) return act_on_cancel(self);
        if (signals) weft_signal_deliver();
        if (weft_signals_interrupting() != interrupting) return EINTR;
        return 0; /* woken, changed, or a slice: the caller checks */
    }
    int rc = timed_slice(__real___timedwait_cp, addr, val, clock, at, priv);
    if (rc == EINVAL) return rc;
    if (cancellable && pending(self)) return act_on_cancel(self);
    if (signals) weft_signal_deliver();
    if (weft_signals_interrupting() != interrupting) return EINTR;
    return rc;
}

int __real_clock_nanosleep(clockid_t, int, const struct timespec *, struct timespec *);

_Thread_local int weft_sleeping_a_slice;

/* Sleeps are cancellation points and signal delivery points (nanosleep,
 * sleep and usleep come here): a handler ends the sleep with EINTR and
 * the time left. */
static int sleep_sliced(clockid_t clock, int flags, const struct timespec *request,
                        struct timespec *remain);

/* In chain mode a sleep is also a sync point before and after (see
 * weft_pause_point). */
int __wrap_clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                           struct timespec *remain) {
    weft_pause_point(0);
    int rc = sleep_sliced(clock, flags, request, remain);
    weft_pause_point(0);
    return rc;
}

static int sleep_sliced(clockid_t clock, int flags, const struct timespec *request,
                        struct timespec *remain) {
    pthread_t self = pthread_self();
    int signals = weft_signals_used();
    if (THREAD_CANCELDISABLE(self) == PTHREAD_CANCEL_DISABLE && !signals)
        return __real_clock_nanosleep(clock, flags, request, remain);
    __testcancel();
    unsigned handled = weft_signals_handled();
    if (request->tv_nsec < 0 || request->tv_nsec >= 1000000000L || request->tv_sec < 0)
        return EINVAL;
    struct timespec now;
    if (clock_gettime(clock, &now)) return EINVAL;
    int64_t end = (flags & TIMER_ABSTIME) ? ns_of(request) : ns_of(&now) + ns_of(request);
    for (;;) {
        int64_t left = end - ns_of(&now);
        if (left <= 0) return 0;
        struct timespec slice = timespec_of(left < slice_ns() ? left : slice_ns());
        weft_sleeping_a_slice = 1;
        int rc = __real_clock_nanosleep(clock, 0, &slice, NULL);
        weft_sleeping_a_slice = 0;
        __testcancel();
        clock_gettime(clock, &now);
        if (weft_signals_used()) weft_signal_deliver();
        if (!rc && weft_signals_handled() != handled) rc = EINTR;
        if (rc) {
            if (remain && !(flags & TIMER_ABSTIME)) {
                int64_t rest = end - ns_of(&now);
                *remain = timespec_of(rest > 0 ? rest : 0);
            }
            return rc;
        }
    }
}

/* libc's waits that are no cancellation points: mutex and rwlock waits
 * (__timedwait), barrier, once, condition-variable internals and its
 * own locks (__wait). Natively a handler runs while a thread blocks in
 * them and the wait goes on; here they wait in slices once the program
 * has used signals, and deliver at each. */
int __wrap___timedwait(volatile int *addr, int val, clockid_t clock, const struct timespec *at,
                       int priv) {
    if (!weft_signals_used()) return __real___timedwait(addr, val, clock, at, priv);
    unsigned handled = weft_signals_handled();
    int rc;
    if (!at) {
        __builtin_wasm_memory_atomic_wait32((int *)addr, val, slice_ns());
        rc = 0; /* woken, changed, or a slice: the caller checks */
    } else {
        rc = timed_slice(__real___timedwait, addr, val, clock, at, priv);
        if (rc == EINVAL) return rc;
    }
    weft_signal_deliver();
    /* An interrupted futex wait reports EINTR; libc's callers wait again. */
    return rc == 0 && weft_signals_handled() != handled ? EINTR : rc;
}

void __real___wait(volatile int *addr, volatile int *waiters, int val, int priv);

void __wrap___wait(volatile int *addr, volatile int *waiters, int val, int priv) {
    if (!weft_signals_used()) {
        __real___wait(addr, waiters, val, priv);
        return;
    }
    if (waiters) __atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(addr, __ATOMIC_SEQ_CST) == val) {
        __builtin_wasm_memory_atomic_wait32((int *)addr, val, slice_ns());
        weft_signal_deliver();
    }
    if (waiters) __atomic_fetch_sub(waiters, 1, __ATOMIC_SEQ_CST);
}
