/* How a program whose main thread is blocked ends. Main joins a thread
 * that waits forever on a condition variable while another computes
 * forever; a third thread, after 2 ms, then ends the program as argv[1]
 * says: `trap` (a trap: natively the process dies of it), `exit` (exit(3))
 * or `never` (nothing: only a time limit ends it). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static volatile unsigned long spins;
static const char *how = "never";

static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) pthread_cond_wait(&never, &lock);
}

static void *spin_forever(void *arg) {
    (void)arg;
    for (;;) spins++;
}

static void *ender(void *arg) {
    (void)arg;
    usleep(2000);
    if (strcmp(how, "trap") == 0) __builtin_trap();
    if (strcmp(how, "exit") == 0) exit(3);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) how = argv[1];
    pthread_t waiter, spinner, ending;
    pthread_create(&waiter, NULL, wait_forever, NULL);
    pthread_create(&spinner, NULL, spin_forever, NULL);
    pthread_create(&ending, NULL, ender, NULL);
    pthread_join(waiter, NULL);
    printf("not reached\n");
    return 0;
}
