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
 * Chain mode: every thread runs on its own copy of memory, so a request
 * to another thread would never reach it; that is refused with a clear
 * error. A thread may still cancel itself. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <weft/threads.h>

#include "chain.h"
#include "signals.h"
#include "thread_fields.h"

/* How long a blocked wait or sleep goes without checking for requests:
 * short once the program has used cancellation or signals, long before
 * (thousands of idle threads then cost next to nothing, and a thread that
 * blocked before the first request still sees it within a second). */
#define SLICE_NS 20000000LL
#define IDLE_SLICE_NS 1000000000LL

static volatile int cancel_used;

static int64_t slice_ns(void) {
    return __atomic_load_n(&cancel_used, __ATOMIC_RELAXED) || weft_signals_used() ? SLICE_NS
                                                                                   : IDLE_SLICE_NS;
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
    return __atomic_load_n(&THREAD_CANCEL(self), __ATOMIC_SEQ_CST) &&
           THREAD_CANCELDISABLE(self) != PTHREAD_CANCEL_DISABLE;
}

/* libc's pthread_testcancel (and its own calls to it) end here: this
 * definition replaces libc's empty weak one. */
void __testcancel(void) {
    pthread_t self = pthread_self();
    if (THREAD_CANCEL(self) && THREAD_CANCELDISABLE(self) == PTHREAD_CANCEL_ENABLE)
        pthread_exit(PTHREAD_CANCELED);
}

int __wrap_pthread_cancel(pthread_t thread) {
    pthread_t self = pthread_self();
    if (thread != self && weft_chain_mode()) weft_chain_unsupported(WEFT_SYNC_THREAD_CANCEL);
    __atomic_store_n(&cancel_used, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&THREAD_CANCEL(thread), 1, __ATOMIC_SEQ_CST);
    /* Asynchronous cancellation of oneself acts at once (POSIX); for other
     * threads it acts at their next cancellation point. */
    if (thread == self && THREAD_CANCELASYNC(self) &&
        THREAD_CANCELDISABLE(self) == PTHREAD_CANCEL_ENABLE)
        pthread_exit(PTHREAD_CANCELED);
    return 0;
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
         * with no clock to read (what libc's own wait does, bounded). */
        __builtin_wasm_memory_atomic_wait32((int *)addr, val, slice_ns());
        if (cancellable && pending(self)) return act_on_cancel(self);
        if (signals) weft_signal_deliver();
        if (weft_signals_interrupting() != interrupting) return EINTR;
        return 0; /* woken, changed, or a slice: the caller checks */
    }
    if (at->tv_nsec < 0 || at->tv_nsec >= 1000000000L) return EINVAL;
    struct timespec now;
    clock_gettime(clock, &now);
    int64_t slice_end = ns_of(&now) + slice_ns();
    int whole = ns_of(at) <= slice_end;
    struct timespec slice = timespec_of(slice_end);
    int rc = __real___timedwait_cp(addr, val, clock, whole ? at : &slice, priv);
    if (cancellable && pending(self)) return act_on_cancel(self);
    if (signals) weft_signal_deliver();
    if (weft_signals_interrupting() != interrupting) return EINTR;
    /* A slice that ended is not the caller's timeout: to the caller it is
     * a spurious wake-up. */
    return rc == ETIMEDOUT && !whole ? 0 : rc;
}

int __real_clock_nanosleep(clockid_t, int, const struct timespec *, struct timespec *);

/* Sleeps are cancellation points and signal delivery points (nanosleep,
 * sleep and usleep come here): a handler ends the sleep with EINTR and
 * the time left. */
int __wrap_clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
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
        int rc = __real_clock_nanosleep(clock, 0, &slice, NULL);
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
