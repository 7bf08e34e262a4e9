/* Many threads use one FILE at once with no lock of their own, each call
 * locking it as POSIX says: fputs and fwrite of whole lines, putc and
 * putchar of single characters, and fgetc/getc reading a shared stream.
 * stdout is a small full buffer, so threads flush it; everything a phase
 * prints is the same in every thread, so the output does not depend on
 * which thread goes first. Barriers separate the phases. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define N 8
#define LINES 25
#define DOTS 40
#define LETTERS 26
#define ROUNDS 40

static pthread_barrier_t barrier;
static FILE *input;
static int counts[N][LETTERS];

static void *worker(void *arg) {
    int id = (int)(long)arg;
    char wide[151];
    memset(wide, 'x', 149);
    wide[149] = '\n';
    wide[150] = 0;

    for (int i = 0; i < LINES; i++) fputs("the same line from every thread\n", stdout);
    pthread_barrier_wait(&barrier);

    /* Longer than the buffer: written straight through. */
    for (int i = 0; i < 3; i++) fwrite(wide, 1, 150, stdout);
    pthread_barrier_wait(&barrier);

    for (int i = 0; i < DOTS; i++) {
        if (i % 2) putc('.', stdout);
        else putchar('.');
    }
    if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) putchar('\n');
    pthread_barrier_wait(&barrier);

    /* Each character of the stream is read by exactly one thread. */
    for (int i = 0;; i++) {
        int c = i % 2 ? fgetc(input) : getc(input);
        if (c == EOF) break;
        if (c >= 'a' && c < 'a' + LETTERS) counts[id][c - 'a']++;
    }
    return NULL;
}

int main(void) {
    static char out_buffer[64];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

    static char text[LETTERS * ROUNDS];
    for (int i = 0; i < LETTERS * ROUNDS; i++) text[i] = (char)('a' + i % LETTERS);
    input = fmemopen(text, sizeof text, "r");
    if (!input) return 1;

    pthread_barrier_init(&barrier, NULL, N);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    fclose(input);

    int total = 0, wrong = 0;
    for (int c = 0; c < LETTERS; c++) {
        int sum = 0;
        for (int i = 0; i < N; i++) sum += counts[i][c];
        if (sum != ROUNDS) wrong++;
        total += sum;
    }
    printf("read %d characters, %d letters with a wrong count\n", total, wrong);
    return 0;
}
