/* Read-write locks: readers share, writers exclude; try-locks report
 * EBUSY; the protected pair of values never looks torn. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define READERS 3
#define WRITERS 2
#define ROUNDS 5000

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long a, b; /* invariant: a + b == 0 */

static void *writer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_rwlock_wrlock(&rw);
        a++;
        b--;
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    long torn = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_rwlock_rdlock(&rw);
        if (a + b != 0) torn++;
        pthread_rwlock_unlock(&rw);
    }
    return (void *)torn;
}

static void *try_locks(void *arg) {
    (void)arg;
    int rd = pthread_rwlock_tryrdlock(&rw);
    if (rd == 0) pthread_rwlock_unlock(&rw);
    int wr = pthread_rwlock_trywrlock(&rw);
    if (wr == 0) pthread_rwlock_unlock(&rw);
    return (void *)(long)((rd == 0) * 10 + (wr == EBUSY));
}

int main(void) {
    pthread_t r[READERS], w[WRITERS], t;
    for (int i = 0; i < WRITERS; i++) pthread_create(&w[i], NULL, writer, NULL);
    for (int i = 0; i < READERS; i++) pthread_create(&r[i], NULL, reader, NULL);
    long torn = 0;
    for (int i = 0; i < WRITERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < READERS; i++) {
        void *v;
        pthread_join(r[i], &v);
        torn += (long)v;
    }
    printf("a=%ld b=%ld torn reads=%ld\n", a, b, torn);

    void *v;
    pthread_rwlock_rdlock(&rw);
    pthread_create(&t, NULL, try_locks, NULL);
    pthread_join(t, &v);
    pthread_rwlock_unlock(&rw);
    printf("while read-locked: tryrdlock ok %d, trywrlock EBUSY %d\n", (int)(long)v / 10,
           (int)(long)v % 10);
    pthread_rwlock_wrlock(&rw);
    pthread_create(&t, NULL, try_locks, NULL);
    pthread_join(t, &v);
    pthread_rwlock_unlock(&rw);
    printf("while write-locked: tryrdlock ok %d, trywrlock EBUSY %d\n", (int)(long)v / 10,
           (int)(long)v % 10);
    return 0;
}
