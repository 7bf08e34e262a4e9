/* Signals between the threads of one program. wasi-libc has none (its
 * signal() and raise() need a library the toolchain lacks), and a wasm
 * thread cannot be interrupted between two instructions, so libweft keeps
 * the whole state in the guest: actions, each thread's mask (TLS), what is
 * pending for each thread and for the program, and the real-time timer.
 *
 * A signal is delivered at the target thread's next delivery point: a
 * wait libc makes (condition variables, semaphores, join, mutexes), a
 * sleep, a clock read, sched_yield, a read, and the signal calls
 * themselves (raise and a pthread_kill to oneself run the handler before
 * they return; unblocking runs pending handlers at once). A thread that
 * computes without any of these receives it at its next one. Waits run in
 * slices of at most 20 ms once a program uses signals, so a blocked thread
 * sees a signal within one slice; sigwait, sigsuspend and pause wake at
 * once. A handler interrupts sem_wait, sleeps, sigtimedwait, sigsuspend
 * and pause with EINTR; condition waits, mutexes and join resume.
 *
 * Default actions: SIGCHLD, SIGURG, SIGWINCH and SIGCONT are ignored, the
 * stop signals are ignored (no job control), every other signal ends the
 * program with exit code 128 + the signal number after one line on
 * stderr. Signals 1..31 are delivered; real-time signals are refused.
 *
 * Chain mode: a thread may signal itself, and the main thread may signal
 * the program (kill, alarm: delivered to the main thread); a signal to
 * another thread, or to the program from a chained thread, could not
 * reach the copy of memory it runs on and is refused with a clear error.
 * Every thread runs on its own copy of memory there, so no bookkeeping
 * that two threads could write without synchronising may live in shared
 * memory (their writes would meet as a merge conflict): what a thread
 * has pending and whether it has used signals are kept in its TLS (only
 * the thread itself sends it signals); what the program has pending and
 * the timer are the main thread's alone (it is the only one that takes,
 * sends and arms them); the actions, which any thread changes, change
 * under a home lock, a sync point that orders them like any lock; and
 * waiters are not woken through memory (no other thread can make a
 * signal pending for them). SIG_IGN discards what another thread has
 * pending through a generation per signal, bumped under that lock and
 * compared with the one each pending signal was sent at. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#include <weft/threads.h>

#include "chain.h"
#include "signals.h"

#define MAX_SIGNAL 31
#define BIT(s) (1u << (s))
#define UNBLOCKABLE (BIT(SIGKILL) | BIT(SIGSTOP))
#define SLICE_NS 20000000LL

/* Distinct functions standing for SIG_IGN and SIG_ERR (wasm function
 * pointer 1 is a valid function). */
void __SIG_IGN(int sig) { (void)sig; }
void __SIG_ERR(int sig) { (void)sig; }

static struct sigaction actions[MAX_SIGNAL + 1];
/* Signals sent to the program (kill, the timer), taken by any thread
 * that does not block them. */
static uint32_t process_pending;
/* Signals sent to one thread, by its pthread_t. */
#define PENDING_SLOTS 256
static struct {
    pthread_t thread;
    uint32_t bits;
} thread_pending[PENDING_SLOTS];
/* Pending bits set anywhere: the delivery points' fast path (local mode). */
static volatile int pending_count;
/* Bumped (and waiters woken) when a signal becomes pending or the timer
 * changes. */
static volatile int signal_seq;
static volatile int used;
static volatile int state_lock;

/* Chain mode: how many times each signal's action was set to SIG_IGN
 * (under the home lock of `state_lock`), and a set of pending signals
 * with the generation each was sent at: one pending after its signal was
 * ignored again is discarded. A thread's own set is in its TLS; the
 * program's (`process_pending`, `process_gen`) is the main thread's. */
static uint32_t ignore_gen[MAX_SIGNAL + 1];
static uint32_t process_gen[MAX_SIGNAL + 1];
static _Thread_local uint32_t own_pending;
static _Thread_local uint32_t own_gen[MAX_SIGNAL + 1];
/* Chain mode: the calling thread has used signals (`used` is local mode's). */
static _Thread_local int used_here;

static _Thread_local uint32_t blocked;
static _Thread_local int delivering;
static _Thread_local unsigned handled, interrupting;

unsigned weft_signals_handled(void) { return handled; }

unsigned weft_signals_interrupting(void) { return interrupting; }

unsigned weft_signal_mask(void) { return blocked; }

