/* Weft's sys/prctl.h (wasi-libc has none): the calling thread's name, the
 * use thread programs make of prctl (libweft's process.c, shared with
 * pthread_setname_np); every other option is EINVAL. */
#ifndef WEFT_SYS_PRCTL_H
#define WEFT_SYS_PRCTL_H

#ifdef __cplusplus
extern "C" {
#endif

#define PR_SET_NAME 15
#define PR_GET_NAME 16

int prctl(int, ...);

#ifdef __cplusplus
}
#endif
#endif
