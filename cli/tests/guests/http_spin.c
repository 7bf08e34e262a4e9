/* An HTTP test function that never ends on its own (its time limit ends
 * it), in a thread and in main. */
#include <pthread.h>

static volatile int forever = 1;

static void *spin(void *arg) {
    (void)arg;
    while (forever) {
    }
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    spin(NULL);
    return 0;
}
