/* The CPU-time clock ids wasi-libc no longer defines (see
 * libc-overlay/time.h): wasi-libc's clock functions read the preview1
 * clock id from the first member of the struct a clockid_t points to. */
#include <errno.h>
#include <time.h>
#include <wasi/api.h>

struct __clockid {
    __wasi_clockid_t id;
};

const struct __clockid _CLOCK_PROCESS_CPUTIME_ID = {__WASI_CLOCKID_PROCESS_CPUTIME_ID};
const struct __clockid _CLOCK_THREAD_CPUTIME_ID = {__WASI_CLOCKID_THREAD_CPUTIME_ID};

int clock_settime(clockid_t clock, const struct timespec *time) {
    (void)clock;
    (void)time;
    errno = EPERM;
    return -1;
}
