/* A lock and an event built directly on futexes (wasm's
 * memory.atomic.wait32/notify, Linux's futex call natively) and C11
 * atomics, as lock libraries do: no pthread synchronisation involved. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#ifdef __wasm__
static void futex_wait(atomic_int *word, int expected) {
    __builtin_wasm_memory_atomic_wait32((int *)word, expected, -1);
}
static void futex_wake(atomic_int *word, int count) {
    __builtin_wasm_memory_atomic_notify((int *)word, count);
}
#else
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
static void futex_wait(atomic_int *word, int expected) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static void futex_wake(atomic_int *word, int count) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}
#endif

/* 0 free, 1 locked, 2 locked with waiters. */
static atomic_int lock_word;

static void lock(void) {
    int seen = 0;
    if (atomic_compare_exchange_strong(&lock_word, &seen, 1)) return;
    if (seen != 2) seen = atomic_exchange(&lock_word, 2);
    while (seen != 0) {
        futex_wait(&lock_word, 2);
        seen = atomic_exchange(&lock_word, 2);
    }
}

static void unlock(void) {
    if (atomic_fetch_sub(&lock_word, 1) != 1) {
        atomic_store(&lock_word, 0);
        futex_wake(&lock_word, 1);
    }
}

#define THREADS 4
#define ROUNDS 300

static long counter;          /* guarded by the lock */
static long history[THREADS]; /* each thread's share, guarded too */
static atomic_int started;    /* the event: set once, waited on */
static int message;           /* published by the event */

static void *worker(void *arg) {
    long id = (long)arg;
    while (atomic_load(&started) == 0) futex_wait(&started, 0);
    for (int i = 0; i < ROUNDS; i++) {
        lock();
        counter += message;
        history[id]++;
        unlock();
    }
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    message = 3;
    atomic_store(&started, 1);
    futex_wake(&started, THREADS);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("counter %ld (expected %d)\n", counter, 3 * THREADS * ROUNDS);
    for (int i = 0; i < THREADS; i++) printf("thread %d: %ld rounds\n", i, history[i]);
    printf("lock word at the end: %d\n", atomic_load(&lock_word));
    return 0;
}
