/* Weft's setjmp.h. wasi-libc's refuses to compile unless the program is
 * built for wasm exception handling, which clang 19 emits only in its
 * legacy form, and wasmtime 48 does not run that. Here setjmp compiles
 * and returns 0; longjmp, which would need the jump, ends the program
 * with one line naming the call and the thread (libweft's portable.c).
 * So programs that keep setjmp for an error path they never take run. */
#ifndef WEFT_SETJMP_H
#define WEFT_SETJMP_H

#if defined(__wasm_exception_handling__)
#include_next <setjmp.h>
#else

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long long __jmp_buf[8];
typedef struct __jmp_buf_tag {
    __jmp_buf __jb;
    unsigned long __fl;
    unsigned long __ss[128 / sizeof(long)];
} jmp_buf[1];
typedef jmp_buf sigjmp_buf;

int setjmp(jmp_buf) __attribute__((__returns_twice__));
_Noreturn void longjmp(jmp_buf, int);
int _setjmp(jmp_buf) __attribute__((__returns_twice__));
_Noreturn void _longjmp(jmp_buf, int);
int sigsetjmp(sigjmp_buf, int) __attribute__((__returns_twice__));
_Noreturn void siglongjmp(sigjmp_buf, int);

#ifdef __cplusplus
}
#endif
#endif
#endif
