/* Weft's sys/times.h: wasi-libc's refuses to compile without its
 * wall-clock emulation; libweft's times() reads the process CPU-time clock
 * Weft serves instead (clocks.c). */
#ifndef WEFT_SYS_TIMES_H
#define WEFT_SYS_TIMES_H

#ifndef _WASI_EMULATED_PROCESS_CLOCKS
#define _WASI_EMULATED_PROCESS_CLOCKS
#endif
#include_next <sys/times.h>

#endif
