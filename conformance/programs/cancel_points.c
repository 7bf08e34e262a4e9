/* Cancellation requested by a thread other than main: main starts
 * threads blocked in a condition wait, a timed condition wait, a timed
 * semaphore wait, or looping on pthread_testcancel, then a thread that
 * cancels them all; main joins them. Cleanup handlers run newest first,
 * read locals of the canceled thread's frames, and change shared data
 * under a mutex; pthread_exit runs them too. What a canceled thread wrote
 * before the request is seen after the join. Handlers record instead of
 * printing, so the output does not depend on which thread ends first. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TARGETS 5

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static sem_t never, started;
static int cleaned;

/* What each thread's cleanup handlers saw, in the order they ran. */
static char seen[TARGETS + 1][64];
static long progress[TARGETS];

struct local {
    int slot;
    int value;
};

static void note(int slot, const char *what) {
    if (seen[slot][0]) strcat(seen[slot], ", ");
    strcat(seen[slot], what);
}

/* Reads a local of the canceled thread's frame. */
static void read_local(void *arg) {
    struct local *l = arg;
    char text[24];
    snprintf(text, sizeof text, "local %d", l->value);
    note(l->slot, text);
}

static void count(void *arg) {
    pthread_mutex_lock(&m);
    cleaned++;
    pthread_mutex_unlock(&m);
    note((int)(long)arg, "counted");
}

static void unlock(void *mutex) { pthread_mutex_unlock(mutex); }

static void *cond_waiter(void *arg) {
    int slot = (int)(long)arg, timed = slot == 1;
    struct local local = {slot, 40 + slot};
    pthread_cleanup_push(read_local, &local);
    pthread_mutex_lock(&m);
    pthread_cleanup_push(unlock, &m);
    sem_post(&started);
    struct timespec far;
    clock_gettime(CLOCK_REALTIME, &far);
    far.tv_sec += 100;
    for (;;) {
        if (timed) pthread_cond_timedwait(&c, &m, &far);
        else pthread_cond_wait(&c, &m);
    }
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *sem_waiter(void *arg) {
    pthread_cleanup_push(count, arg);
    struct timespec far;
    clock_gettime(CLOCK_REALTIME, &far);
    far.tv_sec += 100;
    sem_post(&started);
    while (sem_timedwait(&never, &far) == -1 && errno == EINTR) {}
    pthread_cleanup_pop(0);
    return NULL;
}

static void *poller(void *arg) {
    int slot = (int)(long)arg;
    pthread_cleanup_push(count, arg);
    for (long i = 1; i <= 1000; i++) progress[slot] = i;
    sem_post(&started);
    for (;;) pthread_testcancel();
    pthread_cleanup_pop(0);
    return NULL;
}

static void *exits(void *arg) {
    struct local local = {TARGETS, 7};
    pthread_cleanup_push(read_local, &local);
    pthread_cleanup_push(count, arg);
    pthread_exit((void *)3);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static pthread_t targets[TARGETS];

static void *canceller(void *arg) {
    (void)arg;
    for (int i = 0; i < TARGETS; i++) pthread_cancel(targets[i]);
    return NULL;
}

int main(void) {
    static const char *what[TARGETS] = {"pthread_cond_wait", "pthread_cond_timedwait",
                                        "sem_timedwait", "testcancel loop",
                                        "testcancel loop"};
    void *(*start[TARGETS])(void *) = {cond_waiter, cond_waiter, sem_waiter, poller, poller};
    sem_init(&never, 0, 0);
    sem_init(&started, 0, 0);
    for (long i = 0; i < TARGETS; i++) pthread_create(&targets[i], NULL, start[i], (void *)i);
    for (int i = 0; i < TARGETS; i++) sem_wait(&started);

    pthread_t t;
    pthread_create(&t, NULL, canceller, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < TARGETS; i++) {
        void *r;
        pthread_join(targets[i], &r);
        printf("%s: %s; cleanup saw %s", what[i], r == PTHREAD_CANCELED ? "canceled" : "ended",
               seen[i]);
        if (i >= 3) printf("; progress %ld", progress[i]);
        printf("\n");
    }

    void *r;
    pthread_create(&t, NULL, exits, (void *)(long)TARGETS);
    pthread_join(t, &r);
    printf("pthread_exit: ended with %ld; cleanup saw %s\n", (long)r, seen[TARGETS]);
    printf("mutex free: %d\n", pthread_mutex_trylock(&m) == 0);
    printf("cleanup handlers that counted: %d\n", cleaned);
    return 0;
}
