/* The program's own atomic operations, as weft-cc lowers them (see
 * lower-atomics.py): each is a call here.
 *
 * Local mode: the same atomic operation, on the one shared memory.
 * Chain mode: every thread runs on its own copy of memory, where a wasm
 * atomic would change that copy only (two threads' updates would meet as
 * a conflict at the merge, or one would be lost). Here the home host
 * makes the operation on its memory, the home of every byte, between a
 * release (the thread's writes go home) and an acquire (its copy takes
 * what home has): one value for every thread, and a sync point for the
 * memory around it, as a sequentially consistent atomic is. One sync
 * point per operation; a load is a sync point and a read of the copy. */
#include <stdint.h>
#include <string.h>

#include <weft/threads.h>

#include "chain.h"

enum {
    OP_XCHG, OP_ADD, OP_SUB, OP_AND, OP_NAND, OP_OR, OP_XOR,
    OP_MAX, OP_MIN, OP_UMAX, OP_UMIN, OP_FADD, OP_FSUB, OP_FMAX, OP_FMIN,
};

/* weft_chain_mode caches the answer before the first thread starts, so
 * no copy writes it; read here without a call. */
static inline int chained(void) {
    int known = weft_chained;
    return __builtin_expect(known == 0, 1) ? 0 : weft_chain_mode();
}

/* The new value of an integer operation on `bytes`-wide values
 * (zero-extended in 64 bits; max and min compare them signed). */
static uint64_t apply_int(int op, int bytes, uint64_t old, uint64_t v) {
    int shift = 64 - 8 * bytes;
    int64_t so = (int64_t)(old << shift) >> shift, sv = (int64_t)(v << shift) >> shift;
    switch (op) {
    case OP_XCHG: return v;
    case OP_ADD: return old + v;
    case OP_SUB: return old - v;
    case OP_AND: return old & v;
    case OP_NAND: return ~(old & v);
    case OP_OR: return old | v;
    case OP_XOR: return old ^ v;
    case OP_MAX: return so > sv ? old : v;
    case OP_MIN: return so < sv ? old : v;
    case OP_UMAX: return old > v ? old : v;
    case OP_UMIN: return old < v ? old : v;
    default: return v;
    }
}

static double apply_float(int op, double old, double v) {
    switch (op) {
    case OP_FADD: return old + v;
    case OP_FSUB: return old - v;
    case OP_FMAX: return old > v || v != v ? old : v;
    case OP_FMIN: return old < v || v != v ? old : v;
    default: return v; /* xchg */
    }
}

static uint64_t mask_of(int bytes) { return bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1; }

static uint64_t read_plain(volatile void *p, int bytes) {
    switch (bytes) {
    case 1: return *(volatile uint8_t *)p;
    case 2: return *(volatile uint16_t *)p;
    case 4: return *(volatile uint32_t *)p;
    default: return *(volatile uint64_t *)p;
    }
}

/* Chain mode: `op` made by the home host on its memory, between a
 * release and an acquire; returns the old value. */
static uint64_t home_rmw(int op, int bytes, volatile void *p, uint64_t v) {
    return weft_home_atomic((uint32_t)op, (uint32_t)bytes, (const void *)p, v & mask_of(bytes), 0);
}

/* Local mode: a compare-and-swap loop for any operation and width. */
#define NATIVE_RMW(T, bytes)                                                                   \
    static uint64_t native_rmw_##bytes(int op, volatile T *p, uint64_t v) {                  \
        T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                         \
        for (;;) {                                                                             \
            T next = (T)apply_int(op, bytes, old, v);                                         \
            if (__atomic_compare_exchange_n(p, &old, next, 1, __ATOMIC_SEQ_CST,              \
                                            __ATOMIC_SEQ_CST))                                \
                return old;                                                                    \
        }                                                                                      \
    }
NATIVE_RMW(uint8_t, 1)
NATIVE_RMW(uint16_t, 2)
NATIVE_RMW(uint32_t, 4)
NATIVE_RMW(uint64_t, 8)

