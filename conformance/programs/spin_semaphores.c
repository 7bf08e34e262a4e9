/* Spin locks around a counter, and semaphores as a bounded
 * producer/consumer queue. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

#define ITEMS 2000
#define SLOTS 8

static pthread_spinlock_t spin;
static long spun;
static sem_t empty, full;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static int queue[SLOTS], head, tail;

static void *spinner(void *arg) {
    (void)arg;
    for (int i = 0; i < 5000; i++) {
        pthread_spin_lock(&spin);
        spun++;
        pthread_spin_unlock(&spin);
    }
    return NULL;
}

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        sem_wait(&empty);
        pthread_mutex_lock(&queue_lock);
        queue[tail] = i;
        tail = (tail + 1) % SLOTS;
        pthread_mutex_unlock(&queue_lock);
        sem_post(&full);
    }
    return NULL;
}

static void *consumer(void *arg) {
    long *sum = arg;
    for (int i = 0; i < ITEMS / 2; i++) {
        sem_wait(&full);
        pthread_mutex_lock(&queue_lock);
        *sum += queue[head];
        head = (head + 1) % SLOTS;
        pthread_mutex_unlock(&queue_lock);
        sem_post(&empty);
    }
    return NULL;
}

int main(void) {
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t s[3];
    for (int i = 0; i < 3; i++) pthread_create(&s[i], NULL, spinner, NULL);
    for (int i = 0; i < 3; i++) pthread_join(s[i], NULL);
    printf("spin-locked counter %ld\n", spun);

    sem_init(&empty, 0, SLOTS);
    sem_init(&full, 0, 0);
    long sums[2] = {0, 0};
    pthread_t p, c[2];
    pthread_create(&p, NULL, producer, NULL);
    for (int i = 0; i < 2; i++) pthread_create(&c[i], NULL, consumer, &sums[i]);
    pthread_join(p, NULL);
    for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
    int left = -1;
    sem_getvalue(&full, &left);
    printf("consumed %ld (expected %d), items left %d, trywait on empty queue: %d\n",
           sums[0] + sums[1], ITEMS * (ITEMS + 1) / 2, left, sem_trywait(&full));
    return 0;
}
