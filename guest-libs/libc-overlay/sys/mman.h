/* Weft's sys/mman.h: wasi-libc's declarations, which refuse to compile
 * without its emulation library; libweft's mman.c provides the calls
 * (memory mappings from the heap, see there). */
#ifndef WEFT_SYS_MMAN_H
#define WEFT_SYS_MMAN_H

#ifndef _WASI_EMULATED_MMAN
#define _WASI_EMULATED_MMAN
#endif
#include_next <sys/mman.h>

#endif
