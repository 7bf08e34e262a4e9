/* Calls that portable thread programs include headers for and that cannot
 * work in a one-process wasm program: they compile (libc-overlay's
 * headers) and fail at run time the way POSIX lets them fail.
 *
 * - setjmp returns 0; longjmp would need a non-local jump, which wasm has
 *   only through exception handling that clang 19 and wasmtime 48 do not
 *   share: it ends the program with one line naming the call and thread.
 * - posix_spawn: ENOSYS (no other process); its attribute and file-action
 *   objects work.
 * - System V IPC (shmget, semget, msgget, ftok): ENOSYS.
 * - The user and group databases are empty.
 * - syslog writes to stderr under LOG_PERROR, else nowhere. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <syslog.h>
#include <unistd.h>

#include <weft/threads.h>

#define MAIN_TID 0x3fffffffu /* the id wasi-libc gives the main thread */

/* ---- setjmp / longjmp ---------------------------------------------------- */

int setjmp(jmp_buf env) {
    (void)env;
    return 0;
}

int _setjmp(jmp_buf env) { return setjmp(env); }

int sigsetjmp(sigjmp_buf env, int save) {
    (void)save;
    return setjmp(env);
}

static _Noreturn void no_jump(const char *call) {
    unsigned tid = (unsigned)weft_thread_current_id();
    if (tid == MAIN_TID)
        fprintf(stderr, "weft: %s in the main thread: not supported (wasm has no non-local jump without exception handling)\n", call);
    else
        fprintf(stderr, "weft: %s in thread %u: not supported (wasm has no non-local jump without exception handling)\n", call, tid);
    /* The code a shell shows for SIGABRT, without a trap's backtrace. */
    _Exit(128 + 6);
}

_Noreturn void longjmp(jmp_buf env, int value) {
    (void)env;
    (void)value;
    no_jump("longjmp");
}

_Noreturn void _longjmp(jmp_buf env, int value) {
    (void)env;
    (void)value;
    no_jump("_longjmp");
}

_Noreturn void siglongjmp(sigjmp_buf env, int value) {
    (void)env;
    (void)value;
    no_jump("siglongjmp");
}

/* ---- posix_spawn ---------------------------------------------------------- */

int posix_spawn(pid_t *restrict pid, const char *restrict path,
                const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *restrict attr,
                char *const argv[restrict], char *const envp[restrict]) {
    (void)pid, (void)path, (void)actions, (void)attr, (void)argv, (void)envp;
    return ENOSYS;
}

int posix_spawnp(pid_t *restrict pid, const char *restrict file,
                 const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *restrict attr,
                 char *const argv[restrict], char *const envp[restrict]) {
    return posix_spawn(pid, file, actions, attr, argv, envp);
}

int posix_spawnattr_init(posix_spawnattr_t *attr) {
    memset(attr, 0, sizeof *attr);
    return 0;
}

int posix_spawnattr_destroy(posix_spawnattr_t *attr) {
    (void)attr;
    return 0;
}

int posix_spawnattr_setflags(posix_spawnattr_t *attr, short flags) {
    if ((unsigned short)flags & ~0xffu) return EINVAL;
    attr->__flags = flags;
    return 0;
}

int posix_spawnattr_getflags(const posix_spawnattr_t *restrict attr, short *restrict flags) {
    *flags = (short)attr->__flags;
    return 0;
}

int posix_spawnattr_setpgroup(posix_spawnattr_t *attr, pid_t group) {
    attr->__pgrp = group;
    return 0;
}

int posix_spawnattr_getpgroup(const posix_spawnattr_t *restrict attr, pid_t *restrict group) {
    *group = attr->__pgrp;
    return 0;
}

int posix_spawnattr_setsigmask(posix_spawnattr_t *restrict attr, const sigset_t *restrict mask) {
    attr->__mask = *mask;
    return 0;
}

int posix_spawnattr_getsigmask(const posix_spawnattr_t *restrict attr, sigset_t *restrict mask) {
    *mask = attr->__mask;
    return 0;
}

int posix_spawnattr_setsigdefault(posix_spawnattr_t *restrict attr, const sigset_t *restrict set) {
    attr->__def = *set;
    return 0;
}

int posix_spawnattr_getsigdefault(const posix_spawnattr_t *restrict attr, sigset_t *restrict set) {
    *set = attr->__def;
    return 0;
}

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *actions) {
    memset(actions, 0, sizeof *actions);
    return 0;
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *actions) {
    (void)actions;
    return 0;
}

