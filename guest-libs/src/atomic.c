/* The generic atomic library calls compiler-rt for wasm32 lacks: clang
 * emits them for atomics wider than 8 bytes (`long double` in an OpenMP
 * `atomic`, a C11 _Atomic struct). They are exact under a lock picked by
 * address; every access to such an object goes through them. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LOCKS 64
static _Atomic uint32_t locks[LOCKS];

static _Atomic uint32_t *lock_for(const void *addr) {
    return &locks[((uintptr_t)addr >> 4) % LOCKS];
}

/* A futex lock: 0 free, 1 held, 2 held with sleepers. */
static void take(_Atomic uint32_t *lock) {
    uint32_t free = 0;
    if (atomic_compare_exchange_strong(lock, &free, 1)) return;
    while (atomic_exchange(lock, 2) != 0) __builtin_wasm_memory_atomic_wait32((int *)lock, 2, -1);
}

static void give(_Atomic uint32_t *lock) {
    if (atomic_exchange(lock, 0) == 2) __builtin_wasm_memory_atomic_notify((int *)lock, 1);
}

/* The C names are the builtins' own, which C cannot define directly. */
#pragma redefine_extname weft_atomic_load __atomic_load
#pragma redefine_extname weft_atomic_store __atomic_store
#pragma redefine_extname weft_atomic_exchange __atomic_exchange
#pragma redefine_extname weft_atomic_compare_exchange __atomic_compare_exchange

void weft_atomic_load(size_t size, void *src, void *dst, int order) {
    (void)order;
    _Atomic uint32_t *lock = lock_for(src);
    take(lock);
    memcpy(dst, src, size);
    give(lock);
}

void weft_atomic_store(size_t size, void *dst, void *src, int order) {
    (void)order;
    _Atomic uint32_t *lock = lock_for(dst);
    take(lock);
    memcpy(dst, src, size);
    give(lock);
}

void weft_atomic_exchange(size_t size, void *ptr, void *value, void *old, int order) {
    (void)order;
    _Atomic uint32_t *lock = lock_for(ptr);
    take(lock);
    memcpy(old, ptr, size);
    memcpy(ptr, value, size);
    give(lock);
}

bool weft_atomic_compare_exchange(size_t size, void *ptr, void *expected, void *desired,
                                  int success, int failure) {
    (void)success, (void)failure;
    _Atomic uint32_t *lock = lock_for(ptr);
    take(lock);
    bool equal = memcmp(ptr, expected, size) == 0;
    if (equal) memcpy(ptr, desired, size);
    else memcpy(expected, ptr, size);
    give(lock);
    return equal;
}
