/* Weft shared state (WIT `weft:state/state@0.1.0`) for C guests: the
 * core-ABI imports (see wit/state.wit) and a plain C API over them.
 *
 * Every call returns 0 or a WEFT_STATE_* error. Values a call returns are
 * malloc'd: free() them (an empty value is NULL). Keys are NUL-terminated
 * strings. */
#ifndef WEFT_STATE_H
#define WEFT_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors: the WIT `state-error` case + 1. */
enum {
    WEFT_STATE_OK = 0,
    WEFT_STATE_NOT_FOUND = 1,
    WEFT_STATE_OUT_OF_BOUNDS = 2,
    WEFT_STATE_TOO_LARGE = 3,
    WEFT_STATE_NOT_LOCKED = 4,
    WEFT_STATE_TIMED_OUT = 5,
    WEFT_STATE_UNAVAILABLE = 6,
};

typedef enum { WEFT_TIER_LOCAL = 0, WEFT_TIER_GLOBAL = 1 } weft_tier_t;
typedef enum { WEFT_LOCK_READ = 0, WEFT_LOCK_WRITE = 1 } weft_lock_kind_t;

/* Return areas of the lowered functions. */
typedef struct {
    uint8_t is_err;
    uint8_t error;
} weft_state_unit_result_t;

typedef struct {
    uint8_t is_err;
    union {
        struct {
            uint8_t *ptr;
            size_t len;
        } ok;
        uint8_t error;
    } val;
} weft_state_list_result_t;

typedef struct {
    uint8_t is_err;
    union {
        uint32_t ok;
        uint8_t error;
    } val;
} weft_state_u32_result_t;

typedef struct {
    uint8_t is_err;
    union {
        uint64_t ok;
        uint8_t error;
    } val;
} weft_state_u64_result_t;

#define WEFT_STATE_IMPORT(name) \
    __attribute__((import_module("weft:state/state@0.1.0"), import_name(name)))

WEFT_STATE_IMPORT("get")
void weft_state_raw_get(const char *key, size_t key_len, weft_state_list_result_t *ret);
WEFT_STATE_IMPORT("get-range")
void weft_state_raw_get_range(const char *key, size_t key_len, uint64_t offset, uint32_t len,
                              weft_state_list_result_t *ret);
