/* One file descriptor table for the whole process: a file opened in one
 * thread is written by another and read back by a third.
 * Needs /tmp (weft: --dir /tmp). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char path[64];
static int fd = -1;

static void *opener(void *arg) {
    (void)arg;
    fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    return NULL;
}

static void *writer(void *arg) {
    const char *text = arg;
    return (void *)(long)write(fd, text, strlen(text));
}

static void *reader(void *arg) {
    char *buf = arg;
    lseek(fd, 0, SEEK_SET);
    long n = read(fd, buf, 63);
    if (n >= 0) buf[n] = 0;
    return (void *)n;
}

int main(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(path, sizeof path, "/tmp/weft-shared-fds-%ld-%ld.txt", (long)ts.tv_sec, ts.tv_nsec);
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, opener, NULL);
    pthread_join(t, NULL);
    printf("opened in thread 1: %d\n", fd >= 0);
    pthread_create(&t, NULL, writer, "written by thread 2\n");
    pthread_join(t, &r);
    printf("thread 2 wrote %ld bytes\n", (long)r);
    char buf[64] = {0};
    pthread_create(&t, NULL, reader, buf);
    pthread_join(t, &r);
    printf("thread 3 read %ld bytes: %s", (long)r, buf);
    printf("main closes it: %d\n", close(fd));
    unlink(path);
    return 0;
}