int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *restrict actions, int fd,
                                     const char *restrict path, int flags, mode_t mode) {
    (void)actions, (void)path, (void)flags, (void)mode;
    return fd < 0 ? EBADF : 0;
}

int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *actions, int fd) {
    (void)actions;
    return fd < 0 ? EBADF : 0;
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *actions, int fd, int to) {
    (void)actions;
    return fd < 0 || to < 0 ? EBADF : 0;
}

/* ---- System V IPC ----------------------------------------------------------- */

static int no_ipc(void) {
    errno = ENOSYS;
    return -1;
}

key_t ftok(const char *path, int id) {
    (void)path, (void)id;
    return no_ipc();
}

int shmget(key_t key, size_t size, int flags) {
    (void)key, (void)size, (void)flags;
    return no_ipc();
}

void *shmat(int id, const void *address, int flags) {
    (void)id, (void)address, (void)flags;
    errno = ENOSYS;
    return (void *)-1;
}

int shmdt(const void *address) {
    (void)address;
    return no_ipc();
}

int shmctl(int id, int command, struct shmid_ds *buffer) {
    (void)id, (void)command, (void)buffer;
    return no_ipc();
}

int semget(key_t key, int count, int flags) {
    (void)key, (void)count, (void)flags;
    return no_ipc();
}

int semctl(int id, int number, int command, ...) {
    (void)id, (void)number, (void)command;
    return no_ipc();
}

int semop(int id, struct sembuf *operations, size_t count) {
    (void)id, (void)operations, (void)count;
    return no_ipc();
}

int semtimedop(int id, struct sembuf *operations, size_t count, const struct timespec *timeout) {
    (void)id, (void)operations, (void)count, (void)timeout;
    return no_ipc();
}

/* ---- users and groups ------------------------------------------------------- */

struct passwd *getpwnam(const char *name) {
    (void)name;
    return NULL;
}

struct passwd *getpwuid(uid_t uid) {
    (void)uid;
    return NULL;
}

int getpwnam_r(const char *name, struct passwd *entry, char *buffer, size_t size,
               struct passwd **result) {
    (void)name, (void)entry, (void)buffer, (void)size;
    *result = NULL;
    return 0;
}

int getpwuid_r(uid_t uid, struct passwd *entry, char *buffer, size_t size, struct passwd **result) {
    (void)uid, (void)entry, (void)buffer, (void)size;
    *result = NULL;
    return 0;
}

void setpwent(void) {}
void endpwent(void) {}
struct passwd *getpwent(void) { return NULL; }

struct group *getgrgid(gid_t gid) {
    (void)gid;
    return NULL;
}

struct group *getgrnam(const char *name) {
    (void)name;
    return NULL;
}

int getgrnam_r(const char *name, struct group *entry, char *buffer, size_t size,
               struct group **result) {
    (void)name, (void)entry, (void)buffer, (void)size;
    *result = NULL;
    return 0;
}

int getgrgid_r(gid_t gid, struct group *entry, char *buffer, size_t size, struct group **result) {
    (void)gid, (void)entry, (void)buffer, (void)size;
    *result = NULL;
    return 0;
}

void setgrent(void) {}
void endgrent(void) {}
struct group *getgrent(void) { return NULL; }

/* ---- syslog -------------------------------------------------------------------- */

/* Set once by openlog, normally before threads start; read by syslog. */
static const char *log_ident;
static int log_options;
static int log_mask = 0xff;

void openlog(const char *ident, int options, int facility) {
    (void)facility;
    log_ident = ident;
    log_options = options;
}

void closelog(void) {
    log_ident = NULL;
    log_options = 0;
}

int setlogmask(int mask) {
    int old = log_mask;
    if (mask) log_mask = mask;
    return old;
}

void vsyslog(int priority, const char *format, va_list args) {
    if (!(log_options & LOG_PERROR) || !(log_mask & LOG_MASK(LOG_PRI(priority)))) return;
    /* One line per message, written at once. */
    char line[1024];
    int n = 0;
    if (log_ident) n = snprintf(line, sizeof line, "%s: ", log_ident);
    if (n < 0) return;
    if ((size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, format, args);
    fprintf(stderr, "%s\n", line);
}

void syslog(int priority, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsyslog(priority, format, args);
    va_end(args);
}
