// Threads that print (their first write asks libc's fdstat of stdout),
// one after another so the output's order is fixed.
#include <pthread.h>
#include <stdio.h>

static void *say(void *arg) {
    int which = (int)(long)arg;
    printf("thread %d: hello from a thread\n", which);
    fprintf(stderr, "thread %d: and to stderr\n", which);
    fflush(stdout);
    return arg;
}

int main(void) {
    for (long i = 0; i < 3; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, say, (void *)i) != 0) return 1;
        pthread_join(t, NULL);
    }
    printf("main: done\n");
    return 0;
}
