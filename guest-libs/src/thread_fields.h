/* Fields of wasi-libc's struct pthread (musl's src/internal/pthread_impl.h)
 * on wasm32 that libweft reads or sets, by offset: the struct is libc's
 * private type. The offsets were read from the loads and stores libc.a
 * itself makes (pthread_create stores tid at 20, pthread_setcancelstate
 * canceldisable at 36, pthread_setcanceltype cancelasync at 37,
 * pthread_getattr_np reads stack at 48, stack_size at 52, guard_size at
 * 56; pthread_join frees map_base at 40, of map_size at 44); re-check them if the libc changes (guest-libs/README.md). */
#ifndef WEFT_THREAD_FIELDS_H
#define WEFT_THREAD_FIELDS_H

#include <pthread.h>

#define THREAD_FIELD(t, type, offset) (*(type volatile *)((char *)(t) + (offset)))

/* musl's `sysinfo` word, which nothing reads on wasm: libweft keeps the
 * thread's CPU-clock id there (see sched.c). */
#define THREAD_SYSINFO(t) THREAD_FIELD(t, unsigned, 12)
/* The thread's wasi thread id (the host's). */
#define THREAD_TID(t) THREAD_FIELD(t, int, 20)
/* The block libc allocated for the thread (stack, TLS, struct pthread;
 * none when the program gave a stack large enough to hold them). */
#define THREAD_MAP_BASE(t) THREAD_FIELD(t, unsigned char *, 40)
#define THREAD_MAP_SIZE(t) THREAD_FIELD(t, size_t, 44)
/* A cancellation request is pending. */
#define THREAD_CANCEL(t) THREAD_FIELD(t, int, 32)
/* PTHREAD_CANCEL_ENABLE, _DISABLE, or musl's _MASKED (2: a cancellation
 * point returns ECANCELED instead of acting). */
#define THREAD_CANCELDISABLE(t) THREAD_FIELD(t, unsigned char, 36)
#define THREAD_CANCELASYNC(t) THREAD_FIELD(t, unsigned char, 37)

#define CANCEL_MASKED 2

/* What pthread_getattr_np reports: the stack's top (it grows down), its
 * size, the guard size. */
#define THREAD_STACK(t) THREAD_FIELD(t, void *, 48)
#define THREAD_STACK_SIZE(t) THREAD_FIELD(t, size_t, 52)
#define THREAD_GUARD_SIZE(t) THREAD_FIELD(t, size_t, 56)

/* The newest cleanup handler (pthread_cleanup_push links them through
 * musl's struct __ptcb; __do_cleanup_push stores it at 64). */
struct weft_cleanup {
    void (*run)(void *);
    void *arg;
    struct weft_cleanup *next;
};
#define THREAD_CANCELBUF(t) THREAD_FIELD(t, struct weft_cleanup *, 64)

#endif
