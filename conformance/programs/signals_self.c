/* Signals within one thread: sigaction and signal(), raise running the
 * handler before it returns, blocked signals staying pending until
 * unblocked, SIG_IGN, SA_RESETHAND, SA_SIGINFO, default actions that
 * ignore, sets, and the real-time timer with pause and alarm. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile int hits[32];
static volatile int info_signo;

static void count(int sig) { hits[sig]++; }

static void with_info(int sig, siginfo_t *info, void *context) {
    (void)context;
    hits[sig]++;
    info_signo = info->si_signo;
}

static const char *err(int rc) {
    return rc == 0 ? "0" : errno == EINVAL ? "EINVAL" : errno == EINTR ? "EINTR" : "other";
}

int main(void) {
    struct sigaction a, old;
    memset(&a, 0, sizeof a);
    a.sa_handler = count;
    sigemptyset(&a.sa_mask);
    printf("sigaction SIGUSR1: %d\n", sigaction(SIGUSR1, &a, NULL));
    raise(SIGUSR1);
    printf("handler ran before raise returned: %d\n", hits[SIGUSR1]);

    printf("signal returns the old handler: %d\n", signal(SIGUSR2, count) == SIG_DFL);
    printf("and then the new one: %d\n", signal(SIGUSR2, count) == count);

    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("blocked: pending %d, handled %d\n", sigismember(&pending, SIGUSR1), hits[SIGUSR1]);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    printf("unblocked: handled %d (two sends while blocked count once)\n", hits[SIGUSR1]);
    sigpending(&pending);
    printf("nothing pending: %d\n", !sigismember(&pending, SIGUSR1));

    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored: handled %d\n", hits[SIGUSR2]);

    a.sa_flags = SA_RESETHAND;
    sigaction(SIGHUP, &a, NULL);
    raise(SIGHUP);
    sigaction(SIGHUP, NULL, &old);
    printf("SA_RESETHAND: handled %d, now default %d\n", hits[SIGHUP], old.sa_handler == SIG_DFL);

    memset(&a, 0, sizeof a);
    a.sa_sigaction = with_info;
    a.sa_flags = SA_SIGINFO;
    sigaction(SIGTERM, &a, NULL);
    raise(SIGTERM);
    printf("SA_SIGINFO: handled %d, si_signo %d\n", hits[SIGTERM], info_signo == SIGTERM);

    raise(SIGCHLD);
    raise(SIGWINCH);
    printf("SIGCHLD and SIGWINCH are ignored by default: still here\n");

    errno = 0;
    printf("sigaction SIGKILL: %s\n", err(sigaction(SIGKILL, &a, NULL)));
    errno = 0;
    printf("sigaddset 0: %s\n", err(sigaddset(&block, 0)));
    printf("sigismember SIGUSR1 of a full set: %d\n", (sigfillset(&block), sigismember(&block, SIGUSR1)));
    printf("kill(getpid(), 0): %d\n", kill(getpid(), 0));

    /* Blocking SIGKILL is silently not done. */
    sigemptyset(&block);
    sigaddset(&block, SIGKILL);
    sigprocmask(SIG_SETMASK, &block, NULL);
    sigprocmask(SIG_SETMASK, NULL, &block);
    printf("SIGKILL cannot be blocked: %d\n", !sigismember(&block, SIGKILL));

    /* The timer: SIGALRM after 30 ms ends a pause. */
    signal(SIGALRM, count);
    struct itimerval t = {{0, 0}, {0, 30000}}, left;
    setitimer(ITIMER_REAL, &t, NULL);
    getitimer(ITIMER_REAL, &left);
    printf("timer armed: %d\n", left.it_value.tv_sec == 0 && left.it_value.tv_usec > 0);
    errno = 0;
    int rc = pause();
    printf("pause: %d %s, SIGALRM handled %d\n", rc, err(rc), hits[SIGALRM]);
    printf("alarm(5) then alarm(0) returns %u\n", (alarm(5), alarm(0)));

    /* kill to the program reaches this thread. */
    kill(getpid(), SIGUSR1);
    printf("kill(getpid(), SIGUSR1): handled %d\n", hits[SIGUSR1]);
    return 0;
}
