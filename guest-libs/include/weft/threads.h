/* Weft thread interface (WIT `weft:threads/threads@0.1.0`) for C guests.
 * The core-ABI lowering of each WIT function; see wit/threads.wit.
 *
 * Portable: built for anything but wasm, the calls are stand-ins that
 * behave as local mode does (threads share memory, regions change
 * nothing), so one program builds natively and for Weft. */
#ifndef WEFT_THREADS_H
#define WEFT_THREADS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __wasm__
#define WEFT_IMPORT(name) \
    __attribute__((import_module("weft:threads/threads@0.1.0"), import_name(name)))
#else
#define WEFT_IMPORT(name) static inline
#endif

typedef enum { WEFT_MODE_LOCAL = 0, WEFT_MODE_CHAIN = 1 } weft_thread_mode_t;
typedef enum { WEFT_SPAWN_AGAIN = 0, WEFT_SPAWN_NOT_SUPPORTED = 1 } weft_spawn_errno_t;

/* `result<u32, errno>` return area. */
typedef struct {
    uint8_t is_err;
    uint32_t value; /* thread id, or a weft_spawn_errno_t */
} weft_spawn_result_t;

#ifdef __wasm__
WEFT_IMPORT("spawn") void weft_thread_spawn(uint32_t start_arg, weft_spawn_result_t *ret);
WEFT_IMPORT("mode") weft_thread_mode_t weft_thread_mode(void);
WEFT_IMPORT("current-id") uint32_t weft_thread_current_id(void);
WEFT_IMPORT("exit-current") _Noreturn void weft_thread_exit_current(void);
WEFT_IMPORT("finish") _Noreturn void weft_thread_finish(uint32_t result);
#else
static inline weft_thread_mode_t weft_thread_mode(void) { return WEFT_MODE_LOCAL; }
#endif

/* Synchronisation that cannot work across chained threads (chain mode). */
typedef enum {
    WEFT_SYNC_COND_WAIT = 0,
    WEFT_SYNC_BARRIER_WAIT = 1,
    WEFT_SYNC_MUTEX_HELD = 2,
    WEFT_SYNC_OPENMP_ORDERED = 3, /* no longer sent: ordered loops go home */
    WEFT_SYNC_THREAD_CANCEL = 4,
    WEFT_SYNC_THREAD_SIGNAL = 5,
} weft_sync_op_t;

#ifdef __wasm__
WEFT_IMPORT("chain-unsupported") _Noreturn void weft_chain_unsupported(weft_sync_op_t op);

/* Heap arenas of chained threads (used by libweft's allocator): a new
 * chunk of `size` bytes for the calling thread's arena (0: no memory left),
 * giving a chunk back, and the arena a heap address belongs to (0: none). */
WEFT_IMPORT("arena-grow") uint32_t weft_arena_grow(uint32_t size);
WEFT_IMPORT("arena-release") void weft_arena_release(uint32_t chunk);
WEFT_IMPORT("arena-lookup") uint32_t weft_arena_lookup(uint32_t addr);

/* A chained thread is about to wait for another thread / is back: it
 * gives its worker slot up meanwhile (libweft's pthread_join does this). */
WEFT_IMPORT("wait-begin") void weft_wait_begin(void);
WEFT_IMPORT("wait-end") void weft_wait_end(void);

/* One slice of a wait with no time limit: memory.atomic.wait32 at `addr`
 * for `slice_ns` (0 woken, 1 not equal, 2 the slice ended), counted by the
 * host as a wait for good (local mode's deadlock detector). */
WEFT_IMPORT("wait-slice") uint32_t weft_wait_slice(const volatile void *addr, int32_t expected,
                                                   int64_t slice_ns);

/* How many threads can run at once on this host. */
WEFT_IMPORT("available-parallelism") uint32_t weft_available_parallelism(void);

/* The bottom of the calling thread's stack: the host stops a frame that
 * would start just below it (libweft sets it as each thread starts). */
WEFT_IMPORT("set-stack-bottom") void weft_set_stack_bottom(uint32_t bottom);

/* Chain mode synchronisation through the home host (see wit/threads.wit):
 * results are 0 or an errno; timeouts in ns, negative for none. */
#define WEFT_SYNC_TRY 4
/* A lock whose data may stay in the thread's copy while the thread runs
 * away from home (a FILE's lock: its buffer travels with the thread's
 * output instead); at home it is a home lock like any other. */
