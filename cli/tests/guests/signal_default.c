/* An unhandled SIGUSR1 (default action: terminate) sent by another
 * thread ends the program at the target's next delivery point, with exit
 * code 128 + 10, without flushing stdout (as a signal does natively). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static pthread_t main_thread;

static void *sender(void *arg) {
    (void)arg;
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

int main(void) {
    main_thread = pthread_self();
    printf("buffered, never printed"); /* no newline: stays buffered */
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    pthread_join(t, NULL);
    for (;;) usleep(1000); /* a delivery point */
}
