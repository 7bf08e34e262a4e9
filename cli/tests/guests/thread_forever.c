/* Never ends: main joins a thread that waits forever on a condition
 * variable while another thread computes forever. */
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static volatile unsigned long spins;

static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) pthread_cond_wait(&never, &lock);
}

static void *spin_forever(void *arg) {
    (void)arg;
    for (;;) spins++;
}

int main(void) {
    pthread_t waiter, spinner;
    pthread_create(&waiter, NULL, wait_forever, NULL);
    pthread_create(&spinner, NULL, spin_forever, NULL);
    pthread_join(waiter, NULL);
    return 0;
}
