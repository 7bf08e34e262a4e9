/* Weft's time.h: wasi-libc's, plus the CPU-time clocks it lacks. Weft's
 * host serves them (preview1 clock ids 2 and 3): a thread's CPU time
 * counts from the thread's start, the process's includes every thread.
 * clock() is libweft's, on the process CPU-time clock, so wasi-libc's
 * warning about its wall-clock emulation does not apply. */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#ifndef _WASI_EMULATED_PROCESS_CLOCKS
#define _WASI_EMULATED_PROCESS_CLOCKS
#endif
#include_next <time.h>

#ifdef __cplusplus
extern "C" {
#endif
/* Setting a clock is the host's business: always EPERM, as for a process
 * without the privilege. */
int clock_settime(clockid_t, const struct timespec *);
#ifdef __cplusplus
}
#endif

#ifndef CLOCK_PROCESS_CPUTIME_ID
#ifdef __cplusplus
extern "C" {
#endif
extern const struct __clockid _CLOCK_PROCESS_CPUTIME_ID;
extern const struct __clockid _CLOCK_THREAD_CPUTIME_ID;
#ifdef __cplusplus
}
#endif
#define CLOCK_PROCESS_CPUTIME_ID (&_CLOCK_PROCESS_CPUTIME_ID)
#define CLOCK_THREAD_CPUTIME_ID (&_CLOCK_THREAD_CPUTIME_ID)
#endif

#endif
