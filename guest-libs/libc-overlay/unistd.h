/* Weft's unistd.h: wasi-libc's, plus getpid (one fixed id: a program is
 * one process), alarm and pause, which libweft provides (signal.c), and
 * the process calls wasi-libc hides (fork, exec*, getppid, syscall,
 * gettid):
 * they compile, and those that would need another process fail with
 * ENOSYS when called (process.c). */
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

pid_t fork(void);
pid_t _Fork(void);
pid_t vfork(void);
int execve(const char *, char *const[], char *const[]);
int execv(const char *, char *const[]);
int execle(const char *, const char *, ...);
int execl(const char *, const char *, ...);
int execvp(const char *, char *const[]);
int execlp(const char *, const char *, ...);
int execvpe(const char *, char *const[], char *const[]);
int fexecve(int, char *const[], char *const[]);
pid_t getppid(void);
long syscall(long, ...);
#ifdef _GNU_SOURCE
pid_t gettid(void);
#endif

#ifdef __cplusplus
}
#endif
#endif
