/* Weft's stdio.h: wasi-libc's, plus popen and pclose, which compile and
 * fail when called: a Weft program cannot start another process
 * (libweft's process.c). */
#ifndef WEFT_STDIO_H
#define WEFT_STDIO_H

#include_next <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

FILE *popen(const char *, const char *);
int pclose(FILE *);

#ifdef __cplusplus
}
#endif
#endif
