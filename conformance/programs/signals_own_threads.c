/* Signals each thread sends itself while other threads do the same: the
 * same handler installed for one signal by every thread at once, each
 * thread's own signal with SA_RESETHAND, a blocked signal left pending
 * across a barrier and a mutex (sync points), sigwait on a signal the
 * thread raised, SIG_IGN discarding what the thread had pending, and the
 * handlers the threads installed seen by main after the joins. Every step
 * is free of data races (sigaction and raise are system calls natively),
 * so chain mode must agree with native. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define THREADS 4

static const int own_signal[THREADS] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};

static _Thread_local volatile int hits[32];

static void count(int sig) { hits[sig]++; }

struct result {
    int common_handled, reset_handled, reset_to_default;
    int pending_after_barrier, handled_while_blocked, handled_after_unblock;
    int sigwait_rc, sigwait_sig, handler_not_run_by_sigwait;
    int pending_before_ignore, pending_after_ignore, handled_after_ignore;
    int shared_count;
};

static struct result results[THREADS];
static pthread_barrier_t barrier;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int shared_count;

static void install(int sig, int flags) {
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_handler = count;
    sigemptyset(&a.sa_mask);
    a.sa_flags = flags;
    sigaction(sig, &a, NULL);
}

static void mask(int how, int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(how, &set, NULL);
}

static int is_pending(int sig) {
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, sig);
}

static void *worker(void *arg) {
    int i = (int)(long)arg, own = own_signal[i];
    struct result *r = &results[i];

    /* The same handler for the same signals, installed by every thread. */
    install(SIGUSR1, 0);
    install(SIGUSR2, 0);
    raise(SIGUSR1);
    r->common_handled = hits[SIGUSR1];

    /* This thread's own signal, reset to the default by its delivery. */
    install(own, SA_RESETHAND);
    raise(own);
    r->reset_handled = hits[own];
    struct sigaction old;
    sigaction(own, NULL, &old);
    r->reset_to_default = old.sa_handler == SIG_DFL;

    /* A blocked signal stays pending for this thread across sync points. */
    mask(SIG_BLOCK, SIGUSR2);
    raise(SIGUSR2);
    pthread_barrier_wait(&barrier);
    pthread_mutex_lock(&lock);
    shared_count++;
    pthread_mutex_unlock(&lock);
    r->pending_after_barrier = is_pending(SIGUSR2);
    r->handled_while_blocked = hits[SIGUSR2];
    mask(SIG_UNBLOCK, SIGUSR2);
    r->handled_after_unblock = hits[SIGUSR2];

    /* sigwait takes a signal the thread raised while blocking it. */
    mask(SIG_BLOCK, SIGUSR1);
    raise(SIGUSR1);
    pthread_barrier_wait(&barrier);
    sigset_t want;
    sigemptyset(&want);
    sigaddset(&want, SIGUSR1);
    int sig = 0;
    r->sigwait_rc = sigwait(&want, &sig);
    r->sigwait_sig = sig;
    r->handler_not_run_by_sigwait = hits[SIGUSR1] == 1;
    mask(SIG_UNBLOCK, SIGUSR1);

    /* Setting SIG_IGN discards what is pending. */
    mask(SIG_BLOCK, own);
    raise(own);
    r->pending_before_ignore = is_pending(own);
    signal(own, SIG_IGN);
    r->pending_after_ignore = is_pending(own);
    install(own, 0);
    mask(SIG_UNBLOCK, own);
    r->handled_after_ignore = hits[own];

    pthread_barrier_wait(&barrier);
    pthread_mutex_lock(&lock);
    r->shared_count = shared_count;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(long)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        struct result *r = &results[i];
        printf("thread %d (signal %d): common handler %d; SA_RESETHAND handled %d, reset %d\n", i,
               own_signal[i], r->common_handled, r->reset_handled, r->reset_to_default);
        printf("thread %d: blocked across barrier and mutex: pending %d, handled %d, "
               "after unblock %d\n",
               i, r->pending_after_barrier, r->handled_while_blocked, r->handled_after_unblock);
        printf("thread %d: sigwait %d got SIGUSR1 %d, handler not run %d\n", i, r->sigwait_rc,
               r->sigwait_sig == SIGUSR1, r->handler_not_run_by_sigwait);
        printf("thread %d: SIG_IGN: pending before %d, after %d, handled %d; counted %d\n", i,
               r->pending_before_ignore, r->pending_after_ignore, r->handled_after_ignore,
               r->shared_count);
    }

    /* The handlers the threads installed are the program's. */
    struct sigaction old;
    sigaction(SIGUSR1, NULL, &old);
    printf("main: SIGUSR1 handler is the threads' %d\n", old.sa_handler == count);
    raise(SIGUSR1);
    raise(SIGUSR2);
    for (int i = 0; i < THREADS; i++) raise(own_signal[i]);
    printf("main: handled SIGUSR1 %d, SIGUSR2 %d, own signals", hits[SIGUSR1], hits[SIGUSR2]);
    for (int i = 0; i < THREADS; i++) printf(" %d", hits[own_signal[i]]);
    printf("\n");
    return 0;
}