void weft_signal_set_mask(unsigned mask) { blocked = mask & ~UNBLOCKABLE; }

/* The real-time timer (alarm, setitimer): monotonic nanoseconds, 0 when
 * disarmed. */
static volatile int64_t timer_at;
static int64_t timer_interval;

/* Whether threads run in chain mode: asked before the first thread
 * starts (pthread_create), so no chained thread's copy writes the answer. */
static int chain(void) {
    int known = weft_chained;
    return __builtin_expect(known == 0, 1) ? 0 : weft_chain_mode();
}

/* The lock of the state every thread shares. In chain mode that is only
 * the actions (and ignore_gen), under a home lock; the rest is the
 * calling thread's own there, and lock() does nothing. */
static void lock(void) {
    if (chain()) return;
    while (__atomic_exchange_n(&state_lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&state_lock, __ATOMIC_RELAXED)) {}
}

static void unlock(void) {
    if (chain()) return;
    __atomic_store_n(&state_lock, 0, __ATOMIC_RELEASE);
}

static void lock_actions(void) {
    if (chain()) weft_home_lock((const void *)&state_lock, 0, -1);
    else lock();
}

static void unlock_actions(void) {
    if (chain()) weft_home_unlock((const void *)&state_lock, 0);
    else unlock();
}

int weft_signals_used(void) { return used_here || __atomic_load_n(&used, __ATOMIC_RELAXED); }

static void mark_used(void) {
    if (chain()) used_here = 1;
    else __atomic_store_n(&used, 1, __ATOMIC_RELAXED);
}

/* In chain mode no other thread can make a signal pending for a waiter,
 * and a wake-up could not reach its copy anyway. */
static void wake_waiters(void) {
    if (chain()) return;
    __atomic_fetch_add(&signal_seq, 1, __ATOMIC_SEQ_CST);
    __builtin_wasm_memory_atomic_notify((int *)&signal_seq, (unsigned)-1);
}

/* Chain mode: `sig` pending in a set with its generations. */
static void chain_set_pending(uint32_t *bits, uint32_t *gen, int sig) {
    *bits |= BIT(sig);
    gen[sig] = ignore_gen[sig];
}

/* Chain mode: a set's pending signals, less those ignored since sent. */
static uint32_t chain_live(uint32_t *bits, const uint32_t *gen) {
    for (uint32_t rest = *bits; rest; rest &= rest - 1) {
        int sig = __builtin_ctz(rest);
        if (gen[sig] != ignore_gen[sig]) *bits &= ~BIT(sig);
    }
    return *bits;
}

__wasi_errno_t __real___wasi_clock_time_get(__wasi_clockid_t, __wasi_timestamp_t,
                                            __wasi_timestamp_t *);

static int64_t monotonic_ns(void) {
    __wasi_timestamp_t now = 0;
    __real___wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &now);
    return (int64_t)now;
}

/* Whether the calling thread takes signals sent to the program: any
 * thread in local mode, the main thread in chain mode (by its id: other
 * instances on the main memory, a call at home or a thread's exit path,
 * run with no arena too, and must not take them). */
#define MAIN_TID 0x3fffffffu /* the id wasi-libc gives the main thread */

static int takes_process_signals(void) {
    return !chain() || (unsigned)weft_thread_current_id() == MAIN_TID;
}

/* The calling thread's slot; with `create`, made if missing. Under the
 * lock. */
static uint32_t *slot_of(pthread_t thread, int create) {
    unsigned start = ((uintptr_t)thread >> 4) % PENDING_SLOTS;
    int free_at = -1;
    for (unsigned i = 0; i < PENDING_SLOTS; i++) {
        unsigned at = (start + i) % PENDING_SLOTS;
        if (thread_pending[at].thread == thread) return &thread_pending[at].bits;
        if (free_at < 0 && thread_pending[at].bits == 0) free_at = (int)at;
    }
    if (!create || free_at < 0) return NULL;
    thread_pending[free_at].thread = thread;
    return &thread_pending[free_at].bits;
}

/* Sets `sig` in `*bits`; under the lock. */
static void set_pending(uint32_t *bits, int sig) {
    if (!(*bits & BIT(sig))) {
        *bits |= BIT(sig);
        pending_count++;
    }
}

/* Takes the lowest signal of `want` pending for the calling thread (or
 * the program); 0 when none. Under the lock. */
