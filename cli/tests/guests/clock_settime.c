// Setting a clock is refused as for an unprivileged process.
#include <errno.h>
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int rc = clock_settime(CLOCK_REALTIME, &now);
    printf("clock_settime: %d %s\n", rc, errno == EPERM ? "EPERM" : "other");
    return 0;
}
