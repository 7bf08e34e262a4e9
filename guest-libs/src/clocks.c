/* The CPU-time clock ids wasi-libc no longer defines (see
 * libc-overlay/time.h): wasi-libc's clock functions read the preview1
 * clock id from the first member of the struct a clockid_t points to.
 * And the calls that read them: clock, times and getrusage, which
 * wasi-libc has only as a separate wall-clock emulation. */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>
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

static long long ns_of(clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t)) return -1;
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The program's CPU time, all threads together. */
clock_t clock(void) {
    long long ns = ns_of(CLOCK_PROCESS_CPUTIME_ID);
    return ns < 0 ? (clock_t)-1 : (clock_t)(ns / (1000000000LL / CLOCKS_PER_SEC));
}

/* User time is all of it (wasm has no kernel mode); there are no child
 * processes. The result counts from an arbitrary point, as POSIX allows:
 * the monotonic clock. */
clock_t times(struct tms *buf) {
    long long tick = 1000000000LL / sysconf(_SC_CLK_TCK);
    long long cpu = ns_of(CLOCK_PROCESS_CPUTIME_ID);
    long long now = ns_of(CLOCK_MONOTONIC);
    if (cpu < 0 || now < 0) return (clock_t)-1;
    buf->tms_utime = cpu / tick;
    buf->tms_stime = buf->tms_cutime = buf->tms_cstime = 0;
    return now / tick;
}

static struct timeval timeval_of(long long ns) {
    struct timeval t = {(time_t)(ns / 1000000000LL), (suseconds_t)(ns % 1000000000LL / 1000)};
    return t;
}

/* CPU time from the process's or the thread's clock; the largest memory
 * size as maxrss (a wasm memory never shrinks, so its size is its peak);
 * no child processes, so RUSAGE_CHILDREN is all zero. */
int getrusage(int who, struct rusage *usage) {
    clockid_t clock;
    switch (who) {
    case RUSAGE_SELF: clock = CLOCK_PROCESS_CPUTIME_ID; break;
    case RUSAGE_THREAD: clock = CLOCK_THREAD_CPUTIME_ID; break;
    case RUSAGE_CHILDREN: clock = 0; break;
    default: errno = EINVAL; return -1;
    }
    memset(usage, 0, sizeof *usage);
    if (!clock) return 0;
    long long cpu = ns_of(clock);
    if (cpu < 0) return -1;
    usage->ru_utime = timeval_of(cpu);
    usage->ru_maxrss = (long)(__builtin_wasm_memory_size(0) * 64); /* KiB */
    return 0;
}
