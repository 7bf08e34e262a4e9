/* A producer posts a semaphore many times in a row (no wait of its own in
 * between) while the main thread takes every post; then the two trade
 * turns through a mutex. Every post must count, in order with the
 * producer's writes. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

#define POSTS 1000

static sem_t items;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int produced[POSTS];
static long unlocked_total;

static void *producer(void *arg) {
    (void)arg;
    for (int i = 0; i < POSTS; i++) {
        produced[i] = i + 1;
        sem_post(&items);
    }
    for (int i = 0; i < POSTS; i++) {
        pthread_mutex_lock(&lock);
        unlocked_total += i;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(void) {
    sem_init(&items, 0, 0);
    pthread_t thread;
    pthread_create(&thread, NULL, producer, NULL);
    long sum = 0;
    for (int i = 0; i < POSTS; i++) {
        sem_wait(&items);
        sum += produced[i];
    }
    pthread_join(thread, NULL);
    int value = -1;
    sem_getvalue(&items, &value);
    printf("took %d posts, sum %ld, left %d, under the lock %ld\n", POSTS, sum, value,
           unlocked_total);
    return 0;
}