#define WEFT_SYNC_FILE (1u << 9)
/* sync-cond-wait: the wait is on an address (memory.atomic.wait). */
#define WEFT_SYNC_FUTEX 256
WEFT_IMPORT("sync-lock") int32_t weft_sync_lock(const void *addr, uint32_t flags, int64_t timeout_ns);
WEFT_IMPORT("sync-unlock") int32_t weft_sync_unlock(const void *addr, uint32_t flags);
WEFT_IMPORT("sync-barrier") int32_t weft_sync_barrier(const void *addr, uint32_t count);
WEFT_IMPORT("sync-cond-wait")
int32_t weft_sync_cond_wait(const void *cond, const void *mutex, uint32_t flags, int64_t timeout_ns);
WEFT_IMPORT("sync-cond-wake") uint32_t weft_sync_cond_wake(const void *cond, int all);
WEFT_IMPORT("sync-sem-init") void weft_sync_sem_init(const void *addr, uint32_t value);
WEFT_IMPORT("sync-sem-wait")
int32_t weft_sync_sem_wait(const void *addr, int nonblocking, int64_t timeout_ns);
WEFT_IMPORT("sync-sem-post") int32_t weft_sync_sem_post(const void *addr);
WEFT_IMPORT("sync-sem-value") uint32_t weft_sync_sem_value(const void *addr);
WEFT_IMPORT("sync-point") void weft_sync_point(void);
/* An atomic operation on the home memory between a release and an
 * acquire; returns the old value (see wit/threads.wit for `op`). */
/* Before an atomic load: an acquire unless home published nothing new. */
WEFT_IMPORT("sync-load") void weft_sync_load(void);
/* A release, libweft's `routine` run at home on the main memory as this
 * thread (its TLS block `tls`) on request `op` about `thread` (a
 * create's start routine, argument and attributes, a timed join's
 * deadline in realtime nanoseconds or -1), an acquire; the routine's
 * result (see wit/threads.wit). */
WEFT_IMPORT("sync-at-home")
uint64_t weft_sync_at_home(void *(*routine)(void *), void *tls, uint32_t op, void *thread,
                           void *(*start)(void *), void *arg, const void *attr,
                           int64_t deadline_ns);
/* A release and an acquire (a sleep in chain mode); the slot is kept. */
WEFT_IMPORT("sync-pause") void weft_sync_pause(void);
#define WEFT_ATOMIC_CAS 16
#define WEFT_ATOMIC_STORE 18
WEFT_IMPORT("sync-atomic")
uint64_t weft_sync_atomic(uint32_t op, uint32_t bytes, const void *addr, uint64_t value,
                          uint64_t expected);
#define WEFT_SYNC_RWLOCK_READ 8
#define WEFT_SYNC_RWLOCK_WRITE 16
#endif

/* Merge regions (chain mode): how a region's bytes combine when a chained
 * thread's changes merge back into its parent. */
typedef enum {
    WEFT_MERGE_BYTEWISE = 0,
    WEFT_MERGE_IGNORE = 1,
    WEFT_MERGE_SUM = 2,
    WEFT_MERGE_SUBTRACT = 3,
    WEFT_MERGE_PRODUCT = 4,
    WEFT_MERGE_MIN = 5,
    WEFT_MERGE_MAX = 6,
    WEFT_MERGE_XOR = 7,
} weft_merge_op_t;

typedef enum {
    WEFT_ELEM_I32 = 0,
    WEFT_ELEM_I64 = 1,
    WEFT_ELEM_F32 = 2,
    WEFT_ELEM_F64 = 3,
} weft_elem_type_t;

/* What weft_merge_region returns: 0, or why the region was refused. */
enum {
    WEFT_REGION_OK = 0,
    WEFT_REGION_EMPTY = 1,
    WEFT_REGION_OVERLAPS = 2,
    WEFT_REGION_OUT_OF_BOUNDS = 3,
    WEFT_REGION_MISALIGNED = 4,
};

/* `result<_, region-error>` return area. */
typedef struct {
    uint8_t is_err;
    uint8_t error; /* WIT region-error case */
} weft_region_result_t;

#ifdef __wasm__
WEFT_IMPORT("register-merge-region")
void weft_register_merge_region(uint32_t addr, uint32_t len, weft_merge_op_t op,
                                weft_elem_type_t type, weft_region_result_t *ret);
#else
static inline void weft_register_merge_region(uint32_t addr, uint32_t len, weft_merge_op_t op,
                                              weft_elem_type_t type, weft_region_result_t *ret) {
    (void)addr, (void)len, (void)op, (void)type;
    ret->is_err = 0;
    ret->error = 0;
}
#endif

/* Registers `len` bytes at `addr` as a merge region; returns a
 * WEFT_REGION_* code. */
static inline int weft_merge_region(const void *addr, size_t len, weft_merge_op_t op,
                                    weft_elem_type_t type) {
    weft_region_result_t result;
    weft_register_merge_region((uint32_t)(uintptr_t)addr, (uint32_t)len, op, type, &result);
    return result.is_err ? 1 + result.error : WEFT_REGION_OK;
}

#undef WEFT_IMPORT

#ifdef __cplusplus
}
#endif
#endif
