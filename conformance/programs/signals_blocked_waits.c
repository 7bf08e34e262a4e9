/* A signal sent to a thread blocked in a mutex, rwlock, barrier,
 * semaphore, condition-variable or join wait runs its handler while the
 * thread is blocked, and the wait goes on (SA_RESTART is not set: the
 * semaphore wait may end with EINTR and is retried). */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t bar;
static sem_t sem;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;
static pthread_t joined;
static volatile int started;

static void *joinee(void *a) { while (!go) usleep(1000); return a; }

static void *blocker(void *arg) {
    int kind = (int)(long)arg;
    started = 1;
    int rc = 0;
    switch (kind) {
    case 0: rc = pthread_mutex_lock(&m); pthread_mutex_unlock(&m); break;
    case 1: rc = pthread_rwlock_wrlock(&rw); pthread_rwlock_unlock(&rw); break;
    case 2: rc = pthread_barrier_wait(&bar); if (rc == PTHREAD_BARRIER_SERIAL_THREAD) rc = 0; break;
    case 3: while ((rc = sem_wait(&sem)) == -1 && errno == EINTR) {} break;
    case 4: pthread_mutex_lock(&m); while (!go) pthread_cond_wait(&cv, &m); pthread_mutex_unlock(&m); break;
    case 5: rc = pthread_join(joined, NULL); break;
    }
    return (void *)(long)rc;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_barrier_init(&bar, NULL, 2);
    sem_init(&sem, 0, 0);
    const char *names[] = {"mutex", "rwlock", "barrier", "semaphore", "condvar", "join"};
    for (int k = 0; k < 6; k++) {
        handled = 0; go = 0; started = 0;
        if (k == 0) pthread_mutex_lock(&m);
        if (k == 1) pthread_rwlock_wrlock(&rw);
        if (k == 5) pthread_create(&joined, NULL, joinee, NULL);
        pthread_t t;
        pthread_create(&t, NULL, blocker, (void *)(long)k);
        while (!started) usleep(1000);
        usleep(50000);
        pthread_kill(t, SIGUSR1);
        /* The thread stays blocked until main lets it go: its handler
         * runs meanwhile (bounded, so a missing delivery prints 0). */
        for (int i = 0; i < 5000 && !handled; i++) usleep(1000);
        int seen = handled;
        if (k == 0) pthread_mutex_unlock(&m);
        if (k == 1) pthread_rwlock_unlock(&rw);
        if (k == 2) pthread_barrier_wait(&bar);
        if (k == 3) sem_post(&sem);
        if (k == 4) { pthread_mutex_lock(&m); go = 1; pthread_cond_signal(&cv); pthread_mutex_unlock(&m); }
        if (k == 5) go = 1;
        void *r;
        pthread_join(t, &r);
        printf("%s: handler ran while blocked %d, wait result %ld\n", names[k], seen, (long)r);
    }
    return 0;
}
