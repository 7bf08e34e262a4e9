/* Signals between threads: pthread_kill runs the handler in the target
 * thread and interrupts its sem_wait (without SA_RESTART) and nanosleep
 * (even with it) with EINTR; a new
 * thread inherits its creator's mask; sigwait takes a signal sent to the
 * program; sigsuspend waits for a signal another thread sends. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int hits;
static pthread_t handled_in;
static sem_t ready, never;

static void handler(int sig) {
    (void)sig;
    hits++;
    handled_in = pthread_self();
}

static void *in_sem_wait(void *arg) {
    (void)arg;
    sem_post(&ready);
    int rc = sem_wait(&never);
    printf("sem_wait: %d %s, handled here %d\n", rc, rc && errno == EINTR ? "EINTR" : "other",
           pthread_equal(handled_in, pthread_self()));
    return NULL;
}

static void *in_nanosleep(void *arg) {
    (void)arg;
    struct timespec want = {10, 0}, left = {0, 0};
    sem_post(&ready);
    int rc = nanosleep(&want, &left);
    printf("nanosleep: %d %s, more than 9 s left %d\n", rc, rc && errno == EINTR ? "EINTR" : "other",
           left.tv_sec >= 9);
    return NULL;
}

static void *waits_for_usr2(void *arg) {
    (void)arg;
    sigset_t mine, want;
    pthread_sigmask(SIG_SETMASK, NULL, &mine);
    printf("inherited mask has SIGUSR2: %d\n", sigismember(&mine, SIGUSR2));
    sigemptyset(&want);
    sigaddset(&want, SIGUSR2);
    sem_post(&ready);
    int sig = 0;
    int rc = sigwait(&want, &sig);
    printf("sigwait: %d, got SIGUSR2 %d\n", rc, sig == SIGUSR2);
    return NULL;
}

static pthread_t main_thread;

static void *wakes_main(void *arg) {
    (void)arg;
    usleep(30000);
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

static void run(void *(*body)(void *), int sig) {
    pthread_t t;
    pthread_create(&t, NULL, body, NULL);
    sem_wait(&ready);
    usleep(50000); /* let it block */
    if (sig) pthread_kill(t, sig);
    pthread_join(t, NULL);
    fflush(stdout);
}

int main(void) {
    main_thread = pthread_self();
    sem_init(&ready, 0, 0);
    sem_init(&never, 0, 0);
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_handler = handler;
    sigemptyset(&a.sa_mask);
    sigaction(SIGUSR1, &a, NULL);
    run(in_sem_wait, SIGUSR1);
    a.sa_flags = SA_RESTART; /* a sleep is interrupted all the same */
    sigaction(SIGUSR1, &a, NULL);
    run(in_nanosleep, SIGUSR1);
    printf("handler runs: %d\n", hits);

    /* Main blocks SIGUSR2, so the program's SIGUSR2 goes to the thread
     * waiting for it. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    pthread_t t;
    pthread_create(&t, NULL, waits_for_usr2, NULL);
    sem_wait(&ready);
    kill(getpid(), SIGUSR2);
    pthread_join(t, NULL);
    fflush(stdout);

    /* sigsuspend: SIGUSR1 blocked, then waited for with it unblocked. */
    sigset_t usr1, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    int before = hits;
    pthread_create(&t, NULL, wakes_main, NULL);
    sigemptyset(&none);
    errno = 0;
    int rc = sigsuspend(&none);
    printf("sigsuspend: %d %s, handled in main %d\n", rc, errno == EINTR ? "EINTR" : "other",
           hits == before + 1 && pthread_equal(handled_in, main_thread));
    pthread_join(t, NULL);
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    printf("mask restored: %d\n", sigismember(&now, SIGUSR1));
    return 0;
}
