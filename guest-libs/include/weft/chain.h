/* Weft functions (WIT `weft:chain/chain@0.1.0`) for C guests: the core-ABI
 * imports (see wit/chain.wit) and a plain C API over them.
 *
 * Every call returns 0 or a WEFT_CALL_* error. Bytes a call returns are
 * malloc'd: free() them (empty is NULL). */
#ifndef WEFT_CHAIN_H
#define WEFT_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors: the WIT `call-error` case + 1. */
enum {
    WEFT_CALL_OK = 0,
    WEFT_CALL_UNKNOWN_FUNCTION = 1,
    WEFT_CALL_NO_SUCH_CALL = 2,
    WEFT_CALL_ALREADY_AWAITED = 3,
    WEFT_CALL_NOT_FINISHED = 4,
    WEFT_CALL_TRAPPED = 5,
    WEFT_CALL_FAILED_TO_START = 6,
    WEFT_CALL_TOO_LARGE = 7,
};

typedef struct {
    uint8_t *ptr;
    size_t len;
} weft_chain_list_t;

typedef struct {
    uint8_t is_err;
    uint8_t error;
} weft_chain_unit_result_t;

typedef struct {
    uint8_t is_err;
    union {
        uint32_t ok;
        int32_t code;
        uint8_t error;
    } val;
} weft_chain_u32_result_t;

typedef struct {
    uint8_t is_err;
    union {
        weft_chain_list_t ok;
        uint8_t error;
    } val;
} weft_chain_list_result_t;

#define WEFT_CHAIN_IMPORT(name) \
    __attribute__((import_module("weft:chain/chain@0.1.0"), import_name(name)))

WEFT_CHAIN_IMPORT("input") void weft_chain_raw_input(weft_chain_list_t *ret);
WEFT_CHAIN_IMPORT("set-output")
void weft_chain_raw_set_output(const void *data, size_t len, weft_chain_unit_result_t *ret);
WEFT_CHAIN_IMPORT("call")
void weft_chain_raw_call(const char *name, size_t name_len, const void *input, size_t input_len,
                         weft_chain_u32_result_t *ret);
WEFT_CHAIN_IMPORT("await") void weft_chain_raw_await(uint32_t id, weft_chain_u32_result_t *ret);
WEFT_CHAIN_IMPORT("await-all")
void weft_chain_raw_await_all(const uint32_t *ids, size_t n, weft_chain_list_result_t *ret);
WEFT_CHAIN_IMPORT("output") void weft_chain_raw_output(uint32_t id, weft_chain_list_result_t *ret);

#undef WEFT_CHAIN_IMPORT

/* The bytes this function was invoked with (malloc'd; NULL when none). */
static inline uint8_t *weft_chain_input(size_t *len) {
    weft_chain_list_t list;
    weft_chain_raw_input(&list);
    *len = list.len;
    return list.len ? list.ptr : NULL;
}

/* The input as a NUL-terminated string in buf (cut to size - 1 bytes);
 * returns the input's full length. */
static inline size_t weft_chain_input_string(char *buf, size_t size) {
    size_t len;
    uint8_t *input = weft_chain_input(&len);
    size_t n = len < size ? len : size - 1;
    if (n) memcpy(buf, input, n);
    buf[n] = 0;
    free(input);
    return len;
}

static inline int weft_chain_set_output(const void *data, size_t len) {
    weft_chain_unit_result_t r;
    weft_chain_raw_set_output(data, len, &r);
    return r.is_err ? 1 + r.error : 0;
}

/* Starts function `name` with `input`; its call id in *id. */
static inline int weft_chain_call(const char *name, const void *input, size_t len, uint32_t *id) {
    weft_chain_u32_result_t r;
    weft_chain_raw_call(name, strlen(name), input, len, &r);
    if (r.is_err) return 1 + r.val.error;
    *id = r.val.ok;
    return 0;
}

/* Waits for call `id`; its exit code in *code. */
static inline int weft_chain_await(uint32_t id, int32_t *code) {
    weft_chain_u32_result_t r;
    weft_chain_raw_await(id, &r);
    if (r.is_err) return 1 + r.val.error;
    *code = r.val.code;
    return 0;
}

/* Waits for the `n` calls in `ids`; their exit codes into `codes`. */
static inline int weft_chain_await_all(const uint32_t *ids, size_t n, int32_t *codes) {
    weft_chain_list_result_t r;
    weft_chain_raw_await_all(ids, n, &r);
    if (r.is_err) return 1 + r.val.error;
    if (r.val.ok.len) {
        memcpy(codes, r.val.ok.ptr, r.val.ok.len * sizeof *codes);
        free(r.val.ok.ptr);
    }
    return 0;
}

/* The output of finished call `id` (malloc'd; NULL when empty). */
static inline int weft_chain_output(uint32_t id, uint8_t **data, size_t *len) {
    weft_chain_list_result_t r;
    weft_chain_raw_output(id, &r);
    if (r.is_err) return 1 + r.val.error;
    *data = r.val.ok.len ? r.val.ok.ptr : NULL;
    *len = r.val.ok.len;
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif
