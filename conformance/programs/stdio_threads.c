/* stdio from many threads: threads take turns (a mutex and a condition
 * variable fix the order) and print with printf, puts, fputs and
 * putchar_unlocked under flockfile; the output is whole lines in turn order. */
#include <pthread.h>
#include <stdio.h>

#define N 6
#define LINES 20

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_changed = PTHREAD_COND_INITIALIZER;
static int turn;

static void *worker(void *arg) {
    int id = (int)(long)arg;
    for (int line = 0; line < LINES; line++) {
        pthread_mutex_lock(&lock);
        while (turn % N != id) pthread_cond_wait(&turn_changed, &lock);
        switch (line % 3) {
        case 0:
            printf("thread %d line %d\n", id, line);
            break;
        case 1:
            fputs("thread ", stdout);
            printf("%d ", id);
            puts("says hello");
            break;
        default:
            flockfile(stdout);
            for (const char *s = "unlocked chars\n"; *s; s++) putchar_unlocked(*s);
            funlockfile(stdout);
        }
        turn++;
        pthread_cond_broadcast(&turn_changed);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOFBF, 64); /* small buffer: flushes from every thread */
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    fprintf(stderr, "stderr is separate\n");
    printf("done after %d turns\n", turn);
    return 0;
}
