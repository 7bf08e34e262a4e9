/* Three threads each add to a total once under a mutex; main joins them
 * and prints the total. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long total;

static void *add(void *arg) {
    long n = (long)arg;
    pthread_mutex_lock(&lock);
    total += n;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    pthread_t threads[3];
    for (long i = 0; i < 3; i++) pthread_create(&threads[i], NULL, add, (void *)(i + 1));
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    printf("total %ld\n", total);
    return 0;
}
