/* Process-level calls portable thread programs make that wasi-libc
 * leaves out or answers wrongly.
 *
 * - The processor count: sysconf(_SC_NPROCESSORS_ONLN/CONF) (and through
 *   it get_nprocs, get_nprocs_conf) and the affinity calls answer the
 *   parallelism the host offers (weft:threads available-parallelism);
 *   wasi-libc's sysconf says 1. Affinity is accepted and changes nothing.
 * - A Weft program is one process: fork, exec*, system and popen compile
 *   and fail with ENOSYS; it never has children, so the waits fail with
 *   ECHILD (POSIX's error for a caller without children).
 * - gettid, syscall for the ids, thread names (pthread_setname_np, prctl),
 *   resource limits and the nice value, kept as set. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/threads.h>

#include "chain.h"
#include "thread_fields.h"

/* ---- processors --------------------------------------------------------- */

static int processors(void) {
    uint32_t n = weft_available_parallelism();
    if (n < 1) return 1;
    return n > CPU_SETSIZE ? CPU_SETSIZE : (int)n;
}

long __real_sysconf(int);

long __wrap_sysconf(int name) {
    if (name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF) return processors();
    return __real_sysconf(name);
}

int __sched_cpucount(size_t size, const cpu_set_t *set) {
    int count = 0;
    for (size_t i = 0; i < size; i++) count += __builtin_popcount(((const unsigned char *)set)[i]);
    return count;
}

/* Every processor the host offers; EINVAL when `size` cannot hold them
 * (as Linux, whose mask is as large as its processor count). */
static int fill_affinity(size_t size, cpu_set_t *set) {
    int n = processors();
    if (size * 8 < (size_t)n) return EINVAL;
    memset(set, 0, size);
    for (int i = 0; i < n; i++) ((unsigned char *)set)[i / 8] |= (unsigned char)(1u << (i % 8));
    return 0;
}

/* A mask is valid when it names at least one processor the host offers. */
static int check_affinity(size_t size, const cpu_set_t *set) {
    int n = processors();
    for (int i = 0; i < n && (size_t)i / 8 < size; i++)
        if (((const unsigned char *)set)[i / 8] & (1u << (i % 8))) return 0;
    return EINVAL;
}

/* pid 0, the program, or one of its threads' ids. */
static int known_pid(pid_t pid) { return pid >= 0; }

static int fail(int error) {
    errno = error;
    return -1;
}

int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set) {
    if (!known_pid(pid)) return fail(ESRCH);
    int rc = fill_affinity(size, set);
    return rc ? fail(rc) : 0;
}

int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set) {
    if (!known_pid(pid)) return fail(ESRCH);
    int rc = check_affinity(size, set);
    return rc ? fail(rc) : 0;
}

int pthread_getaffinity_np(pthread_t thread, size_t size, cpu_set_t *set) {
    (void)thread;
    return fill_affinity(size, set);
}

int pthread_setaffinity_np(pthread_t thread, size_t size, const cpu_set_t *set) {
    (void)thread;
    return check_affinity(size, set);
}

/* Wasm does not know which processor it runs on. */
int sched_getcpu(void) { return fail(ENOSYS); }

/* What sysinfo can say here: uptime from the monotonic clock, the
 * program's memory as its RAM, and its threads as processes unknown. */
int sysinfo(struct sysinfo *info) {
    memset(info, 0, sizeof *info);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    info->uptime = (unsigned long)now.tv_sec;
    info->totalram = (unsigned long)__builtin_wasm_memory_size(0) * 65536;
    info->procs = 1;
    info->mem_unit = 1;
    return 0;
}

/* ---- other processes ------------------------------------------------------ */

pid_t fork(void) { return fail(ENOSYS); }
pid_t _Fork(void) { return fail(ENOSYS); }
pid_t vfork(void) { return fail(ENOSYS); }

int execve(const char *path, char *const argv[], char *const envp[]) {
    (void)path, (void)argv, (void)envp;
    return fail(ENOSYS);
}

int execv(const char *path, char *const argv[]) {
    (void)path, (void)argv;
    return fail(ENOSYS);
}

int execvp(const char *file, char *const argv[]) {
    (void)file, (void)argv;
    return fail(ENOSYS);
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
    (void)file, (void)argv, (void)envp;
    return fail(ENOSYS);
}

int fexecve(int fd, char *const argv[], char *const envp[]) {
    (void)fd, (void)argv, (void)envp;
    return fail(ENOSYS);
}

int execl(const char *path, const char *arg, ...) {
    (void)path, (void)arg;
    return fail(ENOSYS);
}

int execle(const char *path, const char *arg, ...) {
    (void)path, (void)arg;
    return fail(ENOSYS);
}

int execlp(const char *file, const char *arg, ...) {
    (void)file, (void)arg;
    return fail(ENOSYS);
}

/* No shell: system(NULL) says so, a command cannot run. */
int system(const char *command) { return command ? fail(ENOSYS) : 0; }

FILE *popen(const char *command, const char *mode) {
    (void)command, (void)mode;
    errno = ENOSYS;
    return NULL;
}

int pclose(FILE *f) {
    (void)f;
    return fail(ECHILD);
}

pid_t wait(int *status) {
    (void)status;
    return fail(ECHILD);
}

pid_t waitpid(pid_t pid, int *status, int options) {
    (void)pid, (void)status;
    if (options & ~(WNOHANG | WUNTRACED | WCONTINUED)) return fail(EINVAL);
    return fail(ECHILD);
}

