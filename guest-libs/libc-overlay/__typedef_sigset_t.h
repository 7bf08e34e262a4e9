/* Weft's sigset_t: wasi-libc's is a one-byte placeholder, too small for
 * the 31 signals libweft delivers; this one has the size and layout of
 * musl's and glibc's. Every header that names sigset_t includes this
 * file, so the two never meet. */
#ifndef __wasilibc___typedef_sigset_t_h
#define __wasilibc___typedef_sigset_t_h

typedef struct {
    unsigned long __bits[128 / sizeof(long)];
} sigset_t;

#endif
