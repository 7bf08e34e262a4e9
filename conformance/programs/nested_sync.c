/* Threads started by threads synchronise: leaders start workers that
 * share a mutex, a barrier per leader and a condition variable with
 * their leader; a worker starts a helper of its own; a leader detaches a
 * thread that posts a semaphore, polls one with pthread_tryjoin_np and
 * waits for one with pthread_timedjoin_np. Plain writes before a create
 * are seen by the new thread, and a thread's writes by its joiner. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LEADERS 2
#define WORKERS 3
#define ROUNDS 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long total;           /* under lock */
static int helper_hits;      /* under lock */

struct leader {
    int id;
    int seed;                /* written before the workers start */
    pthread_barrier_t barrier;
    pthread_mutex_t m;
    pthread_cond_t c;
    int arrived;             /* under m */
    long sums[WORKERS];      /* each worker its own; read after join */
    sem_t posted;
    int note;                /* written by the detached thread before it posts */
    char line[160];          /* what main prints, in leader order */
};

struct work {
    struct leader *leader;
    int index;
};

static void *helper(void *arg) {
    int *out = arg;
    pthread_mutex_lock(&lock);
    helper_hits++;
    pthread_mutex_unlock(&lock);
    *out = 7;
    return NULL;
}

static void *worker(void *arg) {
    struct work *w = arg;
    struct leader *l = w->leader;
    long mine = l->seed * 1000 + w->index;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        total += 1;
        pthread_mutex_unlock(&lock);
    }
    pthread_barrier_wait(&l->barrier);
    if (w->index == 0) {
        pthread_t h;
        int got = 0;
        pthread_create(&h, NULL, helper, &got);
        pthread_join(h, NULL);
        mine += got;
    }
    l->sums[w->index] = mine;
    pthread_mutex_lock(&l->m);
    l->arrived++;
    pthread_cond_signal(&l->c);
    pthread_mutex_unlock(&l->m);
    return (void *)(long)(w->index + 1);
}

static void *poster(void *arg) {
    struct leader *l = arg;
    l->note = 40 + l->id;
    sem_post(&l->posted);
    return NULL;
}

static void *quick(void *arg) { return arg; }

static void *leader_main(void *arg) {
    struct leader *l = arg;
    l->seed = l->id + 1;
    pthread_barrier_init(&l->barrier, NULL, WORKERS);
    pthread_mutex_init(&l->m, NULL);
    pthread_cond_init(&l->c, NULL);
    sem_init(&l->posted, 0, 0);
    pthread_t t[WORKERS];
    struct work w[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct work){l, i};
        pthread_create(&t[i], NULL, worker, &w[i]);
    }
    pthread_mutex_lock(&l->m);
    while (l->arrived < WORKERS) pthread_cond_wait(&l->c, &l->m);
    pthread_mutex_unlock(&l->m);
    long codes = 0;
    for (int i = 0; i < WORKERS; i++) {
        void *code;
        pthread_join(t[i], &code);
        codes += (long)code;
    }
    long sum = 0;
    for (int i = 0; i < WORKERS; i++) sum += l->sums[i];

    pthread_t d;
    pthread_create(&d, NULL, poster, l);
    pthread_detach(d);
    sem_wait(&l->posted);
    int note = l->note;

    pthread_t q;
    void *back = NULL;
    pthread_create(&q, NULL, quick, (void *)(long)(5 + l->id));
    while (pthread_tryjoin_np(q, &back) == EBUSY) {
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
    pthread_t r;
    void *back2 = NULL;
    pthread_create(&r, NULL, quick, (void *)(long)(9 + l->id));
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    int timed = pthread_timedjoin_np(r, &back2, &until);

    snprintf(l->line, sizeof l->line, "leader %d: worker sum %ld, exit codes %ld, note %d, tryjoin %ld, timedjoin %d/%ld",
             l->id, sum, codes, note, (long)back, timed, (long)back2);
    pthread_barrier_destroy(&l->barrier);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct leader leaders[LEADERS] = {0};
    pthread_t t[LEADERS];
    for (int i = 0; i < LEADERS; i++) {
        leaders[i].id = i;
        pthread_create(&t[i], NULL, leader_main, &leaders[i]);
    }
    for (int i = 0; i < LEADERS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < LEADERS; i++) printf("%s\n", leaders[i].line);
    printf("total %ld (expected %d), helpers %d\n", total, LEADERS * WORKERS * ROUNDS, helper_hits);
    return 0;
}