int waitid(idtype_t type, id_t id, siginfo_t *info, int options) {
    (void)type, (void)id, (void)info;
    if (!(options & (WEXITED | WSTOPPED | WCONTINUED))) return fail(EINVAL);
    return fail(ECHILD);
}

pid_t wait3(int *status, int options, struct rusage *usage) {
    return wait4(-1, status, options, usage);
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage) {
    (void)usage;
    return waitpid(pid, status, options);
}

/* The program's id is 1 (signal.c), whose parent, as init's, is 0. */
pid_t getppid(void) { return 0; }

/* ---- thread ids and names ------------------------------------------------- */

/* As on Linux, the main thread's id is the program's, and every other
 * thread's is above it: the host's thread id (from 1) added to it. */
#define MAIN_THREAD_TID 0x3fffffff /* wasi-libc's tid for the main thread */

pid_t gettid(void) {
    int tid = THREAD_TID(pthread_self());
    return tid == MAIN_THREAD_TID ? getpid() : getpid() + tid;
}

long syscall(long number, ...) {
    switch (number) {
    case SYS_gettid: return gettid();
    case SYS_getpid: return getpid();
    case SYS_getppid: return getppid();
    case SYS_sched_yield: return sched_yield();
    default: return fail(ENOSYS);
    }
}

/* A thread's name, in its own TLS block: a thread naming itself writes
 * only its own memory (no merge conflict in chain mode), and another
 * thread's name lies at the same offset from that thread's struct
 * pthread as the caller's from its own (libc places both in the TLS
 * block). A new thread starts with its creator's name, as on Linux. */
#define NAME_SIZE 16
static _Thread_local char thread_name[NAME_SIZE];

static char *name_of(pthread_t thread) {
    return thread_name + ((char *)thread - (char *)pthread_self());
}

void weft_thread_name_inherit(pthread_t thread) {
    memcpy(name_of(thread), thread_name, NAME_SIZE);
}

int pthread_setname_np(pthread_t thread, const char *name) {
    size_t len = strlen(name);
    if (len >= NAME_SIZE) return ERANGE;
    memcpy(name_of(thread), name, len + 1);
    return 0;
}

int pthread_getname_np(pthread_t thread, char *buf, size_t len) {
    const char *name = name_of(thread);
    if (len < NAME_SIZE) return ERANGE; /* as glibc: room for any name */
    memcpy(buf, name, strnlen(name, NAME_SIZE - 1));
    buf[strnlen(name, NAME_SIZE - 1)] = 0;
    return 0;
}

int prctl(int option, ...) {
    va_list ap;
    va_start(ap, option);
    char *name = va_arg(ap, char *);
    va_end(ap);
    switch (option) {
    case PR_SET_NAME:
        /* Linux truncates a long name to 15 bytes. */
        memset(thread_name, 0, NAME_SIZE);
        strncpy(thread_name, name, NAME_SIZE - 1);
        return 0;
    case PR_GET_NAME: memcpy(name, thread_name, NAME_SIZE); return 0;
    default: return fail(EINVAL);
    }
}

/* ---- resource limits and priority ----------------------------------------- */

/* Kept as set, and enforced nowhere. A soft limit may not exceed its hard
 * limit, and a hard limit may be lowered but not raised (the program has
 * no privilege), as on Linux. */
static struct rlimit limits[RLIM_NLIMITS];
static int limits_ready;

static void init_limits(void) {
    if (limits_ready) return;
    for (int i = 0; i < RLIM_NLIMITS; i++) limits[i] = (struct rlimit){RLIM_INFINITY, RLIM_INFINITY};
    limits_ready = 1;
}

int getrlimit(int resource, struct rlimit *limit) {
    if (resource < 0 || resource >= RLIM_NLIMITS) return fail(EINVAL);
    init_limits();
    *limit = limits[resource];
    return 0;
}

int setrlimit(int resource, const struct rlimit *limit) {
    if (resource < 0 || resource >= RLIM_NLIMITS) return fail(EINVAL);
    if (limit->rlim_cur > limit->rlim_max) return fail(EINVAL);
    init_limits();
    if (limit->rlim_max > limits[resource].rlim_max) return fail(EPERM);
    limits[resource] = *limit;
    return 0;
}

/* The program's nice value: raised freely, lowered only back to where it
 * was (the program has no privilege). */
static int nice_value;

static int own_process(int which, id_t who) {
    return which == PRIO_PROCESS && (who == 0 || who == (id_t)getpid());
}

int getpriority(int which, id_t who) {
    if (which != PRIO_PROCESS && which != PRIO_PGRP && which != PRIO_USER) return fail(EINVAL);
    if (!own_process(which, who) && !(which != PRIO_PROCESS && who == 0)) return fail(ESRCH);
    return nice_value;
}

int setpriority(int which, id_t who, int value) {
    if (which != PRIO_PROCESS && which != PRIO_PGRP && which != PRIO_USER) return fail(EINVAL);
    if (!own_process(which, who) && !(which != PRIO_PROCESS && who == 0)) return fail(ESRCH);
    if (value < PRIO_MIN) value = PRIO_MIN;
    if (value > PRIO_MAX - 1) value = PRIO_MAX - 1;
    if (value < nice_value) return fail(EACCES);
    nice_value = value;
    return 0;
}
