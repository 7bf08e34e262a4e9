/* Weft's sys/time.h: wasi-libc's, plus the real-time interval timer
 * (ITIMER_REAL, which raises SIGALRM; libweft's signal.c). */
#ifndef WEFT_SYS_TIME_H
#define WEFT_SYS_TIME_H

#include_next <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ITIMER_REAL
#define ITIMER_REAL 0
#define ITIMER_VIRTUAL 1
#define ITIMER_PROF 2

struct itimerval {
    struct timeval it_interval;
    struct timeval it_value;
};

int getitimer(int, struct itimerval *);
int setitimer(int, const struct itimerval *__restrict, struct itimerval *__restrict);
#endif

#ifdef __cplusplus
}
#endif
#endif
