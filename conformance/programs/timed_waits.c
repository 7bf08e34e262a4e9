/* Timeouts and sleeps: pthread_cond_timedwait times out when nobody
 * signals, returns 0 when signalled in time; a sleeping thread does not
 * stall the others; pthread_mutex_timedlock times out on a held mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int flag;

static struct timespec in_ms(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return ts;
}

static void *signaller(void *arg) {
    (void)arg;
    usleep(20000);
    pthread_mutex_lock(&lock);
    flag = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    return NULL;
}

static void *timed_locker(void *arg) {
    (void)arg;
    struct timespec ts = in_ms(30);
    return (void *)(long)pthread_mutex_timedlock(&lock, &ts);
}

int main(void) {
    pthread_mutex_lock(&lock);
    struct timespec ts = in_ms(30);
    int rc = pthread_cond_timedwait(&cond, &lock, &ts);
    pthread_mutex_unlock(&lock);
    printf("timedwait without signal: ETIMEDOUT %d\n", rc == ETIMEDOUT);

    pthread_t t, s;
    pthread_create(&s, NULL, sleeper, NULL);
    pthread_create(&t, NULL, signaller, NULL);
    pthread_mutex_lock(&lock);
    ts = in_ms(5000);
    rc = 0;
    while (!flag && rc == 0) rc = pthread_cond_timedwait(&cond, &lock, &ts);
    pthread_mutex_unlock(&lock);
    printf("timedwait with signal (while another thread sleeps): %d flag %d\n", rc, flag);
    pthread_join(t, NULL);

    void *r;
    pthread_mutex_lock(&lock);
    pthread_create(&t, NULL, timed_locker, NULL);
    pthread_join(t, &r);
    pthread_mutex_unlock(&lock);
    printf("timedlock on a held mutex: ETIMEDOUT %d\n", (int)(long)r == ETIMEDOUT);
    pthread_join(s, NULL);
    printf("sleeper joined\n");
    return 0;
}
