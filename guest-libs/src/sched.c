/* Scheduling calls wasi-libc leaves out: a thread's policy and priority
 * (pthread_getschedparam, setschedparam, setschedprio and the sched_*
 * calls on the calling thread), validated as Linux validates them, and
 * each thread's CPU-time clock (pthread_getcpuclockid).
 *
 * Wasm has no CPU scheduling, so a policy and priority are kept and
 * reported and change nothing; setting a real-time policy needs no
 * privilege here. They are kept in a table that exists only once some
 * thread has a setting other than the default (SCHED_OTHER, 0), so
 * programs that never call these pay nothing. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "thread_fields.h"

#ifndef SCHED_BATCH
#define SCHED_BATCH 3
#define SCHED_IDLE 5
#endif

struct sched_entry {
    pthread_t thread;
    int policy;
    int priority;
    struct sched_entry *next;
};

static struct sched_entry *table;
static volatile int table_lock;

static void lock_table(void) {
    while (__atomic_exchange_n(&table_lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&table_lock, __ATOMIC_RELAXED)) {}
}

static void unlock_table(void) { __atomic_store_n(&table_lock, 0, __ATOMIC_RELEASE); }

static struct sched_entry *find(pthread_t thread) {
    for (struct sched_entry *e = table; e; e = e->next)
        if (e->thread == thread) return e;
    return NULL;
}

static void lookup(pthread_t thread, int *policy, int *priority) {
    *policy = SCHED_OTHER;
    *priority = 0;
    if (!__atomic_load_n(&table, __ATOMIC_ACQUIRE)) return;
    lock_table();
    struct sched_entry *e = find(thread);
    if (e) {
        *policy = e->policy;
        *priority = e->priority;
    }
    unlock_table();
}

/* Records `thread`'s setting; ENOMEM when no entry can be made. */
static int record(pthread_t thread, int policy, int priority) {
    int is_default = policy == SCHED_OTHER && priority == 0;
    if (is_default && !__atomic_load_n(&table, __ATOMIC_ACQUIRE)) return 0;
    lock_table();
    struct sched_entry *e = find(thread);
    if (!e && !is_default) {
        e = malloc(sizeof *e);
        if (!e) {
            unlock_table();
            return ENOMEM;
        }
        e->thread = thread;
        e->next = table;
        __atomic_store_n(&table, e, __ATOMIC_RELEASE);
    }
    if (e) {
        e->policy = policy;
        e->priority = priority;
    }
    unlock_table();
    return 0;
}

/* A new thread's setting: the attribute's when `explicit_sched`, else its
 * creator's. Returns whether the new thread must record it when it
 * starts (before its start routine, so it reads the right one from its
 * first instruction, also in chain mode in its own copy; an entry left at
 * the same address by a thread that ended is replaced): only once some
 * thread has a setting other than the default. */
int weft_sched_for_new_thread(int explicit_sched, int *policy, int *priority) {
    if (!explicit_sched) lookup(pthread_self(), policy, priority);
    return !(*policy == SCHED_OTHER && *priority == 0 && !__atomic_load_n(&table, __ATOMIC_ACQUIRE));
}

/* In a new thread, before its start routine. */
void weft_sched_record_self(int policy, int priority) {
    (void)record(pthread_self(), policy, priority);
}

static int valid(int policy, int priority) {
    int min = sched_get_priority_min(policy);
    if (min < 0) return 0;
    return priority >= min && priority <= sched_get_priority_max(policy);
}

int pthread_getschedparam(pthread_t thread, int *restrict policy,
                          struct sched_param *restrict param) {
    lookup(thread, policy, &param->sched_priority);
    return 0;
}

int pthread_setschedparam(pthread_t thread, int policy, const struct sched_param *param) {
    if (!valid(policy, param->sched_priority)) return EINVAL;
    return record(thread, policy, param->sched_priority);
}

int pthread_setschedprio(pthread_t thread, int priority) {
    int policy, old;
    lookup(thread, &policy, &old);
    if (!valid(policy, priority)) return EINVAL;
    return record(thread, policy, priority);
}

/* The sched_* calls act on the calling thread (pid 0), as Linux's do on a
 * thread; a program has no other process to name. */
static int own_pid(pid_t pid) {
    if (pid < 0) {
        errno = EINVAL;
        return 0;
    }
    if (pid != 0) {
        errno = ESRCH;
        return 0;
    }
    return 1;
}

int sched_getscheduler(pid_t pid) {
    if (!own_pid(pid)) return -1;
    int policy, priority;
    lookup(pthread_self(), &policy, &priority);
    return policy;
}

int sched_getparam(pid_t pid, struct sched_param *param) {
    if (!own_pid(pid)) return -1;
    int policy;
    lookup(pthread_self(), &policy, &param->sched_priority);
    return 0;
}

int sched_setscheduler(pid_t pid, int policy, const struct sched_param *param) {
    if (!own_pid(pid)) return -1;
    int rc = pthread_setschedparam(pthread_self(), policy, param);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

int sched_setparam(pid_t pid, const struct sched_param *param) {
    if (!own_pid(pid)) return -1;
    int rc = pthread_setschedprio(pthread_self(), param->sched_priority);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* Linux's ranges, so portable code that asks for them gets what it
 * expects. */
int sched_get_priority_max(int policy) {
    switch (policy) {
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE: return 0;
    case SCHED_FIFO:
    case SCHED_RR: return 99;
    default: errno = EINVAL; return -1;
    }
}

int sched_get_priority_min(int policy) {
    switch (policy) {
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE: return 0;
    case SCHED_FIFO:
    case SCHED_RR: return 1;
    default: errno = EINVAL; return -1;
    }
}

/* ---- CPU-time clocks ----------------------------------------------------
 * wasi-libc's clock calls read the preview1 clock id from the first word
 * a clockid_t points to. A thread's CPU clock is id THREAD_CLOCK | tid,
 * which the host answers with that thread's CPU time while it runs
 * (EINVAL once it has ended, or when it runs on another host). The word
 * is musl's unused `sysinfo` field of the thread, so the clock lives as
 * long as the thread does. */
#define THREAD_CLOCK 0x80000000u

int pthread_getcpuclockid(pthread_t thread, clockid_t *clock) {
    THREAD_SYSINFO(thread) = THREAD_CLOCK | (unsigned)THREAD_TID(thread);
    *clock = (clockid_t)(void *)&THREAD_SYSINFO(thread);
    return 0;
}
