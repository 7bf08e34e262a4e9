/* XBD 4.12 memory synchronization: for each listed function, a plain
 * write made before the call in one thread is read after the matching
 * call in another; main writes in some shapes and reads in others. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int plain[64];

static void nap(void) {
    struct timespec t = {0, 30 * 1000 * 1000};
    nanosleep(&t, NULL);
}

static struct timespec later(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 30;
    return t;
}

/* ---- mutex: the writer holds the lock while the reader blocks on it ---- */
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void *mutex_reader(void *arg) {
    int kind = (int)(long)arg;
    if (kind == 0) pthread_mutex_lock(&m);
    else if (kind == 1) while (pthread_mutex_trylock(&m) == EBUSY) sched_yield();
    else { struct timespec t = later(); pthread_mutex_timedlock(&m, &t); }
    int v = plain[kind];
    pthread_mutex_unlock(&m);
    return (void *)(long)v;
}
static void mutex_main_writes(void) {
    for (int kind = 0; kind < 3; kind++) {
        pthread_t t;
        pthread_mutex_lock(&m);
        pthread_create(&t, NULL, mutex_reader, (void *)(long)kind);
        nap();
        plain[kind] = 100 + kind;
        pthread_mutex_unlock(&m);
        void *v;
        pthread_join(t, &v);
        printf("mutex kind %d, main writes: %ld\n", kind, (long)v);
    }
}

/* A thread writes, then blocks on a lock main holds; main reads after a
 * wait that only time orders (the thread's release comes before it
 * blocks), then the thread reads what main wrote while holding it. */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static void *blocks_on_main(void *arg) {
    int kind = (int)(long)arg;
    plain[10 + kind] = 200 + kind;
    if (kind == 0) pthread_mutex_lock(&m);
    else if (kind == 1) pthread_rwlock_wrlock(&rw);
    else pthread_rwlock_rdlock(&rw);
    int v = plain[20 + kind];
    if (kind == 0) pthread_mutex_unlock(&m);
    else pthread_rwlock_unlock(&rw);
    return (void *)(long)v;
}
static void thread_writes_then_blocks(void) {
    for (int kind = 0; kind < 3; kind++) {
        pthread_t t;
        if (kind == 0) pthread_mutex_lock(&m);
        else pthread_rwlock_wrlock(&rw);
        pthread_create(&t, NULL, blocks_on_main, (void *)(long)kind);
        /* Native: the thread is blocked by now; its write came first. */
        sleep(1);
        int seen = plain[10 + kind];
        plain[20 + kind] = 300 + kind;
        if (kind == 0) pthread_mutex_unlock(&m);
        else pthread_rwlock_unlock(&rw);
        void *v;
        pthread_join(t, &v);
        printf("blocking lock kind %d: main saw %d, thread saw %ld\n", kind, seen, (long)v);
    }
}

/* ---- rwlock: writer thread, reader main, every acquire form ---- */
static void *rw_writer(void *arg) {
    int kind = (int)(long)arg;
    if (kind == 0) pthread_rwlock_wrlock(&rw);
    else if (kind == 1) while (pthread_rwlock_trywrlock(&rw) == EBUSY) sched_yield();
    else { struct timespec t = later(); pthread_rwlock_timedwrlock(&rw, &t); }
    plain[30 + kind] = 400 + kind;
    pthread_rwlock_unlock(&rw);
    return NULL;
}
static void rwlock_thread_writes(void) {
    for (int kind = 0; kind < 3; kind++) {
        pthread_t t;
        pthread_create(&t, NULL, rw_writer, (void *)(long)kind);
        int v = 0;
        while (v == 0) {
            if (kind == 0) pthread_rwlock_rdlock(&rw);
            else if (kind == 1) { while (pthread_rwlock_tryrdlock(&rw) == EBUSY) sched_yield(); }
            else { struct timespec d = later(); pthread_rwlock_timedrdlock(&rw, &d); }
            v = plain[30 + kind];
            pthread_rwlock_unlock(&rw);
            if (v == 0) nap();
        }
        pthread_join(t, NULL);
        printf("rwlock kind %d, thread writes: %d\n", kind, v);
    }
}

/* ---- spin lock ---- */
static pthread_spinlock_t spin;
static void *spin_writer(void *arg) {
    (void)arg;
    pthread_spin_lock(&spin);
    plain[40] = 500;
    pthread_spin_unlock(&spin);
    return NULL;
}
static void spin_thread_writes(void) {
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t t;
    pthread_create(&t, NULL, spin_writer, NULL);
    int v = 0;
    while (v == 0) {
        while (pthread_spin_trylock(&spin) == EBUSY) sched_yield();
        v = plain[40];
        pthread_spin_unlock(&spin);
        if (v == 0) nap();
    }
    pthread_join(t, NULL);
    pthread_spin_destroy(&spin);
    printf("spin lock, thread writes: %d\n", v);
}

