/* A bounded queue with two condition variables: producers and consumers
 * pass every item exactly once; broadcast wakes all waiters. */
#include <pthread.h>
#include <stdio.h>

#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS 3000
#define CAPACITY 8

static int queue[CAPACITY];
static int head, count, producers_left = PRODUCERS;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static void *producer(void *arg) {
    int base = (int)(long)arg * ITEMS;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&lock);
        while (count == CAPACITY) pthread_cond_wait(&not_full, &lock);
        queue[(head + count++) % CAPACITY] = base + i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    if (--producers_left == 0) pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    long sum = 0;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (count == 0 && producers_left > 0) pthread_cond_wait(&not_empty, &lock);
        if (count == 0) {
            pthread_mutex_unlock(&lock);
            return (void *)sum;
        }
        sum += queue[head];
        head = (head + 1) % CAPACITY;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
    }
}

int main(void) {
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (long i = 0; i < CONSUMERS; i++) pthread_create(&c[i], NULL, consumer, NULL);
    for (long i = 0; i < PRODUCERS; i++) pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(p[i], NULL);
    long total = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        void *sum;
        pthread_join(c[i], &sum);
        total += (long)sum;
    }
    long n = (long)PRODUCERS * ITEMS;
    printf("consumed sum %ld (expected %ld)\n", total, n * (n + 1) / 2);
    return 0;
}
