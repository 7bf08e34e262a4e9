/* Weft's signal.h: wasi-libc's (its signal numbers, signal() and raise()),
 * plus the POSIX signal calls libweft provides between the threads of one
 * program (signal.c): sigaction, signal sets and masks, pthread_kill,
 * kill of the program itself, sigwait/sigtimedwait, sigpending,
 * sigsuspend. Handlers run in the target thread at its next delivery
 * point (see the README: a wait, a sleep, a clock read, or a signal call
 * of its own). */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#ifndef _WASI_EMULATED_SIGNAL
#define _WASI_EMULATED_SIGNAL
#endif
#include_next <signal.h>

#define __NEED_pid_t
#define __NEED_uid_t
#define __NEED_pthread_t
#define __NEED_struct_timespec
#include <bits/alltypes.h>
#include <__typedef_sigset_t.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2

#define SI_TIMER (-2)
#define SI_QUEUE (-1)
#define SI_USER 0
#define SI_TKILL (-6)

#define SA_NOCLDSTOP 1
#define SA_NOCLDWAIT 2
#define SA_SIGINFO 4
#define SA_ONSTACK 0x08000000
#define SA_RESTART 0x10000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000

union sigval {
    int sival_int;
    void *sival_ptr;
};

typedef struct {
    int si_signo;
    int si_errno;
    int si_code;
    pid_t si_pid;
    uid_t si_uid;
    union sigval si_value;
    void *si_addr;
    int si_status;
    int __pad[24];
} siginfo_t;

struct sigaction {
    union {
        void (*sa_handler)(int);
        void (*sa_sigaction)(int, siginfo_t *, void *);
    } __sa_handler;
    sigset_t sa_mask;
    int sa_flags;
    void (*sa_restorer)(void);
};
#define sa_handler __sa_handler.sa_handler
#define sa_sigaction __sa_handler.sa_sigaction

int kill(pid_t, int);
int sigemptyset(sigset_t *);
int sigfillset(sigset_t *);
int sigaddset(sigset_t *, int);
int sigdelset(sigset_t *, int);
int sigismember(const sigset_t *, int);
int sigprocmask(int, const sigset_t *__restrict, sigset_t *__restrict);
int sigsuspend(const sigset_t *);
int sigaction(int, const struct sigaction *__restrict, struct sigaction *__restrict);
int sigpending(sigset_t *);
int sigwait(const sigset_t *__restrict, int *__restrict);
int sigwaitinfo(const sigset_t *__restrict, siginfo_t *__restrict);
int sigtimedwait(const sigset_t *__restrict, siginfo_t *__restrict,
                 const struct timespec *__restrict);
int pthread_sigmask(int, const sigset_t *__restrict, sigset_t *__restrict);
int pthread_kill(pthread_t, int);

#ifdef __cplusplus
}
#endif
#endif
