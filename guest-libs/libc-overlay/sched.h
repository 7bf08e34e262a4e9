/* Weft's sched.h: wasi-libc's (the bookworm-backports headers that
 * setup-toolchain.sh installs), plus the scheduling types that those
 * headers hide and pthread attributes need. Wasm has no CPU scheduling:
 * the values are stored and reported, and change nothing. */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include_next <sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Same first member as wasi-libc's own (newer) definition. */
struct sched_param {
    int sched_priority;
};

#ifndef SCHED_OTHER
#define SCHED_OTHER 0
#define SCHED_FIFO 1
#define SCHED_RR 2
#define SCHED_BATCH 3
#define SCHED_IDLE 5
#endif

int sched_get_priority_max(int policy);
int sched_get_priority_min(int policy);
/* On the calling thread (pid 0), as Linux's act on a thread. */
int sched_getparam(pid_t, struct sched_param *);
int sched_getscheduler(pid_t);
int sched_setparam(pid_t, const struct sched_param *);
int sched_setscheduler(pid_t, int, const struct sched_param *);

#ifdef __cplusplus
}
#endif
#endif
