/* Weft's unistd.h: wasi-libc's, plus getpid (one fixed id: a program is
 * one process), alarm and pause, which libweft provides (signal.c). */
#ifndef WEFT_UNISTD_H
#define WEFT_UNISTD_H

#ifndef _WASI_EMULATED_GETPID
#define _WASI_EMULATED_GETPID
#endif
#include_next <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

unsigned alarm(unsigned);
int pause(void);

#ifdef __cplusplus
}
#endif
#endif
