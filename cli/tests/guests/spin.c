// Prints a line, then computes forever in main, or (with an argument)
// waits forever in pthread_join for a thread that computes forever.
#include <pthread.h>
#include <stdio.h>

static volatile unsigned long long counter;

static void *forever(void *arg) {
    for (;;) counter++;
    return arg;
}

int main(int argc, char **argv) {
    printf("spinning\n");
    fflush(stdout);
    if (argc > 1) {
        pthread_t t;
        pthread_create(&t, NULL, forever, NULL);
        pthread_join(t, NULL);
    }
    forever(NULL);
    return 0;
}
