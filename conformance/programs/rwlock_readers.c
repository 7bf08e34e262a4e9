/* Readers and writers on an rwlock: writers update a table and its
 * checksum together; readers, several at once, check they agree. Two
 * readers hold the lock at the same time (they meet at a barrier inside
 * it). */
#include <pthread.h>
#include <stdio.h>

#define SIZE 64

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t both_reading;
static long table[SIZE], checksum;

static void *writer(void *arg) {
    long id = (long)arg;
    for (int round = 0; round < 300; round++) {
        pthread_rwlock_wrlock(&lock);
        int slot = (int)((round * 7 + id) % SIZE);
        table[slot] += id + 1;
        checksum += id + 1;
        pthread_rwlock_unlock(&lock);
    }
    return NULL;
}

static void *reader(void *arg) {
    long *bad = arg;
    for (int round = 0; round < 300; round++) {
        pthread_rwlock_rdlock(&lock);
        long sum = 0;
        for (int i = 0; i < SIZE; i++) sum += table[i];
        if (sum != checksum) ++*bad;
        pthread_rwlock_unlock(&lock);
    }
    return NULL;
}

static void *shared_reader(void *arg) {
    (void)arg;
    pthread_rwlock_rdlock(&lock);
    pthread_barrier_wait(&both_reading);
    pthread_rwlock_unlock(&lock);
    return NULL;
}

int main(void) {
    pthread_t w[2], r[2];
    long bad[2] = {0, 0};
    for (long i = 0; i < 2; i++) pthread_create(&w[i], NULL, writer, (void *)i);
    for (int i = 0; i < 2; i++) pthread_create(&r[i], NULL, reader, &bad[i]);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < 2; i++) pthread_join(r[i], NULL);
    printf("checksum %ld, inconsistent reads %ld\n", checksum, bad[0] + bad[1]);

    pthread_barrier_init(&both_reading, NULL, 2);
    for (int i = 0; i < 2; i++) pthread_create(&r[i], NULL, shared_reader, NULL);
    for (int i = 0; i < 2; i++) pthread_join(r[i], NULL);
    int rc = pthread_rwlock_trywrlock(&lock);
    printf("two readers held it at once; free again: %d\n", rc == 0);
    pthread_rwlock_unlock(&lock);
    return 0;
}