static int take_locked(uint32_t want) {
    if (chain()) {
        uint32_t own = chain_live(&own_pending, own_gen) & want;
        uint32_t shared =
            takes_process_signals() ? chain_live(&process_pending, process_gen) & want : 0;
        uint32_t any = own | shared;
        if (!any) return 0;
        int sig = __builtin_ctz(any);
        if (own & BIT(sig)) own_pending &= ~BIT(sig);
        else process_pending &= ~BIT(sig);
        return sig;
    }
    uint32_t *mine = slot_of(pthread_self(), 0);
    uint32_t own = mine ? *mine & want : 0;
    uint32_t shared = takes_process_signals() ? process_pending & want : 0;
    uint32_t any = own | shared;
    if (!any) return 0;
    int sig = __builtin_ctz(any);
    if (own & BIT(sig)) *mine &= ~BIT(sig);
    else process_pending &= ~BIT(sig);
    pending_count--;
    return sig;
}

static int take(uint32_t want) {
    lock();
    int sig = take_locked(want);
    unlock();
    return sig;
}

/* The timer fired: SIGALRM for the program, and the next period. */
static void check_timer(void) {
    int64_t at = __atomic_load_n(&timer_at, __ATOMIC_ACQUIRE);
    if (!at || !takes_process_signals()) return;
    int64_t now = monotonic_ns();
    if (now < at) return;
    lock();
    if (timer_at == at) {
        timer_at = timer_interval ? now + timer_interval : 0;
        if (chain()) chain_set_pending(&process_pending, process_gen, SIGALRM);
        else set_pending(&process_pending, SIGALRM);
    }
    unlock();
}

static int default_ignored(int sig) {
    switch (sig) {
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
    case SIGCONT:
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU: return 1;
    default: return 0;
    }
}


/* The default action of most signals: one line, then the exit code a
 * shell shows for a process a signal ended (stdout is not flushed). */
static _Noreturn void end_program(int sig) {
    unsigned tid = (unsigned)weft_thread_current_id();
    if (tid == MAIN_TID)
        fprintf(stderr, "weft: the main thread ended the program: signal %d, whose action is the default\n", sig);
    else
        fprintf(stderr, "weft: thread %u ended the program: signal %d, whose action is the default\n", tid, sig);
    _Exit(128 + sig);
}

static uint32_t mask_of(const sigset_t *set);

/* Runs `sig`'s action in the calling thread; 1 when a handler ran. */
static int act(int sig, int code) {
    struct sigaction a = actions[sig];
    /* Chain mode: the home lock (a sync point) only for a change. */
    if (!chain() || ((a.sa_flags & SA_RESETHAND) && a.sa_handler != SIG_DFL)) {
        lock_actions();
        a = actions[sig];
        if ((a.sa_flags & SA_RESETHAND) && a.sa_handler != SIG_DFL) {
            actions[sig].sa_handler = SIG_DFL;
            actions[sig].sa_flags &= ~SA_SIGINFO;
        }
        unlock_actions();
    }
    if (a.sa_handler == SIG_IGN) return 0;
    if (a.sa_handler == SIG_DFL) {
        if (default_ignored(sig)) return 0;
        end_program(sig);
    }
    uint32_t saved = blocked;
    blocked |= (mask_of(&a.sa_mask) | ((a.sa_flags & SA_NODEFER) ? 0 : BIT(sig))) & ~UNBLOCKABLE;
    if (a.sa_flags & SA_SIGINFO) {
        siginfo_t info = {0};
        info.si_signo = sig;
        info.si_code = code;
        info.si_pid = getpid();
        a.sa_sigaction(sig, &info, NULL);
    } else {
        a.sa_handler(sig);
    }
    blocked = saved;
    handled++;
    if (!(a.sa_flags & SA_RESTART)) interrupting++;
    return 1;
}

int weft_signal_deliver(void) {
    if (delivering) return 0;
    if (chain()) {
        if (!own_pending &&
            !(takes_process_signals() && (process_pending || timer_at)))
            return 0;
    } else if (!__atomic_load_n(&pending_count, __ATOMIC_ACQUIRE) &&
               !__atomic_load_n(&timer_at, __ATOMIC_RELAXED)) {
        return 0;
    }
    delivering = 1;
    int ran = 0;
    for (;;) {
        check_timer();
        int sig = take(~blocked & ~1u);
        if (!sig) break;
        delivering = 0; /* handlers may use delivery points themselves */
        ran += act(sig, SI_USER);
        delivering = 1;
    }
    delivering = 0;
    return ran;
}