/* ---- condition variables: signal, broadcast, timed wait ---- */
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int ready;
static void *cond_waiter(void *arg) {
    int kind = (int)(long)arg;
    pthread_mutex_lock(&m);
    while (ready <= kind) {
        if (kind == 2) { struct timespec t = later(); pthread_cond_timedwait(&c, &m, &t); }
        else pthread_cond_wait(&c, &m);
    }
    pthread_mutex_unlock(&m);
    /* Read outside the mutex: the wait's return ordered main's write. */
    int v = plain[50 + kind];
    plain[55 + kind] = 600 + kind;
    pthread_mutex_lock(&m);
    ready = 10 + kind;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
    return (void *)(long)v;
}
static void cond_both_ways(void) {
    for (int kind = 0; kind < 3; kind++) {
        pthread_t t;
        ready = 0;
        pthread_create(&t, NULL, cond_waiter, (void *)(long)kind);
        nap();
        plain[50 + kind] = 700 + kind;
        pthread_mutex_lock(&m);
        ready = kind + 1;
        if (kind == 1) pthread_cond_broadcast(&c);
        else pthread_cond_signal(&c);
        pthread_mutex_unlock(&m);
        pthread_mutex_lock(&m);
        while (ready != 10 + kind) pthread_cond_wait(&c, &m);
        pthread_mutex_unlock(&m);
        void *v;
        pthread_join(t, &v);
        printf("condition kind %d: thread saw %ld, main saw %d\n", kind, (long)v, plain[55 + kind]);
    }
}

/* ---- barrier: each member writes its slot before, reads all after ---- */
#define MEMBERS 3
static pthread_barrier_t bar;
static void *barrier_member(void *arg) {
    int me = (int)(long)arg;
    plain[60 + me] = 800 + me;
    pthread_barrier_wait(&bar);
    int sum = 0;
    for (int i = 0; i < MEMBERS; i++) sum += plain[60 + i];
    return (void *)(long)sum;
}
static void barrier_all(void) {
    pthread_barrier_init(&bar, NULL, MEMBERS);
    pthread_t t[MEMBERS - 1];
    for (int i = 1; i < MEMBERS; i++) pthread_create(&t[i - 1], NULL, barrier_member, (void *)(long)i);
    long mine = (long)barrier_member((void *)0);
    printf("barrier: main saw %ld", mine);
    for (int i = 1; i < MEMBERS; i++) {
        void *v;
        pthread_join(t[i - 1], &v);
        printf(", member %d saw %ld", i, (long)v);
    }
    printf("\n");
    pthread_barrier_destroy(&bar);
}

/* ---- semaphores: post then wait, trywait, timedwait ---- */
static sem_t s_to_thread, s_to_main;
static void *sem_partner(void *arg) {
    int kind = (int)(long)arg;
    if (kind == 0) sem_wait(&s_to_thread);
    else if (kind == 1) while (sem_trywait(&s_to_thread) != 0) sched_yield();
    else { struct timespec t = later(); sem_timedwait(&s_to_thread, &t); }
    int v = plain[45 + kind];
    plain[48 + kind] = 900 + kind;
    sem_post(&s_to_main);
    return (void *)(long)v;
}
static void semaphores(void) {
    sem_init(&s_to_thread, 0, 0);
    sem_init(&s_to_main, 0, 0);
    for (int kind = 0; kind < 3; kind++) {
        pthread_t t;
        pthread_create(&t, NULL, sem_partner, (void *)(long)kind);
        nap();
        plain[45 + kind] = 1000 + kind;
        sem_post(&s_to_thread);
        sem_wait(&s_to_main);
        int seen = plain[48 + kind];
        void *v;
        pthread_join(t, &v);
        printf("semaphore kind %d: thread saw %ld, main saw %d\n", kind, (long)v, seen);
    }
}

/* ---- create and join ---- */
static void *create_join(void *arg) {
    int v = plain[0];
    plain[1] = (int)(long)arg + v;
    return NULL;
}
static void create_and_join(void) {
    plain[0] = 1100;
    pthread_t t;
    pthread_create(&t, NULL, create_join, (void *)5L);
    pthread_join(t, NULL);
    printf("create and join: %d\n", plain[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    mutex_main_writes();
    thread_writes_then_blocks();
    rwlock_thread_writes();
    spin_thread_writes();
    cond_both_ways();
    barrier_all();
    semaphores();
    create_and_join();
    return 0;
}