WEFT_STATE_IMPORT("set")
void weft_state_raw_set(const char *key, size_t key_len, const void *data, size_t len,
                        weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("set-range")
void weft_state_raw_set_range(const char *key, size_t key_len, uint64_t offset, const void *data,
                              size_t len, weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("size")
void weft_state_raw_size(const char *key, size_t key_len, weft_state_u64_result_t *ret);
WEFT_STATE_IMPORT("push")
void weft_state_raw_push(const char *key, size_t key_len, weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("push-partial")
void weft_state_raw_push_partial(const char *key, size_t key_len, weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("pull")
void weft_state_raw_pull(const char *key, size_t key_len, weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("pull-range")
void weft_state_raw_pull_range(const char *key, size_t key_len, uint64_t offset, uint32_t len,
                               weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("delete")
void weft_state_raw_delete(const char *key, size_t key_len, weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("append")
void weft_state_raw_append(const char *key, size_t key_len, const void *data, size_t len,
                           weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("appended-count")
void weft_state_raw_appended_count(const char *key, size_t key_len, weft_state_u32_result_t *ret);
WEFT_STATE_IMPORT("read-appended")
void weft_state_raw_read_appended(const char *key, size_t key_len, uint32_t index,
                                  weft_state_list_result_t *ret);
WEFT_STATE_IMPORT("clear-appended")
void weft_state_raw_clear_appended(const char *key, size_t key_len, weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("lock")
void weft_state_raw_lock(const char *key, size_t key_len, weft_tier_t tier, weft_lock_kind_t kind,
                         weft_state_unit_result_t *ret);
WEFT_STATE_IMPORT("unlock")
void weft_state_raw_unlock(const char *key, size_t key_len, weft_tier_t tier,
                           weft_lock_kind_t kind, weft_state_unit_result_t *ret);

#undef WEFT_STATE_IMPORT

static inline int weft_state_unit_(weft_state_unit_result_t r) { return r.is_err ? 1 + r.error : 0; }

/* The whole value of `key` into *data (malloc'd) and *len. */
static inline int weft_state_get(const char *key, uint8_t **data, size_t *len) {
    weft_state_list_result_t r;
    weft_state_raw_get(key, strlen(key), &r);
    if (r.is_err) return 1 + r.val.error;
    *data = r.val.ok.len ? r.val.ok.ptr : NULL; /* an empty list has no block */
    *len = r.val.ok.len;
    return 0;
}

/* `len` bytes of `key` from `offset`, copied into `out`. */
static inline int weft_state_get_range(const char *key, uint64_t offset, uint32_t len, void *out) {
    weft_state_list_result_t r;
    weft_state_raw_get_range(key, strlen(key), offset, len, &r);
    if (r.is_err) return 1 + r.val.error;
    memcpy(out, r.val.ok.ptr, r.val.ok.len);
    if (r.val.ok.len) free(r.val.ok.ptr);
    return 0;
}

static inline int weft_state_set(const char *key, const void *data, size_t len) {
    weft_state_unit_result_t r;
    weft_state_raw_set(key, strlen(key), data, len, &r);
    return weft_state_unit_(r);
}

static inline int weft_state_set_range(const char *key, uint64_t offset, const void *data,
                                       size_t len) {
    weft_state_unit_result_t r;
    weft_state_raw_set_range(key, strlen(key), offset, data, len, &r);
    return weft_state_unit_(r);
}

static inline int weft_state_size(const char *key, uint64_t *size) {
    weft_state_u64_result_t r;
    weft_state_raw_size(key, strlen(key), &r);
    if (r.is_err) return 1 + r.val.error;
    *size = r.val.ok;
    return 0;
}

#define WEFT_STATE_KEY_OP(name)                                   \
    static inline int weft_state_##name(const char *key) {       \
        weft_state_unit_result_t r;                               \
        weft_state_raw_##name(key, strlen(key), &r);              \
        return weft_state_unit_(r);                               \
    }
WEFT_STATE_KEY_OP(push)
WEFT_STATE_KEY_OP(push_partial)
WEFT_STATE_KEY_OP(pull)
WEFT_STATE_KEY_OP(delete)
WEFT_STATE_KEY_OP(clear_appended)
#undef WEFT_STATE_KEY_OP

/* Brings `len` bytes from `offset` of the global value into the local one. */
static inline int weft_state_pull_range(const char *key, uint64_t offset, uint32_t len) {
    weft_state_unit_result_t r;
    weft_state_raw_pull_range(key, strlen(key), offset, len, &r);
    return weft_state_unit_(r);
}

static inline int weft_state_append(const char *key, const void *data, size_t len) {
    weft_state_unit_result_t r;
    weft_state_raw_append(key, strlen(key), data, len, &r);
    return weft_state_unit_(r);
}

static inline int weft_state_appended_count(const char *key, uint32_t *count) {
    weft_state_u32_result_t r;
    weft_state_raw_appended_count(key, strlen(key), &r);
    if (r.is_err) return 1 + r.val.error;
    *count = r.val.ok;
    return 0;
}

/* Record `index` of `key` into *data (malloc'd) and *len. */
static inline int weft_state_read_appended(const char *key, uint32_t index, uint8_t **data,
                                           size_t *len) {
    weft_state_list_result_t r;
    weft_state_raw_read_appended(key, strlen(key), index, &r);
    if (r.is_err) return 1 + r.val.error;
    *data = r.val.ok.len ? r.val.ok.ptr : NULL; /* an empty list has no block */
    *len = r.val.ok.len;
    return 0;
}

static inline int weft_state_lock(const char *key, weft_tier_t tier, weft_lock_kind_t kind) {
    weft_state_unit_result_t r;
    weft_state_raw_lock(key, strlen(key), tier, kind, &r);
    return weft_state_unit_(r);
}

static inline int weft_state_unlock(const char *key, weft_tier_t tier, weft_lock_kind_t kind) {
    weft_state_unit_result_t r;
    weft_state_raw_unlock(key, strlen(key), tier, kind, &r);
    return weft_state_unit_(r);
}

#ifdef __cplusplus
}
#endif
#endif