/* ---- actions ------------------------------------------------------------ */

int sigaction(int sig, const struct sigaction *restrict act_in, struct sigaction *restrict old) {
    if (sig < 1 || sig > MAX_SIGNAL || (act_in && (sig == SIGKILL || sig == SIGSTOP))) {
        errno = EINVAL;
        return -1;
    }
    mark_used();
    if (!act_in && chain()) {
        /* A look only: this copy's actions, with no sync point. */
        if (old) *old = actions[sig];
        return 0;
    }
    lock_actions();
    if (old) *old = actions[sig];
    if (act_in) {
        actions[sig] = *act_in;
        /* Setting SIG_IGN discards what is pending (POSIX): in chain mode
         * wherever it is pending, through the generation. */
        if (act_in->sa_handler == SIG_IGN && chain()) {
            ignore_gen[sig]++;
        } else if (act_in->sa_handler == SIG_IGN) {
            if (process_pending & BIT(sig)) {
                process_pending &= ~BIT(sig);
                pending_count--;
            }
            for (int i = 0; i < PENDING_SLOTS; i++)
                if (thread_pending[i].bits & BIT(sig)) {
                    thread_pending[i].bits &= ~BIT(sig);
                    pending_count--;
                }
        }
    }
    unlock_actions();
    return 0;
}

void (*signal(int sig, void (*handler)(int)))(int) {
    struct sigaction a = {0}, old;
    a.sa_handler = handler;
    a.sa_flags = SA_RESTART; /* BSD semantics, as glibc's signal() */
    if (sigaction(sig, &a, &old)) return SIG_ERR;
    return old.sa_handler;
}

/* ---- sets and masks ----------------------------------------------------- */

#define SET_BITS (8 * sizeof(unsigned long))

static int valid_member(int sig) { return sig >= 1 && sig < _NSIG; }

int sigemptyset(sigset_t *set) {
    for (unsigned i = 0; i < sizeof set->__bits / sizeof set->__bits[0]; i++) set->__bits[i] = 0;
    return 0;
}

int sigfillset(sigset_t *set) {
    sigemptyset(set);
    for (int s = 1; s < _NSIG; s++) set->__bits[(s - 1) / SET_BITS] |= 1ul << ((s - 1) % SET_BITS);
    return 0;
}

int sigaddset(sigset_t *set, int sig) {
    if (!valid_member(sig)) {
        errno = EINVAL;
        return -1;
    }
    set->__bits[(sig - 1) / SET_BITS] |= 1ul << ((sig - 1) % SET_BITS);
    return 0;
}

int sigdelset(sigset_t *set, int sig) {
    if (!valid_member(sig)) {
        errno = EINVAL;
        return -1;
    }
    set->__bits[(sig - 1) / SET_BITS] &= ~(1ul << ((sig - 1) % SET_BITS));
    return 0;
}

int sigismember(const sigset_t *set, int sig) {
    if (!valid_member(sig)) {
        errno = EINVAL;
        return -1;
    }
    return !!(set->__bits[(sig - 1) / SET_BITS] & (1ul << ((sig - 1) % SET_BITS)));
}

/* Signal s (1..31) is bit s-1 of a set's first word, bit s of a mask. */
static uint32_t mask_of(const sigset_t *set) {
    uint32_t mask = 0;
    for (int s = 1; s <= MAX_SIGNAL; s++)
        if (set->__bits[(s - 1) / SET_BITS] & (1ul << ((s - 1) % SET_BITS))) mask |= BIT(s);
    return mask;
}

static void set_of(uint32_t mask, sigset_t *set) {
    sigemptyset(set);
    for (int s = 1; s <= MAX_SIGNAL; s++)
        if (mask & BIT(s)) set->__bits[(s - 1) / SET_BITS] |= 1ul << ((s - 1) % SET_BITS);
}

int pthread_sigmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
    uint32_t before = blocked;
    if (set) {
        uint32_t change = mask_of(set);
        switch (how) {
        case SIG_BLOCK: blocked |= change; break;
        case SIG_UNBLOCK: blocked &= ~change; break;
        case SIG_SETMASK: blocked = change; break;
        default: return EINVAL;
        }
        blocked &= ~UNBLOCKABLE;
        mark_used();
    }
    if (old) set_of(before, old);
    /* Unblocked pending signals are delivered before the call returns. */
    if (set) weft_signal_deliver();
    return 0;
}

int sigprocmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
    int rc = pthread_sigmask(how, set, old);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

int sigpending(sigset_t *set) {
    if (chain()) {
        uint32_t pending = chain_live(&own_pending, own_gen) |
                           (takes_process_signals() ? chain_live(&process_pending, process_gen) : 0);
        set_of(pending, set);
        return 0;
    }
    lock();
    uint32_t *mine = slot_of(pthread_self(), 0);
    uint32_t pending = (mine ? *mine : 0) | (takes_process_signals() ? process_pending : 0);
    unlock();
    set_of(pending, set);
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

pid_t getpid(void) { return 1; }

static int valid_signal(int sig) { return sig >= 0 && sig <= MAX_SIGNAL; }

int pthread_kill(pthread_t thread, int sig) {
    if (!valid_signal(sig)) return EINVAL;
    if (sig == 0) return 0;
    pthread_t self = pthread_self();
    if (thread != self && weft_chain_mode()) weft_chain_unsupported(WEFT_SYNC_THREAD_SIGNAL);
    mark_used();
    if (chain()) {
        /* Only this thread sends itself signals in chain mode: its TLS. */
        chain_set_pending(&own_pending, own_gen, sig);
        weft_signal_deliver();
        return 0;
    }
    lock();
    uint32_t *slot = slot_of(thread, 1);
    if (slot) set_pending(slot, sig);
    unlock();
    if (!slot) return EAGAIN;
    wake_waiters();
    if (thread == self) weft_signal_deliver();
    return 0;
}

int raise(int sig) {
    int rc = pthread_kill(pthread_self(), sig);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

int kill(pid_t pid, int sig) {
    if (pid != getpid() && pid != 0 && pid != -1) {
        errno = ESRCH;
        return -1;
    }
    if (!valid_signal(sig)) {
        errno = EINVAL;
        return -1;
    }
    if (sig == 0) return 0;
    if (!takes_process_signals()) weft_chain_unsupported(WEFT_SYNC_THREAD_SIGNAL);
    mark_used();
    lock();
    if (chain()) chain_set_pending(&process_pending, process_gen, sig); /* the main thread's */
    else set_pending(&process_pending, sig);
    unlock();
    wake_waiters();
    weft_signal_deliver();
    return 0;
}

/* ---- waiting ------------------------------------------------------------ */

void __testcancel(void);

/* Waits until a signal may have become pending, the timer may have
 * fired, or `until_ns` (monotonic, 0: none) passes. */
static void wait_for_signal(int seq, int64_t until_ns) {
    int64_t now = monotonic_ns();
    int64_t wait = SLICE_NS;
    if (until_ns && until_ns - now < wait) wait = until_ns - now;
    int64_t at = __atomic_load_n(&timer_at, __ATOMIC_ACQUIRE);
    if (at && takes_process_signals() && at - now < wait) wait = at - now;
    if (wait <= 0) return;
    __builtin_wasm_memory_atomic_wait32((int *)&signal_seq, seq, wait);
}

int sigtimedwait(const sigset_t *restrict set, siginfo_t *restrict info,
                 const struct timespec *restrict timeout) {
    if (timeout && (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L)) {
        errno = EINVAL;
        return -1;
    }
    mark_used();
    uint32_t want = mask_of(set) & ~UNBLOCKABLE;
    int64_t until = timeout ? monotonic_ns() + timeout->tv_sec * 1000000000LL + timeout->tv_nsec : 0;
    if (timeout && until == 0) until = 1;
    for (;;) {
        __testcancel(); /* a cancellation point */
        int seq = __atomic_load_n(&signal_seq, __ATOMIC_SEQ_CST);
        check_timer();
        int sig = take(want);
        if (sig) {
            if (info) {
                *info = (siginfo_t){0};
                info->si_signo = sig;
                info->si_code = SI_USER;
                info->si_pid = getpid();
            }
            return sig;
        }
        /* Other signals, not waited for and not blocked, run their
         * handlers and interrupt the wait. */
        if (weft_signal_deliver()) {
            errno = EINTR;
            return -1;
        }
        if (timeout && monotonic_ns() >= until) {
            errno = EAGAIN;
            return -1;
        }
        wait_for_signal(seq, until);
    }
}

int sigwaitinfo(const sigset_t *restrict set, siginfo_t *restrict info) {
    return sigtimedwait(set, info, NULL);
}

int sigwait(const sigset_t *restrict set, int *restrict sig) {
    for (;;) {
        int got = sigtimedwait(set, NULL, NULL);
        if (got > 0) {
            *sig = got;
            return 0;
        }
        if (errno != EINTR) return errno; /* sigwait is not interrupted */
    }
}

int sigsuspend(const sigset_t *mask) {
    mark_used();
    uint32_t saved = blocked;
    blocked = mask_of(mask) & ~UNBLOCKABLE;
    for (;;) {
        __testcancel();
        int seq = __atomic_load_n(&signal_seq, __ATOMIC_SEQ_CST);
        if (weft_signal_deliver()) break;
        wait_for_signal(seq, 0);
    }
    blocked = saved;
    weft_signal_deliver(); /* what the old mask let through meanwhile */
    errno = EINTR;
    return -1;
}

int pause(void) {
    sigset_t now;
    set_of(blocked, &now);
    return sigsuspend(&now);
}

/* ---- the real-time timer ------------------------------------------------ */

static int64_t ns_of_timeval(const struct timeval *t) {
    return (int64_t)t->tv_sec * 1000000000LL + (int64_t)t->tv_usec * 1000;
}

static struct timeval timeval_of(int64_t ns) {
    struct timeval t = {(time_t)(ns / 1000000000LL), (suseconds_t)((ns % 1000000000LL) / 1000)};
    return t;
}

int getitimer(int which, struct itimerval *value) {
    if (which != ITIMER_REAL) {
        errno = EINVAL;
        return -1;
    }
    lock();
    int64_t at = timer_at, interval = timer_interval;
    unlock();
    int64_t left = at ? at - monotonic_ns() : 0;
    if (at && left < 1000) left = 1000; /* armed: never reported as 0 */
    value->it_value = timeval_of(left);
    value->it_interval = timeval_of(interval);
    return 0;
}

int setitimer(int which, const struct itimerval *restrict value, struct itimerval *restrict old) {
    if (which != ITIMER_REAL) {
        errno = EINVAL; /* CPU-time timers are not provided */
        return -1;
    }
    if (value->it_value.tv_usec < 0 || value->it_value.tv_usec >= 1000000 ||
        value->it_interval.tv_usec < 0 || value->it_interval.tv_usec >= 1000000) {
        errno = EINVAL;
        return -1;
    }
    if (!takes_process_signals()) weft_chain_unsupported(WEFT_SYNC_THREAD_SIGNAL);
    if (old) getitimer(which, old);
    mark_used();
    int64_t first = ns_of_timeval(&value->it_value);
    lock();
    timer_interval = first ? ns_of_timeval(&value->it_interval) : 0;
    __atomic_store_n(&timer_at, first ? monotonic_ns() + first : 0, __ATOMIC_RELEASE);
    unlock();
    wake_waiters(); /* sleepers in sigwait or pause wait for the new time */
    return 0;
}

unsigned alarm(unsigned seconds) {
    struct itimerval value = {{0, 0}, {(time_t)seconds, 0}}, old;
    setitimer(ITIMER_REAL, &value, &old);
    /* The seconds left of the previous alarm, rounded up. */
    return (unsigned)old.it_value.tv_sec + (old.it_value.tv_usec > 0);
}

/* ---- delivery points at host calls -------------------------------------- */

__wasi_errno_t __wrap___wasi_clock_time_get(__wasi_clockid_t id, __wasi_timestamp_t precision,
                                            __wasi_timestamp_t *out) {
    __wasi_errno_t rc = __real___wasi_clock_time_get(id, precision, out);
    if (weft_signals_used()) weft_signal_deliver();
    return rc;
}

__wasi_errno_t __real___wasi_sched_yield(void);

__wasi_errno_t __wrap___wasi_sched_yield(void) {
    if (weft_signals_used()) weft_signal_deliver();
    weft_pause_point(1);
    return __real___wasi_sched_yield();
}

/* A new thread may get an ended thread's pthread_t: what was pending for
 * that one is not the new one's. Called before the new thread runs. */
void weft_signals_forget(pthread_t thread) {
    /* In chain mode a new thread's pending set is its own, fresh TLS. */
    if (!weft_signals_used() || chain()) return;
    lock();
    uint32_t *slot = slot_of(thread, 0);
    if (slot && *slot) {
        pending_count -= __builtin_popcount(*slot);
        *slot = 0;
    }
    unlock();
}
