/* Weft thread interface (WIT `weft:threads/threads@0.1.0`) for C guests.
 * The core-ABI lowering of each WIT function; see wit/threads.wit. */
#ifndef WEFT_THREADS_H
#define WEFT_THREADS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_IMPORT(name) \
    __attribute__((import_module("weft:threads/threads@0.1.0"), import_name(name)))

typedef enum { WEFT_MODE_LOCAL = 0, WEFT_MODE_CHAIN = 1 } weft_thread_mode_t;
typedef enum { WEFT_SPAWN_AGAIN = 0, WEFT_SPAWN_NOT_SUPPORTED = 1 } weft_spawn_errno_t;

/* `result<u32, errno>` return area. */
typedef struct {
    uint8_t is_err;
    uint32_t value; /* thread id, or a weft_spawn_errno_t */
} weft_spawn_result_t;

WEFT_IMPORT("spawn") void weft_thread_spawn(uint32_t start_arg, weft_spawn_result_t *ret);
WEFT_IMPORT("mode") weft_thread_mode_t weft_thread_mode(void);
WEFT_IMPORT("current-id") uint32_t weft_thread_current_id(void);
WEFT_IMPORT("exit-current") _Noreturn void weft_thread_exit_current(void);

#undef WEFT_IMPORT

#ifdef __cplusplus
}
#endif
#endif
