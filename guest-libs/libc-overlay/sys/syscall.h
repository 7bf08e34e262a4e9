/* Weft's sys/syscall.h: wasi-libc's has no numbers, as WASI has no
 * system calls. libweft's syscall() answers the few that thread programs
 * make through it (Linux's generic numbers) and fails the others with
 * ENOSYS (process.c). Only the numbers it answers are defined, so code
 * that tests for one (#ifdef SYS_futex) takes its portable path. */
#ifndef WEFT_SYS_SYSCALL_H
#define WEFT_SYS_SYSCALL_H

#include_next <sys/syscall.h>

#define __NR_sched_yield 124
#define __NR_getpid 172
#define __NR_getppid 173
#define __NR_gettid 178

#define SYS_sched_yield __NR_sched_yield
#define SYS_getpid __NR_getpid
#define SYS_getppid __NR_getppid
#define SYS_gettid __NR_gettid

#endif
