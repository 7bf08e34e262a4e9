/* Threads print around barriers with no lock of their own: stdio's own
 * FILE lock keeps each call whole. Part 1 goes to stdout, fully buffered
 * (a pipe or a file) in a small buffer, so every thread flushes it; the
 * lines of a phase are all the same, whichever call prints them, so the
 * output does not depend on the order in which the threads print. Part 2 goes to a file
 * (needs /tmp; weft: --dir /tmp) with lines that name their thread, read
 * back and checked by main: every line whole, each thread's lines in its
 * order, and no line of a phase after a line of the next. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 4
#define PHASES 4
#define LINES 12

static pthread_barrier_t barrier;
static FILE *file;
static char file_buffer[300];

static void *worker(void *arg) {
    int id = (int)(long)arg;
    for (int phase = 0; phase < PHASES; phase++) {
        for (int i = 0; i < LINES; i++) {
            switch (i % 4) {
            case 0: printf("phase %d: a line every thread prints\n", phase); break;
            case 1: fprintf(stdout, "phase %d: a line every thread prints\n", phase); break;
            case 2: {
                char line[64];
                int n = snprintf(line, sizeof line, "phase %d: a line every thread prints\n", phase);
                fwrite(line, 1, (size_t)n, stdout);
                break;
            }
            default:
                /* three calls, one line: flockfile holds the lock across */
                flockfile(stdout);
                fputs("phase ", stdout);
                printf("%d: ", phase);
                puts("a line every thread prints");
                funlockfile(stdout);
            }
            fprintf(file, "thread %d phase %d line %02d\n", id, phase, i);
        }
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
            printf("-- phase %d done\n", phase);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

/* Reads the file back: each line whole, in its thread's order, phases in
 * order. */
static int check_file(void) {
    int next_line[N] = {0}, last_phase = 0, lines = 0;
    char line[128];
    rewind(file);
    while (fgets(line, sizeof line, file)) {
        int id, phase, i;
        char end;
        if (sscanf(line, "thread %d phase %d line %d%c", &id, &phase, &i, &end) != 4 ||
            end != '\n' || id < 0 || id >= N) {
            printf("torn line: %s", line);
            return 1;
        }
        if (phase * LINES + i != next_line[id]) {
            printf("thread %d: line %d %d out of order\n", id, phase, i);
            return 1;
        }
        if (phase < last_phase) {
            printf("phase %d line after phase %d\n", phase, last_phase);
            return 1;
        }
        last_phase = phase;
        next_line[id]++;
        lines++;
    }
    for (int t = 0; t < N; t++)
        if (next_line[t] != PHASES * LINES) {
            printf("thread %d wrote %d lines\n", t, next_line[t]);
            return 1;
        }
    printf("file: %d lines, all whole, in order\n", lines);
    return 0;
}

int main(void) {
    static char out_buffer[200];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

    char path[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(path, sizeof path, "/tmp/weft-stdio-barrier-%ld-%ld.txt", (long)ts.tv_sec, ts.tv_nsec);
    file = fopen(path, "w+");
    if (!file) {
        perror("fopen");
        return 1;
    }
    setvbuf(file, file_buffer, _IOFBF, sizeof file_buffer);

    pthread_barrier_init(&barrier, NULL, N);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);

    int rc = check_file();
    fclose(file);
    remove(path);
    printf("done\n");
    return rc;
}