uint32_t __weft_atomic_rmw32(int op, int bytes, void *p, uint32_t v) {
    if (chained()) return (uint32_t)home_rmw(op, bytes, p, v);
    if (bytes == 4) {
        /* The common operations as single instructions. */
        switch (op) {
        case OP_XCHG: return __atomic_exchange_n((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        case OP_ADD: return __atomic_fetch_add((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        case OP_SUB: return __atomic_fetch_sub((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        case OP_AND: return __atomic_fetch_and((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        case OP_OR: return __atomic_fetch_or((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        case OP_XOR: return __atomic_fetch_xor((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        default: return (uint32_t)native_rmw_4(op, p, v);
        }
    }
    return bytes == 1 ? (uint32_t)native_rmw_1(op, p, v) : (uint32_t)native_rmw_2(op, p, v);
}

uint64_t __weft_atomic_rmw64(int op, void *p, uint64_t v) {
    if (chained()) return home_rmw(op, 8, p, v);
    switch (op) {
    case OP_XCHG: return __atomic_exchange_n((uint64_t *)p, v, __ATOMIC_SEQ_CST);
    case OP_ADD: return __atomic_fetch_add((uint64_t *)p, v, __ATOMIC_SEQ_CST);
    case OP_SUB: return __atomic_fetch_sub((uint64_t *)p, v, __ATOMIC_SEQ_CST);
    default: return native_rmw_8(op, p, v);
    }
}

/* Chain mode: a compare-and-swap loop at home, so these meet the integer
 * operations on the same value. */
#define FLOAT_RMW(name, T, U)                                                                  \
    T name(int op, void *p, T v) {                                                             \
        U old_bits = chained() ? (U)weft_home_atomic(OP_OR, sizeof(U), p, 0, 0)                \
                               : __atomic_load_n((U *)p, __ATOMIC_SEQ_CST);                    \
        for (;;) {                                                                             \
            T old, next;                                                                       \
            memcpy(&old, &old_bits, sizeof old);                                               \
            next = (T)apply_float(op, old, v);                                                 \
            U next_bits;                                                                       \
            memcpy(&next_bits, &next, sizeof next);                                            \
            if (chained()) {                                                                   \
                U seen = (U)weft_home_atomic(WEFT_ATOMIC_CAS, sizeof(U), p, next_bits,         \
                                             old_bits);                                        \
                if (seen == old_bits) return old;                                              \
                old_bits = seen;                                                               \
                continue;                                                                      \
            }                                                                                  \
            if (__atomic_compare_exchange_n((U *)p, &old_bits, next_bits, 1,                   \
                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))               \
                return old;                                                                    \
        }                                                                                      \
    }
FLOAT_RMW(__weft_atomic_rmwf32, float, uint32_t)
FLOAT_RMW(__weft_atomic_rmwf64, double, uint64_t)

uint32_t __weft_atomic_cas32(int bytes, void *p, uint32_t expected, uint32_t desired) {
    if (chained())
        return (uint32_t)weft_home_atomic(WEFT_ATOMIC_CAS, (uint32_t)bytes, p, desired, expected);
    switch (bytes) {
    case 1: {
        uint8_t e = (uint8_t)expected;
        __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        return e;
    }
    case 2: {
        uint16_t e = (uint16_t)expected;
        __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        return e;
    }
    default: {
        uint32_t e = expected;
        __atomic_compare_exchange_n((uint32_t *)p, &e, desired, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        return e;
    }
    }
}

uint64_t __weft_atomic_cas64(void *p, uint64_t expected, uint64_t desired) {
    if (chained()) return weft_home_atomic(WEFT_ATOMIC_CAS, 8, p, desired, expected);
    uint64_t e = expected;
    __atomic_compare_exchange_n((uint64_t *)p, &e, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return e;
}

/* A load is an acquire: the copy takes what home has, when home has
 * something new (a load point, which also lets a thread queued for a slot
 * run, so a spin on a flag cannot keep the writer from running). */
uint32_t __weft_atomic_load32(int bytes, void *p) {
    if (chained()) {
        weft_home_load_point();
        return (uint32_t)read_plain(p, bytes);
    }
    switch (bytes) {
    case 1: return __atomic_load_n((uint8_t *)p, __ATOMIC_SEQ_CST);
    case 2: return __atomic_load_n((uint16_t *)p, __ATOMIC_SEQ_CST);
    default: return __atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST);
    }
}

uint64_t __weft_atomic_load64(void *p) {
    if (chained()) {
        weft_home_load_point();
        return read_plain(p, 8);
    }
    return __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
}

void __weft_atomic_store32(int bytes, void *p, uint32_t v) {
    if (chained()) {
        weft_home_atomic(WEFT_ATOMIC_STORE, (uint32_t)bytes, p, v, 0);
        return;
    }
    switch (bytes) {
    case 1: __atomic_store_n((uint8_t *)p, (uint8_t)v, __ATOMIC_SEQ_CST); break;
    case 2: __atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_SEQ_CST); break;
    default: __atomic_store_n((uint32_t *)p, v, __ATOMIC_SEQ_CST); break;
    }
}

void __weft_atomic_store64(void *p, uint64_t v) {
    if (chained()) {
        weft_home_atomic(WEFT_ATOMIC_STORE, 8, p, v, 0);
        return;
    }
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST);
}

void __weft_atomic_fence(void) {
    if (chained()) weft_home_sync_point();
    else __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Waits and wake-ups on an address (memory.atomic.wait32/64 and notify):
 * from weft-cc's wait/notify builtins (lower-atomics.py) and from the code
 * of other languages' programs linked with libweft (Rust's std builds its
 * locks, condition variables, channels and thread parking on them; see
 * the host's lower_atomics.rs). Chain mode: the value is compared, after
 * the acquire of taking the home lock of its address, under that lock,
 * and the wait is on a home condition variable named by the address,
 * entered before the lock is released; notify takes the same lock. A
 * change made at home before its notify, as every futex user does, is
 * either seen by the comparison or wakes the wait: no lost wake-up.
 * Results as wasm's: 0 woken, 1 not equal, 2 timed out. */
#define WAIT(name, T, bits)                                                                    \
    uint32_t name(void *p, T expected, int64_t timeout_ns) {                                   \
        if (!chained())                                                                        \
            return (uint32_t)__builtin_wasm_memory_atomic_wait##bits((T *)p, expected,       \
                                                                     timeout_ns);            \
        weft_home_lock(p, 0, -1);                                                              \
        if (*(volatile T *)p != expected) {                                                    \
            weft_home_unlock(p, 0);                                                            \
            return 1;                                                                          \
        }                                                                                      \
        int rc = weft_home_futex_wait(p, timeout_ns < 0 ? -1 : timeout_ns);                 \
        weft_home_unlock(p, 0);                                                                \
        return rc == 0 ? 0 : 2;                                                                \
    }
WAIT(__weft_atomic_wait32, int32_t, 32)
WAIT(__weft_atomic_wait64, int64_t, 64)

uint32_t __weft_atomic_notify(void *p, uint32_t count) {
    if (!chained()) return __builtin_wasm_memory_atomic_notify((int *)p, count);
    if (count == 0) return 0;
    weft_home_lock(p, 0, -1);
    uint32_t woken = weft_home_cond_wake(p, count != 1);
    weft_home_unlock(p, 0);
    return woken < count ? woken : count;
}
