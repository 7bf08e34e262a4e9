/* libweft internals shared by pthread.c and arena.c (chain mode). */
#ifndef WEFT_CHAIN_H
#define WEFT_CHAIN_H

#include <pthread.h>
#include <stdint.h>

struct arena;

/* Set by the host in a chained thread's copy of memory only: the thread's
 * start routine and argument, and the first chunk of its heap arena (an
 * address range the host hands out, zero until the thread uses it). NULL
 * arena: not a chained thread (local mode, the main thread, or an exit
 * path running on the parent's memory). */
struct weft_chain_entry {
    void *(*start)(void *);
    void *arg;
    struct arena *arena;
    uint32_t arena_size;
};

extern struct weft_chain_entry weft_chain_entry;

/* Whether this program's threads run in chain mode (asked once). */
int weft_chain_mode(void);
/* Its answer once asked (-1 before): for paths where a call costs. */
extern int weft_chained;

/* Chain mode synchronisation through the home host (weft:threads sync-*),
 * with the calling thread's private state set aside around each sync
 * point. Results as the sync-* functions'. */
int weft_home_lock(const void *addr, uint32_t kind, int64_t timeout_ns);
int weft_home_unlock(const void *addr, uint32_t kind);
int weft_home_barrier(const void *addr, uint32_t count);
void weft_home_sync_point(void);
/* Before an atomic load: an acquire, unless home published nothing since
 * the thread's last one. */
void weft_home_load_point(void);
/* An atomic operation made on the home memory, between a release and an
 * acquire (weft:threads sync-atomic); the old value. */
uint64_t weft_home_atomic(uint32_t op, uint32_t bytes, const void *addr, uint64_t value,
                          uint64_t expected);
/* A counting semaphore at home named by `addr` (its guest bytes unused).
 * A post is a release that goes on without an answer; a wait that has to
 * block releases first, and its wake-up is an acquire. */
void weft_home_sem_init(const void *addr, uint32_t value);
int weft_home_sem_wait(const void *addr);
int weft_home_sem_post(const void *addr);
/* A condition variable at home, waited on with a normal home mutex held. */
int weft_home_cond_wait(const void *cond, const void *mutex);
/* The same within `timeout_ns` (negative: no limit); ETIMEDOUT after it,
 * the mutex held again either way. */
int weft_home_cond_timedwait(const void *cond, const void *mutex, int64_t timeout_ns);
/* A wait at home for a wake-up of the memory at `addr`, whose home lock
 * the caller holds (released while waiting): memory.atomic.wait. */
int weft_home_futex_wait(const void *addr, int64_t timeout_ns);
/* Wakes one waiter of `cond`, or all; how many it woke. */
uint32_t weft_home_cond_wake(const void *cond, int all);
void weft_home_cond_broadcast(const void *cond);

/* Chain mode: a sync point where a thread that can synchronise sleeps or
 * yields (nothing elsewhere), so that a program that polls a flag with
 * sleeps or yields sees other threads' writes as natively. */
void weft_pause_point(int yield);

/* In the chained thread, before its start routine. */
void weft_chain_thread_started(void);
/* In the thread's exit path on the parent's memory. */
void weft_chain_thread_exiting(void);
/* Set in a chained thread's exit path (TSD destructors, ...), which runs
 * on its parent's memory, not on a copy of its own. */
extern _Thread_local int weft_in_exit_path;
/* Set in a thread started by a chained thread (chain mode): the host lets
 * it share no sync points with other threads. */
extern _Thread_local int weft_nested_thread;

/* sched.c: a new thread's scheduling setting (see there). */
int weft_sched_for_new_thread(int explicit_sched, int *policy, int *priority);
void weft_sched_record_self(int policy, int priority);

/* process.c: a new thread starts with its creator's name; called by the
 * creator before the thread exists. */
void weft_thread_name_inherit(pthread_t thread);

#endif
